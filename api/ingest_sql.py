"""The statements of the ingest hot path, each built once with bound parameters.

Building a SQLAlchemy statement and computing its cache key anew for every event cost more
CPU than running it (measured: ~60 % of ingest before this module). These are built on first
use, per shape, and then only executed with a dict of parameters, on the session's
connection, without the ORM.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Insert, Select, Update, bindparam, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from api.driver_sql import DriverStatement
from api.models import DONE_STATES, OPEN_STATES, Camera, Event, Evidence, Order, OrderState

ORDERS = Order.__table__  # type: ignore[attr-defined]
EVENTS = Event.__table__  # type: ignore[attr-defined]
CAMERAS = Camera.__table__  # type: ignore[attr-defined]
CANDIDATE_COLUMNS = ("id", "camera_id", "state", "x1", "y1", "x2", "y2", "frame_width", "frame_height", "lat", "lon",
                     "verified_at", "first_seen", "last_seen", "cleared_by_camera")

INSERT_EVENT: Insert = insert(EVENTS)
EVENT_KEYS = ("event_id", "order_id", "camera_id", "issue_type", "class_name", "confidence", "x1", "y1", "x2", "y2",
              "frame_width", "frame_height", "first_seen", "confirmed_at", "track_id", "model_name", "model_version",
              "lat", "lon", "received_at")
# The event's evidence: its event_id comes from the statement's subquery, not from a parameter.
EVIDENCE_KEYS = ("order_id", "report_id", "audit_id", "kind", "object_key", "content_type", "size", "sha256", "width",
                 "height", "created_at")
# An event's own statements on the driver's cursor (api/driver_sql.py): SQLAlchemy's execution
# cost more CPU than SQLite took to run them. Same SQL, bind casts and conversions as above.
INSERT_EVENT_RAW = DriverStatement(INSERT_EVENT, EVENT_KEYS)
# An event's evidence, its row named by the event's id (parameter `of_event`) rather than by
# a row id read back from INSERT_EVENT: so both go in one round trip (api/driver_pipeline.py).
INSERT_EVENT_EVIDENCE_RAW = DriverStatement(
    insert(Evidence.__table__).values(  # type: ignore[attr-defined]
        event_id=select(EVENTS.c.id).where(EVENTS.c.event_id == bindparam("of_event", type_=EVENTS.c.event_id.type))
        .scalar_subquery()),
    EVIDENCE_KEYS)
FIND_EVENT: Select = select(EVENTS.c.id, EVENTS.c.order_id).where(
    EVENTS.c.event_id == bindparam("event_id", type_=EVENTS.c.event_id.type))
FIRST_EVENT_OF_ORDER: Select = select(func.min(EVENTS.c.id)).where(EVENTS.c.order_id == bindparam("order_id"))


@cache
def candidate_query(has_place: bool, has_camera: bool) -> Select:
    """Orders of an issue type near a place and/or of a camera: open ones, and those done
    (resolved, closed, rejected) since `since`, oldest first; the candidate columns and
    when each was done (`done_at`)."""
    t = ORDERS
    near = []
    if has_place:
        near.append(t.c.lat.between(bindparam("lat_lo"), bindparam("lat_hi"))
                    & t.c.lon.between(bindparam("lon_lo"), bindparam("lon_hi")))
    if has_camera:
        near.append(t.c.camera_id == bindparam("camera_id"))
    done_at = func.coalesce(t.c.resolved_at, t.c.closed_at, t.c.updated_at)
    return (select(*(t.c[name] for name in CANDIDATE_COLUMNS), done_at.label("done_at"))
            .where(t.c.issue_type == bindparam("issue_type", type_=t.c.issue_type.type), or_(*near),
                   or_(t.c.state.in_(_states(OPEN_STATES)),
                       t.c.state.in_(_states(DONE_STATES)) & (done_at >= bindparam("since", type_=t.c.updated_at.type))))
            .order_by(t.c.id))


def _states(states: tuple[OrderState, ...]) -> list:
    # One bound value per state, not an expanding IN: the statement then compiles once for the
    # driver's cursor (candidate_query_raw), with the values carried by the statement itself.
    return [bindparam(f"state_{s.value}", s, type_=ORDERS.c.state.type) for s in states]


@cache
def candidate_query_raw(has_place: bool, has_camera: bool) -> DriverStatement:
    # Datetimes come back as text on SQLite: converted as SQLAlchemy would.
    return DriverStatement(candidate_query(has_place, has_camera), convert_results=True)


@cache
def camera_upsert(dialect: str) -> Insert:
    """Insert a camera or move its last_seen, and its position and grid to what the edge says;
    once an admin has placed the camera (`placed_at`), the edge only fills in what the
    placement left empty. Returns what dedup needs. Parameters: name, lat, lon, grid_id, now."""
    insert_for = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = bindparam("now", type_=CAMERAS.c.last_seen.type)
    stmt = insert_for(CAMERAS).values(name=bindparam("name"), lat=bindparam("lat"), lon=bindparam("lon"),
                                      grid_id=bindparam("grid_id"), first_seen=now, last_seen=now)

    def edge_says(column: str):
        edge, stored = stmt.excluded[column], CAMERAS.c[column]
        return case((CAMERAS.c.placed_at.is_(None), func.coalesce(edge, stored)), else_=func.coalesce(stored, edge))

    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"last_seen": now, "lat": edge_says("lat"), "lon": edge_says("lon"), "grid_id": edge_says("grid_id")})
    return stmt.returning(CAMERAS.c.id, CAMERAS.c.lat, CAMERAS.c.lon, CAMERAS.c.grid_id, CAMERAS.c.ground_points)


@cache
def seen_update(columns: frozenset[str]) -> Update:
    """UPDATE of the columns a joining sighting moves (parameters: `set_<column>` for each,
    and `order_pk`); the event count is incremented in SQL, so no +1 is ever lost."""
    # bindparam names may not equal column names in an UPDATE's SET, hence the prefix.
    return (update(ORDERS).where(ORDERS.c.id == bindparam("order_pk"))
            .values(event_count=ORDERS.c.event_count + 1,
                    **{name: bindparam(f"set_{name}", type_=ORDERS.c[name].type) for name in sorted(columns)}))


@cache
def camera_upsert_raw(dialect: str) -> DriverStatement:
    # ground_points (JSON) comes back as text on SQLite: converted as SQLAlchemy would.
    return DriverStatement(camera_upsert(dialect), convert_results=True)


@cache
def seen_update_raw(columns: frozenset[str]) -> DriverStatement:
    return DriverStatement(seen_update(columns))
