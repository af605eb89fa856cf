"""Who fixes an order, by when, and who hears when it is late.

A new order goes to the on-duty worker of its grid (the least busy one if several), else to
the nearest on-duty worker, else it waits in `reported`, flagged `unassigned`. Each issue
type has an SLA from report to resolution; the sweep escalates each late order to its
grid's supervisor exactly once, and flags orders the camera no longer sees.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, func, select

from api.auth import SYSTEM, Principal
from api.dedup import CameraInfo
from api.lifecycle import TransitionInput, audit, move, notify
from api.location import distance_m, point_in_polygon
from api.models import OPEN_STATES, as_utc, Grid, Order, OrderSource, OrderState, Worker, utcnow
from api.settings import Settings

log = logging.getLogger("streetwatch.api")
UNRESOLVED = OPEN_STATES  # the SLA clock runs while someone still has to act


def resolve_grid(session: Session, camera: CameraInfo | None, lat: float | None, lon: float | None) -> str | None:
    """The grid of an issue: the camera's own grid, a grid listing the camera, or the grid
    whose outline holds the issue's position."""
    if camera is not None and camera.grid_id:
        return camera.grid_id
    grids = session.exec(select(Grid).order_by(col(Grid.id))).all()
    if camera is not None:
        for grid in grids:
            if camera.name in (grid.cameras or []):
                return grid.id
    if lat is not None and lon is not None:
        for grid in grids:
            if grid.polygon and point_in_polygon(lat, lon, grid.polygon):
                return grid.id
    return None


def choose_worker(session: Session, order: Order) -> Worker | None:
    on_duty = session.exec(select(Worker).where(col(Worker.on_duty).is_(True)).order_by(col(Worker.id))).all()
    if order.grid_id:
        responsible = [w for w in on_duty if order.grid_id in (w.grid_ids or [])]
        if responsible:
            load = _open_orders_per_worker(session, [w.id for w in responsible if w.id is not None])
            return min(responsible, key=lambda w: (load.get(w.id, 0), w.id))
    if order.lat is None or order.lon is None:
        return None
    placed = [w for w in on_duty if w.lat is not None and w.lon is not None]
    if not placed:
        return None
    return min(placed, key=lambda w: (distance_m(order.lat, order.lon, w.lat, w.lon), w.id))  # type: ignore[arg-type]


def _open_orders_per_worker(session: Session, worker_ids: list[int]) -> dict[int, int]:
    rows = session.exec(select(Order.worker_id, func.count()).where(col(Order.worker_id).in_(worker_ids),
                                                                     col(Order.state).in_(UNRESOLVED))
                        .group_by(col(Order.worker_id))).all()
    return {wid: n for wid, n in rows if wid is not None}


def dispatch(session: Session, order: Order, who: Principal, worker: Worker | None = None,
             note: str | None = None) -> bool:
    """Move the order to `dispatched` with a worker (chosen if not given). Returns False, and
    flags the order `unassigned`, when no on-duty worker can take it."""
    worker = worker or choose_worker(session, order)
    if worker is None:
        order.unassigned = True
        session.add(order)
        return False
    order.worker_id, order.unassigned = worker.id, False
    move(session, order, OrderState.dispatched, who, TransitionInput(note=note or f"to {worker.name}"),
         action="dispatch")
    notify(session, order, "dispatched", f"new order {order.id}: {order.issue_type.value}", worker_id=worker.id)
    return True


def start_new_order(session: Session, settings: Settings, order: Order, camera: CameraInfo | None) -> None:
    """Fill in what a brand-new order needs before its first commit: grid, SLA, first audit
    row, and (with auto dispatch) its worker."""
    order.grid_id = resolve_grid(session, camera, order.lat, order.lon)
    order.sla_due_at = order.created_at + timedelta(hours=settings.policy(order.issue_type).sla_hours)
    session.add(order)
    session.flush()
    origin = f"camera:{camera.name}" if camera is not None else "citizen report"
    note = f"recurrence of order {order.recurrence_of}" if order.recurrence_of else None
    audit(session, order, "report", Principal(origin, SYSTEM.role), None, OrderState.reported, note)
    if settings.auto_dispatch:
        dispatch(session, order, SYSTEM)
    else:
        order.unassigned = True


def is_overdue(order: Order, now: datetime | None = None) -> bool:
    return (order.state in UNRESOLVED and order.sla_due_at is not None
            and as_utc(order.sla_due_at) < (now or utcnow()))



def sweep(session: Session, settings: Settings, now: datetime | None = None) -> dict[str, int]:
    """Escalate late orders (once each) and flag orders the camera stopped seeing.

    Safe to run from every API process at once: each flag is set by a conditional UPDATE,
    so only one process wins it and writes the audit row and the notification."""
    now = now or utcnow()
    escalated = cleared = 0
    late = session.exec(select(Order.id).where(col(Order.state).in_(UNRESOLVED), col(Order.escalated_at).is_(None),
                                               col(Order.sla_due_at) < now)).all()
    for order_id in late:
        won = session.execute(update(Order).where(col(Order.id) == order_id, col(Order.escalated_at).is_(None))
                              .values(escalated_at=now)).rowcount
        if won:
            order = session.get(Order, order_id)
            assert order is not None
            grid = session.get(Grid, order.grid_id) if order.grid_id else None
            supervisor = grid.supervisor if grid else None
            audit(session, order, "escalate", SYSTEM, note=f"SLA passed; escalated to {supervisor or 'no supervisor'}")
            notify(session, order, "overdue", f"order {order.id} ({order.issue_type.value}) is past its SLA",
                   supervisor=supervisor)
            escalated += 1
        session.commit()
    for issue_type, policy in settings.policies.items():
        cutoff = now - timedelta(minutes=policy.clear_after_minutes)
        stale = session.exec(select(Order.id).where(Order.issue_type == issue_type, Order.source == OrderSource.camera,
                                                    col(Order.state).in_(OPEN_STATES),
                                                    col(Order.cleared_by_camera).is_(False),
                                                    col(Order.last_seen) < cutoff)).all()
        for order_id in stale:
            won = session.execute(update(Order).where(col(Order.id) == order_id,
                                                      col(Order.cleared_by_camera).is_(False))
                                  .values(cleared_by_camera=True, cleared_at=now)).rowcount
            if won:
                order = session.get(Order, order_id)
                assert order is not None
                audit(session, order, "cleared", SYSTEM,
                      note=f"not seen by the camera for {policy.clear_after_minutes:g} min")
                cleared += 1
            session.commit()
    if escalated or cleared:
        log.info("sweep: %d order(s) escalated, %d flagged cleared_by_camera", escalated, cleared)
    return {"escalated": escalated, "cleared": cleared}
