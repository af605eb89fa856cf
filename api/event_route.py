"""A box's single event answered before the general middleware stack and FastAPI's router.

Around its own work (the JPEG check, the S3 put, the SQL) an event cost ~2.5 ms of API CPU
in the server: the key check, the body cap, the NUL guard, the router, FastAPI's dependencies,
python-multipart's parse of a 100 KB body and the response's validation. This layer takes
only the plain case, as api/heartbeat_route.py does for heartbeats: a remembered key that may
post events, a declared length within the caps, a well-formed multipart body of the parts the
route takes (split with two C scans, see `split_form`), an event that validates and whose
clock is sane, no Idempotency-Key other than the event's id. It then runs the route's own
camera check and `ingest_event` in one thread hand-off and answers as the route would.

Anything else goes down the stack unchanged (the body read here is replayed), so every
refusal (401, 403 for a role, 413, 422 naming the part or field) is the route's own. A camera
of another box (api/box_binding.py) and whatever `ingest_event` raises are answered by the
app's exception handlers, as FastAPI would answer them.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from api.ahead_of_stack import answer_in_thread, content_length, header
from api.auth import Principal, _given_key, known_principal
from api.box_binding import _UNKNOWN, _cached_owner, _judge, owner_of
from api.event_checks import check_clock, parse_event
from api.event_form import EVENT_PART, IMAGE_PARTS
from api.events import ingest_event
from api.evidence_store import EvidenceStore
from api.key_first import _key_headers
from api.models import Role
from api.nul_guard import _read_body, _replay
from api.schemas import EventIn, EvidenceKind
from api.settings import Settings

PATH = "/api/v1/events"
# Only the plain form of the header; a quoted boundary, a charset or anything else: the stack.
CONTENT_TYPE = re.compile(rb"multipart/form-data; ?boundary=([0-9A-Za-z'()+_,\-./:=?]{1,70})", re.IGNORECASE)
DISPOSITION = re.compile(rb'form-data; name="([a-z]{1,9})"(?:; filename="([^"\\\r\n]{1,255})")?')
IMAGE_NAMES = {kind.value.encode(): kind for kind in IMAGE_PARTS}
EVENT_MAX_BYTES = 64 * 1024  # a real event is < 1 KB; starlette's own cap for a text part is 1 MiB
FORM_SLACK_BYTES = 64 * 1024  # framing; the stack's body cap allows 1 MiB (api/main.py)


class EventFirst:
    def __init__(self, app: ASGIApp, api: FastAPI):
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST" \
                or scope.get("root_path") or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        settings: Settings = self.api.state.settings
        who = _caller(settings, headers)
        length = content_length(headers)
        boundary = CONTENT_TYPE.fullmatch(header(headers, b"content-type"))
        if who is None or length is None or boundary is None \
                or length > 3 * settings.max_upload_bytes + FORM_SLACK_BYTES:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        parts = split_form(body, boundary.group(1)) if len(body) == length else None
        event = _plain_event(parts, settings, _idempotency_key(headers)) if parts is not None else None
        if event is None:
            await self.app(scope, _replay(body, receive), send)
            return
        assert parts is not None
        # In the route's order (frame, annotated, crop), whatever the body's.
        images = {kind: parts[name][1] for name, kind in IMAGE_NAMES.items() if name in parts}
        state = self.api.state
        await answer_in_thread(self.api, scope, receive, send, body, _ingest, state.engine, state.store, settings,
                               who, event, images)


def _caller(settings: Settings, headers: list[tuple[bytes, bytes]]) -> Principal | None:
    """The remembered caller, if its role may post events (the route's `require(Role.edge)`)."""
    try:
        who = known_principal(settings.api_key, _given_key(*_key_headers(headers)))
    except HTTPException:  # no key: the route's 401
        return None
    return who if who is not None and who.role in (Role.edge, Role.admin) else None


def split_form(body: bytes, boundary: bytes) -> dict[bytes, tuple[bool, bytes]] | None:
    """The parts of a multipart body as {name: (sent as a file, bytes)}, when the body is
    exactly what an edge sends: each part once, of a name the route takes, with only a
    Content-Disposition and (for a file) a Content-Type header. None for anything else, which
    the stack's parser then reads and, where it must, refuses with the part's name."""
    delimiter = b"--" + boundary
    first = delimiter + b"\r\n"
    closing = b"\r\n" + delimiter + b"--"
    end = body.rfind(closing)
    if not body.startswith(first) or end < 0 or body[end + len(closing):] not in (b"", b"\r\n"):
        return None
    chunks = body[len(first):end].split(b"\r\n" + first)
    # The delimiter anywhere else (inside a part, or followed by other than CRLF) is a body
    # the stack's parser may read otherwise: left to it.
    if body.count(b"\r\n" + delimiter) != len(chunks):
        return None
    parts: dict[bytes, tuple[bool, bytes]] = {}
    for chunk in chunks:
        head, sep, data = chunk.partition(b"\r\n\r\n")
        if not sep:
            return None
        disposition = None
        typed = False
        for line in head.split(b"\r\n"):
            name, colon, value = line.partition(b":")
            name, value = name.lower(), value.strip()
            if not colon or (name == b"content-disposition" and disposition is not None):
                return None
            if name == b"content-disposition":
                disposition = DISPOSITION.fullmatch(value)
                if disposition is None:
                    return None
            elif name == b"content-type" and not typed and value:
                typed = True
            else:
                return None
        if disposition is None:
            return None
        part, is_file = disposition.group(1), disposition.group(2) is not None
        if part in parts or not (part == b"event" and not is_file and not typed
                                 or part in IMAGE_NAMES and is_file):
            return None
        parts[part] = (is_file, data)
    return parts if b"event" in parts and b"frame" in parts else None


def _idempotency_key(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"idempotency-key":
            return value.decode("latin-1")
    return None


def _plain_event(parts: dict[bytes, tuple[bool, bytes]], settings: Settings,
                 idempotency_key: str | None) -> EventIn | None:
    """The event, when the route would refuse nothing before its camera check; else None."""
    raw = parts[EVENT_PART.encode()][1]
    if len(raw) > EVENT_MAX_BYTES or any(len(data) > settings.max_upload_bytes for _, data in parts.values()):
        return None
    try:
        event = parse_event(raw.decode("utf-8"))
        check_clock(event)
    except (UnicodeDecodeError, RequestValidationError):
        return None
    if idempotency_key is not None and idempotency_key.strip().lower() != str(event.event_id):
        return None
    return event


def _ingest(engine: Any, store: EvidenceStore, settings: Settings, who: Principal, event: EventIn,
            images: dict[EvidenceKind, bytes]) -> tuple[bytes, int]:
    with Session(engine) as session:
        if who.role == Role.edge:  # the route's ensure_camera, in this hand-off
            camera = event.camera.name
            owner = _cached_owner(camera)
            _judge(who, camera, owner_of(session, camera) if owner is _UNKNOWN else owner)  # type: ignore[arg-type]
        result = ingest_event(session, store, settings, event, images)
    return result.model_dump_json().encode(), 200 if result.replay else 201
