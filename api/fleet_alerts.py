"""Blind cameras are noticed: the sweep's part for the fleet.

A camera that has not streamed for `camera_offline_minutes`, or a box silent for
SILENT_AFTER_HEARTBEATS of its heartbeat intervals, notifies the supervisor of the grid
(through the notifications every other alert uses). A silent box's cameras become `offline`
(a state of the API's, dated from the box's last heartbeat), so the online rate counts the
silence; they get no alert each: their box's alert speaks for them, once per supervisor.
A camera that streams again (or is switched off on purpose) clears its alert and says so.

Like the SLA sweep, every step wins its row with a conditional UPDATE, so two processes
sweeping at once cannot alert twice (api/sweep_lease.py keeps them from trying).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from api.fleet_models import CameraStateChange, CameraStatus, EdgeBox
from api.fleet_schemas import CameraHealthState as S
from api.models import Camera, Grid, Notification, as_utc, utcnow
from api.settings import Settings

log = logging.getLogger("streetwatch.api")

SILENT_AFTER_HEARTBEATS = 3
DEFAULT_HEARTBEAT_S = 30.0
BLIND = (S.reconnecting, S.stalled, S.failed)  # alert on their own; offline is the box's, disabled nobody's
SEEING = (S.streaming, S.disabled)  # an alert of a camera in these is over


def is_silent(last_heartbeat_at: datetime | None, interval_s: float | None, now: datetime) -> bool:
    if last_heartbeat_at is None:
        return True
    return as_utc(last_heartbeat_at) < now - timedelta(seconds=SILENT_AFTER_HEARTBEATS * (interval_s or DEFAULT_HEARTBEAT_S))


def supervisor_of(camera: Camera, grids: list[Grid]) -> tuple[str | None, str | None]:
    """(grid id, supervisor) of a camera: its own grid, else a grid listing it."""
    for grid in grids:
        if grid.id == camera.grid_id or (not camera.grid_id and camera.name in (grid.cameras or [])):
            return grid.id, grid.supervisor
    return camera.grid_id, None


def tell(session: Session, kind: str, message: str, supervisor: str | None, camera: str | None = None,
         box_id: str | None = None) -> None:
    session.add(Notification(kind=kind, message=message, supervisor=supervisor, camera=camera, box_id=box_id))
    log.warning("fleet: %s", message)


def _grids(session: Session) -> list[Grid]:
    return list(session.exec(select(Grid).order_by(col(Grid.id))).all())


def camera_back(session: Session, camera: Camera, state: S, grids: list[Grid] | None = None) -> None:
    grid_id, supervisor = supervisor_of(camera, grids if grids is not None else _grids(session))
    what = "streams again" if state == S.streaming else "was switched off on its box"
    tell(session, "camera_back", f"camera {camera.name} (grid {grid_id or '-'}) {what}", supervisor, camera=camera.name)


def mark_silent_boxes(session: Session, now: datetime) -> int:
    boxes = session.exec(select(EdgeBox.id, EdgeBox.last_heartbeat_at, EdgeBox.heartbeat_interval_s)
                         .where(col(EdgeBox.offline_since).is_(None), col(EdgeBox.last_heartbeat_at).is_not(None))).all()
    silent = 0
    for box_id, last, interval in boxes:
        if not is_silent(last, interval, now):
            continue
        # Won only if no heartbeat came in since the read above.
        won = session.execute(update(EdgeBox).where(col(EdgeBox.id) == box_id, col(EdgeBox.offline_since).is_(None),
                                                    col(EdgeBox.last_heartbeat_at) == last)
                              .values(offline_since=last, offline_alert_at=now,
                                      states_digest=None)).rowcount  # its cameras change below
        if won:
            _cameras_go_offline(session, box_id, as_utc(last), now)
            silent += 1
        session.commit()
    return silent


def _cameras_go_offline(session: Session, box_id: str, since: datetime, now: datetime) -> None:
    grids = _grids(session)
    rows = session.exec(select(Camera, CameraStatus).join(CameraStatus, col(CameraStatus.camera_id) == col(Camera.id))
                        .where(CameraStatus.box_id == box_id).order_by(col(Camera.name))).all()
    blind: dict[str | None, list[str]] = {}
    for camera, status in rows:
        if status.state in (S.offline, S.disabled):
            continue
        session.add(CameraStateChange(camera_id=status.camera_id, box_id=box_id, from_state=status.state,
                                      to_state=S.offline, at=since))
        status.state, status.state_since = S.offline, since
        status.down_since = status.down_since or since
        session.add(status)
        blind.setdefault(supervisor_of(camera, grids)[1], []).append(camera.name)
    minutes = (now - since).total_seconds() / 60
    for supervisor, names in sorted(blind.items(), key=lambda kv: kv[0] or ""):
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        tell(session, "box_offline", f"box {box_id} silent for {minutes:.0f} min: {len(names)} camera(s) unseen "
                                     f"({shown})", supervisor, box_id=box_id)
    if not blind:
        tell(session, "box_offline", f"box {box_id} silent for {minutes:.0f} min", None, box_id=box_id)


def alert_blind_cameras(session: Session, settings: Settings, now: datetime) -> int:
    cutoff = now - timedelta(minutes=settings.camera_offline_minutes)
    ids = session.exec(select(CameraStatus.camera_id).where(col(CameraStatus.state).in_(BLIND),
                                                            col(CameraStatus.offline_alert_at).is_(None),
                                                            col(CameraStatus.down_since) < cutoff)).all()
    alerted = 0
    grids = _grids(session) if ids else []
    for camera_id in ids:
        won = session.execute(update(CameraStatus).where(col(CameraStatus.camera_id) == camera_id,
                                                         col(CameraStatus.offline_alert_at).is_(None),
                                                         col(CameraStatus.state).in_(BLIND))
                              .values(offline_alert_at=now)).rowcount
        if won:
            status, camera = session.get(CameraStatus, camera_id), session.get(Camera, camera_id)
            assert status is not None and camera is not None and status.down_since is not None
            grid_id, supervisor = supervisor_of(camera, grids)
            minutes = (now - as_utc(status.down_since)).total_seconds() / 60
            tell(session, "camera_offline", f"camera {camera.name} (grid {grid_id or '-'}, box {status.box_id}) "
                                            f"not streaming for {minutes:.0f} min: {status.state.value}",
                 supervisor, camera=camera.name, box_id=status.box_id)
            alerted += 1
        session.commit()
    return alerted


def clear_returned_cameras(session: Session) -> int:
    """Alerts of cameras that see again. A heartbeat clears its cameras' alerts itself; this
    catches one that raced an alert being raised."""
    ids = session.exec(select(CameraStatus.camera_id).where(col(CameraStatus.state).in_(SEEING),
                                                            col(CameraStatus.offline_alert_at).is_not(None))).all()
    cleared = 0
    for camera_id in ids:
        won = session.execute(update(CameraStatus).where(col(CameraStatus.camera_id) == camera_id,
                                                         col(CameraStatus.offline_alert_at).is_not(None))
                              .values(offline_alert_at=None)).rowcount
        if won:
            status, camera = session.get(CameraStatus, camera_id), session.get(Camera, camera_id)
            assert status is not None and camera is not None
            camera_back(session, camera, status.state)
            cleared += 1
        session.commit()
    return cleared


def sweep_fleet(session: Session, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    now = now or utcnow()
    counts = {"boxes_silent": mark_silent_boxes(session, now),
              "cameras_blind": alert_blind_cameras(session, settings, now),
              "cameras_back": clear_returned_cameras(session)}
    if any(counts.values()):
        log.info("fleet sweep: %s", counts)
    return counts
