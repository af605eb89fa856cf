"""Reading the fleet: boxes, cameras with their health, a camera's state history; and an
admin releasing a camera from its box."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import case, delete, func, update
from sqlmodel import Session, col, select

from api.box_binding import forget_owners
from api.db import begin_write
from api.fleet_alerts import is_silent
from api.fleet_models import CameraSnapshot, CameraStateChange, CameraStatus, EdgeBox
from api.fleet_schemas import BoxPublic, CameraHealthPublic, CameraHealthState, ModelInfo, StateChangePublic
from api.models import Camera, as_utc, utcnow
from api.problems import NotFound


def _utc(ts: datetime | None) -> datetime | None:
    return as_utc(ts) if ts is not None else None


def list_boxes(session: Session, now: datetime | None = None) -> list[BoxPublic]:
    now = now or utcnow()
    counts = {box_id: (n, streaming) for box_id, n, streaming in session.exec(
        select(CameraStatus.box_id, func.count(),
               func.sum(case((CameraStatus.state == CameraHealthState.streaming, 1), else_=0)))
        .group_by(col(CameraStatus.box_id))).all()}
    boxes = session.exec(select(EdgeBox).order_by(col(EdgeBox.id))).all()
    return [BoxPublic(
        id=b.id, online=not is_silent(b.last_heartbeat_at, b.heartbeat_interval_s, now),
        last_heartbeat_at=_utc(b.last_heartbeat_at), heartbeat_interval_s=b.heartbeat_interval_s,
        offline_since=_utc(b.offline_since), software_version=b.software_version,
        model=ModelInfo(name=b.model_name, version=b.model_version or "?", sha256=b.model_sha256)
        if b.model_name else None,
        model_error=b.model_error, outbox_depth=b.outbox_depth,
        cameras=counts.get(b.id, (0, 0))[0], cameras_streaming=int(counts.get(b.id, (0, 0))[1] or 0),
    ) for b in boxes]


def list_cameras(session: Session, grid_id: str | None = None, state: CameraHealthState | None = None,
                 box_id: str | None = None, alerting: bool | None = None, limit: int = 500,
                 offset: int = 0) -> list[CameraHealthPublic]:
    query = (select(Camera, CameraStatus, EdgeBox.live, EdgeBox.last_heartbeat_at, CameraSnapshot.uploaded_at)
             .join(CameraStatus, col(CameraStatus.camera_id) == col(Camera.id), isouter=True)
             .join(EdgeBox, col(EdgeBox.id) == col(CameraStatus.box_id), isouter=True)
             .join(CameraSnapshot, col(CameraSnapshot.camera_id) == col(Camera.id), isouter=True))
    if grid_id is not None:
        query = query.where(Camera.grid_id == grid_id)
    if state is not None:
        query = query.where(CameraStatus.state == state)
    if box_id is not None:
        query = query.where(CameraStatus.box_id == box_id)
    if alerting is not None:
        is_set = col(CameraStatus.offline_alert_at).is_not(None)
        query = query.where(is_set if alerting else ~is_set)
    rows = session.exec(query.order_by(col(Camera.name)).offset(offset).limit(limit)).all()
    out = []
    for camera, status, live, heard_at, snapshot_at in rows:
        figures = (live or {}).get(camera.name, {}) if status is not None else {}
        last_frame = figures.get("last_frame_at")
        out.append(CameraHealthPublic(
            name=camera.name, box_id=status.box_id if status else None, grid_id=camera.grid_id, lat=camera.lat,
            lon=camera.lon, state=status.state if status else None,
            state_since=_utc(status.state_since) if status else None,
            last_frame_at=datetime.fromisoformat(last_frame) if last_frame else None,
            fps=figures.get("fps"), damaged_packets=figures.get("damaged_packets"),
            last_seen=_utc(heard_at) if figures else None, last_event_at=as_utc(camera.last_seen),
            offline_alert_since=_utc(status.offline_alert_at) if status else None, snapshot_at=_utc(snapshot_at)))
    return out


def camera_history(session: Session, name: str, limit: int = 100) -> list[StateChangePublic]:
    camera_id = session.exec(select(Camera.id).where(Camera.name == name)).first()
    if camera_id is None:
        raise NotFound(f"camera {name!r} not found")
    rows = session.exec(select(CameraStateChange).where(CameraStateChange.camera_id == camera_id)
                        .order_by(col(CameraStateChange.at).desc(), col(CameraStateChange.id).desc())
                        .limit(limit)).all()
    return [StateChangePublic(camera=name, box_id=r.box_id, from_state=r.from_state, to_state=r.to_state,
                              at=as_utc(r.at)) for r in rows]


def release_camera(session: Session, box_id: str, name: str) -> None:
    """Let another box declare the camera (it moved, or its box was replaced). Its history stays.
    The box's next heartbeat takes the full path (api/heartbeats.py: its digest is cleared
    first, its row locked before the camera's as a heartbeat locks them) and declares the
    camera anew if the box still has it."""
    begin_write(session)
    session.execute(update(EdgeBox).where(col(EdgeBox.id) == box_id).values(states_digest=None))
    camera_id = session.exec(select(Camera.id).join(CameraStatus, col(CameraStatus.camera_id) == col(Camera.id))
                             .where(Camera.name == name, CameraStatus.box_id == box_id)).first()
    if camera_id is None:
        raise NotFound(f"camera {name!r} is not held by box {box_id!r}")
    session.execute(delete(CameraStatus).where(col(CameraStatus.camera_id) == camera_id))
    session.commit()
    forget_owners()
