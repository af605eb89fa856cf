"""Batch ingest: many edge events in one multipart request, each ingested on its own.

A box back from an outage has hundreds of events in its outbox; one request per event pays
the HTTP, multipart and thread hand-off costs each time. A batch carries an `events` part (a
JSON array of events, each as the single route's `event`) and each event's images as parts
named `<kind>.<index>` (`frame.0`, `annotated.0`, `crop.3`): the same raw JPEG/PNG bytes the
single route takes, so nothing is base64-inflated by a third or decoded again.

Each event is checked and ingested exactly as by the single route (`ingest_event`, its own
transaction, its event_id the idempotency key), and gets the status that route would have
answered; one refused event does not fail the others. Once the store or the database is
unavailable the events after it are not tried (503 each): the box sends in order, and they
would fail the same way.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from api.auth import Principal
from api.batch_schemas import BatchAccepted, BatchItemResult
from api.box_binding import check_camera
from api.db import DatabaseBusy
from api.errors import _short_errors, _writable
from api.event_checks import check_clock, event_from_object
from api.events import ingest_event
from api.evidence_store import EvidenceStore, StoreUnavailable
from api.images import BadImage, TooLarge
from api.problems import Problem
from api.schemas import EvidenceKind
from api.settings import Settings

log = logging.getLogger("streetwatch.api")
EVENTS_PART = "events"


def _invalid(loc: tuple[Any, ...], msg: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": msg}])


def split_batch(form: FormData, max_events: int) -> tuple[list[Any], dict[int, dict[EvidenceKind, UploadFile]]]:
    """The batch's events (parsed JSON, not yet validated) and each one's image parts.
    A malformed batch as a whole (no `events` array, too many events, a part that belongs to
    no event, a part twice) is a RequestValidationError naming the part."""
    texts = form.getlist(EVENTS_PART)
    if len(texts) != 1 or not isinstance(texts[0], str):
        raise _invalid(("body", EVENTS_PART), "required once: a JSON array of events (as the single route's `event`)")
    try:
        items = json.loads(texts[0])
    except ValueError as exc:
        raise _invalid(("body", EVENTS_PART), f"not JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise _invalid(("body", EVENTS_PART), "must be a non-empty JSON array of events")
    if len(items) > max_events:
        raise _invalid(("body", EVENTS_PART), f"{len(items)} events; a batch takes at most {max_events} "
                                              "(STREETWATCH_BATCH_MAX_EVENTS): send the rest in another batch")
    parts: dict[int, dict[EvidenceKind, UploadFile]] = {}
    for name, value in form.multi_items():
        if name == EVENTS_PART:
            continue
        kind_name, _, index_text = name.partition(".")
        if kind_name not in EvidenceKind.__members__ or EvidenceKind(kind_name) not in EDGE_KINDS \
                or not index_text.isdigit() or int(index_text) >= len(items):
            raise _invalid(("body", name), f"unknown part; a batch takes `events` and <kind>.<index> parts, kind one "
                                           f"of frame, annotated, crop, index 0 to {len(items) - 1}")
        if not isinstance(value, UploadFile):
            raise _invalid(("body", name), "must be a file part (with a filename), not a text field")
        kinds = parts.setdefault(int(index_text), {})
        if EvidenceKind(kind_name) in kinds:
            raise _invalid(("body", name), "sent more than once; send each part once")
        kinds[EvidenceKind(kind_name)] = value
    return items, parts


EDGE_KINDS = (EvidenceKind.frame, EvidenceKind.annotated, EvidenceKind.crop)


def _read(part: UploadFile, name: str, limit: int) -> bytes:
    # One byte past the limit is enough to know it is too big (blocking: runs in the thread).
    part.file.seek(0)
    data = part.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(name, limit)
    return data


def _event_id(raw: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw["event_id"])) if isinstance(raw, dict) else None
    except (KeyError, ValueError):
        return None


def _outcome(exc: Exception) -> tuple[int, Any]:
    """(status, detail) as the single route's error handlers (api/errors.py) answer them."""
    if isinstance(exc, RequestValidationError):
        return 422, _writable(jsonable_encoder(_short_errors(exc.errors())))
    if isinstance(exc, BadImage):
        return 422, [{"type": "image_invalid", "loc": ["body", exc.part], "msg": exc.reason}]
    if isinstance(exc, TooLarge):
        return 413, str(exc)
    if isinstance(exc, Problem):
        return exc.status, exc.body()["detail"]
    if isinstance(exc, StoreUnavailable):
        log.warning("evidence store unavailable: %s", exc)
        return 503, "evidence store unavailable, nothing was stored; retry later"
    if isinstance(exc, (PoolTimeout, DatabaseBusy)):
        return 503, "database busy, nothing was stored; retry later"
    if isinstance(exc, OperationalError):
        log.warning("database unavailable: %s", exc)
        return 503, "database unavailable, retry later"
    if isinstance(exc, DataError):
        return 422, "a value the database cannot store"
    if isinstance(exc, IntegrityError):
        return 409, "conflicts with what is stored (a concurrent change?)"
    raise exc


def _ingest_one(session: Session, store: EvidenceStore, settings: Settings, who: Principal, index: int, raw: Any,
                parts: dict[EvidenceKind, UploadFile]) -> BatchItemResult:
    event = event_from_object(raw, ("body", EVENTS_PART, index))
    check_clock(event, ("body", EVENTS_PART, index))
    check_camera(session, who, event.camera.name)
    images = {kind: _read(part, f"{kind.value}.{index}", settings.max_upload_bytes) for kind, part in parts.items()}
    try:
        accepted = ingest_event(session, store, settings, event, images)
    except BadImage as exc:  # named by kind inside ingest: name the batch's part
        raise BadImage(f"{exc.part}.{index}", exc.reason) from exc
    except TooLarge as exc:
        raise TooLarge(f"{exc.part}.{index}", settings.max_upload_bytes) from exc
    return BatchItemResult(index=index, event_id=accepted.event_id, status=200 if accepted.replay else 201,
                           order_id=accepted.order_id, new_order=accepted.new_order, replay=accepted.replay)


def ingest_batch(session: Session, store: EvidenceStore, settings: Settings, who: Principal, items: list[Any],
                 parts: dict[int, dict[EvidenceKind, UploadFile]]) -> BatchAccepted:
    """Each event ingested on its own, in order (blocking: call it in a thread)."""
    results: list[BatchItemResult] = []
    halted: str | None = None
    for index, raw in enumerate(items):
        if halted is not None:
            results.append(BatchItemResult(index=index, event_id=_event_id(raw), status=503,
                                           detail=f"not tried: an earlier event of the batch found the {halted}; "
                                                  "nothing was stored; retry later"))
            continue
        try:
            results.append(_ingest_one(session, store, settings, who, index, raw, parts.get(index, {})))
            # A replay's lookup leaves a read open; the next event's write must begin afresh
            # (SQLite's BEGIN IMMEDIATE). After a commit this is a no-op.
            session.rollback()
        except Exception as exc:  # noqa: BLE001 (each known failure becomes this event's own answer)
            status, detail = _outcome(exc)
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 (a dead connection: the 503 below says enough)
                pass
            results.append(BatchItemResult(index=index, event_id=_event_id(raw), status=status, detail=detail))
            if status == 503:
                halted = "database unavailable" if not isinstance(exc, StoreUnavailable) else "evidence store unavailable"
    return BatchAccepted(results=results)
