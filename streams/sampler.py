"""Choose which decoded frames get analysed: one every `interval_s` seconds."""

from __future__ import annotations


class FrameSampler:
    """`should_take(t)` is True for the first frame, then for the first frame at or after each
    `interval_s` step. Steps sit on a fixed grid, so a 10 fps camera sampled every 1 s gives
    exactly one frame a second on average (no creeping by a frame period each time).

    Clock jumps: a jump forward takes the next frame and restarts the grid from there; a jump
    back by more than one interval restarts the grid at once, instead of waiting it out.
    Feed it time.monotonic() (what CameraWorker does) and jumps cannot happen at all.
    """

    def __init__(self, interval_s: float):
        if not interval_s > 0:
            raise ValueError(f"interval_s must be positive, got {interval_s!r}")
        self.interval_s = float(interval_s)
        self._next: float | None = None

    def reset(self) -> None:
        """Take the next frame whatever its time (e.g. after a reconnect)."""
        self._next = None

    def should_take(self, captured_at: float) -> bool:
        nxt = self._next
        if nxt is None or captured_at < nxt - 2 * self.interval_s:
            self._next = captured_at + self.interval_s  # first frame, or the clock went back
            return True
        if captured_at < nxt:
            return False
        nxt += self.interval_s
        if nxt <= captured_at:  # a gap (stall, reconnect, clock jump forward): restart the grid
            nxt = captured_at + self.interval_s
        self._next = nxt
        return True
