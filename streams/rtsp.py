"""Read an RTSP camera with PyAV (FFmpeg), never blocking longer than the timeouts.

FFmpeg alone waits ~30 s or forever on a dead or frozen camera. Two guards stop that:
PyAV's `timeout=(open_s, read_s)` installs an interrupt callback that aborts a blocking
open or read once that many seconds pass without data, and FFmpeg's own RTSP option
`timeout` (microseconds; it replaced `stimeout` in FFmpeg 5) bounds each socket operation.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import av
import numpy as np

from streams.decode_plan import Action, DecodePlan

log = logging.getLogger("streetwatch.streams")


class StreamError(Exception):
    """A camera could not be opened or read. The message names the URL with its password masked."""


class StreamOpenError(StreamError):
    pass


class StreamReadError(StreamError):
    pass


class StreamStalledError(StreamReadError):
    """The connection is up but nothing (decodable) arrived within the timeout."""


# The camera answered and said no: another transport would get the same answer.
_REFUSED = re.compile(r"Server returned (401|403|404|454)|has no video stream|Unauthorized|Forbidden|Not Found")

# user:password@ up to the *last* @ before the host, in case a password has a raw "@" in it.
_USERINFO = re.compile(r"(://[^/@:\s]*):[^/\s]*@")


def mask_url(text: str) -> str:
    """rtsp://user:secret@host/… → rtsp://user:***@host/…, anywhere in `text` (URLs, FFmpeg errors)."""
    return _USERINFO.sub(r"\1:***@", text)


@dataclass(eq=False)
class Frame:
    """A decoded frame. `image` (BGR uint8, H×W×3) is converted on first use, so frames that
    the sampler skips, or that are dropped later, never pay for the colour conversion."""

    av_frame: av.VideoFrame | None = field(repr=False)
    captured_at: float  # time.time() when decoded
    pts_s: float | None  # stream timestamp in seconds (the camera's clock), if it has one
    keyframe: bool
    _image: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def from_image(cls, image: np.ndarray, captured_at: float, pts_s: float | None = None,
                   keyframe: bool = True) -> "Frame":
        return cls(None, captured_at, pts_s, keyframe, image)

    @property
    def image(self) -> np.ndarray:
        image = self._image
        if image is None:
            source = self.av_frame
            if source is None:  # another thread converted it just now
                return self._image
            image = self._image = source.to_ndarray(format="bgr24")
            self.av_frame = None  # the decoder's buffer can go
        return image

    @property
    def shape(self) -> tuple[int, int, int]:
        if self._image is not None:
            return self._image.shape
        return (self.av_frame.height, self.av_frame.width, 3)


class RtspReader:
    """`with RtspReader(url) as r: for frame in r: …` — frames until the stream fails.

    The iteration never ends quietly: a stream that stops raises StreamReadError (a live
    camera has no end), so the caller always knows to reconnect. Undecodable packets (damaged
    or lost data) are skipped and counted in `corrupt_packets`.

    Timeouts: open_timeout_s bounds av.open (connect, DESCRIBE/SETUP/PLAY, probing);
    read_timeout_s bounds each wait for data. On RTSP that is FFmpeg's own socket timeout:
    PyAV's read timeout is an interrupt callback that takes the GIL each time FFmpeg calls
    it, several times per RTP packet, which cost 14 % of the edge's CPU at 24 cameras
    (benchmarks/README.md). A frozen camera that still sends RTCP keeps the socket alive a
    little longer: the reader then raises once RTCP leaves a gap longer than read_timeout_s
    (about 12 s with 3 s against gst-rtsp-server); the camera's watchdog marks it `stalled`
    on time either way. FFmpeg's RTSP demuxer holds back the last frame until the next
    packet or a timeout. frame_timeout_s (optional) also raises StreamStalledError when
    packets keep coming but none decodes into a frame.
    `cancel()` (from any thread) makes the iteration stop at the next packet.
    `keyframes_only=True` decodes keyframes only (skip_frame=NONKEY): far less CPU when one
    frame every GOP or slower is all that is needed.
    """

    def __init__(self, url: str, open_timeout_s: float = 5.0, read_timeout_s: float = 5.0, transport: str = "tcp",
                 keyframes_only: bool = False, options: dict[str, str] | None = None,
                 frame_timeout_s: float | None = None, single_thread: bool = False, interrupt_reads: bool = False):
        if transport not in ("tcp", "udp", "auto", "udp_multicast", "http", "https"):
            raise ValueError(f"unknown RTSP transport {transport!r}")
        self.url = url
        self.open_timeout_s, self.read_timeout_s = open_timeout_s, read_timeout_s
        self.transport = transport
        self.keyframes_only = keyframes_only
        self.extra_options = dict(options or {})
        self.frame_timeout_s = frame_timeout_s
        self.corrupt_packets = 0
        self.packets_lost = 0  # FFmpeg's demuxer does not tell; the native client counts them
        self._cancelled = False
        self.frames_decoded = 0
        self.packets = 0
        self.last_packet_at = time.monotonic()  # read by the camera's watchdog
        self._previous_packet_at = self.last_packet_at
        self.single_thread = single_thread
        # PyAV's read timeout on RTSP too: costly per packet (see above), but a one-shot grab
        # over UDP has no other bound on a camera that went quiet.
        self.interrupt_reads = interrupt_reads
        self._container: av.container.InputContainer | None = None
        self._stream = None

    @property
    def safe_url(self) -> str:
        return mask_url(self.url)

    @property
    def is_rtsp(self) -> bool:
        return self.url.startswith(("rtsp://", "rtsps://"))

    def _options(self) -> dict[str, str]:
        if not self.is_rtsp:
            return dict(self.extra_options)
        return {
            "rtsp_transport": self.transport,
            "timeout": str(int(self.read_timeout_s * 1_000_000)),  # socket I/O timeout, µs
            # Probing reads this much of the stream before returning from open; FFmpeg's 5 s
            # default would make every (re)connect take seconds.
            "analyzeduration": "500000",
            **self.extra_options,
        }

    def open(self) -> "RtspReader":
        """`auto`: RTP over TCP, and over UDP when the camera refuses TCP (it then stays `udp`)."""
        if self._container is not None or self.transport != "auto" or not self.is_rtsp:
            return self._open()
        self.transport = "tcp"
        try:
            return self._open()
        except StreamOpenError as tcp:
            if _REFUSED.search(str(tcp)):  # the camera answered and refused: UDP would not help
                self.transport = "auto"
                raise
            self.transport = "udp"
            try:
                self._open()
            except StreamOpenError as udp:
                self.transport = "auto"
                over_tcp = str(tcp).removeprefix(f"cannot open {self.safe_url}: ")
                raise StreamOpenError(f"{udp} (over UDP; over TCP: {over_tcp})") from None
            log.info("%s: no RTP over TCP (%s); reading it over UDP", self.safe_url, tcp)
            return self

    def _open(self) -> "RtspReader":
        if self._container is not None:
            return self
        started = time.monotonic()
        # Errors are raised `from None`: FFmpeg's exceptions carry the unmasked URL.
        try:
            # On RTSP, FFmpeg's `timeout` option (see _options) bounds the reads.
            container = av.open(self.url, options=self._options(),
                                timeout=(self.open_timeout_s, None if self.is_rtsp and not self.interrupt_reads
                                         else self.read_timeout_s))
        except (av.FFmpegError, OSError) as exc:
            waited = time.monotonic() - started
            if isinstance(exc, av.ExitError) or waited >= min(self.open_timeout_s, self.read_timeout_s) - 0.05:
                reason = f"no answer within {waited:.1f}s ({_describe(exc)})"
            else:
                reason = _describe(exc)
            if self.is_rtsp and self.transport == "tcp" and "Protocol not supported" in reason:
                # FFmpeg's word for SETUP's 461 Unsupported transport: a UDP-only camera.
                reason += ("; the camera refused RTP over TCP (461 Unsupported transport): it offers UDP only; "
                           "set rtsp_transport: udp (or auto)")
            raise StreamOpenError(f"cannot open {self.safe_url}: {reason}") from None
        if not container.streams.video:
            container.close()
            raise StreamOpenError(f"{self.safe_url} has no video stream")
        stream = container.streams.video[0]
        if self.single_thread:
            # A frame-threaded decoder outputs a frame only after `threads` more packets:
            # useless when a lone keyframe is decoded; and 48 cameras need no 48×3 threads.
            stream.thread_type = "NONE"
            stream.codec_context.thread_count = 1
        else:
            stream.thread_type = "AUTO"
        if self.keyframes_only:
            stream.codec_context.skip_frame = "NONKEY"
        self._container, self._stream = container, stream
        return self

    def cancel(self) -> None:
        self._cancelled = True

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def frames(self) -> Iterator[Frame]:
        self.open()
        stream = self._stream
        time_base = float(stream.time_base) if stream.time_base else None
        last_frame = self._start_packet_clock()
        try:
            for packet in self._container.demux(stream):
                if self._cancelled:
                    raise StreamReadError(f"{self.safe_url}: reading cancelled")
                self._packet_arrived()
                try:  # (the empty packet at the end of a file flushes the decoder's last frames)
                    decoded = packet.decode()
                except av.InvalidDataError:
                    self.corrupt_packets += 1  # a damaged packet spoils a frame, not the camera
                    decoded = ()
                for frame in decoded:
                    self.frames_decoded += 1
                    last_frame = time.monotonic()
                    pts = frame.pts * time_base if frame.pts is not None and time_base else None
                    yield Frame(frame, time.time(), pts, bool(frame.key_frame))
                if self.frame_timeout_s is not None and time.monotonic() - last_frame > self.frame_timeout_s:
                    raise StreamStalledError(f"{self.safe_url}: packets but no decodable frame for "
                                             f"{time.monotonic() - last_frame:.1f}s")
        except av.ExitError:  # PyAV's interrupt callback fired: no packet within read_timeout_s
            raise StreamStalledError(f"{self.safe_url}: no packet within {self.read_timeout_s:g}s") from None
        except TimeoutError as exc:  # FFmpeg's socket timeout
            raise StreamStalledError(f"{self.safe_url}: no data ({_describe(exc)})") from None
        except (av.FFmpegError, OSError, RuntimeError) as exc:
            raise StreamReadError(f"reading {self.safe_url} failed: {_describe(exc)}") from None
        raise StreamReadError(f"{self.safe_url}: stream ended")

    def _start_packet_clock(self) -> float:
        now = self.last_packet_at = self._previous_packet_at = time.monotonic()
        return now

    def _packet_arrived(self) -> float:
        """Note a packet for the watchdog and return the time. Its sign of life is the packet
        *before* this one: after a camera freezes, FFmpeg still hands over the last access unit
        it held back, seconds later (when its timeout flushes it), and that lone packet would
        restart the stall clock; a live stream's packets come tens of ms apart, so the lag is nil."""
        now = time.monotonic()
        self.last_packet_at, self._previous_packet_at = self._previous_packet_at, now
        return now

    def planned_frames(self, plan: DecodePlan) -> Iterator[Frame]:
        """Only the frames `plan` wants analysed, decoding as little as it allows (see
        streams/decode_plan.py). Stalls are reported as by frames(): no packet within the
        read timeout, or (frame_timeout_s) the wanted frame overdue while packets keep coming."""
        self.open()
        stream = self._stream
        codec = stream.codec_context
        time_base = float(stream.time_base) if stream.time_base else None
        decoder = PlannedDecoder(self, plan, codec, time_base)
        self._start_packet_clock()
        try:
            for packet in self._container.demux(stream):
                if self._cancelled:
                    raise StreamReadError(f"{self.safe_url}: reading cancelled")
                now = self._packet_arrived()
                self.packets += 1
                if packet.size == 0:
                    continue
                stamp = packet.pts * time_base if packet.pts is not None and time_base else None
                frame = decoder.offer(now, bool(packet.is_keyframe), stamp, lambda: packet)
                if frame is not None:
                    yield frame
        except av.ExitError:
            raise StreamStalledError(f"{self.safe_url}: no packet within {self.read_timeout_s:g}s") from None
        except TimeoutError as exc:
            raise StreamStalledError(f"{self.safe_url}: no data ({_describe(exc)})") from None
        except (av.FFmpegError, OSError, RuntimeError) as exc:
            raise StreamReadError(f"reading {self.safe_url} failed: {_describe(exc)}") from None
        raise StreamReadError(f"{self.safe_url}: stream ended")

    def close(self) -> None:
        container, self._container, self._stream = self._container, None, None
        if container is not None:
            try:
                container.close()
            except Exception:  # closing a broken connection may itself fail; nothing to keep
                pass

    def __enter__(self) -> "RtspReader":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()


class PlannedDecoder:
    """The per-packet half of planned reading, shared by both readers (this one and
    streams/rtsp_native.py): ask the plan, decode what it wants, count into the reader's
    counters, hand out the wanted frame, and raise when it is overdue while packets flow."""

    def __init__(self, reader: "RtspReader", plan: DecodePlan, codec: av.CodecContext, time_base: float | None):
        self.reader, self.plan, self.codec, self.time_base = reader, plan, codec, time_base
        self.deliver = False  # a frame is wanted from the decoder's next output
        plan.reset()

    def offer(self, now: float, keyframe: bool, stamp: float | None,
              packet: Callable[[], av.Packet | None]) -> Frame | None:
        """`packet` is built only if the plan wants it; None means it arrived damaged."""
        action = self.plan.on_packet(now, keyframe, stamp)
        if action is Action.SKIP:
            self._check_overdue(now, "no usable keyframe")
            return None
        self.deliver = self.deliver or action in (Action.DELIVER, Action.DELIVER_KEY)
        data = packet()
        decoded = self._decode(data, action) if data is not None else None
        if decoded is None:
            self.reader.corrupt_packets += 1  # a damaged packet spoils a frame, not the camera
            decoded = []
        self.reader.frames_decoded += len(decoded)
        if self.deliver and decoded:
            self.deliver = False
            frame = decoded[-1]
            pts = frame.pts * self.time_base if frame.pts is not None and self.time_base else stamp
            return Frame(frame, time.time(), pts, bool(frame.key_frame))
        self._check_overdue(now, "no decodable frame")
        return None

    def _decode(self, packet: av.Packet, action: Action) -> list[av.VideoFrame] | None:
        try:
            decoded = self.codec.decode(packet)
            if action is Action.DELIVER_KEY and not decoded:
                # A decoder that reorders (B-frames) holds the keyframe back until more packets
                # come; we send none, so drain it now and start afresh.
                decoded = self.codec.decode(None)
                self.codec.flush_buffers()
            return decoded
        except av.InvalidDataError:
            if action is Action.DELIVER_KEY:
                self.codec.flush_buffers()
            return None

    def _check_overdue(self, now: float, what: str) -> None:
        limit, overdue = self.reader.frame_timeout_s, self.plan.overdue_s(now)
        if limit is not None and overdue > limit:
            raise StreamStalledError(f"{self.reader.safe_url}: packets but {what} for {overdue:.1f}s")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, av.FFmpegError):
        text = exc.strerror or str(exc)
    else:
        text = str(exc)
    return mask_url(text)
