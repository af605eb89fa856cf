"""HTTP snapshot cameras for tests, the demo and benchmarks: pre-encoded JPEGs, served cheaply.

    with SnapshotServer({"cam1": [jpeg0, jpeg1, ...]}, frame_s=1.0) as cams:
        url = cams.url("cam1")           # http://127.0.0.1:PORT/cam1/snapshot.jpg
        cams.set_fault("cam1", "html")   # a login page instead of the picture
        cams.set_auth("cam1", "admin", "s3cret", "digest")

A camera answers the JPEG of the moment: picture i = (seconds since start / frame_s) mod n,
so a clip's frames play at their own pace like a live camera. Faults, per camera: `html`
(200 text/html), `empty` (200 with no body), `corrupt` (the JPEG's first half), `garbage`
(a JPEG header and noise), `hang` (accepts the connection, never answers), `down` (the
connection is closed at once). Authentication, per camera: Basic or Digest (RFC 7616, MD5,
qop=auth), as Hikvision and Dahua cameras do; a wrong password is a 401.

`python -m streams.snapshot_server --port P --cameras N --jpeg FILE` serves N cameras in a
process of its own (the benchmark's, so its CPU is counted apart); prints READY.
`keep_alive=False` (`--close`) closes the connection after every answer: a box polling a
thousand cameras every 30 s opens a connection per grab (cameras drop idle keep-alive
connections within seconds), whereas a thousand cameras on one port would all share the
client's few pooled connections.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping, Sequence

FAULTS = ("html", "empty", "corrupt", "garbage", "hang", "down")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class _Server(ThreadingHTTPServer):
    # A thousand cameras on one port connect in bursts (cameras that share a phase grab
    # together); past socketserver's backlog of 5 the kernel drops their SYNs and each retries a
    # second later, a delay real cameras, each with its own backlog, would not add.
    request_queue_size = 128


class SnapshotServer:
    def __init__(self, cameras: Mapping[str, Sequence[bytes]], frame_s: float = 1.0, host: str = "127.0.0.1",
                 port: int = 0, keep_alive: bool = True):
        self.cameras = {name: list(frames) for name, frames in cameras.items()}
        if not all(self.cameras.values()):
            raise ValueError("every camera needs at least one JPEG")
        self.frame_s, self.host, self.port, self.keep_alive = frame_s, host, port, keep_alive
        self.faults: dict[str, str] = {}
        self.auth: dict[str, tuple[str, str, str]] = {}  # camera → (user, password, basic|digest)
        self.requests: dict[str, int] = {}
        self.started = time.monotonic()
        self._release = threading.Event()  # ends hanging answers at stop()
        self._server: ThreadingHTTPServer | None = None
        self._nonce = os.urandom(8).hex()

    def url(self, name: str, user: str | None = None, password: str | None = None) -> str:
        creds = f"{user}:{password}@" if user is not None else ""
        return f"http://{creds}{self.host}:{self.port}/{name}/snapshot.jpg"

    def set_fault(self, name: str, fault: str | None) -> None:
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {FAULTS}")
        if fault is None:
            self.faults.pop(name, None)
        else:
            self.faults[name] = fault

    def set_auth(self, name: str, user: str, password: str, scheme: str = "digest") -> None:
        self.auth[name] = (user, password, scheme)

    def frame(self, name: str) -> bytes:
        frames = self.cameras[name]
        return frames[int((time.monotonic() - self.started) / self.frame_s) % len(frames)]

    # -- serving --------------------------------------------------------------------------------
    def start(self) -> "SnapshotServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as cameras do

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer._answer(self)

            def log_message(self, *args) -> None:
                pass

        self._server = _Server((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="snapshot-server", daemon=True).start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "SnapshotServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        match = re.fullmatch(r"/([^/]+)/snapshot\.jpg", req.path.split("?", 1)[0])
        name = match.group(1) if match else None
        if name not in self.cameras:
            return self._send(req, 404, b"no such camera", "text/plain")
        self.requests[name] = self.requests.get(name, 0) + 1
        if not self.keep_alive:
            req.close_connection = True
        fault = self.faults.get(name)
        if fault == "down":
            req.close_connection = True
            req.connection.close()
            return None
        if fault == "hang":
            self._release.wait()
            req.close_connection = True
            return None
        if name in self.auth and not self._authorised(req, name):
            user, _, scheme = self.auth[name]
            challenge = (f'Digest realm="cam", qop="auth", nonce="{self._nonce}", opaque="x"' if scheme == "digest"
                         else 'Basic realm="cam"')
            return self._send(req, 401, b"<html>401</html>", "text/html", {"WWW-Authenticate": challenge})
        jpeg = self.frame(name)
        if fault == "html":
            return self._send(req, 200, b"<!DOCTYPE html><html><body>Please log in</body></html>", "text/html")
        if fault == "empty":
            return self._send(req, 200, b"", "image/jpeg")
        if fault == "corrupt":
            return self._send(req, 200, jpeg[:len(jpeg) // 2], "image/jpeg")
        if fault == "garbage":
            return self._send(req, 200, b"\xff\xd8\xff\xe0" + os.urandom(2000) + b"\xff\xd9", "image/jpeg")
        return self._send(req, 200, jpeg, "image/jpeg")

    def _authorised(self, req: BaseHTTPRequestHandler, name: str) -> bool:
        user, password, scheme = self.auth[name]
        header = req.headers.get("Authorization", "")
        if scheme == "basic":
            import base64

            return header == "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        if not header.startswith("Digest "):
            return False
        f = dict(re.findall(r'(\w+)="?([^",]*)"?', header[7:]))
        if f.get("username") != user or f.get("nonce") != self._nonce:
            return False
        ha1, ha2 = _md5(f"{user}:cam:{password}"), _md5(f"GET:{f.get('uri', '')}")
        expected = _md5(f"{ha1}:{self._nonce}:{f.get('nc', '')}:{f.get('cnonce', '')}:auth:{ha2}")
        return f.get("response") == expected

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str,
              headers: Mapping[str, str] | None = None) -> None:
        req.send_response(status)
        if req.close_connection:
            req.send_header("Connection", "close")
        req.send_header("Content-Type", ctype)
        req.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            req.send_header(k, v)
        req.end_headers()
        req.wfile.write(body)


def jpegs_of_clip(path: str, every_s: float = 1.0, quality: int = 90) -> list[bytes]:
    """A clip's frames every `every_s` seconds, as JPEGs (pre-encoded once: serving costs nothing)."""
    import av
    import cv2

    out: list[bytes] = []
    next_t = 0.0
    with av.open(path) as container:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base) if frame.pts is not None else next_t
            if t + 1e-6 < next_t:
                continue
            next_t += every_s
            ok, jpeg = cv2.imencode(".jpg", frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_JPEG_QUALITY, quality])
            out.append(jpeg.tobytes())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cameras", type=int, required=True)
    parser.add_argument("--jpeg", action="append", required=True, help="a JPEG every camera serves (repeat: in turn)")
    parser.add_argument("--frame-s", type=float, default=1.0)
    parser.add_argument("--close", action="store_true", help="a connection per request (no keep-alive)")
    args = parser.parse_args()
    frames = [open(p, "rb").read() for p in args.jpeg]
    server = SnapshotServer({f"c{i}": frames for i in range(args.cameras)}, args.frame_s, port=args.port,
                            keep_alive=not args.close).start()
    print(f"READY {server.port}", flush=True)
    try:
        sys.stdin.read()  # until the parent closes stdin (or dies)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
