"""serve.py's API through FastAPI's test client, on the shipped models: the astronaut photo,
48x48 faces straight to the models, every kind of bad upload refused in one line (and the
next good request still answered), and serve.py's own command line."""
import asyncio
import json
import threading
import zlib

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient

from ferkit.app import serve
from ferkit.app import cli
from ferkit.inference import LABEL_PROBABILITY_FIELDS
from ferkit.composites import ASTRONAUT_FACE, ASTRONAUT_HEAD, astronaut_head, astronaut_path, scene
from ferkit.faces import SOURCE_DETECTORS, one_box_per_face, source_settings
from ferkit.inference import DEFAULT_STAGE1, FaceResult, load_stage1
from ferkit.recognizer import Recognizer
from ferkit.app.server import FaceReader, Limits, RequestError, create_app, limited_receive
from test_annotate import overlap, read_rows, run_annotate

MAX_BYTES = 300_000     # the test server's upload limit: the astronaut PNG (~790 kB) is over
MAX_PIXELS = 600 * 600  # the test server's pixel limit


@pytest.fixture(scope="module")
def reader():
    return FaceReader(Recognizer(), load_stage1(DEFAULT_STAGE1)[0])


@pytest.fixture(scope="module")
def client(reader):
    with TestClient(create_app(reader, Limits(MAX_BYTES, MAX_PIXELS))) as client:
        yield client


def encoded(image, suffix=".jpg") -> bytes:
    ok, data = cv2.imencode(suffix, image)
    assert ok
    return data.tobytes()


@pytest.fixture(scope="module")
def astronaut_jpeg():
    """astronaut.png as a JPEG (quality 95), within the test server's byte limit."""
    return encoded(cv2.imread(str(astronaut_path())), ".jpg")


def post_image(client, data, content_type="image/jpeg", **params):
    return client.post("/api/faces", params=params, content=data,
                       headers={"Content-Type": content_type})


def test_astronaut_gives_one_face_in_place_labelled_as_annotate_labels_it(
        client, astronaut_jpeg, tmp_path, capsys):
    answer = post_image(client, astronaut_jpeg)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["width"], body["height"]) == (512, 512)
    assert body["detector"] == SOURCE_DETECTORS["photo"][0]
    assert len(body["faces"]) == 1 and body["ms"] > 0
    face = body["faces"][0]
    assert overlap((face["x"], face["y"], face["w"], face["h"]), ASTRONAUT_FACE) > 0.5
    assert abs(sum(face[name] for name in LABEL_PROBABILITY_FIELDS) - 1) < 2e-3
    assert face["score"] > 0.9  # MTCNN's confidence
    # annotate.py on the same JPEG, with the detector the API used for a photo.
    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    assert run_annotate([photo, "--out", tmp_path / "out", "--no-draw", "--detector",
                         body["detector"], "--min-face", SOURCE_DETECTORS["photo"][1]],
                        capsys)[0] == 0
    row = read_rows(tmp_path / "out").iloc[0]
    assert face["label"] == row["label"]
    assert face["label_name"] == "Happy"
    assert (face["x"], face["y"], face["w"], face["h"]) == (row.x, row.y, row.w, row.h)
    assert all(abs(face[name] - row[name]) < 1e-3 for name in LABEL_PROBABILITY_FIELDS)


@pytest.mark.parametrize("height,width", [(480, 640), (500, 520), (720, 960)])
def test_mtcnn_finds_each_head_once_whatever_the_picture_size(reader, height, width):
    """Three astronaut heads on texture: three boxes, one on each, in pictures of sizes
    where mtcnn's own pyramid would end below its 12 px window (640x480)."""
    spots = [(20, 30), (280, 40), (150, 270)]
    picture = scene(astronaut_head(), spots, height, width)
    boxes, scores = reader.detectors["mtcnn"].detect(picture, source_settings("photo").min_face)
    assert len(boxes) == 3 and (scores > 0.9).all()
    face_x, face_y = ASTRONAUT_FACE[0] - ASTRONAUT_HEAD[0], ASTRONAUT_FACE[1] - ASTRONAUT_HEAD[1]
    for (x, y), box in zip(sorted(spots, key=lambda s: (s[1], s[0])), boxes):
        assert overlap(box, (x + face_x, y + face_y, *ASTRONAUT_FACE[2:])) > 0.5, (box, x, y)


def test_one_box_per_face_keeps_the_surest_of_boxes_on_one_face():
    boxes = np.array([[53, 58, 134, 134], [71, 71, 105, 105], [330, 83, 106, 106]])
    assert one_box_per_face(boxes, [0.90, 0.99, 0.95]).tolist() == [1, 2]
    assert one_box_per_face(boxes, [0.99, 0.90, 0.95]).tolist() == [0, 2]
    assert one_box_per_face(boxes[[0, 2]], [0.9, 0.8]).tolist() == [0, 1]
    # A small box inside a large one is the same face, though it covers a fifth of it.
    assert one_box_per_face(np.array([[0, 0, 134, 134], [20, 20, 60, 60]]), [0.99, 0.95]
                            ).tolist() == [0]


class OverlappingMtcnn:
    """mtcnn's MTCNN as it answered on a face with a background: two boxes on it."""

    def detect_faces(self, image, min_face_size):
        return [{"box": [53, 58, 134, 134], "confidence": 0.95},
                {"box": [71, 71, 105, 105], "confidence": 0.99},
                {"box": [330, 83, 106, 106], "confidence": 0.5}]


def test_mtcnn_gives_one_box_per_face_and_only_sure_ones(reader, monkeypatch):
    detector = reader.detectors["mtcnn"]
    monkeypatch.setattr(detector, "_mtcnn", OverlappingMtcnn())
    boxes, scores = detector.detect(np.zeros((500, 520, 3), np.uint8), 16)
    assert boxes.tolist() == [[71, 71, 105, 105]] and scores.tolist() == [0.99]


def test_multipart_live_source_and_explain(client, astronaut_jpeg):
    live = client.post("/api/faces", params={"source": "live", "explain": "true"},
                       files={"file": ("a.jpg", astronaut_jpeg, "image/jpeg")})
    assert live.status_code == 200
    body = live.json()
    assert body["detector"] == SOURCE_DETECTORS["live"][0]
    assert len(body["faces"]) == 1
    assert body["faces"][0]["gradcam"].startswith("data:image/png;base64,")


def test_a_webcams_frames_as_one_stream_keep_each_faces_track(client, astronaut_jpeg):
    """The page names its webcam's stream: each face keeps its track (ferkit.tracking)
    across the stream's frames and gets its smoothed label; another stream has its own
    tracks; without a stream, no track."""
    astronaut = cv2.resize(cv2.imread(str(astronaut_path())), (384, 384))
    def frame(x):  # the astronaut at x on an 840-pixel-wide grey frame
        picture = np.full((384, 840, 3), 128, np.uint8)
        picture[:, x:x + 384] = astronaut
        return encoded(picture)
    said = [post_image(client, frame(x), source="live", stream="page-a").json()["faces"]
            for x in (0, 3, 6, 450)]  # the last: somebody else, at the other end
    assert [len(faces) for faces in said] == [1, 1, 1, 1]
    assert [faces[0]["track"] for faces in said] == [1, 1, 1, 2]
    assert all(faces[0]["smooth_label"] in range(7) for faces in said)
    other = post_image(client, frame(450), source="live", stream="page-b").json()["faces"]
    assert other[0]["track"] == 1  # a stream's tracks are its own, numbered from 1
    assert "track" not in post_image(client, frame(0), source="live").json()["faces"][0]


def test_48x48_faces_go_straight_to_the_models(client, reader):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (3, 48, 48))
    payload = {"faces": [faces[0].tolist(), faces[1].ravel().tolist(),
                         " ".join(map(str, faces[2].ravel()))]}
    answer = client.post("/api/predict", json=payload)
    assert answer.status_code == 200
    got = answer.json()["faces"]
    said = reader.recognizer.predict(faces.astype(np.uint8))
    assert [face["label"] for face in got] == said.labels.tolist()
    assert np.allclose([[face[name] for name in LABEL_PROBABILITY_FIELDS] for face in got],
                       said.probabilities,
                       atol=1e-4)


def png_header_claiming(width, height) -> bytes:
    """A PNG whose header states width x height and whose pixels are 1x1's: a bomb's header."""
    data = bytearray(encoded(np.zeros((1, 1, 3), np.uint8), ".png"))
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")
    data[29:33] = zlib.crc32(data[12:29]).to_bytes(4, "big")  # IHDR's checksum, redone
    return bytes(data)


def bad_upload(problem, astronaut_jpeg):
    """(path, body, headers) of each bad request."""
    if problem == "too_large":
        return "/api/faces", astronaut_jpeg + bytes(MAX_BYTES), {"Content-Type": "image/jpeg"}
    if problem == "too_many_pixels":
        big = encoded(np.zeros((601, 600, 3), np.uint8), ".png")
        return "/api/faces", big, {"Content-Type": "image/png"}
    if problem == "bomb_header":
        return "/api/faces", png_header_claiming(100_000, 100_000), {}
    if problem == "empty":
        return "/api/faces", b"", {"Content-Type": "image/jpeg"}
    if problem == "not_an_image":
        return "/api/faces", b"GIF89a not a picture we take", {"Content-Type": "image/gif"}
    if problem == "truncated":
        return "/api/faces", astronaut_jpeg[:len(astronaut_jpeg) // 2], {}
    if problem == "multipart_without_file":
        return ("/api/faces", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n"
                b"--x--\r\n", {"Content-Type": "multipart/form-data; boundary=x"})
    if problem == "path_as_body":  # a client cannot make the server read a file
        return "/api/faces", str(astronaut_path()).encode(), {"Content-Type": "text/plain"}
    if problem == "predict_not_json":
        return "/api/predict", b"{faces", {"Content-Type": "application/json"}
    if problem == "predict_wrong_size":
        return "/api/predict", json.dumps({"faces": [[0] * 100]}).encode(), {}
    raise ValueError(problem)


@pytest.mark.parametrize("problem,status,message", [
    ("too_large", 413, "upload: expected at most 300000 bytes, found a Content-Length of"),
    ("too_many_pixels", 413, "upload: expected at most 360000 pixels, found 600x601"),
    ("bomb_header", 413, "upload: expected at most 360000 pixels, found"),
    ("empty", 400, "upload: expected a JPEG, PNG, WebP or BMP image, found an empty body"),
    ("not_an_image", 415, "upload: expected a JPEG, PNG, WebP or BMP image, found something"),
    ("truncated", 400, "upload: expected a whole JPEG image, cannot decode it"),
    ("multipart_without_file", 400, "upload: expected a multipart form with a file field"),
    ("path_as_body", 415, "upload: expected a JPEG, PNG, WebP or BMP image"),
    ("predict_not_json", 400, "body: expected JSON"),
    ("predict_wrong_size", 400, "faces[0]: expected 2304 grey levels (48x48), found 100"),
])
def test_bad_upload_gets_its_status_and_one_line_then_a_good_one_is_answered(
        client, astronaut_jpeg, problem, status, message):
    path, body, headers = bad_upload(problem, astronaut_jpeg)
    answer = client.post(path, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert list(answer.json()) == ["error"]
    assert answer.json()["error"].startswith(message)
    assert "\n" not in answer.text
    good = post_image(client, astronaut_jpeg, source="live")
    assert good.status_code == 200 and len(good.json()["faces"]) == 1


class Streamed:
    """An ASGI receive whose body arrives in chunks, counting the chunks it gave."""

    def __init__(self, chunks):
        self.chunks, self.sent = chunks, 0

    async def __call__(self):
        self.sent += 1
        more = self.sent < len(self.chunks)
        return {"type": "http.request", "body": self.chunks[self.sent - 1], "more_body": more}


async def read_all(receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message["body"]
        if not message["more_body"]:
            return body


def test_an_upload_without_content_length_is_cut_off_at_the_limit():
    """A chunked upload (no Content-Length, or one that lies) is refused as soon as more
    than the limit has streamed in: the rest is never read."""
    for declared in (None, "10"):
        request = Streamed([bytes(100_000)] * 100)
        with pytest.raises(RequestError) as refused:
            asyncio.run(read_all(limited_receive(request, declared, Limits(MAX_BYTES))))
        assert refused.value.status == 413
        assert refused.value.message == "upload: expected at most 300000 bytes, found more"
        assert request.sent == 4
    assert asyncio.run(read_all(limited_receive(Streamed([b"ab", b"c"]), None, Limits(3)))) \
        == b"abc"


def test_concurrent_requests_each_get_their_own_faces(client, astronaut_jpeg):
    """Eight threads post pictures with 0-2 faces at once: each answer counts its own."""
    blank = encoded(np.full((300, 300, 3), 128, np.uint8))
    image = cv2.imdecode(np.frombuffer(astronaut_jpeg, np.uint8), cv2.IMREAD_COLOR)
    two = encoded(np.concatenate([image[:, :300], image[:, 100:400]], axis=1)[:300])
    pictures = {0: blank, 1: astronaut_jpeg, 2: two}
    answers = {}

    def post(i):
        expected = i % 3
        answers[i] = (expected, post_image(client, pictures[expected], source="live"))

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for expected, answer in answers.values():
        assert answer.status_code == 200
        assert len(answer.json()["faces"]) == expected


def test_health_page_and_openapi_are_served_from_the_app(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["detectors"] == ["haar", "mtcnn"]
    assert health["max_upload_bytes"] == MAX_BYTES
    page = client.get("/")
    assert page.status_code == 200 and "app.js" in page.text
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "http://" not in docs.text and "https://" not in docs.text  # nothing from a CDN
    for path in ("/app.js", "/style.css"):
        text = client.get(path).text
        assert "http://" not in text and "https://" not in text
    assert "/api/faces" in client.get("/openapi.json").json()["paths"]
    assert client.get("/../../etc/passwd").status_code == 404


def test_a_wrong_method_on_an_api_path_is_405_naming_the_right_one(client):
    answer = client.get("/api/faces")
    assert answer.status_code == 405 and answer.headers["allow"] == "POST"
    assert answer.json() == {"error": "GET /api/faces: expected POST"}
    assert client.post("/api/health").status_code == 405
    assert client.get("/api/nothing").status_code == 404  # not an API path: no such file


@pytest.mark.parametrize("args,message", [
    (["--port", "70000"], "--port: expected 0-65535"),
    (["--max-upload-mb", "0"], "--max-upload-mb/--max-pixels: expected positive limits"),
    (["--stage1", "none.h5"], "none.h5: model file not found"),
])
def test_serve_bad_options_give_one_error_line(args, message, capsys):
    code = cli.run(serve.main, args)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err, err


def test_a_taken_port_gives_one_error_line_before_any_model_loads(capsys):
    taken = serve.listening_socket("127.0.0.1", 0)
    port = taken.getsockname()[1]
    try:
        code = cli.run(serve.main, ["--port", str(port)])
    finally:
        taken.close()
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: --port {port}: cannot listen on 127.0.0.1")
    assert err.count("\n") == 1


def test_docs_show_every_answers_schema_from_the_response_models(client):
    """/docs reads openapi.json: each endpoint's answer is its response model's schema (the
    face's fields are FaceResult's, faces.csv's columns), refusals are ErrorAnswer, and
    /api/predict's body is FacesRequest; nothing hand-written."""
    schema = client.get("/openapi.json").json()
    paths, models = schema["paths"], schema["components"]["schemas"]

    def answer(path, method, status="200"):
        content = paths[path][method]["responses"][status]["content"]["application/json"]
        return content["schema"]["$ref"].rsplit("/", 1)[1]

    assert answer("/api/faces", "post") == "PictureAnswer"
    assert answer("/api/predict", "post") == "PredictAnswer"
    assert answer("/api/health", "get") == "HealthAnswer"
    assert answer("/api/faces", "post", "413") == "ErrorAnswer"
    request = paths["/api/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert request["schema"]["$ref"].endswith("/FacesRequest")
    upload = paths["/api/faces"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload
    face = models["FaceAnswer"]["properties"]
    assert set(face) == set(FaceResult(None, None, 0, (0.0,) * 7, (0.0,) * 7, False).record()) \
        | {"gradcam", "track", "smooth_label"}
    assert models["PictureAnswer"]["properties"]["faces"]["items"]["$ref"].endswith(
        "/FaceAnswer")


def test_python_annotate_and_serve_give_a_photo_the_same_faces(client, astronaut_jpeg,
                                                               tmp_path, capsys):
    """One path finds faces and runs the cascade: ferkit.Recognizer.faces, annotate.py and
    /api/faces, each with its defaults, give the same photo the same FaceResult (box,
    detector score, label, probabilities, handed_over), in faces.csv's and JSON's spelling."""
    import ferkit

    photo = tmp_path / "astronaut.jpg"
    photo.write_bytes(astronaut_jpeg)
    recognizer = ferkit.Recognizer()
    [face] = recognizer.faces(photo)
    expected = face.record()
    [answered] = post_image(client, astronaut_jpeg).json()["faces"]
    assert answered == expected
    assert run_annotate([photo, "--out", tmp_path / "out", "--no-draw"], capsys)[0] == 0
    row = read_rows(tmp_path / "out").iloc[0]
    written = {name: row[name] for name in expected}
    assert written == {**expected, "handed_over": int(expected["handed_over"])}
    assert recognizer.detect(photo) == [face.as_fer()]  # the fer package's spelling
