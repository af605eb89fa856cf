"""The single event route's multipart form, read by hand.

FastAPI's Form/File/Header parameters cost ~0.5 ms of CPU per request on the event route
(per-parameter validation through its dependency solver, 52 calls of request_params_to_args
per post in a profile), a tenth of what the API spent per event. This reads the same form
(Starlette parses it once) and refuses what FastAPI refused, with the same `loc`s.
"""

from __future__ import annotations

from typing import Any

from fastapi.exceptions import RequestValidationError
from starlette.datastructures import FormData, UploadFile

from api.images import TooLarge
from api.schemas import EvidenceKind

EVENT_PART = "event"
IMAGE_PARTS = (EvidenceKind.frame, EvidenceKind.annotated, EvidenceKind.crop)
DECLARED = frozenset({EVENT_PART, *(kind.value for kind in IMAGE_PARTS)})


def _error(kind: str, name: str, msg: str) -> dict[str, Any]:
    return {"type": kind, "loc": ("body", name), "msg": msg}


def event_parts(form: FormData) -> tuple[str, dict[EvidenceKind, UploadFile]]:
    """The event's JSON text and its image parts. RequestValidationError, naming the part,
    for an unknown part or one sent twice, a missing `event` or `frame`, a text where a file
    belongs or a file where the event's text belongs."""
    seen: set[str] = set()
    for name, _ in form.multi_items():
        if name not in DECLARED:
            raise RequestValidationError([_error("value_error", name,
                                                 f"unknown part; this call takes {', '.join(sorted(DECLARED))}")])
        if name in seen:
            raise RequestValidationError([_error("value_error", name, "sent more than once; send each part once")])
        seen.add(name)
    errors = []
    event = form.get(EVENT_PART)
    if event is None:
        errors.append({**_error("missing", EVENT_PART, "Field required"), "input": None})
    elif not isinstance(event, str):
        errors.append(_error("string_type", EVENT_PART, "Input should be a valid string"))
    images: dict[EvidenceKind, UploadFile] = {}
    for kind in IMAGE_PARTS:
        part = form.get(kind.value)
        if part is None:
            if kind == EvidenceKind.frame:
                errors.append({**_error("missing", kind.value, "Field required"), "input": None})
        elif not isinstance(part, UploadFile):
            errors.append(_error("value_error", kind.value, "Expected UploadFile, received: <class 'str'>"))
        else:
            images[kind] = part
    if errors:
        raise RequestValidationError(errors)
    assert isinstance(event, str)
    return event, images


async def read_part(part: UploadFile, kind: EvidenceKind, limit: int) -> bytes:
    # One byte past the limit is enough to know it is too big, without reading it all.
    data = await part.read(limit + 1)  # (in memory below 1 MB; from a temporary file in a thread above)
    if len(data) > limit:
        raise TooLarge(kind.value, limit)
    return data


def _file(description: str, nullable: bool) -> dict[str, Any]:
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    return {**({"anyOf": [binary, {"type": "null"}]} if nullable else binary), "description": description}


def openapi_body(event_description: str, event_example: str) -> dict[str, Any]:
    """The request body as FastAPI documented it from the Form/File parameters."""
    return {"required": True, "content": {"multipart/form-data": {"schema": {
        "title": "Body_post_event_api_v1_events_post", "type": "object", "required": [EVENT_PART, "frame"],
        "properties": {
            EVENT_PART: {"type": "string", "title": "Event", "description": event_description,
                         "examples": [event_example]},
            "frame": {**_file("the full analysed frame, JPEG or PNG (required)", False), "title": "Frame"},
            "annotated": {**_file("the frame with the box and label drawn", True), "title": "Annotated"},
            "crop": {**_file("the box region with some context", True), "title": "Crop"},
        }}}}}


IDEMPOTENCY_HEADER = {"name": "idempotency-key", "in": "header", "required": False,
                      "description": "if sent, must equal event.event_id",
                      "schema": {"anyOf": [{"type": "string"}, {"type": "null"}], "title": "Idempotency-Key",
                                 "description": "if sent, must equal event.event_id"}}
