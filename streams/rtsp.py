"""Read an RTSP camera with PyAV (FFmpeg), never blocking longer than the timeouts.

FFmpeg's own default is to wait ~30 s on a frozen stream; PyAV's `timeout=(open, read)`
interrupts both the connection and each read, so a dead camera costs seconds, not minutes.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Iterator

import av
import numpy as np

log = logging.getLogger("streetwatch.streams")


class StreamError(Exception):
    pass


class StreamOpenError(StreamError):
    pass


class StreamReadError(StreamError):
    pass


def mask_url(url: str) -> str:
    """rtsp://user:secret@host/… → rtsp://user:***@host/… for logs and errors."""
    return re.sub(r"(://[^:/@]+:)[^@]+@", r"\1***@", url)


@dataclass
class Frame:
    """A decoded frame; converting to a BGR array happens only for frames that are analysed."""

    av_frame: av.VideoFrame = field(repr=False)
    captured_at: float  # wall clock when decoded (unix seconds)
    pts_s: float | None
    keyframe: bool
    _image: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        if self._image is None:
            self._image = self.av_frame.to_ndarray(format="bgr24")
        return self._image


class RtspReader:
    def __init__(self, url: str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0, transport: str = "tcp",
                 keyframes_only: bool = False):
        self.url = url
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.transport = transport
        self.keyframes_only = keyframes_only
        self.corrupt_packets = 0
        self._container = None

    def open(self) -> None:
        options = {"rtsp_transport": self.transport} if self.url.startswith("rtsp") else {}
        try:
            self._container = av.open(self.url, options=options, timeout=(self.open_timeout_s, self.read_timeout_s))
        except (av.FFmpegError, OSError) as exc:
            raise StreamOpenError(f"cannot open {mask_url(self.url)}: {mask_url(str(exc))}") from exc
        if not self._container.streams.video:
            self.close()
            raise StreamOpenError(f"{mask_url(self.url)} has no video stream")
        stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        if self.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"

    def frames(self) -> Iterator[Frame]:
        if self._container is None:
            self.open()
        stream = self._container.streams.video[0]
        try:
            for packet in self._container.demux(stream):
                if packet.size == 0:
                    continue  # flush packet at end of stream
                try:
                    decoded = packet.decode()
                except av.InvalidDataError:
                    self.corrupt_packets += 1  # a damaged packet spoils one frame, not the camera
                    continue
                for frame in decoded:
                    pts = float(frame.time) if frame.time is not None else None
                    yield Frame(frame, time.time(), pts, bool(frame.key_frame))
        except (av.FFmpegError, OSError) as exc:
            raise StreamReadError(f"reading {mask_url(self.url)} failed: {mask_url(str(exc))}") from exc
        raise StreamReadError(f"{mask_url(self.url)} ended")

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # closing a broken connection may itself fail; nothing to keep
                pass
            self._container = None

    def __enter__(self) -> "RtspReader":
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
