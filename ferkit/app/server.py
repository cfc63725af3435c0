"""The web page and JSON API that serve.py runs: photos and webcam frames in, every face's
box, label and seven probabilities out (FastAPI; the page is ferkit/app/web/static, served by
the app itself, nothing fetched from elsewhere; the OpenAPI page at /docs gets its scripts
from the fastapi-offline wheel, not a CDN).

The models are loaded once, by FaceReader, the one adapter between the server and the
toolkit's face finder and cascade. A LiteRT interpreter (and OpenCV's cascade) must not be
run from two threads at once, so FaceReader runs one picture at a time behind a lock;
reading and checking an upload, and writing the answer, happen outside it.

An upload is refused before it costs memory or time: over the byte limit by its
Content-Length or while it streams in (413), over the pixel limit by the size its header
states, before decoding (413: decompression bombs), and not a JPEG, PNG, WebP or BMP, or
truncated, or empty (415 or 400). Every refusal is one line of JSON: {"error": "..."}.
Nothing a client sends names a file on the server.
"""
from __future__ import annotations

import base64
import json
import dataclasses
import io
import threading
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from fastapi import Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match
from fastapi_offline import FastAPIOffline  # the OpenAPI page's scripts from its wheel
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ferkit.app.annotation import CLASS_KEYS, FACE_FIELDS, _heat_tile, face_values
from ferkit.data import IMAGE_SIZE
from ferkit.errors import InputError
from ferkit.faces import (DETECTORS, SOURCE_DETECTORS, find_faces, load_face_detector,
                          source_settings)
from ferkit.figures import normalized

STATIC = Path(__file__).resolve().parent / "web" / "static"
DEFAULT_MAX_UPLOAD_MB = 10
DEFAULT_MAX_PIXELS = 40_000_000   # a 48-megapixel phone photo's 8000x6000 would be refused
MAX_FACES_PER_REQUEST = 1024      # /api/predict: faces in one request
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                 "BMP": "image/bmp"}
GRADCAM_SIDE = 96                 # pixels of the Grad-CAM picture sent back per face


class RequestError(Exception):
    """A request the server refuses: its HTTP status and the one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


# --- the adapter: the one place the server meets the toolkit ---------------------------------

def face_json(box, score, label, probs, stage1_probs, specialist) -> dict:
    """One face as the API answers it, under faces.csv's column names (x y w h score, then
    ferkit.app.annotation.FACE_FIELDS: the label, its name, whether the specialist chose it, the
    label's probabilities p_* and stage 1's stage1_p_*), ``specialist`` as a JSON boolean."""
    face = {} if box is None else dict(zip(("x", "y", "w", "h"), map(int, box)))
    if score is not None:  # Haar's: a count of windows; MTCNN's: a confidence 0-1
        face["score"] = (int(score) if np.issubdtype(type(score), np.integer)
                         else round(float(score), 4))
    face.update(zip(FACE_FIELDS, face_values(label, probs, stage1_probs, specialist)))
    face["specialist"] = bool(specialist)
    return face


class FaceReader:
    """The face detectors, the cascade and (for Grad-CAM) stage 1's Keras model, each
    loaded once; one picture at a time (a lock) through the toolkit's face finder
    (ferkit.faces) and the package's public recognizer (ferkit.Recognizer: the cascade
    predict.py runs)."""

    def __init__(self, recognizer, explain_model=None, detector: str | None = None):
        """``detector``: the one every picture goes through (None: each source's own,
        SOURCE_DETECTORS; both are loaded)."""
        self.recognizer = recognizer
        self.explain_model = explain_model
        self.detector = detector
        self.detectors = {name: load_face_detector(name)
                          for name in ([detector] if detector else DETECTORS)}
        self._lock = threading.Lock()

    def faces(self, image: np.ndarray, source: str = "photo", detector: str | None = None,
              explain: bool = False) -> tuple[list[dict], str]:
        """([face_json of every face, with "gradcam" (a PNG data URL) when ``explain``],
        the detector used) of a BGR picture; ``source`` "photo" or "live" picks the
        detector and resolution (ferkit.faces.source_settings) unless ``detector`` names
        one."""
        settings = source_settings(source, detector or self.detector)
        if settings.detector not in self.detectors:
            raise RequestError(400, f"detector: {settings.detector} is not loaded on this "
                                    f"server (serve.py --detector {self.detector} loads only "
                                    f"that one)")
        if explain and self.explain_model is None:
            raise RequestError(400, "explain: Grad-CAM is off on this server (serve.py "
                                    "--no-explain)")
        with self._lock:
            boxes, scores, crops = find_faces(image, self.detectors[settings.detector], settings)
            said = self.recognizer.predict(crops)
            heat = None
            if explain and len(crops):
                from ferkit.explain import gradcam  # TensorFlow: loaded with explain_model

                heat = normalized(gradcam(self.explain_model, crops, said.labels))
        faces = [face_json(*face) for face in zip(boxes, scores, *said_columns(said))]
        for i, face in enumerate(faces if heat is not None else []):
            face["gradcam"] = png_data_url(cv2.resize(_heat_tile(crops[i], heat[i]),
                                                      (GRADCAM_SIDE, GRADCAM_SIDE)))
        return faces, settings.detector

    def predict(self, crops: np.ndarray) -> list[dict]:
        """face_json (no box, no score) of each uint8 (N, 48, 48) face."""
        with self._lock:
            said = self.recognizer.predict(crops)
        return [face_json(None, None, *face) for face in zip(*said_columns(said))]


def said_columns(said) -> tuple:
    """A cascade Prediction as face_json's per-face arguments after the box and score."""
    return said.labels, said.probabilities, said.stage1_probabilities, said.handed_over


def png_data_url(image: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", image)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


# --- reading uploads safely ----------------------------------------------------------------

@dataclasses.dataclass
class Limits:
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1_000_000
    max_pixels: int = DEFAULT_MAX_PIXELS


async def read_body(request, limits: Limits) -> bytes:
    """The request's body, refused (413) by its Content-Length or, without one or when it
    lies, as soon as more than the limit has streamed in."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
        raise RequestError(413, f"upload: expected at most {limits.max_upload_bytes} bytes, "
                                f"found a Content-Length of {declared}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limits.max_upload_bytes:
            raise RequestError(413, f"upload: expected at most {limits.max_upload_bytes} "
                                    f"bytes, found more")
        chunks.append(chunk)
    return b"".join(chunks)


async def image_bytes(request, limits: Limits) -> bytes:
    """The picture's bytes of a raw upload (the body itself) or a multipart form (its
    first file field), the whole request within the byte limit."""
    body = await read_body(request, limits)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return body
    async def replay():
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(max_files=1, max_fields=10)
    except Exception as err:  # python-multipart's and Starlette's parse errors alike
        raise RequestError(400, f"upload: expected a multipart form with one file, cannot "
                                f"parse it ({str(err).splitlines()[0] if str(err) else err!r})")
    files = [value for value in form.values() if hasattr(value, "read")]
    if not files:
        raise RequestError(400, "upload: expected a multipart form with a file field, found "
                                "none")
    return await files[0].read()


def decode_image(data: bytes, limits: Limits) -> np.ndarray:
    """BGR uint8 (H, W, 3) of a JPEG, PNG, WebP or BMP, turned as its EXIF orientation
    says; its pixel count checked from the header before anything is decoded."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise RequestError(400, "upload: expected a JPEG, PNG, WebP or BMP image, found an "
                                "empty body")
    try:
        picture = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
    except UnidentifiedImageError:
        raise RequestError(415, "upload: expected a JPEG, PNG, WebP or BMP image, found "
                                "something else") from None
    except Image.DecompressionBombError:
        raise RequestError(413, f"upload: expected at most {limits.max_pixels} pixels, "
                                f"found a picture far larger") from None
    width, height = picture.size  # read from the header: nothing decoded yet
    if width * height > limits.max_pixels:
        raise RequestError(413, f"upload: expected at most {limits.max_pixels} pixels, found "
                                f"{width}x{height} = {width * height}")
    try:
        picture.load()
        rgb = np.asarray(ImageOps.exif_transpose(picture).convert("RGB"))
    except (OSError, SyntaxError, ValueError) as err:
        raise RequestError(400, f"upload: expected a whole {picture.format} image, cannot "
                                f"decode it ({str(err).splitlines()[0]})") from None
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def parse_faces(payload) -> np.ndarray:
    """uint8 (N, 48, 48) from {"faces": [face, ...]}, each face 2304 grey levels 0-255 as a
    list (flat or 48 rows of 48) or as FER2013's space-separated 'pixels' string."""
    faces = payload.get("faces") if isinstance(payload, dict) else None
    if not isinstance(faces, list) or not faces:
        raise RequestError(400, 'faces: expected {"faces": [...]} with at least one face of '
                                f"{IMAGE_SIZE}x{IMAGE_SIZE} grey levels")
    if len(faces) > MAX_FACES_PER_REQUEST:
        raise RequestError(413, f"faces: expected at most {MAX_FACES_PER_REQUEST} faces, "
                                f"found {len(faces)}")
    crops = []
    for i, face in enumerate(faces):
        try:
            values = np.array(face.split() if isinstance(face, str) else face, dtype=np.float64)
        except (TypeError, ValueError):
            raise RequestError(400, f"faces[{i}]: expected numbers 0-255, found something "
                                    f"else") from None
        if values.size != IMAGE_SIZE * IMAGE_SIZE:
            raise RequestError(400, f"faces[{i}]: expected {IMAGE_SIZE * IMAGE_SIZE} grey "
                                    f"levels ({IMAGE_SIZE}x{IMAGE_SIZE}), found {values.size}")
        if not np.all((values >= 0) & (values <= 255)):
            raise RequestError(400, f"faces[{i}]: expected grey levels 0-255, found values "
                                    f"from {values.min():g} to {values.max():g}")
        crops.append(np.rint(values).astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
    return np.stack(crops)


# --- the app -------------------------------------------------------------------------------

def answer_errors_in_one_line(app) -> None:
    """Every refusal as ``{"error": one line}`` with its status: the server's own
    (RequestError), the toolkit's (InputError: 400), FastAPI's and its validation's."""

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": " ".join(str(message).split())}, status_code=status)

    @app.exception_handler(RequestError)
    async def refused(request, err: RequestError):
        return error(err.status, err.message)

    @app.exception_handler(InputError)
    async def bad_input(request, err: InputError):
        return error(400, str(err).splitlines()[0])

    @app.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):
        return error(err.status_code, err.detail)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, err: RequestValidationError):
        first = err.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid')}")


def create_app(reader: FaceReader, limits: Limits | None = None, about: dict | None = None):
    """The FastAPI app: the page at /, the API under /api, FastAPI's OpenAPI page at /docs.
    ``about``: what /api/health reports beside the limits (runtime, cascade, TTA,
    calibrated)."""
    limits = limits or Limits()
    app = FastAPIOffline(redoc_url=None, title="ferkit", version="1",
                         description="Facial expressions of the faces in a picture (FER2013's "
                                     "seven classes), by the toolkit's two-stage cascade.")
    answer_errors_in_one_line(app)

    image_body = {"requestBody": {"required": True, "content": {
        **{mime: {"schema": {"type": "string", "format": "binary"}}
           for mime in IMAGE_FORMATS.values()},
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}}}}}

    @app.post("/api/faces", openapi_extra=image_body,
              summary="Every face of a picture: box, label, probabilities")
    async def faces(request: Request,
                    source: Literal[tuple(SOURCE_DETECTORS)] = Query(
                        "photo", description="photo: the detector and resolution that "
                                             "find the most faces; live: a webcam frame, "
                                             "the fast one"),
                    detector: Literal[DETECTORS] | None = Query(
                        None, description="another detector than the source's"),
                    explain: bool = Query(False, description="add each face's Grad-CAM "
                                                             "(a PNG data URL)")):
        """The picture (a JPEG, PNG, WebP or BMP, as the raw body or a multipart form's
        file) -> its size and, per face, the box (x, y, w, h), the detector's score, the
        cascade's label and name, the label's seven probabilities and stage 1's by name
        (faces.csv's columns), and the milliseconds the server took."""
        started = time.perf_counter()
        image = decode_image(await image_bytes(request, limits), limits)
        found, used = await run_in_threadpool(reader.faces, image, source, detector, explain)
        return {"width": image.shape[1], "height": image.shape[0], "detector": used,
                "faces": found, "ms": round(1000 * (time.perf_counter() - started), 1)}

    @app.post("/api/predict", summary="Labels of 48x48 grey faces, no detection",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"example": {"faces": ["0 12 255 ... (2304 values)"]}}}}})
    async def predict(request: Request):
        """{"faces": [face, ...]}, each face 48x48 grey levels (2304 numbers as a list, 48
        lists of 48, or FER2013's space-separated string) -> each face's label, name, the
        label's probabilities and stage 1's by name (faces.csv's columns)."""
        started = time.perf_counter()
        body = await read_body(request, limits)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise RequestError(400, f"body: expected JSON, cannot parse it ({err})") from None
        found = await run_in_threadpool(reader.predict, parse_faces(payload))
        return {"faces": found, "ms": round(1000 * (time.perf_counter() - started), 1)}

    @app.get("/api/health", summary="The server is up: its models and limits")
    async def health():
        return {"status": "ok", **(about or {}), "detectors": list(reader.detectors),
                "sources": {source: {"detector": reader.detector or detector,
                                     "min_face": min_face}
                            for source, (detector, min_face) in SOURCE_DETECTORS.items()},
                "explain": reader.explain_model is not None,
                "max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels,
                "classes": list(CLASS_KEYS)}

    app.mount("/", Page(app, directory=STATIC, html=True), name="page")
    return app


class Page(StaticFiles):
    """The page's files at /, behind the API: a request whose path is the API's but whose
    method is not is answered 405 with the methods it takes (Allow), where falling through
    to the files would say 404 (Starlette lets the mount's full match win)."""

    def __init__(self, app, **options):
        super().__init__(**options)
        self.app = app

    async def __call__(self, scope, receive, send):
        allowed = sorted({method for route in self.app.routes
                          if scope["type"] == "http" and route.matches(scope)[0] == Match.PARTIAL
                          for method in getattr(route, "methods", ())})
        if allowed:
            response = JSONResponse(
                {"error": f"{scope['method']} {scope['path']}: expected "
                          f"{' or '.join(allowed)}"},
                status_code=405, headers={"Allow": ", ".join(allowed)})
            return await response(scope, receive, send)
        return await super().__call__(scope, receive, send)
