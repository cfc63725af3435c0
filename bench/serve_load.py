"""serve.py under load: N clients post 640x480 photos for a set time while one more sends
bad uploads; requests per second, latency, errors, and the server's memory.

Usage:
    python3 bench/serve_load.py                          # starts serve.py on a free port
    python3 bench/serve_load.py --clients 1 --detector haar
    python3 bench/serve_load.py --url http://127.0.0.1:8000 --pid 12345   # a running one

Each good client posts, one request after another over its own connection, a 640x480 JPEG
with the astronaut's head twice on a textured background (ferkit.composites) to
/api/faces?source=SOURCE, and counts as an error any answer that is not 200 with exactly
the two faces. The bad client cycles through an empty body, bytes that are no picture, a
truncated JPEG, a PNG whose header claims 100,000 x 100,000 pixels and a body over the
upload limit, and counts any answer other than 4xx with a one-line JSON error. Prints
requests per second, the median and 95th percentile latency of the good requests, the
errors, and the server's resident memory (VmRSS) after one warm-up request and at the end
(--pid, or the server this script started).
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent

from ferkit.app import cli

SPOTS = ((60, 120), (370, 140))   # the two heads' top-left corners in the 640x480 photo
SERVER_START_S = 300


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=cli.summary(__doc__),
                                     formatter_class=cli.HelpFormatter)
    parser.add_argument("--url", default=None,
                        help="a running server (default: start serve.py on a free port)")
    parser.add_argument("--pid", type=int, default=None,
                        help="the running server's process id, for its memory (with --url)")
    parser.add_argument("--clients", type=int, default=8, help="clients posting photos")
    parser.add_argument("--seconds", type=float, default=30, help="how long they post")
    parser.add_argument("--source", choices=("photo", "live"), default="photo",
                        help="/api/faces?source=: a photo's detector or a webcam frame's")
    parser.add_argument("--detector", choices=("auto", "haar", "mtcnn"), default="auto",
                        help="serve.py --detector, for the server this script starts")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.seconds <= 0:
        raise cli.UsageError(f"--clients/--seconds: expected at least 1 client and a "
                             f"positive time, found {args.clients} and {args.seconds:g}")
    return args


def photo_jpeg() -> bytes:
    import cv2
    from ferkit.composites import astronaut_head, scene

    ok, data = cv2.imencode(".jpg", scene(astronaut_head(), SPOTS, 480, 640))
    return data.tobytes()


def bad_bodies(good: bytes, max_upload: int) -> list[bytes]:
    import cv2
    import numpy as np

    png = bytearray(cv2.imencode(".png", np.zeros((1, 1, 3), np.uint8))[1].tobytes())
    png[16:24] = (100_000).to_bytes(4, "big") * 2
    png[29:33] = zlib.crc32(png[12:29]).to_bytes(4, "big")
    return [b"", b"not a picture at all", good[:len(good) // 2], bytes(png),
            good + bytes(max_upload)]


def start_server(detector: str):
    """serve.py on a free port: (process, its address) once it says it serves."""
    process = subprocess.Popen([sys.executable, str(ROOT / "serve.py"), "--port", "0",
                                "--detector", detector],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    for line in process.stdout:
        found = re.search(r"serving on (http://\S+)/", line)
        if found:
            return process, found.group(1)
        if time.monotonic() - started > SERVER_START_S:
            break
    process.kill()
    raise RuntimeError("serve.py did not start")


def rss_mb(pid) -> float | None:
    if pid is None:
        return None
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024


class Client(threading.Thread):
    """Posts ``bodies`` in turn until ``deadline``; ``check(status, answer)`` says whether
    an answer is the one expected. Keeps each request's latency and the failures."""

    def __init__(self, address, path, bodies, check, deadline):
        super().__init__(daemon=True)
        self.address, self.path, self.bodies = address, path, bodies
        self.check, self.deadline = check, deadline
        self.latencies, self.failures = [], []

    def run(self):
        host, port = self.address
        connection = http.client.HTTPConnection(host, port, timeout=120)
        i = 0
        while time.monotonic() < self.deadline:
            body = self.bodies[i % len(self.bodies)]
            i += 1
            started = time.perf_counter()
            try:
                connection.request("POST", self.path, body=body,
                                   headers={"Content-Type": "image/jpeg"})
                response = connection.getresponse()
                status, answer = response.status, response.read()
            except (OSError, http.client.HTTPException) as err:
                self.failures.append(repr(err))
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=120)
                continue
            self.latencies.append(time.perf_counter() - started)
            problem = self.check(status, answer)
            if problem:
                self.failures.append(problem)
            if response.getheader("connection", "").lower() == "close":
                connection.close()
                connection = http.client.HTTPConnection(host, port, timeout=120)
        connection.close()


def two_faces(status, answer):
    if status != 200:
        return f"HTTP {status}: {answer[:100]!r}"
    found = len(json.loads(answer)["faces"])
    return None if found == len(SPOTS) else f"{found} faces, expected {len(SPOTS)}"


def refused_in_one_line(status, answer):
    if not 400 <= status < 500:
        return f"HTTP {status} for a bad upload"
    if b"\n" in answer.strip() or list(json.loads(answer)) != ["error"]:
        return f"not a one-line JSON error: {answer[:100]!r}"
    return None


def main(argv=None):
    import numpy as np

    args = parse_args(argv)
    process = None
    url, pid = args.url, args.pid
    if url is None:
        process, url = start_server(args.detector)
        pid = process.pid
    try:
        parts = urlsplit(url)
        address = (parts.hostname, parts.port or 80)
        connection = http.client.HTTPConnection(*address, timeout=300)
        connection.request("GET", "/api/health")
        health = json.loads(connection.getresponse().read())
        good = photo_jpeg()
        path = f"/api/faces?source={args.source}"
        connection.request("POST", path, body=good, headers={"Content-Type": "image/jpeg"})
        warm = connection.getresponse()
        assert two_faces(warm.status, warm.read()) is None, "the warm-up request failed"
        connection.close()
        rss_start = rss_mb(pid)
        deadline = time.monotonic() + args.seconds
        clients = [Client(address, path, [good], two_faces, deadline)
                   for _ in range(args.clients)]
        bad = Client(address, path, bad_bodies(good, health["max_upload_bytes"]),
                     refused_in_one_line, deadline)
        started = time.monotonic()
        for client in clients + [bad]:
            client.start()
        for client in clients + [bad]:
            client.join()
        elapsed = time.monotonic() - started
        rss_end = rss_mb(pid)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    latencies = np.array([t for c in clients for t in c.latencies]) * 1000
    failures = [f for c in clients for f in c.failures]
    detector = health["sources"][args.source]["detector"]
    print(f"{args.clients} clients x {args.seconds:g} s posting 640x480 JPEGs (2 faces) with "
          f"source={args.source} ({detector}); runtime {health.get('runtime')}; one more "
          f"client sending bad uploads")
    print(f"good requests: {len(latencies)}, {len(latencies) / elapsed:.2f} per second; "
          f"latency p50 {np.percentile(latencies, 50):.0f} ms, p95 "
          f"{np.percentile(latencies, 95):.0f} ms; errors {len(failures)}")
    print(f"bad uploads: {len(bad.latencies)} sent, {len(bad.failures)} not refused in one "
          f"line")
    if rss_start is not None:
        print(f"server memory (VmRSS): {rss_start:.0f} MB after the warm-up request, "
              f"{rss_end:.0f} MB at the end")
    for failure in sorted(set(failures + bad.failures))[:5]:
        print(f"  e.g. {failure}")
    return 1 if failures or bad.failures else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
