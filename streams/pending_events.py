"""Rendered events the outbox could not take (a full disk, most likely), held in memory in
order and offered again every few seconds, instead of being lost with a log line.

The journal (streams/outbox.py) still holds their confirmations, so even a crash while they
wait only costs their rendering: after a restart they are rendered from a new frame.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque
from typing import Callable

from streams.uplink import OutgoingEvent

log = logging.getLogger("streetwatch.edge")

STORE_ERRORS = (OSError, sqlite3.Error)  # what a full or failing disk raises from the outbox


class PendingEvents:
    def __init__(self, store: Callable[[OutgoingEvent], None], retry_s: float = 5.0, limit: int = 100):
        """`store(item)` puts one event in the outbox; `limit` events (~0.3 MB each) at most wait."""
        self._store, self.retry_s = store, retry_s
        self._waiting: deque[OutgoingEvent] = deque()
        self.limit = limit
        self._retry_at = 0.0
        self.lost = 0  # pushed out by newer ones while the disk stayed full

    def __len__(self) -> int:
        return len(self._waiting)

    def store(self, item: OutgoingEvent) -> None:
        """Store `item` now, or keep it (behind any that already wait) for `retry()`."""
        self.retry()
        if not self._waiting:
            try:
                self._store(item)
                return
            except STORE_ERRORS as exc:
                log.error("outbox: cannot store event %s (%s); kept in memory and retried every %.0f s",
                          item.event.event_id, exc, self.retry_s)
                self._retry_at = time.monotonic() + self.retry_s
        if len(self._waiting) >= self.limit:
            lost = self._waiting.popleft()
            self.lost += 1
            log.error("outbox: %d events wait in memory for the disk; event %s, the oldest, is lost",
                      len(self._waiting) + 1, lost.event.event_id)
        self._waiting.append(item)

    def retry(self) -> None:
        """Offer the waiting events again, oldest first, once their retry time has come."""
        while self._waiting and time.monotonic() >= self._retry_at:
            try:
                self._store(self._waiting[0])
            except STORE_ERRORS:
                self._retry_at = time.monotonic() + self.retry_s
                return
            except Exception:  # not the disk: this event will never go in; the others may
                self.lost += 1
                dropped = self._waiting.popleft()
                log.exception("outbox: event %s cannot be stored; dropped", dropped.event.event_id)
                continue
            stored = self._waiting.popleft()
            log.info("outbox: event %s stored after all", stored.event.event_id)
