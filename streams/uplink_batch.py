"""Sending part of the outbox's backlog in one request (POST /api/v1/events/batch).

A box back from an outage holds hundreds of events; one request each pays the round trip and
the API's per-request costs every time. The batch carries the stored event JSON texts as one
JSON array (`events`) and each event's images as parts `<kind>.<index>`, the same bytes the
single route takes. The API answers one result per event, with the status the single route
would have given it; OutboxSender (streams/uplink.py) acknowledges, drops or keeps each.
"""

from __future__ import annotations

import httpx

from streams.outbox import StoredEvent

BATCH_PATH = "/api/v1/events/batch"
# An API from before the batch route: 404 (no such path) or 405 (a path that only takes GET).
NO_ROUTE = frozenset({404, 405})
# The batch as a whole refused: larger than the API's STREETWATCH_BATCH_MAX_BYTES or with more
# events than its STREETWATCH_BATCH_MAX_EVENTS (smaller than ours), or a stored event whose
# JSON text is broken. One by one, each event gets its own answer.
REFUSED_WHOLE = frozenset({413, 422})


class BatchUnsupported(Exception):
    """The API has no batch route: send one event per request."""


class BatchRefused(Exception):
    """The API refused the batch as a whole: send these one by one (and smaller batches next)."""


class BadBatchAnswer(Exception):
    """A 200 without one result per event: nothing is known to have arrived; sent again."""


def batch_body(items: list[StoredEvent]) -> tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]:
    """The form fields and file parts of one batch."""
    events = "[" + ",".join(item.event_json for item in items) + "]"  # stored JSON texts, not re-encoded
    files = [(f"{kind}.{index}", (f"{kind}.jpg", data, "image/jpeg"))
             for index, item in enumerate(items) for kind, data in item.images.items()]
    return {"events": events}, files


def post_batch(client: httpx.Client, base_url: str, items: list[StoredEvent],
               api_key: str | None = None) -> list[dict]:
    """POST the events; one result dict per event, in order (`status`, `order_id`, `replay`,
    `detail`), or BatchUnsupported / BatchRefused, or an exception to retry on."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    data, files = batch_body(items)
    resp = client.post(f"{base_url}{BATCH_PATH}", data=data, files=files, headers=headers)
    if resp.status_code in NO_ROUTE:
        raise BatchUnsupported(f"{resp.status_code} for {BATCH_PATH}")
    if resp.status_code in REFUSED_WHOLE:
        raise BatchRefused(f"{resp.status_code} {resp.text[:300]}")
    if resp.status_code != 200:
        raise httpx.HTTPStatusError(f"{resp.status_code} {resp.text[:200]}", request=resp.request, response=resp)
    try:
        results = resp.json()["results"]
        by_index = {int(r["index"]): r for r in results}
        ordered = [by_index[i] for i in range(len(items))]
        if not all(isinstance(r.get("status"), int) for r in ordered):
            raise ValueError("a result without a status")
    except (ValueError, KeyError, TypeError) as exc:
        raise BadBatchAnswer(f"200 without one result per event: {resp.text[:100]!r}") from exc
    return ordered
