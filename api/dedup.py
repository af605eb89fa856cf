"""One order per real issue: which existing order a new sighting (camera event or citizen
report) belongs to.

Rules, in order, for the sighting's issue type:
1. an open order of the same camera whose box overlaps (IoU ≥ the type's `dedup_iou`);
2. an open order from another camera or a citizen within the type's `dedup_radius_m`;
3. a resolved order of the same camera still waiting for its camera check → the fix did not
   hold: that order is reopened;
4. an order of the same camera rejected as a false alarm within the cooldown → the sighting
   is filed with it (reviewers are not asked twice about the same parked van);
5. an order resolved or closed within the cooldown (same rules as 1–2) → a new order,
   linked to it as a recurrence;
otherwise a new order.

Callers hold the per-issue-type lock (see api/events.py) while deciding and writing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session, col, select

from api.geometry import best_match
from api.location import Box, box_ground_point, distance_m, pixel_to_latlon
from api.models import OPEN_STATES, as_utc, Camera, Order, OrderState
from api.schemas import IssueType
from api.settings import IssuePolicy

METRES_PER_DEGREE_LAT = 111_320.0


class Match(StrEnum):
    join = "join"  # rules 1–2
    reopen = "reopen"  # rule 3
    rejected = "rejected"  # rule 4
    recurrence = "recurrence"  # rule 5
    new = "new"


@dataclass
class Sighting:
    issue_type: IssueType
    seen_at: datetime
    camera: Camera | None = None
    box: Box | None = None
    lat: float | None = None
    lon: float | None = None


def locate(camera: Camera, box: Box) -> tuple[float | None, float | None]:
    """Where a camera's box is on the ground: mapped through the camera's ground points if it
    has them, else the camera's own position (coarse: a camera sees a stretch of street)."""
    if camera.ground_points:
        return pixel_to_latlon(camera.ground_points, *box_ground_point(box))
    return camera.lat, camera.lon


def find(session: Session, policy: IssuePolicy, s: Sighting) -> tuple[Match, Order | None]:
    open_orders = _candidates(session, s, list(OPEN_STATES))
    order = _match(s, open_orders, policy)
    if order is not None:
        return Match.join, order
    since = s.seen_at - timedelta(hours=policy.recurrence_cooldown_hours)
    recent = [o for o in _candidates(session, s, [OrderState.resolved, OrderState.closed, OrderState.rejected])
              if as_utc(o.resolved_at or o.closed_at or o.updated_at) >= as_utc(since)]
    if s.camera is not None and s.box is not None:
        same_camera = [(o, o.box) for o in recent if o.camera_id == s.camera.id and o.box is not None]
        hit = best_match(s.box, same_camera, policy.dedup_iou)
        if hit is not None and hit.state == OrderState.resolved and hit.verified_at is None:
            return Match.reopen, hit
        if hit is not None and hit.state == OrderState.rejected:
            return Match.rejected, hit
    done = [o for o in recent if o.state != OrderState.rejected]
    previous = _match(s, done, policy)
    return (Match.recurrence, previous) if previous is not None else (Match.new, None)


def _candidates(session: Session, s: Sighting, states: list[OrderState]) -> list[Order]:
    query = select(Order).where(Order.issue_type == s.issue_type, col(Order.state).in_(states))
    near = []
    if s.lat is not None and s.lon is not None:
        # A bounding box in SQL first, so a city with thousands of open orders stays cheap.
        dlat = 5000 / METRES_PER_DEGREE_LAT
        dlon = dlat / max(0.01, math.cos(math.radians(s.lat)))
        near.append((col(Order.lat).between(s.lat - dlat, s.lat + dlat))
                    & (col(Order.lon).between(s.lon - dlon, s.lon + dlon)))
    if s.camera is not None:
        near.append(Order.camera_id == s.camera.id)
    if not near:
        return []
    condition = near[0] if len(near) == 1 else near[0] | near[1]
    return list(session.exec(query.where(condition).order_by(col(Order.id))).all())


def _match(s: Sighting, orders: list[Order], policy: IssuePolicy) -> Order | None:
    if s.camera is not None and s.box is not None:
        same = [(o, o.box) for o in orders if o.camera_id == s.camera.id and o.box is not None]
        hit = best_match(s.box, same, policy.dedup_iou)
        if hit is not None:
            return hit
    if s.lat is None or s.lon is None:
        return None
    # Another camera's (or a citizen's) order: pixel boxes cannot be compared, distance can.
    # Orders of the sighting's own camera are left to the box test above, which is sharper.
    others = [o for o in orders if o.lat is not None and o.lon is not None
              and (s.camera is None or o.camera_id != s.camera.id)]
    scored = [(distance_m(s.lat, s.lon, o.lat, o.lon), o.id or 0, o) for o in others]  # type: ignore[arg-type]
    scored = [t for t in scored if t[0] <= policy.dedup_radius_m]
    return min(scored, key=lambda t: (t[0], t[1]))[2] if scored else None

