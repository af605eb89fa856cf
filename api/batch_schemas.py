"""The answer to POST /api/v1/events/batch: one result per event, in the order sent."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel


class BatchItemResult(BaseModel):
    index: int  # the event's position in the batch's `events` array
    event_id: uuid.UUID | None  # None when the item has no readable event_id
    # What the single route would have answered for this event alone: 201 stored, 200 replay,
    # 403 camera of another box, 409 conflicting write, 413 image too large, 422 invalid event
    # or image, 503 store or database unavailable (nothing stored: send it again).
    status: int
    order_id: int | None = None
    new_order: bool | None = None
    replay: bool | None = None
    detail: Any = None  # the single route's `detail`, for an event refused


class BatchAccepted(BaseModel):
    results: list[BatchItemResult]
