"""A box's heartbeat: the latest state of the box and its cameras, and the changes as history.

Cheap by design (a city's 500 boxes send ~17 a second): one locked read of the box, one read
of its cameras, one UPDATE of the box row (which carries the per-camera figures that change
every time: last frame, frames per second, damaged packets). A camera's own row and a history
row are written only when its state changes, so the database grows with changes, not with
heartbeats. Plain SQLAlchemy Core statements: the ORM's bookkeeping for 40 cameras cost more
than the statements.

A heartbeat in which nothing changed (~98 % of them) has a shorter way: ONE statement,
UNCHANGED_BOX, run on the event loop's own connection (api/heartbeat_loop.py). It updates the
box's row only where the box's `states_digest` is the digest of this heartbeat's (camera,
state) pairs and no offline alert is out; it touches no row otherwise, and the full
record_heartbeat runs. That rests on this invariant:

    edge_box.states_digest, when not NULL, is the digest of the states the box reported in
    a heartbeat that record_heartbeat stored in full, and since then nothing else changed
    a camera_status row's state or box_id of that box (no camera of another box became its).

After a full record the database agrees with the report (every reported camera is the box's,
in its reported state; every other camera of the box is disabled), so a later heartbeat with
the same digest would change no camera row, add no history, insert nothing, and tell nobody
(a box with an alert out is excluded by the WHERE: it is told back by the full path). So
every other writer of camera_status.state or .box_id clears the box's digest in its own
transaction, locking the box's row first as record_heartbeat does (one lock order, no
deadlock on PostgreSQL): the sweep marking a silent box's cameras offline
(api/fleet_alerts.py) and an admin releasing a camera (api/fleet_views.py). Writers of other
columns (a camera's alert time, its placement) need not: the digest covers states only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from api.auth import Principal
from api.box_binding import check_box, remember_owner
from api.db import begin_write
from api.fleet_alerts import camera_back, tell
from api.fleet_models import CameraStateChange, CameraStatus, EdgeBox
from api.fleet_schemas import CameraHealthState as S
from api.fleet_schemas import CameraReport, HeartbeatAccepted, HeartbeatIn
from api.driver_sql import DriverStatement
from api.models import Camera, utcnow
from api.problems import Forbidden

BOXES = EdgeBox.__table__  # type: ignore[attr-defined]
STATUS = CameraStatus.__table__  # type: ignore[attr-defined]
CHANGES = CameraStateChange.__table__  # type: ignore[attr-defined]
CAMERAS = Camera.__table__  # type: ignore[attr-defined]

# Built once: building and cache-keying these three statements cost ~40 SQLAlchemy
# coercions per heartbeat, more than SQLite took to run them.
FIELDS = (CAMERAS.c.id, CAMERAS.c.name, STATUS.c.box_id, STATUS.c.state, STATUS.c.down_since,
          STATUS.c.offline_alert_at)
LOCK_BOX = select(BOXES.c.offline_alert_at).where(BOXES.c.id == bindparam("box")).with_for_update()
OWN_CAMERAS = (select(*FIELDS).select_from(STATUS.join(CAMERAS, CAMERAS.c.id == STATUS.c.camera_id))
               .where(STATUS.c.box_id == bindparam("box")))
# The SET columns come from each execution's parameters (every column but the box's id).
UPDATE_BOX = update(BOXES).where(BOXES.c.id == bindparam("box"))
# A heartbeat in which nothing changed: the same columns, only where the box's digest is this
# heartbeat's and no alert is out (the module's docstring says why that is enough), on the
# driver's cursor (api/driver_sql.py). PostgreSQL skips a box whose row another transaction
# holds (the sweep, a full heartbeat) instead of waiting on the event loop: no row, the full path.
BOX_COLUMNS = ("last_heartbeat_at", "heartbeat_interval_s", "software_version", "model_name", "model_version",
               "model_sha256", "model_error", "outbox_depth", "live", "offline_since", "offline_alert_at")
_SAME = (BOXES.c.id == bindparam("box"), BOXES.c.states_digest == bindparam("digest"),
         BOXES.c.offline_alert_at.is_(None))
UNCHANGED_BOX = {
    "sqlite": DriverStatement(update(BOXES).where(*_SAME), BOX_COLUMNS),  # BEGIN IMMEDIATE holds the file
    "postgresql": DriverStatement(update(BOXES).where(BOXES.c.id == select(BOXES.c.id).where(*_SAME)
                                                      .with_for_update(skip_locked=True).scalar_subquery()),
                                  BOX_COLUMNS),
}


def record_heartbeat(session: Session, who: Principal, box_id: str, beat: HeartbeatIn,
                     now: datetime | None = None) -> HeartbeatAccepted:
    """Store a heartbeat. Forbidden (403, nothing changed) when the caller may not speak as the
    box, or when a camera it reports is held by another box."""
    check_box(who, box_id)
    now = now or utcnow()
    for attempt in range(2):
        try:
            return _record(session, box_id, beat, now)
        except IntegrityError:
            # PostgreSQL: the box's or a camera's first row was inserted by another request
            # since our read; it exists now, so the second pass updates it.
            session.rollback()
            if attempt:
                raise
        except BaseException:
            session.rollback()
            raise
    raise AssertionError("unreachable")


def _record(session: Session, box_id: str, beat: HeartbeatIn, now: datetime) -> HeartbeatAccepted:
    begin_write(session)
    conn = session.connection()
    # Locked: the sweep marking this box silent waits for us, or we for it (api/fleet_alerts.py).
    box = conn.execute(LOCK_BOX, {"box": box_id}).first()
    if box is None:
        conn.execute(insert(BOXES).values(id=box_id, created_at=now, outbox_depth=0, live={}))
    reports = {c.name: c for c in beat.cameras}
    # The box's own cameras through the status table's box index; the others it reports (new
    # ones, or held by another box) by name, only when there are any. One query with
    # `name IN (…) OR box_id = …` made SQLite scan every camera of the city (5 ms at 20,000).
    rows = conn.execute(OWN_CAMERAS, {"box": box_id}).all()
    known = {r.name: r for r in rows}
    if unheld := [n for n in reports if n not in known]:
        known.update((r.name, r) for r in conn.execute(
            select(*FIELDS).select_from(CAMERAS.outerjoin(STATUS, STATUS.c.camera_id == CAMERAS.c.id))
            .where(CAMERAS.c.name.in_(unheld))).all())
    held = sorted(n for n in reports if n in known and known[n].box_id not in (None, box_id))
    if held:
        raise Forbidden(f"camera {held[0]!r} belongs to box {known[held[0]].box_id!r}, not to {box_id!r}; an admin "
                        f"releases it with DELETE /api/v1/boxes/{known[held[0]].box_id}/cameras/{held[0]}")
    changes = 0
    for name, report in reports.items():
        row = known.get(name)
        camera_id = row.id if row is not None else _new_camera(conn, report, now)
        state = S(report.state)
        if row is None or row.box_id is None:
            conn.execute(insert(STATUS).values(camera_id=camera_id, box_id=box_id, state=state, state_since=now,
                                               down_since=None if state == S.streaming else now))
            conn.execute(insert(CHANGES).values(camera_id=camera_id, box_id=box_id, from_state=None, to_state=state,
                                                at=now))
            remember_owner(name, box_id)
            changes += 1
        elif row.state != state:
            _change(session, row, box_id, state, now)
            changes += 1
    for row in rows:
        if row.box_id == box_id and row.name not in reports and row.state != S.disabled:
            # Gone from the box's config: nobody watches it, and nobody should be told it is blind.
            _change(session, row, box_id, S.disabled, now)
            changes += 1
    conn.execute(UPDATE_BOX, {**box_values(box_id, beat, now), "states_digest": states_digest(beat.cameras)})
    if box is not None and box.offline_alert_at is not None:
        tell(session, "box_back", f"box {box_id} is heard from again", None, box_id=box_id)
    session.commit()
    return HeartbeatAccepted(box_id=box_id, cameras=len(reports), changes=changes)


def states_digest(cameras: Iterable[CameraReport]) -> str:
    """Of a heartbeat's (camera, state) pairs, in any order. Names are [A-Za-z0-9_.-] and states
    words, so "name=state" joined by commas reads one way only."""
    pairs = ",".join(sorted(f"{c.name}={c.state}" for c in cameras))
    return hashlib.blake2b(pairs.encode(), digest_size=16).hexdigest()


def box_values(box_id: str, beat: HeartbeatIn, now: datetime) -> dict[str, Any]:
    return dict(
        box=box_id, last_heartbeat_at=now, heartbeat_interval_s=beat.interval_s, software_version=beat.software_version,
        model_name=beat.model.name if beat.model else None, model_version=beat.model.version if beat.model else None,
        model_sha256=beat.model.sha256 if beat.model else None, model_error=beat.model_error,
        outbox_depth=beat.outbox_depth, live={c.name: _live(c) for c in beat.cameras},
        offline_since=None, offline_alert_at=None)


def _new_camera(conn: Any, report: CameraReport, now: datetime) -> int:
    return conn.execute(insert(CAMERAS).values(name=report.name, lat=report.lat, lon=report.lon,
                                               grid_id=report.grid_id, first_seen=now, last_seen=now)
                        .returning(CAMERAS.c.id)).scalar_one()


def _change(session: Session, row: Row, box_id: str, state: S, now: datetime) -> None:
    conn = session.connection()
    down_since = None if state == S.streaming else (row.down_since or now)
    values: dict[str, Any] = {"state": state, "state_since": now, "down_since": down_since}
    alerted = row.offline_alert_at is not None and state in (S.streaming, S.disabled)
    if alerted:
        values["offline_alert_at"] = None
    conn.execute(update(STATUS).where(STATUS.c.camera_id == row.id).values(**values))
    conn.execute(insert(CHANGES).values(camera_id=row.id, box_id=box_id, from_state=row.state, to_state=state, at=now))
    if alerted:
        camera = session.get(Camera, row.id)
        assert camera is not None
        camera_back(session, camera, state)


def _live(report: CameraReport) -> dict[str, Any]:
    return {"last_frame_at": report.last_frame_at.isoformat() if report.last_frame_at else None,
            "fps": round(report.fps, 3), "damaged_packets": report.damaged_packets}
