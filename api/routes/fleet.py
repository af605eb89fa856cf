"""The fleet: edge boxes' heartbeats, boxes and cameras with their health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from api.auth import Principal, require
from api.deps import SessionDep
from api.fleet_schemas import (NAME_PATTERN, BoxPublic, CameraHealthPublic, CameraHealthState, HeartbeatAccepted,
                               HeartbeatIn, StateChangePublic)
from api.fleet_views import camera_history, list_boxes, list_cameras, release_camera
from api.heartbeats import record_heartbeat
from api.models import Role
from api.zone_schemas import BoxConfig, CameraZonesIn, CameraZonesPublic
from api.zones import box_config, delete_zones, get_zones, put_zones

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


@router.get("/boxes/{box_id}/config", responses={
    304: {"description": "Unchanged since the ETag sent in If-None-Match"},
    403: {"description": "The key does not speak for this box"}})
def get_box_config(box_id: BoxIdPath, session: SessionDep, who: Edge, response: Response,
                   if_none_match: Annotated[str | None, Header()] = None) -> BoxConfig:
    """The central zones and masks of the box's cameras, with an ETag: the box polls with
    If-None-Match and applies a change without restarting (streams/remote_config.py)."""
    config = box_config(session, who, box_id)
    etag = f'"{config.etag}"'
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers={"ETag": etag})  # type: ignore[return-value]
    response.headers["ETag"] = etag
    return config


@router.put("/cameras/{name}/zones", responses={404: {"description": "No such camera"},
                                               422: {"description": "A polygon that does not close, self-intersects "
                                                                    "or lies outside the frame; `loc` names it"}})
def put_camera_zones(name: CameraPath, body: CameraZonesIn, session: SessionDep, who: Admin) -> CameraZonesPublic:
    """Set a camera's zones and masks (pixel polygons on its frame_width × frame_height frame):
    from now on they replace those of its box's YAML; the box applies them at its next poll."""
    return put_zones(session, who, name, body)


@router.get("/cameras/{name}/zones", responses={404: {"description": "No such camera, or no central zones"}})
def get_camera_zones(name: CameraPath, session: SessionDep, _: Reviewer) -> CameraZonesPublic:
    return get_zones(session, name)


@router.delete("/cameras/{name}/zones", status_code=204, responses={404: {"description": "No central zones"}})
def delete_camera_zones(name: CameraPath, session: SessionDep, _: Admin) -> None:
    """Drop the central zones: the box goes back to its YAML's at its next poll."""
    delete_zones(session, name)
