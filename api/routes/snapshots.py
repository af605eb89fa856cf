"""Each camera's latest privacy-blurred frame: its box uploads it, reviewers look at it (and
admins draw zones over it on the review page)."""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import Principal, require
from api.box_binding import ensure_camera
from api.camera_snapshots import (JPEG, CameraSnapshotPublic, check_media_type, put_snapshot, snapshot_bytes,
                                  snapshot_row)
from api.deps import SessionDep, SettingsDep, StoreDep
from api.fleet_schemas import NAME_PATTERN
from api.images import TooLarge
from api.models import Role

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Edge = Annotated[Principal, Depends(require(Role.edge))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
CameraPath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]


@router.put("/cameras/{name}/snapshot", responses={
    403: {"description": "The key does not speak for the box holding this camera; nothing changed"},
    404: {"description": "No such camera"},
    413: {"description": "Larger than STREETWATCH_MAX_UPLOAD_BYTES"},
    415: {"description": "Not sent as image/jpeg, or not a JPEG"},
    422: {"description": "A JPEG that does not decode; the previous snapshot stays"}},
    openapi_extra={"requestBody": {"content": {JPEG: {"schema": {"type": "string", "format": "binary"}}},
                                   "required": True}})
async def put_camera_snapshot(name: CameraPath, request: Request, session: SessionDep, store: StoreDep,
                              settings: SettingsDep, who: Edge) -> CameraSnapshotPublic:
    """The camera's box sends a recent privacy-blurred frame (raw JPEG body, every
    `api.snapshot_s`); it replaces the previous one."""
    await ensure_camera(session, who, name)  # before the body is read: 403 costs nothing
    check_media_type(request.headers.get("content-type"))
    limit, body = settings.max_upload_bytes, bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge("body", limit)
    return await run_in_threadpool(put_snapshot, session, store, who, name, bytes(body), limit)


@router.get("/cameras/{name}/snapshot", response_class=Response, responses={
    200: {"content": {JPEG: {"schema": {"type": "string", "format": "binary"}}},
          "description": "The JPEG, with ETag (its sha256) and Last-Modified (its upload)"},
    304: {"description": "Unchanged since the ETag sent in If-None-Match"},
    404: {"description": "No such camera, or no snapshot yet"}})
def get_camera_snapshot(name: CameraPath, session: SessionDep, store: StoreDep, _: Reviewer,
                        if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The camera's latest privacy-blurred frame (faces and plates blurred on its box)."""
    row = snapshot_row(session, name)
    headers = {"ETag": f'"{row.sha256}"', "Last-Modified": format_datetime(row.uploaded_at, usegmt=True),
               "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
    if if_none_match is not None and headers["ETag"] in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(snapshot_bytes(store, session, name), media_type=JPEG, headers=headers)
