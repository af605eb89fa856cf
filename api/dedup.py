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

A sighting made before the order of rule 3 or 5 was resolved (an edge's outbox delivering
late, after the uplink came back) says nothing about the fix: it is filed with that order,
which stays as it is. Boxes from frames of another size are scaled before they are compared.

Callers hold the sighting's dedup locks (api/dedup_locks.py) while deciding and writing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from api.geometry import best_match, scale_box
from api.driver_pipeline import Step, run_together
from api.ingest_sql import candidate_query_raw
from api.location import Box, bounding_box, box_ground_point, distance_m, pixel_to_latlon
from api.models import DONE_STATES, OPEN_STATES, OrderState, as_utc
from api.schemas import IssueType
from api.settings import IssuePolicy

METRES_PER_DEGREE_LAT = 111_320.0


class Match(StrEnum):
    join = "join"  # rules 1–2
    reopen = "reopen"  # rule 3
    rejected = "rejected"  # rule 4
    recurrence = "recurrence"  # rule 5
    late = "late"  # rules 3, 5 for a sighting from before the fix: filed with the done order
    new = "new"


@dataclass(frozen=True, slots=True)
class CameraInfo:
    """What dedup and dispatch need of a camera (read by one upsert, no ORM object)."""

    id: int
    name: str
    lat: float | None = None
    lon: float | None = None
    grid_id: str | None = None
    ground_points: list[list[float]] | None = None


@dataclass
class Sighting:
    issue_type: IssueType
    seen_at: datetime
    camera: CameraInfo | None = None
    box: Box | None = None
    lat: float | None = None
    lon: float | None = None
    frame_size: tuple[int, int] | None = None  # (w, h) of the frame `box` is in


@dataclass(frozen=True, slots=True)
class Candidate:
    """The columns of an order that the rules read: plain tuples from one SELECT, because
    building ORM objects for every order near a busy camera was most of ingest's CPU."""

    id: int
    camera_id: int | None
    state: OrderState
    box: Box | None
    frame_size: tuple[int, int] | None
    lat: float | None
    lon: float | None
    verified_at: datetime | None
    first_seen: datetime
    last_seen: datetime
    cleared_by_camera: bool
    done_at: datetime | None  # resolved (else closed, else last changed): for done orders


def locate(camera: CameraInfo, box: Box) -> tuple[float | None, float | None]:
    """Where a camera's box is on the ground: mapped through the camera's ground points if it
    has them, else (or if the box stands at the road's horizon, where the mapping ends) the
    camera's own position (coarse: a camera sees a stretch of street)."""
    if camera.ground_points:
        mapped = pixel_to_latlon(camera.ground_points, *box_ground_point(box))
        if mapped is not None:
            return mapped
    return camera.lat, camera.lon


def find(session: Session, policy: IssuePolicy, s: Sighting, lock: Step | None = None) -> tuple[Match, Candidate | None]:
    """The rule that applies and its order. `lock`: the sighting's dedup locks
    (api/dedup_locks.py), taken first, in the same round trip as the candidates' query."""
    since = as_utc(s.seen_at - timedelta(hours=policy.recurrence_cooldown_hours))
    candidates = _candidates(session, s, since, policy.dedup_radius_m, lock)
    order = _match(s, [c for c in candidates if c.state in OPEN_STATES], policy)
    if order is not None:
        return Match.join, order
    recent = [c for c in candidates if c.state in DONE_STATES]  # done since `since`: the query says so
    if s.camera is not None and s.box is not None:
        same_camera = [(c, _box_in_frame_of(c, s)) for c in recent if c.camera_id == s.camera.id and c.box is not None]
        hit = best_match(s.box, same_camera, policy.dedup_iou)
        if hit is not None and hit.state == OrderState.resolved and hit.verified_at is None:
            return (Match.late if _before_fix(s, hit) else Match.reopen), hit
        if hit is not None and hit.state == OrderState.rejected:
            return Match.rejected, hit
    done = [c for c in recent if c.state != OrderState.rejected]
    previous = _match(s, done, policy)
    if previous is None:
        return Match.new, None
    return (Match.late if _before_fix(s, previous) else Match.recurrence), previous


def _before_fix(s: Sighting, done: Candidate) -> bool:
    return done.done_at is not None and as_utc(s.seen_at) <= done.done_at


def _box_in_frame_of(order: Candidate, s: Sighting) -> Box:
    """The order's box in the pixels of the sighting's frame (as it is if either size is unknown)."""
    assert order.box is not None
    if order.frame_size is None or s.frame_size is None:
        return order.box
    return scale_box(order.box, order.frame_size, s.frame_size)


def _candidates(session: Session, s: Sighting, since: datetime, radius_m: float,
                lock: Step | None) -> list[Candidate]:
    """Open orders of the type near the sighting (or of its camera), and those done since
    the cooldown began, oldest first, in one query."""
    lat, lon, camera = s.lat, s.lon, s.camera
    has_place = lat is not None and lon is not None
    first = [lock] if lock is not None else []
    if not has_place and camera is None:
        run_together(session.connection(), first)
        return []
    params: dict[str, object] = {"issue_type": s.issue_type, "since": since}
    if lat is not None and lon is not None:
        # The box of the type's radius in SQL first, so only orders that can match come back:
        # a city's other open orders nearby cost row decoding on every event otherwise.
        lat_lo, lat_hi, lon_lo, lon_hi = bounding_box(lat, lon, radius_m)
        params.update(lat_lo=lat_lo, lat_hi=lat_hi, lon_lo=lon_lo, lon_hi=lon_hi)
    if camera is not None:
        params["camera_id"] = camera.id
    query = candidate_query_raw(has_place, camera is not None)
    rows = run_together(session.connection(), [*first, (query, params)])[-1]
    out = []
    for (id_, camera_id, state, x1, y1, x2, y2, width, height, o_lat, o_lon, verified_at, first_seen, last_seen,
         cleared, done_at) in rows:
        box = (x1, y1, x2, y2) if None not in (x1, y1, x2, y2) else None
        size = (width, height) if width and height else None
        out.append(Candidate(id_, camera_id, OrderState(state), box, size, o_lat, o_lon, verified_at,
                             as_utc(first_seen), as_utc(last_seen), bool(cleared),
                             as_utc(done_at) if done_at is not None else None))
    return out


def _match(s: Sighting, orders: list[Candidate], policy: IssuePolicy) -> Candidate | None:
    if s.camera is not None and s.box is not None:
        same = [(o, _box_in_frame_of(o, s)) for o in orders if o.camera_id == s.camera.id and o.box is not None]
        hit = best_match(s.box, same, policy.dedup_iou)
        if hit is not None:
            return hit
    if s.lat is None or s.lon is None:
        return None
    # Another camera's (or a citizen's) order: pixel boxes cannot be compared, distance can.
    # Orders of the sighting's own camera are left to the box test above, which is sharper.
    others = [o for o in orders if o.lat is not None and o.lon is not None
              and (s.camera is None or o.camera_id != s.camera.id)]
    scored = [(distance_m(s.lat, s.lon, o.lat, o.lon), o.id, o) for o in others]  # type: ignore[arg-type]
    scored = [t for t in scored if t[0] <= policy.dedup_radius_m]
    return min(scored, key=lambda t: (t[0], t[1]))[2] if scored else None
