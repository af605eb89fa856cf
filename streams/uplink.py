"""Sends confirmed events to the API, in order, retrying until the API acknowledges them.

Every event carries its event id as the idempotency key, so a retry after a lost answer
never creates a second order. A 4xx answer (other than 408/429) means the API rejected
the event itself; retrying cannot help, so it is logged and dropped.
(Events live in memory here; a durable on-disk outbox replaces this queue in the edge box.)
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
from dataclasses import dataclass

import httpx

from api.schemas import EventIn

log = logging.getLogger("streetwatch.uplink")

RETRYABLE = {408, 425, 429}


@dataclass
class OutgoingEvent:
    event: EventIn
    images: dict[str, bytes]  # evidence kind → JPEG bytes


class Rejected(Exception):
    """The API refused this event for good (a 4xx answer)."""


def post_event(client: httpx.Client, base_url: str, item: OutgoingEvent, api_key: str | None = None) -> dict:
    headers = {"Idempotency-Key": str(item.event.event_id)}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    files = {kind: (f"{kind}.jpg", data, "image/jpeg") for kind, data in item.images.items()}
    resp = client.post(f"{base_url}/api/v1/events", data={"event": item.event.model_dump_json()}, files=files, headers=headers)
    if resp.status_code in (200, 201):
        return resp.json()
    if 400 <= resp.status_code < 500 and resp.status_code not in RETRYABLE:
        raise Rejected(f"{resp.status_code} {resp.text[:300]}")
    resp.raise_for_status()
    raise httpx.HTTPStatusError(f"unexpected status {resp.status_code}", request=resp.request, response=resp)


class EventUploader:
    def __init__(self, base_url: str, api_key: str | None = None, timeout_s: float = 10.0,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None):
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._queue: queue.Queue[OutgoingEvent | None] = queue.Queue()
        self._stop = threading.Event()
        self._backoff = (backoff_initial_s, backoff_max_s)
        self.sent = 0
        self.rejected = 0
        self._thread = threading.Thread(target=self._run, name="uplink", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, item: OutgoingEvent) -> None:
        self._queue.put(item)

    def pending(self) -> int:
        return self._queue.qsize()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._queue.get()
            if item is None:
                continue
            delay, cap = self._backoff
            while not self._stop.is_set():
                try:
                    answer = post_event(self._client, self.base_url, item, self.api_key)
                    self.sent += 1
                    log.info("event %s (%s, camera %s) → order %s%s", item.event.event_id, item.event.issue_type.value,
                             item.event.camera.name, answer.get("order_id"), " (replay)" if answer.get("replay") else "")
                    break
                except Rejected as exc:
                    self.rejected += 1
                    log.error("event %s rejected by the API, dropped: %s", item.event.event_id, exc)
                    break
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    log.warning("API unreachable (%s); retrying event %s in %.1fs", exc, item.event.event_id, delay)
                    self._stop.wait(random.uniform(0, delay) + delay / 2)
                    delay = min(cap, delay * 2)
