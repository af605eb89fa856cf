"""Filing a sighting (a camera event or a citizen report) under the right order.

`api/dedup.py` decides which order; this module applies the decision: join, reopen, file
with a rejected false alarm, or open a new order (linked as a recurrence if it is one).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session

from api.auth import Principal
from api import dedup
from api.dedup import Match, Sighting
from api.dispatch import start_new_order
from api.lifecycle import TransitionInput, move
from api.models import Order, OrderSource, OrderState, Role, as_utc, utcnow
from api.schemas import ModelRef
from api.settings import Settings


@dataclass
class Filed:
    order: Order
    new: bool
    match: Match


def file_sighting(session: Session, settings: Settings, s: Sighting, frame_size: tuple[int, int] | None = None,
                  model: ModelRef | None = None, first_seen=None) -> Filed:
    """Attach the sighting to an order or open one; flushes, does not commit."""
    match, order = dedup.find(session, settings.policy(s.issue_type), s)
    if order is None or match == Match.recurrence:
        new = _new_order(s, frame_size, model, first_seen or s.seen_at,
                         recurrence_of=order.id if order is not None else None)
        session.add(new)
        session.flush()
        start_new_order(session, settings, new, s.camera)
        return Filed(new, True, match)
    if match == Match.reopen:
        origin = Principal(f"camera:{s.camera.name}" if s.camera else "camera", Role.edge)
        move(session, order, OrderState.reopened, origin,
             TransitionInput(note="the camera still sees the issue after it was resolved"), action="camera_check")
    _update_seen(order, s, frame_size, first_seen)
    session.add(order)
    session.flush()
    return Filed(order, False, match)


def _new_order(s: Sighting, frame_size: tuple[int, int] | None, model: ModelRef | None, first_seen,
               recurrence_of: int | None) -> Order:
    x1, y1, x2, y2 = s.box if s.box is not None else (None, None, None, None)
    width, height = frame_size if frame_size is not None else (None, None)
    return Order(issue_type=s.issue_type, source=OrderSource.camera if s.camera is not None else OrderSource.citizen,
                 camera_id=s.camera.id if s.camera is not None else None, x1=x1, y1=y1, x2=x2, y2=y2,
                 frame_width=width, frame_height=height, lat=s.lat, lon=s.lon, first_seen=first_seen,
                 last_seen=s.seen_at, model_name=model.name if model else None,
                 model_version=model.version if model else None, recurrence_of=recurrence_of)


def _update_seen(order: Order, s: Sighting, frame_size: tuple[int, int] | None, first_seen) -> None:
    same_camera = s.camera is not None and order.camera_id == s.camera.id
    if as_utc(s.seen_at) >= as_utc(order.last_seen):
        if same_camera and s.box is not None and frame_size is not None:
            # The newest sighting is the best guess of where the issue is now.
            order.x1, order.y1, order.x2, order.y2 = s.box
            order.frame_width, order.frame_height = frame_size
        order.last_seen = s.seen_at
    if first_seen is not None and as_utc(first_seen) < as_utc(order.first_seen):
        order.first_seen = first_seen
    if same_camera and order.cleared_by_camera:
        order.cleared_by_camera, order.cleared_at = False, None  # seen again after all
    if order.lat is None and s.lat is not None:
        order.lat, order.lon = s.lat, s.lon
    order.event_count += 1
    order.updated_at = utcnow()
