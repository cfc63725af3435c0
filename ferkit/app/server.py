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
import dataclasses
import io
import threading
import time
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from fastapi import File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match
from fastapi_offline import FastAPIOffline  # the OpenAPI page's scripts from its wheel
from pydantic import BaseModel, Field, create_model
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ferkit.app.annotation import _heat_tile
from ferkit.data import IMAGE_SIZE
from ferkit.errors import InputError
from ferkit.faces import DETECTORS, SOURCE_DETECTORS
from ferkit.figures import normalized
from ferkit.inference import (BOX_FIELDS, CLASS_KEYS, LABEL_PROBABILITY_FIELDS,
                              STAGE1_PROBABILITY_FIELDS, FaceResult)
from ferkit.tracking import LiveStreams

STATIC = Path(__file__).resolve().parent / "web" / "static"
DEFAULT_MAX_UPLOAD_MB = 10
DEFAULT_MAX_PIXELS = 40_000_000   # a 48-megapixel phone photo's 8000x6000 would be refused
MAX_FACES_PER_REQUEST = 1024      # /api/predict: faces in one request
IMAGE_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp",
                 "BMP": "image/bmp"}
GRADCAM_SIDE = 96                 # pixels of the Grad-CAM picture sent back per face


class RequestError(HTTPException):
    """A request the server refuses: its HTTP status and the one-line message (an
    HTTPException, so FastAPI passes it on from wherever the request is read)."""

    def __init__(self, status: int, message: str):
        super().__init__(status, message)
        self.status = status
        self.message = message


# --- the answers: request and response models, which /docs shows --------------------------------

def _face_fields() -> dict:
    """FaceAnswer's fields: FaceResult.record()'s keys (faces.csv's columns), described."""
    fields = {name: (int | None, Field(None, description=f"the face's box: {what}, pixels"))
              for name, what in zip(BOX_FIELDS, ("left", "top", "width", "height"))}
    fields["score"] = (int | float | None, Field(
        None, description="the detector's score: Haar's windows merged into the box, MTCNN's "
                          "confidence 0-1"))
    fields["label"] = (int, Field(description="the cascade's class, 0-6"))
    fields["label_name"] = (str, Field(description="its name (Angry .. Neutral)"))
    fields["handed_over"] = (bool, Field(description="whether the specialist chose the label"))
    for name, key in zip(LABEL_PROBABILITY_FIELDS, CLASS_KEYS):
        fields[name] = (float, Field(description=f"the label's probability of {key}"))
    for name, key in zip(STAGE1_PROBABILITY_FIELDS, CLASS_KEYS):
        fields[name] = (float, Field(description=f"stage 1's probability of {key}"))
    fields["track"] = (int | None, Field(None, description="with stream: the face's track, "
                                                           "the same for one person across "
                                                           "the stream's frames"))
    fields["smooth_label"] = (int | None, Field(None, description="with stream: the track's "
                                                                   "probabilities averaged "
                                                                   "over the last second's "
                                                                   "frames, their class"))
    fields["gradcam"] = (str | None, Field(None, description="with explain: where stage 1 "
                                                             "looked, a PNG data URL"))
    return fields


FaceAnswer = create_model(
    "FaceAnswer", __doc__="One face (ferkit.FaceResult): its box and detector score (none for "
                          "a face sent already cropped), label and probabilities.",
    **_face_fields())


class PictureAnswer(BaseModel):
    """Every face of a picture."""

    width: int = Field(description="the picture's width, pixels")
    height: int = Field(description="its height, pixels")
    detector: str = Field(description="the face detector used (haar, mtcnn)")
    faces: list[FaceAnswer] = Field(description="the faces, top to bottom")
    ms: float = Field(description="milliseconds the server took")


class FacesRequest(BaseModel):
    """48x48 grey faces to label: each 2304 grey levels 0-255 as a list (flat, or 48 rows of
    48) or as FER2013's space-separated string."""

    faces: list[str | list[float] | list[list[float]]] = Field(
        min_length=1, examples=[["0 12 255 ... (2304 values)"]])


class PredictAnswer(BaseModel):
    """Each face's label and probabilities, in the order sent."""

    faces: list[FaceAnswer]
    ms: float = Field(description="milliseconds the server took")


class SourceAnswer(BaseModel):
    detector: str
    min_face: int


class HealthAnswer(BaseModel):
    """The server's models and limits."""

    status: Literal["ok"]
    runtime: str | None = Field(None, description="what runs the models (keras, litert, ...)")
    cascade: bool | None = Field(None, description="whether the specialist runs")
    tta: bool | None = Field(None, description="whether flip TTA is on")
    detectors: list[str] = Field(description="the face detectors loaded")
    sources: dict[str, SourceAnswer] = Field(description="each source's detector and "
                                                         "smallest face")
    explain: bool = Field(description="whether Grad-CAM is on")
    max_upload_bytes: int
    max_pixels: int
    classes: list[str]


class ErrorAnswer(BaseModel):
    """A refusal, in one line."""

    error: str


REFUSALS = {status: {"model": ErrorAnswer} for status in (400, 413, 415, 422)}


def face_answer(face: FaceResult, gradcam: str | None = None) -> dict:
    """One face as the API answers it: FaceResult.record() (and its Grad-CAM)."""
    return {**face.record(), "gradcam": gradcam}


# --- the adapter: the one place the server meets the toolkit ---------------------------------

class FaceReader:
    """The recognizer (ferkit.Recognizer: the faces found and read as annotate.py finds and
    reads them, the cascade predict.py runs) and, for Grad-CAM, stage 1's Keras model, each
    loaded once; one picture at a time (a lock)."""

    def __init__(self, recognizer, explain_model=None, detector: str | None = None):
        """``detector``: the one every picture goes through (None: each source's own,
        SOURCE_DETECTORS; both are loaded)."""
        self.recognizer = recognizer
        self.explain_model = explain_model
        self.detector = detector
        self.detectors = {name: recognizer.face_detector(name)
                          for name in ([detector] if detector else DETECTORS)}
        self.streams = LiveStreams()
        self._lock = threading.Lock()

    def faces(self, image: np.ndarray, source: str = "photo", detector: str | None = None,
              explain: bool = False, stream: str | None = None) -> tuple[list[dict], str]:
        """([face_answer of every face, with its Grad-CAM when ``explain``], the detector
        used) of a BGR picture; ``source`` "photo" or "live" picks the detector and
        resolution (ferkit.Recognizer.look) unless ``detector`` names one."""
        used = detector or self.detector or SOURCE_DETECTORS[source][0]
        if used not in self.detectors:
            raise RequestError(400, f"detector: {used} is not loaded on this server (it "
                                    f"loads only {self.detector})")
        if explain and self.explain_model is None:
            raise RequestError(400, "explain: Grad-CAM is off on this server")
        with self._lock:
            found, crops = self.recognizer.look(image, source, used)
            gradcams = [None] * len(found)
            if explain and found:
                from ferkit.explain import gradcam  # TensorFlow: loaded with explain_model

                heat = normalized(gradcam(self.explain_model, crops,
                                          np.array([face.label for face in found])))
                gradcams = [png_data_url(cv2.resize(_heat_tile(crop, map_),
                                                    (GRADCAM_SIDE, GRADCAM_SIDE)))
                            for crop, map_ in zip(crops, heat)]
            answers = [face_answer(face, url) for face, url in zip(found, gradcams)]
            if stream is not None:  # a webcam's frames: each face's track (ferkit.tracking)
                ids, smoothed, _ = self.streams.update(
                    stream, time.monotonic(), [face.box for face in found],
                    [face.probabilities for face in found])
                for answer, track, probs in zip(answers, ids, smoothed):
                    answer.update(track=int(track), smooth_label=int(np.argmax(probs)))
        return answers, used

    def predict(self, crops: np.ndarray) -> list[dict]:
        """face_answer (no box, no score) of each uint8 (N, 48, 48) face."""
        with self._lock:
            said = self.recognizer.predict(crops)
        return [face_answer(face) for face in said.results()]


def png_data_url(image: np.ndarray) -> str:
    ok, png = cv2.imencode(".png", image)
    return "data:image/png;base64," + base64.b64encode(png.tobytes()).decode("ascii")


# --- reading uploads safely ----------------------------------------------------------------

@dataclasses.dataclass
class Limits:
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1_000_000
    max_pixels: int = DEFAULT_MAX_PIXELS


class LimitedUploads:
    """ASGI middleware: a request's body refused (413) by its Content-Length or, without one
    or when it lies, as soon as more than ``limits.max_upload_bytes`` has streamed in
    (limited_receive), whoever reads it (FastAPI's form and JSON parsing, or the endpoint)."""

    def __init__(self, app, limits: Limits):
        self.app, self.limits = app, limits

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = dict(scope.get("headers", ()))
            declared = headers.get(b"content-length", b"").decode("latin-1") or None
            receive = limited_receive(receive, declared, self.limits)
        await self.app(scope, receive, send)


def limited_receive(receive, declared: str | None, limits: Limits):
    """``receive`` that raises RequestError 413 when the body's declared length
    (Content-Length) is over the limit, or as soon as the chunks received pass it."""
    size = 0

    async def limited():
        nonlocal size
        if declared is not None and declared.isdigit() and int(declared) > limits.max_upload_bytes:
            raise RequestError(413, f"upload: expected at most {limits.max_upload_bytes} "
                                    f"bytes, found a Content-Length of {declared}")
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > limits.max_upload_bytes:
                raise RequestError(413, f"upload: expected at most {limits.max_upload_bytes} "
                                        f"bytes, found more")
        return message
    return limited


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


def parse_faces(faces: list) -> np.ndarray:
    """uint8 (N, 48, 48) from FacesRequest's faces (FastAPI has parsed the JSON and its
    shape), each face checked: 2304 grey levels 0-255."""
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
    (RequestError), the toolkit's (InputError: 400), FastAPI's and its validation's (a body
    that is not JSON: 400; one of another shape: 422)."""

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
        if first.get("type") == "json_invalid":
            return error(400, f"body: expected JSON, cannot parse it "
                              f"({first.get('ctx', {}).get('error', 'invalid')})")
        where = ".".join(str(part) for part in first.get("loc", ()))
        return error(422, f"{where}: {first.get('msg', 'invalid')}")


def create_app(reader: FaceReader, limits: Limits | None = None, about: dict | None = None):
    """The FastAPI app: the page at /, the API under /api, FastAPI's OpenAPI page at /docs
    (its schemas: the request and response models above). ``about``: what /api/health
    reports beside the limits (runtime, cascade, TTA, calibrated)."""
    limits = limits or Limits()
    # strict_content_type off: a JSON body is read as JSON when it comes without a
    # Content-Type, as before FastAPI checked it.
    app = FastAPIOffline(redoc_url=None, title="ferkit", version="1", strict_content_type=False,
                         description="Facial expressions of the faces in a picture (FER2013's "
                                     "seven classes), by the toolkit's two-stage cascade.")
    app.add_middleware(LimitedUploads, limits=limits)
    answer_errors_in_one_line(app)

    @app.post("/api/faces", response_model=PictureAnswer, response_model_exclude_none=True,
              responses=REFUSALS, summary="Every face of a picture: box, label, probabilities")
    async def faces(request: Request,
                    file: UploadFile | None = File(None, description="the picture (or send it "
                                                                     "as the raw body)"),
                    source: Literal[tuple(SOURCE_DETECTORS)] = Query(
                        "photo", description="photo: the detector and resolution that "
                                             "find the most faces; live: a webcam frame, "
                                             "the fast one"),
                    detector: Literal[DETECTORS] | None = Query(
                        None, description="another detector than the source's"),
                    explain: bool = Query(False, description="add each face's Grad-CAM "
                                                             "(a PNG data URL)"),
                    stream: str | None = Query(
                        None, max_length=64, description="a name for a webcam's frames (one "
                                                         "per page): each face gets its track "
                                                         "and smoothed label across them")):
        """The picture (a JPEG, PNG, WebP or BMP, as a multipart form's file or as the raw
        body) -> its size and, per face, the box (x, y, w, h), the detector's score, the
        cascade's label and name, whether the specialist chose it, the label's seven
        probabilities and stage 1's by name (faces.csv's columns), and the milliseconds
        the server took."""
        started = time.perf_counter()
        if file is not None:
            data = await file.read()
        elif request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise RequestError(400, "upload: expected a multipart form with a file field, "
                                    "found none")
        else:
            data = await request.body()
        image = decode_image(data, limits)
        found, used = await run_in_threadpool(reader.faces, image, source, detector, explain,
                                              stream)
        return {"width": image.shape[1], "height": image.shape[0], "detector": used,
                "faces": found, "ms": round(1000 * (time.perf_counter() - started), 1)}

    @app.post("/api/predict", response_model=PredictAnswer, response_model_exclude_none=True,
              responses=REFUSALS, summary="Labels of 48x48 grey faces, no detection")
    async def predict(body: FacesRequest):
        """48x48 grey faces (2304 numbers as a list, 48 lists of 48, or FER2013's
        space-separated string) -> each face's label, name, whether the specialist chose
        it, the label's probabilities and stage 1's by name (faces.csv's columns)."""
        started = time.perf_counter()
        found = await run_in_threadpool(reader.predict, parse_faces(body.faces))
        return {"faces": found, "ms": round(1000 * (time.perf_counter() - started), 1)}

    @app.get("/api/health", response_model=HealthAnswer, response_model_exclude_none=True,
             summary="The server is up: its models and limits")
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
