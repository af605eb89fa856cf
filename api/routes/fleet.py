"""The fleet: edge boxes' heartbeats, boxes and cameras with their health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from api.auth import Principal, require
from api.deps import SessionDep
from api.fleet_schemas import (NAME_PATTERN, BoxPublic, CameraHealthPublic, CameraHealthState, HeartbeatAccepted,
                               HeartbeatIn, StateChangePublic)
from api.fleet_views import camera_history, list_boxes, list_cameras, release_camera
from api.heartbeats import record_heartbeat
from api.models import Role

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Edge = Annotated[Principal, Depends(require(Role.edge))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
Admin = Annotated[Principal, Depends(require())]
BoxIdPath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
CameraPath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]


@router.post("/boxes/{box_id}/heartbeat", responses={
    403: {"description": "The key does not speak for this box, or a camera reported belongs to another box; "
                         "nothing changed"},
    422: {"description": "A malformed heartbeat; `loc` names the field"}})
def post_heartbeat(box_id: BoxIdPath, body: HeartbeatIn, session: SessionDep, who: Edge) -> HeartbeatAccepted:
    """An edge box's heartbeat (every 30 s by default): its software and model, and each
    camera's state. The first box to report a camera holds it: from then on only that box's
    key may post the camera's events, camera checks and health."""
    return record_heartbeat(session, who, box_id, body)


@router.get("/boxes")
def get_boxes(session: SessionDep, _: Reviewer) -> list[BoxPublic]:
    """Every box: last heartbeat, online, software and model, outbox depth, cameras streaming."""
    return list_boxes(session)


@router.delete("/boxes/{box_id}/cameras/{name}", status_code=204,
               responses={404: {"description": "The box does not hold this camera"}})
def delete_box_camera(box_id: BoxIdPath, name: CameraPath, session: SessionDep, _: Admin) -> None:
    """Release a camera from its box, so that another box may declare it (moved or replaced)."""
    release_camera(session, box_id, name)


@router.get("/cameras")
def get_cameras(session: SessionDep, _: Reviewer,
                grid_id: Annotated[str | None, Query(max_length=100)] = None,
                state: Annotated[CameraHealthState | None, Query()] = None,
                box_id: Annotated[str | None, Query(max_length=100)] = None,
                alerting: Annotated[bool | None, Query(description="only cameras whose offline alert is on "
                                                                   "(true) or off (false)")] = None,
                limit: Annotated[int, Query(ge=1, le=5000)] = 500,
                offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> list[CameraHealthPublic]:
    """Cameras with their health: state and since when, last frame, analysed frames per second,
    damaged packets, box, grid, and whether their grid's supervisor was told they are blind."""
    return list_cameras(session, grid_id, state, box_id, alerting, limit, offset)


@router.get("/cameras/{name}/states", responses={404: {"description": "No such camera"}})
def get_camera_states(name: CameraPath, session: SessionDep, _: Reviewer,
                      limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[StateChangePublic]:
    """The camera's state changes, newest first."""
    return camera_history(session, name, limit)
