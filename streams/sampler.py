"""Choose which decoded frames get analysed: one every `interval_s` seconds."""

from __future__ import annotations


class FrameSampler:
    def __init__(self, interval_s: float):
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self._next: float | None = None

    def should_take(self, captured_at: float) -> bool:
        if self._next is None or captured_at >= self._next or captured_at < self._next - 2 * self.interval_s:
            # The last condition: the clock jumped back; start over rather than wait it out.
            self._next = captured_at + self.interval_s
            return True
        return False
