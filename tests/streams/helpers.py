"""Shared by the camera-ingestion tests."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

CLIP_SECONDS, CLIP_W, CLIP_H, CLIP_FPS = 4, 640, 360, 10  # the clip the `clip` fixture makes


def wait_for(predicate, timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())


def rtsp_requests(conn: socket.socket) -> Iterator[tuple[str, str, list[str]]]:
    """The requests a fake camera receives on `conn`: (method, CSeq, header lines), until the
    client hangs up."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        cseq = next(line for line in lines if line.lower().startswith("cseq")).split(":")[1].strip()
        yield lines[0].split()[0], cseq, lines
