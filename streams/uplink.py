"""Sends confirmed events to the API, in order, retrying until the API acknowledges them.

Every event carries its event id as the idempotency key, so a retry after a lost answer
never creates a second order. A 4xx answer (other than 408/429, and 409 a few times) means
the API rejected the event itself; retrying cannot help, so it is logged and dropped. A 413
for an optional part is retried with the frame alone. Retry-After is honoured.
EventUploader keeps events in memory (tests, tools); the edge box sends from its durable
outbox (streams/outbox.py) with OutboxSender, which survives a crash or a power cut.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from dataclasses import dataclass

import httpx

from api.schemas import EventIn
from streams.uplink_batch import BadBatchAnswer, BatchRefused, BatchUnsupported, post_batch

log = logging.getLogger("streetwatch.uplink")

# 4xx answers that say nothing against the event itself: a timeout or a rate limit, and a key
# or address the box is misconfigured with (401/403/404/405). Dropping events for those would
# empty the outbox over a typo; they stay and are retried until someone fixes the config.
RETRYABLE = {408, 425, 429}
MISCONFIGURED = {401, 403, 404, 405}
# 409: a write that conflicted with a concurrent one (the API says so); worth a few more
# tries, but not forever, since the outbox sends in order and one event must not hold up the rest.
CONFLICT, CONFLICT_TRIES = 409, 5
MAX_RETRY_AFTER_S = 300.0  # a Retry-After longer than this is a misconfigured server: cap it


@dataclass
class OutgoingEvent:
    event: EventIn
    images: dict[str, bytes]  # evidence kind → JPEG bytes


class Rejected(Exception):
    """The API refused this event for good (a 4xx answer)."""


class BadAnswer(Exception):
    """A 200/201 whose body is not the JSON object the API answers with (a proxy's page?):
    the event is not known to have arrived, so it is sent again."""


def post_event(client: httpx.Client, base_url: str, item: OutgoingEvent, api_key: str | None = None) -> dict:
    return post_raw(client, base_url, str(item.event.event_id), item.event.model_dump_json(), item.images, api_key)


def post_raw(client: httpx.Client, base_url: str, event_id: str, event_json: str, images: dict[str, bytes],
             api_key: str | None = None, attempts: int = 0) -> dict:
    """POST one event; its answer, or Rejected (for good), or an exception to retry on.
    `attempts`: how often it was tried before (a 409 is retried only so often)."""
    headers = {"Idempotency-Key": event_id}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    resp = _post(client, base_url, event_json, images, headers)
    if resp.status_code == 413 and len(images) > 1 and "frame" in images:
        # An optional part (annotated, crop) over the API's limit: the frame alone still
        # makes the order; reviewers lose a convenience, not the event.
        log.warning("event %s: evidence over the API's upload limit; sending the frame alone", event_id)
        resp = _post(client, base_url, event_json, {"frame": images["frame"]}, headers)
    if resp.status_code in (200, 201):
        try:
            answer = resp.json()
        except ValueError as exc:
            raise BadAnswer(f"{resp.status_code} with a body that is not JSON: {resp.text[:100]!r}") from exc
        if not isinstance(answer, dict):
            raise BadAnswer(f"{resp.status_code} with a body that is not a JSON object: {resp.text[:100]!r}")
        return answer
    if refused_for_good(resp.status_code, attempts):
        raise Rejected(f"{resp.status_code} {resp.text[:300]}")
    raise httpx.HTTPStatusError(f"{resp.status_code} {resp.text[:200]}", request=resp.request, response=resp)


def refused_for_good(status: int, attempts: int) -> bool:
    """A 4xx against the event itself, which no retry can help (see RETRYABLE, MISCONFIGURED,
    CONFLICT); `attempts`: how often the event was tried before."""
    retry_conflict = status == CONFLICT and attempts + 1 < CONFLICT_TRIES
    return 400 <= status < 500 and status not in RETRYABLE | MISCONFIGURED and not retry_conflict


def _post(client: httpx.Client, base_url: str, event_json: str, images: dict[str, bytes],
          headers: dict[str, str]) -> httpx.Response:
    files = {kind: (f"{kind}.jpg", data, "image/jpeg") for kind, data in images.items()}
    return client.post(f"{base_url}/api/v1/events", data={"event": event_json}, files=files, headers=headers)


def retry_wait(exc: Exception, delay: float) -> float:
    """How long to wait before the next try: `delay` with jitter, or as long as the answer's
    Retry-After (seconds form, capped) asks if that is longer."""
    asked = 0.0
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            asked = min(MAX_RETRY_AFTER_S, max(0.0, float(exc.response.headers.get("Retry-After", "0"))))
        except ValueError:  # the HTTP-date form: our API never sends it
            pass
    return max(asked, random.uniform(0, delay) + delay / 2)


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
                except Exception as exc:  # noqa: BLE001 (the uploader must live on and retry)
                    log.warning("sending failed (%s: %s); retrying event %s in %.1fs", type(exc).__name__, exc,
                                item.event.event_id, delay)
                    self._stop.wait(retry_wait(exc, delay))
                    delay = min(cap, delay * 2)


class OutboxSender:
    """Sends the outbox's events oldest first (so they arrive in order), and acknowledges each
    in the outbox only once the API has answered 200/201. While the API or the network is down
    it retries the oldest event with exponential backoff and jitter.

    With `batch_max_events` > 1 a backlog goes in batches (streams/uplink_batch.py) of up to
    that many events and `batch_max_bytes` of images; an event a batch could not deliver is
    sent alone next (with the single route's fallbacks: the frame alone after a 413, a 409
    retried a few times); an API without the batch route gets one event per request, and is
    asked again after BATCH_REPROBE_S."""

    BATCH_REPROBE_S = 600.0

    def __init__(self, outbox, base_url: str, api_key: str | None = None, timeout_s: float = 10.0,
                 backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 transport: httpx.BaseTransport | None = None, batch_max_events: int = 1,
                 batch_max_bytes: int = 8 * 2**20):
        self.outbox = outbox
        self.batch_max_events, self.batch_max_bytes = max(1, batch_max_events), batch_max_bytes
        self._batch_off_until = 0.0  # monotonic time until which the API is taken to lack the route
        self.batches = 0  # batches the API answered
        self.base_url, self.api_key = base_url.rstrip("/"), api_key
        self._client = httpx.Client(timeout=timeout_s, transport=transport)
        self._backoff = (backoff_initial_s, backoff_max_s)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.sent = 0
        self.rejected = 0
        self.failures = 0  # attempts that found the API unreachable
        self.api_up: bool | None = None
        self._thread = threading.Thread(target=self._run, name="outbox-sender", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """A new event is in the outbox: send it now rather than at the next poll."""
        self._wake.set()

    def pending(self) -> int:
        return len(self.outbox)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._client.close()

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stop.is_set():
            try:
                delay = self._send_next(delay)
            except Exception:  # noqa: BLE001 (the outbox itself failed: a full disk, say)
                # The thread must outlive it: nothing is lost (an event leaves the outbox only
                # when acknowledged), and once the disk has room again sending goes on.
                log.exception("outbox: reading or acknowledging failed; retrying in %.0fs", self._backoff[1])
                self._stop.wait(self._backoff[1])

    def _send_next(self, delay: float) -> float:
        """Send the oldest event once (or a batch starting with it); the backoff to use next."""
        batching = self.batch_max_events > 1 and time.monotonic() >= self._batch_off_until
        items = self.outbox.peek_many(self.batch_max_events if batching else 1, self.batch_max_bytes)
        if not items:
            self._wake.wait(1.0)
            self._wake.clear()
            return delay
        # An oldest event that failed before goes alone, with the single route's fallbacks.
        if len(items) > 1 and items[0].attempts == 0:
            sent = self._send_batch(items, delay)
            if sent is not None:
                return sent
        item = items[0]
        try:
            answer = post_raw(self._client, self.base_url, item.event_id, item.event_json, item.images, self.api_key,
                              item.attempts)
        except Rejected as exc:
            self.rejected += 1
            log.error("event %s rejected by the API, dropped: %s", item.event_id, exc)
            self.outbox.ack(item.seq)
            return delay
        except Exception as exc:  # noqa: BLE001 (whatever it is, the sender must live on and retry)
            self.failures += 1
            self._report_failure(item.event_id, exc)
            self.api_up = False
            wait = retry_wait(exc, delay)
            try:
                self.outbox.attempted(item.seq)
            finally:
                self._stop.wait(wait)
            return min(self._backoff[1], delay * 2)
        if self.api_up is False:
            log.info("API reachable again; sending the outbox")
        self.api_up = True
        self.outbox.ack(item.seq)
        self.sent += 1
        log.info("event %s → order %s%s%s", item.event_id, answer.get("order_id"),
                 " (replay)" if answer.get("replay") else "",
                 " (evidence dropped for the outbox cap)" if item.images_dropped else "")
        return self._backoff[0]

    def _send_batch(self, items: list, delay: float) -> float | None:
        """Send `items` as one batch and settle each; the backoff to use next, or None when
        they must go one by one (no batch route, or the batch refused whole)."""
        try:
            results = post_batch(self._client, self.base_url, items, self.api_key)
        except BatchUnsupported:
            log.info("the API has no batch route; sending events one by one (asking again in %.0f s)",
                     self.BATCH_REPROBE_S)
            self._batch_off_until = time.monotonic() + self.BATCH_REPROBE_S
            return None
        except BatchRefused as exc:
            log.warning("the API refused a batch of %d events (%s); sending them one by one, and at most %d "
                        "per batch from now on", len(items), exc, max(1, len(items) // 2))
            self.batch_max_events = max(1, len(items) // 2)
            return None
        except Exception as exc:  # noqa: BLE001 (the network or the API is away: retry, as for one event)
            self.failures += 1
            self._report_failure(items[0].event_id, exc)
            self.api_up = False
            try:
                self.outbox.attempted(items[0].seq)
            finally:
                self._stop.wait(retry_wait(exc, delay))
            return min(self._backoff[1], delay * 2)
        self.batches += 1
        if self.api_up is False:
            log.info("API reachable again; sending the outbox")
        self.api_up = True
        kept: list[int] = []
        for item, result in zip(items, results):
            status = result["status"]
            if status in (200, 201):
                self.outbox.ack(item.seq)
                self.sent += 1
                log.info("event %s → order %s%s%s", item.event_id, result.get("order_id"),
                         " (replay)" if result.get("replay") else "",
                         " (evidence dropped for the outbox cap)" if item.images_dropped else "")
            elif refused_for_good(status, item.attempts) and not (status == 413 and len(item.images) > 1):
                self.rejected += 1
                log.error("event %s rejected by the API, dropped: %s %s", item.event_id, status,
                          str(result.get("detail"))[:300])
                self.outbox.ack(item.seq)
            else:  # kept: sent alone next, where the single route's retries and fallbacks apply
                self.outbox.attempted(item.seq)
                kept.append(status)
        if any(status >= 500 or status in RETRYABLE | MISCONFIGURED for status in kept):
            self.failures += 1
            log.warning("the API could not take %d event(s) of a batch (status %s); retrying", len(kept),
                        sorted(set(kept)))
            self._stop.wait(random.uniform(0, delay) + delay / 2)
            return min(self._backoff[1], delay * 2)
        return self._backoff[0]

    def _report_failure(self, event_id: str, exc: Exception) -> None:
        """One log line per outage, not per attempt."""
        if self.api_up is False:
            return
        status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else None
        if status in MISCONFIGURED:
            log.error("API answers %d to this edge box (check api.url and api.key); %d event(s) "
                      "kept in the outbox, retrying", status, self.pending())
        elif isinstance(exc, (httpx.HTTPError, BadAnswer, BadBatchAnswer)):
            log.warning("API unreachable (%s); %d event(s) wait in the outbox, retrying", exc, self.pending())
        else:  # not the network: a bug or a setting no config check caught; say which
            log.exception("sending event %s failed; %d event(s) kept in the outbox, retrying",
                          event_id, self.pending())
