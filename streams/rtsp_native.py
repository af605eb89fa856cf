"""Read an H.264 camera with Streetwatch's own RTSP client, decoding only what the plan wants.

The same contract as `RtspReader.planned_frames` (streams/rtsp.py): frames until the stream
fails, which always raises, so the camera reconnects. The difference is the receiving side
(streams/rtsp_session.py): packets are taken from the socket a tenth of a second at a time
and only the access units the plan keeps are assembled and decoded (FFmpeg's h264 decoder,
through PyAV). Cameras this client cannot read raise UnsupportedStream from `open()`, and
the camera reads them with FFmpeg instead (streams/camera.py).
"""

from __future__ import annotations

import time
from typing import Iterator

import av

from streams.decode_plan import DecodePlan
from streams.h264_rtp import AccessUnit, H264Depacketizer
from streams.rtsp import Frame, PlannedDecoder, StreamReadError, StreamStalledError, mask_url
from streams.rtsp_session import RtspSession, UnsupportedStream

__all__ = ["NativeRtspReader", "UnsupportedStream"]


def _packet(unit: AccessUnit, depacketizer: H264Depacketizer) -> av.Packet:
    packet = av.Packet(unit.annex_b(depacketizer.parameter_sets))
    packet.pts = unit.timestamp
    return packet


class NativeRtspReader:
    def __init__(self, url: str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0,
                 frame_timeout_s: float | None = None, batch_s: float = 0.1):
        self.url = url
        self.safe_url = mask_url(url)
        self.open_timeout_s, self.read_timeout_s, self.frame_timeout_s = open_timeout_s, read_timeout_s, frame_timeout_s
        self.batch_s = batch_s
        self.transport = "tcp"
        self.corrupt_packets = 0
        self.packets_lost = 0  # RTP sequence gaps: the camera or the network dropped video
        self.frames_decoded = 0
        self.packets = 0  # access units received (FFmpeg's packets are access units too)
        self._cancelled = False
        self._session: RtspSession | None = None
        self._codec: av.CodecContext | None = None
        self._opened_at = time.monotonic()

    @property
    def last_packet_at(self) -> float:
        """When the last video data arrived (read by the camera's watchdog)."""
        return self._session.last_video_at if self._session is not None else self._opened_at

    def open(self) -> "NativeRtspReader":
        if self._session is not None:
            return self
        session = RtspSession(self.url, self.open_timeout_s, self.read_timeout_s, self.batch_s)
        try:
            session.open()
        except BaseException:
            session.close()
            raise
        codec = av.CodecContext.create("h264", "r")
        # One thread: a frame-threaded decoder outputs a frame only after more packets, and a
        # lone keyframe is all it gets.
        codec.thread_type = "NONE"
        codec.thread_count = 1
        self._session, self._codec = session, codec
        return self

    def cancel(self) -> None:
        self._cancelled = True

    def planned_frames(self, plan: DecodePlan) -> Iterator[Frame]:
        self.open()
        session, codec = self._session, self._codec
        depacketizer = H264Depacketizer(session.track.parameter_sets)
        time_base = 1.0 / session.track.clock_rate
        decoder = PlannedDecoder(self, plan, codec, time_base)
        unit_at = time.monotonic()  # when the depacketizer last gave a whole access unit
        while True:
            if self._cancelled:
                raise StreamReadError(f"{self.safe_url}: reading cancelled")
            packets = session.read_packets()  # raises StreamStalledError / StreamReadError
            now = time.monotonic()
            for rtp in packets:
                for unit in depacketizer.push(rtp):
                    unit_at = now
                    self.packets += 1
                    self.packets_lost = depacketizer.lost_packets
                    frame = decoder.offer(now, unit.keyframe, unit.timestamp * time_base,
                                          lambda: None if unit.damaged else _packet(unit, depacketizer))
                    if frame is not None:
                        yield frame
            if now - unit_at > self.read_timeout_s:
                # Packets keep coming but none completes a unit (a broken camera: wrong RTP
                # version, fragments without a start, a unit that never ends): a stall too.
                raise StreamStalledError(f"{self.safe_url}: packets but no whole video frame for {now - unit_at:.1f}s")

    def close(self) -> None:
        session, self._session, self._codec = self._session, None, None
        if session is not None:
            session.close()

    def __enter__(self) -> "NativeRtspReader":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
