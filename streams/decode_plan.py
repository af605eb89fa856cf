"""Decide, packet by packet, what to decode: only what one analysed frame per interval needs.

Decoding is most of a camera's CPU, and we analyse one frame every second or two. So:

* keyframe mode (the keyframe interval, measured from the stream, fits the sampling interval):
  only the keyframe nearest each due time is decoded; every other packet is dropped before
  the decoder. A keyframe decodes on its own, so this costs one decode per analysed frame.
* GOP mode (keyframes are rarer than the sampling interval): the decoder is fed from a
  keyframe up to the due frame, but a whole GOP is skipped when the next keyframe is
  expected before the due time.

Until two keyframes have been seen the GOP length is unknown and GOP mode is used from the
first keyframe, so a camera with 10 s GOPs still gets one frame per interval from the start.
`mode="all"` decodes every packet (cheap streams, or for comparison).
"""

from __future__ import annotations

import statistics
from collections import deque
from enum import Enum

MODES = ("auto", "keyframes", "all")


class Action(Enum):
    SKIP = "skip"  # do not even give the packet to the decoder
    DECODE = "decode"  # feed the decoder (a reference for a later frame), deliver nothing
    DELIVER = "deliver"  # feed the decoder and analyse the next frame it outputs
    DELIVER_KEY = "deliver_key"  # a lone keyframe: decode it, drain the decoder, analyse it


class DecodePlan:
    def __init__(self, interval_s: float, mode: str = "auto", gop_slack: float = 1.05):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        if mode not in MODES:
            raise ValueError(f"decode mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.interval_s, self.mode, self.gop_slack = float(interval_s), mode, gop_slack
        self._key_gaps: deque[float] = deque(maxlen=5)
        self._gop: float | None = None  # median of _key_gaps, kept current: asked for every packet
        self._last_key_stamp: tuple[str, float] | None = None
        self._last_key_at: float | None = None
        self.reset()

    def reset(self) -> None:
        """A new connection: the next usable frame is analysed; the GOP estimate is kept."""
        self._due: float | None = None
        self._decoding = False  # GOP mode: the decoder holds a keyframe's chain
        self._last_key_stamp = None
        self._last_key_at = None

    @property
    def gop_s(self) -> float | None:
        """The camera's keyframe interval (median of the last gaps), once known."""
        return self._gop

    @property
    def due_at(self) -> float | None:
        return self._due

    def keyframe_mode(self) -> bool:
        if self.mode != "auto":
            return self.mode == "keyframes"
        gop = self.gop_s
        return gop is not None and gop <= self.interval_s * self.gop_slack

    def on_packet(self, now: float, keyframe: bool, stamp_s: float | None = None) -> Action:
        """`now`: monotonic arrival time; `stamp_s`: the packet's stream time, if it has one
        (the GOP is measured on it: arrival times jitter with the network)."""
        if keyframe:
            self._note_keyframe(now, stamp_s)
        if self.mode == "all":
            return self._take(now) if self._is_due(now) else Action.DECODE
        if self.keyframe_mode():
            # Take the keyframe nearest the due time, not the first one after it: keyframes
            # arriving a few ms early must not push the interval out by a whole GOP.
            if keyframe and self._is_due(now, tolerance=(self.gop_s or 0) / 2):
                self._take(now)
                return Action.DELIVER_KEY
            self._decoding = False
            return Action.SKIP
        return self._gop_mode(now, keyframe)

    def _gop_mode(self, now: float, keyframe: bool) -> Action:
        gop = self.gop_s
        if keyframe:
            # Skip this GOP when the next keyframe still comes before the due time.
            self._decoding = not (gop is not None and self._due is not None and now + gop <= self._due)
        if not self._decoding:
            return Action.SKIP
        if not self._is_due(now):
            return Action.DECODE
        self._take(now)
        next_key = self._last_key_at + gop if gop is not None and self._last_key_at is not None else None
        # Keep feeding the decoder only if the next due frame lies in this GOP.
        self._decoding = next_key is None or self._due < next_key
        return Action.DELIVER

    def _note_keyframe(self, now: float, stamp_s: float | None) -> None:
        # Stream time when the packet has it, else arrival time; never a gap across the two
        # clocks (FFmpeg gives the first RTSP packet no timestamp).
        stamp = ("stream", stamp_s) if stamp_s is not None else ("arrival", now)
        last = self._last_key_stamp
        if last is not None and last[0] == stamp[0] and stamp[1] > last[1]:
            self._key_gaps.append(stamp[1] - last[1])
            self._gop = statistics.median(self._key_gaps)
        self._last_key_stamp, self._last_key_at = stamp, now

    def _is_due(self, now: float, tolerance: float = 0.0) -> bool:
        return self._due is None or now >= self._due - tolerance

    def _take(self, now: float) -> Action:
        # A fixed grid keeps the average interval exact; after a gap (stall, reconnect) it restarts.
        nxt = (self._due + self.interval_s) if self._due is not None else now + self.interval_s
        if nxt <= now:
            nxt = now + self.interval_s
        self._due = nxt
        return Action.DELIVER

    def overdue_s(self, now: float) -> float:
        """How long past its due time the next analysed frame is (0 when not yet due)."""
        return 0.0 if self._due is None else max(0.0, now - self._due)
