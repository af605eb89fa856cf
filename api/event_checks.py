"""Checks an edge event's JSON gets before anything is stored, shared by the single and the
batch ingest routes; errors are FastAPI's validation errors, `loc` naming the field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.schemas import EventIn

# Event times outside this window come from a box whose clock is wrong (no NTP yet after a
# power cut, a dead RTC battery); stored, they would keep an order "seen" for years or make
# the dedup windows reach back to year 1.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
MAX_CLOCK_AHEAD = timedelta(hours=1)


def _refused(exc: ValidationError, loc: tuple[Any, ...]) -> RequestValidationError:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return RequestValidationError([{**e, "loc": (*loc, *e["loc"])} for e in errors])


def parse_event(raw: str | bytes, loc: tuple[Any, ...] = ("body", "event")) -> EventIn:
    """The event from its JSON text (the single route's `event` part)."""
    try:
        return EventIn.model_validate_json(raw)
    except ValidationError as exc:
        raise _refused(exc, loc) from None


def event_from_object(raw: Any, loc: tuple[Any, ...]) -> EventIn:
    """The event from an already parsed JSON object (one item of a batch's `events` array)."""
    try:
        return EventIn.model_validate(raw)
    except ValidationError as exc:
        raise _refused(exc, loc) from None


def check_clock(event: EventIn, loc: tuple[Any, ...] = ("body", "event")) -> None:
    latest = datetime.now(timezone.utc) + MAX_CLOCK_AHEAD
    for field in ("first_seen", "confirmed_at"):
        value: datetime = getattr(event, field)
        if not EARLIEST <= value <= latest:
            where = "before 2000" if value < EARLIEST else "more than 1 h ahead of the server's clock"
            raise RequestValidationError([{"type": "value_error", "loc": (*loc, field),
                                           "msg": f"{value.isoformat()} is {where}: check the edge box's clock (NTP)"}])
