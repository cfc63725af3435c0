"""See the models work: a local web page for photos and the webcam, and a JSON API.

Usage:
    python3 serve.py                        # then open http://127.0.0.1:8000/
    python3 serve.py --port 8080 --detector haar --no-cascade
    curl -s -F file=@photo.jpg http://127.0.0.1:8000/api/faces

The page takes photos (chosen or dropped: each face boxed with its label and confidence,
the seven probabilities as bars, Grad-CAM on a click) or the webcam (frames sent a few
times a second, boxes and steady labels over the live video, the frame rate reached). The
API: POST /api/faces (a JPEG, PNG, WebP or BMP as the raw body or a multipart file ->
JSON: the picture's size and per face the box, the detector's score, the label and stage
1's probabilities under faces.csv's names, the time taken), POST /api/predict (48x48 grey
faces straight to the models), GET /api/health, and FastAPI's OpenAPI page at /docs.
Photos go through the detector that finds and labels right the most faces, webcam frames
through the one that keeps the frame rate (ferkit.faces.SOURCE_DETECTORS; --detector names
one for both). The server listens on this machine only unless --host says otherwise;
uploads over --max-upload-mb or --max-pixels are refused before they are read whole or
decoded.
"""
import argparse
import socket
import sys

from ferkit.app import cli
from ferkit.errors import ParameterError
from ferkit.faces import DETECTORS
from ferkit.app.server import DEFAULT_MAX_PIXELS, DEFAULT_MAX_UPLOAD_MB

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     epilog="\n".join(__doc__.split("\n\n")[2:]),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (another than this machine's own: "
                             "anyone who reaches it can use the page and the API)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--detector", choices=("auto",) + DETECTORS, default="auto",
                        help="face detector for every picture (auto: photos and webcam "
                             "frames each get their own)")
    parser.add_argument("--max-upload-mb", type=float, default=DEFAULT_MAX_UPLOAD_MB,
                        help="largest upload, megabytes (larger: 413)")
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
                        help="largest picture, pixels, read from its header before "
                             "decoding (larger: 413)")
    parser.add_argument("--no-explain", dest="explain", action="store_false",
                        help="no Grad-CAM (saves loading stage 1 as a Keras model)")
    cli.add_prediction_options(parser)
    cli.add_calibration_option(parser)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        raise cli.UsageError(f"--port: expected 0-65535, found {args.port}")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0:
        raise cli.UsageError(f"--max-upload-mb/--max-pixels: expected positive limits, found "
                             f"{args.max_upload_mb:g} and {args.max_pixels}")
    return args


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port before any model is loaded, so a taken port fails
    fast."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until the server accepts them
    except OSError as err:
        raise ParameterError("port", f"cannot listen on {host}:{port} ({err.strerror or err})",
                             port) from None
    return sock


def main(argv=None):
    args = parse_args(argv)
    cli.check_prediction_models(args)
    sock = listening_socket(args.host, args.port)
    if args.host not in LOCAL_HOSTS:
        print(f"warning: listening on {args.host}: anyone who can reach this machine can "
              f"use the page and the API")

    import uvicorn
    from ferkit.inference import load_stage1
    from ferkit.app.server import FaceReader, Limits, create_app

    detector = None if args.detector == "auto" else args.detector
    recognizer = cli.recognizer(args, detector=detector)
    print(cli.runtime_said(recognizer.cascade))
    # Grad-CAM needs stage 1 as a Keras model, whatever runs the cascade.
    explain_model = load_stage1(args.stage1)[0] if args.explain else None
    reader = FaceReader(recognizer, explain_model, detector)
    app = create_app(reader, Limits(round(args.max_upload_mb * 1_000_000), args.max_pixels),
                     {"runtime": recognizer.runtime, "cascade": recognizer.stage2 is not None,
                      "tta": recognizer.tta, "calibrated": recognizer.calibrated})
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"serving on http://{shown}:{port}/ (the page; the API's documentation at /docs); "
          f"Ctrl-C stops", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
