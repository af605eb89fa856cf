from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Header, HTTPException, Response, UploadFile
from pydantic import ValidationError

from api.deps import EngineDep, SettingsDep, StoreDep, require_edge_key
from api.events import BadImage, CheckedImage, check_image, ingest_event
from api.evidence_store import StoreUnavailable
from api.schemas import EventAccepted, EventIn, EvidenceKind

router = APIRouter(prefix="/api/v1/events", tags=["events"])


async def _read_part(part: UploadFile | None, kind: EvidenceKind, limit: int) -> bytes | None:
    if part is None:
        return None
    data = await part.read(limit + 1)
    if len(data) > limit:
        raise HTTPException(413, f"{kind.value}: file larger than {limit} bytes")
    return data


@router.post("", response_model=EventAccepted, status_code=201, dependencies=[Depends(require_edge_key)],
             responses={200: {"model": EventAccepted, "description": "Replay: this event_id was received before"},
                        401: {"description": "Missing or wrong API key"}, 413: {"description": "A file is too large"},
                        422: {"description": "Invalid event JSON or image"}, 503: {"description": "Evidence store down; retry"}})
async def post_event(
    response: Response,
    engine: EngineDep,
    store: StoreDep,
    settings: SettingsDep,
    event: Annotated[str, Form(description="EventIn as a JSON string")],
    frame: Annotated[UploadFile, File(description="full analysed frame (JPEG/PNG)")],
    annotated: Annotated[UploadFile | None, File(description="frame with the box drawn")] = None,
    crop: Annotated[UploadFile | None, File(description="the issue with some context")] = None,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> EventAccepted:
    """Receive one confirmed issue from an edge box. `event_id` is the idempotency key: posting
    the same event again returns the first answer (200, `replay: true`) and stores nothing."""
    try:
        parsed = EventIn.model_validate_json(event)
    except ValidationError as exc:
        raise HTTPException(422, [{**e, "loc": ["event", *e["loc"]]} for e in
                                  exc.errors(include_url=False, include_context=False, include_input=False)])
    if idempotency_key is not None and idempotency_key != str(parsed.event_id):
        raise HTTPException(422, "Idempotency-Key header must equal event.event_id")
    images: list[CheckedImage] = []
    try:
        for kind, part in ((EvidenceKind.frame, frame), (EvidenceKind.annotated, annotated), (EvidenceKind.crop, crop)):
            data = await _read_part(part, kind, settings.max_upload_bytes)
            if data is not None:
                images.append(check_image(kind, data))
    except BadImage as exc:
        raise HTTPException(422, str(exc))
    try:
        result = ingest_event(engine, store, parsed, images, settings.dedup_iou)
    except StoreUnavailable as exc:
        raise HTTPException(503, f"evidence store unavailable, retry later: {exc}", headers={"Retry-After": "5"})
    if result.replay:
        response.status_code = 200
    return result
