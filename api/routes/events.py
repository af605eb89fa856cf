from __future__ import annotations

import json
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError

from api.auth import Principal, require
from api.batch_schemas import BatchAccepted
from api.box_binding import ensure_camera
from api.event_batch import EDGE_KINDS, EVENTS_PART, ingest_batch, split_batch
from api.event_checks import check_clock, parse_event
from api.deps import SessionDep, SettingsDep, StoreDep
from api.event_form import IDEMPOTENCY_HEADER, event_parts, openapi_body, read_part
from api.models import Role
from api.events import ingest_event
from api.schemas import EventAccepted
from api.settings import Settings

router = APIRouter(prefix="/api/v1/events", tags=["events"])
EDGE = require(Role.edge)

EVENT_DESCRIPTION = ("The event as a JSON string (schema `EventIn` in `api/schemas.py`): event_id (UUID, the "
                     "idempotency key), camera {name, lat, lon, grid_id}, issue_type (street_vending | clutter | "
                     "flooding), class_name, confidence, bbox [x1, y1, x2, y2] in pixels, frame_width, frame_height, "
                     "first_seen, confirmed_at (ISO 8601 with timezone), track_id, model {name, version}.")
EVENT_EXAMPLE = json.dumps({
    "event_id": "0b9f6c1e-5d2a-4c1b-9a57-3f0e2d8c4b11", "camera": {"name": "street-1", "lat": 31.2304,
                                                                   "lon": 121.4737, "grid_id": "grid-001"},
    "issue_type": "street_vending", "class_name": "vendor_stall", "confidence": 0.87, "bbox": [412, 300, 640, 520],
    "frame_width": 1280, "frame_height": 720, "first_seen": "2026-01-01T12:00:00Z",
    "confirmed_at": "2026-01-01T12:00:08Z", "track_id": 17, "model": {"name": "streetwatch-demo", "version": "1"},
})


@router.post(
    "",
    status_code=201,
    # The key first (a stranger's misspelled part is a 401, not a 422); the same dependency
    # object as `who` below, so FastAPI runs it once.
    dependencies=[Depends(EDGE)],
    openapi_extra={"requestBody": openapi_body(EVENT_DESCRIPTION, EVENT_EXAMPLE), "parameters": [IDEMPOTENCY_HEADER]},
    responses={
        200: {"model": EventAccepted, "description": "Replay: this event_id was received before; nothing stored"},
        401: {"description": "Missing or unknown API key"},
        403: {"description": "The key's role may not post events (edge or admin keys may), or the camera is not "
                             "one of the key's box's (api/box_binding.py)"},
        413: {"description": "A file part is larger than STREETWATCH_MAX_UPLOAD_BYTES"},
        422: {"description": "Invalid event JSON (the `loc` names the field), an undecodable image "
                             "(the `loc` names the part), or an Idempotency-Key that is not the event_id"},
        503: {"description": "Evidence store or database unavailable; nothing stored; retry"},
    },
)
async def post_event(request: Request, response: Response, session: SessionDep,
                     who: Annotated[Principal, Depends(EDGE)]) -> EventAccepted:
    """Receive one confirmed issue from an edge box, as `multipart/form-data`.

    The event joins an open order of the same camera and issue type whose box overlaps it
    (IoU ≥ STREETWATCH_DEDUP_IOU), or opens a new order in state `reported`. `event_id` is the
    idempotency key: posting the same event again answers 200 with the first result and
    `replay: true`, and stores nothing.
    """
    # The form by hand (api/event_form.py): FastAPI's Form/File/Header parameters cost more
    # CPU than the rest of the request's handling. Settings and store from the app, likewise.
    settings: Settings = request.app.state.settings
    event, parts = event_parts(await request.form())
    parsed = parse_event(event)
    check_clock(parsed)
    await ensure_camera(session, who, parsed.camera.name)
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None and idempotency_key.strip().lower() != str(parsed.event_id):
        raise RequestValidationError([{"type": "value_error", "loc": ("header", "Idempotency-Key"),
                                       "msg": f"must equal event.event_id ({parsed.event_id})"}])
    images = {kind: await read_part(part, kind, settings.max_upload_bytes) for kind, part in parts.items()}
    store = request.app.state.store
    # The route is async and hands only the blocking work (image check, S3, SQL) to a thread:
    # as a plain `def` FastAPI would also send the response's validation there, one more hop.
    result = await run_in_threadpool(ingest_event, session, store, settings, parsed, images)
    if result.replay:
        response.status_code = 200
    return result


BATCH_PATH = "/api/v1/events/batch"
BATCH_PATH_RE = re.compile(re.escape(BATCH_PATH))  # its own body cap, STREETWATCH_BATCH_MAX_BYTES (api/main.py)
BATCH_BODY = {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [EVENTS_PART],
    "properties": {
        EVENTS_PART: {"type": "string", "description": "a JSON array of events, each as the single route's `event`"},
        "frame.0": {"type": "string", "format": "binary",
                    "description": "event 0's frame; likewise frame.N, annotated.N, crop.N for event N"},
    }}}}}


@router.post(
    "/batch",
    dependencies=[Depends(EDGE)],
    openapi_extra={"requestBody": BATCH_BODY},
    responses={
        400: {"description": "Not a readable multipart body, or more parts than a batch can have"},
        401: {"description": "Missing or unknown API key"},
        403: {"description": "The key's role may not post events (edge or admin keys may)"},
        413: {"description": "The body is larger than STREETWATCH_BATCH_MAX_BYTES"},
        422: {"description": "The batch itself is malformed (the `loc` names the part): no `events` array, more "
                             "than STREETWATCH_BATCH_MAX_EVENTS events, a part of no event or sent twice"},
    },
)
async def post_event_batch(request: Request, session: SessionDep, store: StoreDep, settings: SettingsDep,
                           who: Annotated[Principal, Depends(EDGE)]) -> BatchAccepted:
    """Receive many events at once (an outbox's backlog), as `multipart/form-data`: an `events`
    part (a JSON array, each item as the single route's `event`) and each event's images as
    parts `frame.N` (required), `annotated.N`, `crop.N`, N its index in the array.

    Each event is ingested on its own, exactly as `POST /api/v1/events` would (its event_id is
    the idempotency key), and its result carries the status that route would have answered
    (201, 200 replay, 403, 409, 413, 422 with the reason, 503 retry later): one refused event
    does not fail the others. After a 503 the later events are not tried (503 each).
    """
    form = await request.form(max_files=len(EDGE_KINDS) * settings.batch_max_events,
                              max_fields=settings.batch_max_events + 1)
    try:
        items, parts = split_batch(form, settings.batch_max_events)
        # One hand-off to a thread for the whole batch: checks, S3 and SQL of every event.
        return await run_in_threadpool(ingest_batch, session, store, settings, who, items, parts)
    finally:
        await form.close()

