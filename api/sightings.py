"""Filing a sighting (a camera event or a citizen report) under the right order.

`api/dedup.py` decides which order; this module applies the decision: join, reopen, file
with a rejected false alarm or (a late sighting) with a done order, or open a new order
(linked as a recurrence if it is one).
Joining, the common case by far, is one UPDATE; the ORM is used for the rare rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session

from api.auth import Principal
from api import dedup, ingest_sql
from api.dedup import Candidate, Match, Sighting
from api.dispatch import start_new_order
from api.driver_pipeline import Step, run_together
from api.lifecycle import TransitionInput, move
from api.models import Order, OrderSource, OrderState, Role, as_utc, utcnow
from api.schemas import ModelRef
from api.settings import Settings


@dataclass
class Filed:
    order_id: int
    new: bool
    match: Match
    # With file_sighting(defer_update=True): the joined order's UPDATE, not yet sent; the
    # caller sends it with its own writes (api/driver_pipeline.py) before it commits.
    deferred: list[Step] = field(default_factory=list)


def file_sighting(session: Session, settings: Settings, s: Sighting, frame_size: tuple[int, int] | None = None,
                  model: ModelRef | None = None, first_seen: datetime | None = None, lock: Step | None = None,
                  defer_update: bool = False) -> Filed:
    """Attach the sighting to an order or open one; flushes, does not commit. `lock`: the
    sighting's dedup locks, taken before dedup reads (api/dedup_locks.py `lock_step`)."""
    match, found = dedup.find(session, settings.policy(s.issue_type), s, lock)
    if found is None or match == Match.recurrence:
        new = _new_order(s, frame_size, model, first_seen or s.seen_at,
                         recurrence_of=found.id if found is not None else None)
        session.add(new)
        session.flush()
        start_new_order(session, settings, new, s.camera)
        assert new.id is not None
        return Filed(new.id, True, match)
    if match == Match.reopen:
        order = session.get(Order, found.id)
        assert order is not None
        origin = Principal(f"camera:{s.camera.name}" if s.camera else "camera", Role.edge)
        move(session, order, OrderState.reopened, origin,
             TransitionInput(note="the camera still sees the issue after it was resolved"), action="camera_check")
        session.flush()
    values = seen_update(found, s, frame_size, first_seen, seen_after_fix=match != Match.late)
    update = (ingest_sql.seen_update_raw(frozenset(values)), {"order_pk": found.id, **{f"set_{k}": v for k, v in values.items()}})
    if defer_update:
        return Filed(found.id, False, match, [update])
    run_together(session.connection(), [update])
    return Filed(found.id, False, match)


def _new_order(s: Sighting, frame_size: tuple[int, int] | None, model: ModelRef | None, first_seen,
               recurrence_of: int | None) -> Order:
    x1, y1, x2, y2 = s.box if s.box is not None else (None, None, None, None)
    width, height = frame_size if frame_size is not None else (None, None)
    return Order(issue_type=s.issue_type, source=OrderSource.camera if s.camera is not None else OrderSource.citizen,
                 camera_id=s.camera.id if s.camera is not None else None, x1=x1, y1=y1, x2=x2, y2=y2,
                 frame_width=width, frame_height=height, lat=s.lat, lon=s.lon, first_seen=first_seen,
                 last_seen=s.seen_at, model_name=model.name if model else None,
                 model_version=model.version if model else None, recurrence_of=recurrence_of)


def seen_update(order: Candidate, s: Sighting, frame_size: tuple[int, int] | None,
                first_seen: datetime | None, seen_after_fix: bool = True) -> dict[str, Any]:
    """The columns a new sighting moves on the order it joins (`event_count` is incremented
    by the statement itself); a late one from before the fix does not undo a camera's
    "cleared"."""
    values: dict[str, Any] = {"updated_at": utcnow()}
    same_camera = s.camera is not None and order.camera_id == s.camera.id
    if as_utc(s.seen_at) >= order.last_seen:
        if same_camera and s.box is not None and frame_size is not None:
            # The newest sighting is the best guess of where the issue is now.
            values.update(x1=s.box[0], y1=s.box[1], x2=s.box[2], y2=s.box[3],
                          frame_width=frame_size[0], frame_height=frame_size[1])
        values["last_seen"] = s.seen_at
    if first_seen is not None and as_utc(first_seen) < order.first_seen:
        values["first_seen"] = first_seen
    if same_camera and order.cleared_by_camera and seen_after_fix:
        values.update(cleared_by_camera=False, cleared_at=None)  # seen again after all
    if order.lat is None and s.lat is not None:
        values.update(lat=s.lat, lon=s.lon)
    return values
