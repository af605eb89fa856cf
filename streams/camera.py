"""One capture thread per camera: read, sample, hand frames on; reconnect with backoff when it fails.

Like Frigate's per-camera capture with its watchdog, a camera that dies, freezes or never
answers only ever affects itself:

* every blocking step is bounded by a timeout (open, each read, and "packets but no
  decodable frame", in both readers: streams/rtsp.py for FFmpeg, streams/rtsp_native.py for
  the own client), so a dead or frozen camera is noticed within
  `stall_timeout_s` and the connection is torn down and re-opened;
* a watchdog thread covers FFmpeg paths that ignore those timeouts: a capture thread blocked
  well past them is abandoned (it exits by itself if it ever returns) and a fresh one started;
* retries go on forever, with exponential backoff and full jitter, so many cameras behind one
  dead switch do not reconnect in lockstep; one log line per failed attempt.

States (`health.state`): starting → streaming; on failure reconnecting (could not connect or
the stream broke, within the stall timeout of its last frame), stalled (no frame for the stall
timeout: frozen with the connection open, or gone and not back yet), failed (the camera
answered but refused: not found, unauthorised, no video; still retried, needs a human);
stopped after stop().
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable

from streams.rtsp import Frame, RtspReader, StreamError, StreamOpenError, StreamStalledError, mask_url
from streams.rtsp_native import NativeRtspReader, UnsupportedStream
from streams.rtsp_session import TcpRefused
from streams.decode_plan import DecodePlan
from streams.sampler import FrameSampler

log = logging.getLogger("streetwatch.streams")

STATES = ("starting", "streaming", "stalled", "reconnecting", "failed", "stopped")
# The camera answered but said no: wrong path, wrong credentials, not a video stream.
_REFUSAL = re.compile(r"Server returned (401|403|404|454|461)|has no video stream|refused RTP over TCP")
_WATCHDOG_GRACE_S = 5.0


@dataclass(frozen=True)
class CameraHealth:
    state: str = "starting"
    last_frame_at: float | None = None  # time.time() of the last decoded frame
    frames_decoded: int = 0
    frames_sampled: int = 0
    reconnects: int = 0  # connection attempts after the first
    last_error: str | None = None
    corrupt_packets: int = 0  # damaged data skipped (a frame lost, not the camera)
    packets_lost: int = 0  # RTP sequence gaps seen by the native client
    handler_errors: int = 0  # exceptions raised by on_frame


class CameraWorker:
    def __init__(self, name: str, url: str, sample_interval_s: float, on_frame: Callable[[str, Frame], None],
                 open_timeout_s: float = 5, read_timeout_s: float = 5, stall_timeout_s: float = 10,
                 backoff_initial_s: float = 1, backoff_max_s: float = 30, *, transport: str = "tcp",
                 keyframes_only: bool = False, reader_options: dict[str, str] | None = None,
                 decode_mode: str | None = None, rtsp_client: str = "ffmpeg"):
        if stall_timeout_s <= 0 or open_timeout_s <= 0 or read_timeout_s <= 0:
            raise ValueError("timeouts must be positive")
        if not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self.name, self.url = name, url
        self.sampler = FrameSampler(sample_interval_s)
        # decode_mode (auto|keyframes|all): decode only what sampling needs (streams/decode_plan.py);
        # None: decode every frame and sample the decoded ones (the plain reader).
        self.plan = DecodePlan(sample_interval_s, decode_mode) if decode_mode else None
        self.on_frame = on_frame
        self.open_timeout_s = open_timeout_s
        # FFmpeg reports a freeze after up to two read timeouts (it holds back the last frame
        # until the first one): keep both within the stall timeout.
        self.read_timeout_s = min(read_timeout_s, stall_timeout_s / 2)
        self.stall_timeout_s = stall_timeout_s
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.transport, self.keyframes_only, self.reader_options = transport, keyframes_only, reader_options
        if rtsp_client not in ("native", "ffmpeg"):
            raise ValueError(f"rtsp_client must be native or ffmpeg, got {rtsp_client!r}")
        # Our own RTSP client (streams/rtsp_session.py) serves planned decoding of rtsp:// over
        # TCP; FFmpeg serves the rest, and any camera the native client finds it cannot read.
        # transport `auto`: TCP first; a camera that refuses it is read over UDP by FFmpeg.
        self.native = (rtsp_client == "native" and self.plan is not None and transport in ("tcp", "auto")
                       and url.startswith("rtsp://") and not reader_options)
        self._health = CameraHealth()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._generation = 0
        self._reader: RtspReader | NativeRtspReader | None = None
        self._busy: tuple[str, float] | None = None  # ("open" | "read", monotonic start) while blocked in FFmpeg
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None
        self._handler_logged_at = float("-inf")
        self._delivered = 0  # frames from the current connection

    # -- public -----------------------------------------------------------------------
    @property
    def health(self) -> CameraHealth:
        """A consistent snapshot; safe to read from any thread. A camera that streamed, broke,
        and has sent no frame for the stall timeout is `stalled`, whether its connection was
        closed (killed) or left open (frozen): what counts is that no picture comes."""
        with self._lock:
            h = self._health
        if (h.state == "reconnecting" and h.last_frame_at is not None
                and time.time() - h.last_frame_at >= self.stall_timeout_s):
            return replace(h, state="stalled")
        return h

    @property
    def safe_url(self) -> str:
        return mask_url(self.url)

    def start(self) -> None:
        if self._watchdog is not None:
            raise RuntimeError(f"camera {self.name}: already started")
        self._spawn()
        self._watchdog = threading.Thread(target=self._watch, name=f"camera-{self.name}-watchdog", daemon=True)
        self._watchdog.start()

    def stop(self, timeout: float = 10) -> bool:
        """Stop and join. Returns False if the capture thread is still blocked inside FFmpeg after
        `timeout` (it is a daemon thread and ends by itself once its timeout fires)."""
        self._stop.set()
        with self._lock:
            reader, thread, watchdog = self._reader, self._thread, self._watchdog
        if reader is not None:
            reader.cancel()
        deadline = time.monotonic() + timeout
        for t in (watchdog, thread):
            if t is not None and t is not threading.current_thread():
                t.join(max(0.0, deadline - time.monotonic()))
        self._update(state="stopped")
        stopped = thread is None or not thread.is_alive()
        if not stopped:
            log.warning("camera %s: capture thread still blocked after %.1fs; left to exit on its own", self.name, timeout)
        return stopped

    def is_alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # -- internals ----------------------------------------------------------------------
    def _update(self, **changes) -> None:
        with self._lock:
            self._health = replace(self._health, **changes)

    def _spawn(self) -> None:
        with self._lock:
            self._generation += 1
            gen = self._generation
            self._busy = None
            self._thread = threading.Thread(target=self._capture, args=(gen,), name=f"camera-{self.name}", daemon=True)
            thread = self._thread
        thread.start()

    def _current(self, gen: int) -> bool:
        return gen == self._generation and not self._stop.is_set()

    def _capture(self, gen: int) -> None:
        attempt = 0  # failed attempts since frames last flowed
        first = True
        while self._current(gen):
            if not first:
                with self._lock:
                    self._health = replace(self._health, reconnects=self._health.reconnects + 1)
            first = False
            reader = self._new_reader()
            with self._lock:
                if gen != self._generation:
                    return
                self._reader = reader
                self._busy = ("open", time.monotonic())
            self._delivered = 0
            error: BaseException | None = None
            try:
                reader.open()
                if not self._current(gen):
                    break
                with self._lock:
                    self._busy = ("read", time.monotonic())
                log.info("camera %s: connected to %s (%s, %s)", self.name, self.safe_url, self.transport,
                         "own RTSP client" if isinstance(reader, NativeRtspReader) else "FFmpeg")
                self._read(reader, gen)
            except UnsupportedStream as exc:
                log.info("camera %s: %s; reading it with FFmpeg", self.name, exc)
                self.native, first = False, True  # not a failure: at once, and no reconnect counted
                continue
            except TcpRefused as exc:
                if self.transport != "auto":
                    error = exc  # `failed` (461) or reconnecting (no answer); its message says what to set
                else:
                    log.info("camera %s: %s; reading it over UDP with FFmpeg", self.name, exc)
                    self.native, self.transport, first = False, "udp", True
                    continue
            except StreamError as exc:
                error = exc
            except Exception as exc:  # a bug or an unexpected library error: log it, keep the camera going
                error = exc
                log.exception("camera %s: unexpected error", self.name)
            finally:
                with self._lock:
                    if self._reader is reader:
                        self._reader, self._busy = None, None
                reader.close()
            if not self._current(gen):
                break
            delivered = self._delivered
            if delivered:
                attempt = 0
            state = self._classify(error, delivered)
            wait = self._backoff(attempt)
            attempt += 1
            message = str(error) if error is not None else "stream ended"
            self._update(state=state, last_error=message)
            log.warning("camera %s: %s%s; %s in %.1fs", self.name, message,
                        f" after {delivered} frames" if delivered else "",
                        "retrying" if state != "failed" else "camera refused; retrying", wait)
            self._stop.wait(wait)
        if gen == self._generation and self._stop.is_set():
            self._update(state="stopped")

    def _new_reader(self) -> RtspReader | NativeRtspReader:
        if self.native:
            return NativeRtspReader(self.url, self.open_timeout_s, self.read_timeout_s,
                                    frame_timeout_s=self.stall_timeout_s)
        return RtspReader(self.url, self.open_timeout_s, self.read_timeout_s, self.transport,
                          keyframes_only=self.keyframes_only, options=self.reader_options,
                          frame_timeout_s=self.stall_timeout_s, single_thread=self.plan is not None)

    def _classify(self, error: BaseException | None, delivered: int) -> str:
        if isinstance(error, StreamStalledError):
            return "stalled"
        if (isinstance(error, StreamOpenError) and "no answer within" in str(error)
                and self.health.state == "stalled"):
            # A frozen camera still accepts connections but sends nothing: it stays stalled
            # (not merely reconnecting) until frames flow again.
            return "stalled"
        if isinstance(error, StreamOpenError) and _REFUSAL.search(str(error)):
            return "failed"
        return "reconnecting"

    def _backoff(self, attempt: int) -> float:
        cap = min(self.backoff_max_s, self.backoff_initial_s * (2 ** min(attempt, 30)))
        # Full jitter, floored so a flapping camera is never retried in a tight loop.
        return random.uniform(min(0.1, self.backoff_initial_s), cap)

    def _read(self, reader: RtspReader | NativeRtspReader, gen: int) -> None:
        counted_corrupt = counted_decoded = counted_lost = 0
        self.sampler.reset()  # the first frame after a (re)connect is always analysed
        frames = reader.planned_frames(self.plan) if self.plan is not None else reader.frames()
        for frame in frames:
            now = time.monotonic()
            if not self._current(gen):
                return
            self._delivered += 1
            # monotonic: immune to wall-clock jumps; a plan has already chosen this frame
            take = True if self.plan is not None else self.sampler.should_take(now)
            corrupt, counted_corrupt = reader.corrupt_packets - counted_corrupt, reader.corrupt_packets
            decoded, counted_decoded = reader.frames_decoded - counted_decoded, reader.frames_decoded
            lost, counted_lost = reader.packets_lost - counted_lost, reader.packets_lost
            with self._lock:
                h = self._health
                self._health = replace(h, state="streaming", last_frame_at=frame.captured_at,
                                       frames_decoded=h.frames_decoded + decoded,
                                       frames_sampled=h.frames_sampled + take,
                                       corrupt_packets=h.corrupt_packets + corrupt,
                                       packets_lost=h.packets_lost + lost)
            if self._delivered == 1:
                log.info("camera %s: streaming", self.name)
            if take:
                self._deliver(frame)

    def _deliver(self, frame: Frame) -> None:
        try:
            self.on_frame(self.name, frame)
        except Exception:  # a consumer bug must not kill the camera (nor flood the log)
            with self._lock:
                self._health = replace(self._health, handler_errors=self._health.handler_errors + 1)
                errors = self._health.handler_errors
            now = time.monotonic()
            if now - self._handler_logged_at >= 60:
                self._handler_logged_at = now
                log.exception("camera %s: frame handler failed (%d failures so far; logged at most once a minute)",
                              self.name, errors)

    def _watch(self) -> None:
        """Abandon a capture thread that is blocked in FFmpeg: an open past its timeout (and a
        grace), a read with no packet for the stall timeout. The reconnect starts at once."""
        while not self._stop.wait(0.5):
            with self._lock:
                busy, reader = self._busy, self._reader
            if busy is None:
                continue
            what, since = busy
            if what == "read" and reader is not None:
                # Progress is packets, analysed or skipped (a camera analysed every 30 s is not
                # blocked between two frames), not delivered frames: the frame FFmpeg flushes
                # seconds after a camera froze is no sign of life (streams/rtsp.py).
                since = max(since, reader.last_packet_at)
            # An open is bounded by PyAV's own timeout, so the watchdog waits a grace beyond it.
            # An RTSP read is bounded only by FFmpeg's socket timeout, which a frozen camera's
            # RTCP can keep from firing (streams/rtsp.py): here the watchdog is the stall timeout.
            limit = self.open_timeout_s + _WATCHDOG_GRACE_S if what == "open" else self.stall_timeout_s
            blocked = time.monotonic() - since
            if blocked <= limit or self._stop.is_set():
                continue
            message = f"watchdog: capture blocked in {what} for {blocked:.0f}s, past its timeouts"
            log.warning("camera %s: %s; abandoning that connection and reconnecting", self.name, message)
            if reader is not None:
                reader.cancel()
            with self._lock:
                self._health = replace(self._health, state="stalled", last_error=message,
                                       reconnects=self._health.reconnects + 1)
            self._spawn()
