"""The closed loop of a work order: which state may follow which, who may move it, and the
audit row every move leaves.

    reported ──dispatch──▶ dispatched ──start──▶ in_progress ──resolve──▶ resolved ──close──▶ closed
        │                      │                                            │
        └──reject──▶ rejected ◀┘                    (camera or reviewer) reopen
                         │                                                  ▼
                         └────────────── reopen ────────────────────────▶ reopened ──▶ dispatched / in_progress
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, func, select

from api.auth import Principal
from api.problems import Conflict, Forbidden
from api.schemas import IssueType
from api.models import AuditEntry, Notification, Order, OrderState, RejectReason, Role, as_utc, utcnow

S = OrderState

# (from, to) → roles that may make the move (admin may make any move in this table).
TRANSITIONS: dict[tuple[OrderState, OrderState], frozenset[Role]] = {
    (S.reported, S.dispatched): frozenset({Role.reviewer}),
    (S.reported, S.rejected): frozenset({Role.reviewer}),
    (S.dispatched, S.in_progress): frozenset({Role.worker}),
    (S.dispatched, S.rejected): frozenset({Role.reviewer}),
    (S.in_progress, S.resolved): frozenset({Role.worker}),
    (S.resolved, S.closed): frozenset({Role.reviewer}),
    # The edge reopens when its camera still sees the issue after the fix.
    (S.resolved, S.reopened): frozenset({Role.reviewer, Role.edge}),
    (S.reopened, S.dispatched): frozenset({Role.reviewer}),
    (S.reopened, S.in_progress): frozenset({Role.worker}),
    (S.reopened, S.rejected): frozenset({Role.reviewer}),
    (S.rejected, S.reopened): frozenset({Role.reviewer}),  # a false alarm that was not one
}


def allowed_targets(state: OrderState) -> list[OrderState]:
    return [to for (frm, to) in TRANSITIONS if frm == state]


class TransitionNotAllowed(Conflict):
    """409: the order's state has no such move (the body lists the moves it has)."""

    def __init__(self, order_id: int, state: OrderState, target: OrderState):
        self.order_id, self.state, self.target = order_id, state, target
        self.allowed = allowed_targets(state)
        allowed = ", ".join(a.value for a in self.allowed) or "none (final state)"
        super().__init__(f"order {order_id} is {state.value}: cannot go to {target.value}; allowed: {allowed}")

    def body(self) -> dict[str, Any]:
        return {"detail": str(self), "state": self.state.value, "allowed": [a.value for a in self.allowed]}


class ActionForbidden(Forbidden):
    """403: the move exists but this caller may not make it."""


@dataclass
class TransitionInput:
    note: str | None = None
    reason: RejectReason | None = None
    corrected_type: IssueType | None = None
    rating: int | None = None
    comment: str | None = None


def lock_order(session: Session, order_id: int) -> Order | None:
    """Read the order for changing it: row lock on PostgreSQL, the write lock on SQLite, so
    two reviewers clicking at once get one move and one clear 409, not a lost update."""
    session.connection(execution_options={"sqlite_immediate": True})
    return session.exec(select(Order).where(Order.id == order_id).with_for_update()).first()


def check_move(order: Order, target: OrderState, who: Principal) -> None:
    assert order.id is not None
    roles = TRANSITIONS.get((order.state, target))
    if roles is None:
        raise TransitionNotAllowed(order.id, order.state, target)
    if who.role != Role.admin and who.role not in roles:
        names = ", ".join(sorted(r.value for r in roles | {Role.admin}))
        raise ActionForbidden(f"role {who.role.value} may not move an order from {order.state.value} to "
                              f"{target.value}; allowed: {names}")
    if who.role == Role.worker and order.worker_id != who.worker_id:
        raise ActionForbidden(f"order {order.id} is not assigned to you")


def move(session: Session, order: Order, target: OrderState, who: Principal, data: TransitionInput,
         action: str = "transition") -> AuditEntry:
    """Change the order's state (checked with `check_move` first) and write the audit row.

    The caller commits: the move, its audit row and any evidence go in one transaction."""
    check_move(order, target, who)
    now = utcnow()
    before = order.state
    order.state = target
    order.updated_at = now
    if target == S.dispatched:
        order.dispatched_at = order.dispatched_at or now  # the first dispatch: time to dispatch is measured to it
    elif target == S.resolved:
        order.resolved_at = now
        order.verified_at = None  # a new fix needs its own check
    elif target == S.closed:
        order.closed_at, order.rating, order.evaluation = now, data.rating, data.comment
    elif target == S.rejected:
        order.reject_reason, order.corrected_type = data.reason, data.corrected_type
    elif target == S.reopened:
        order.resolved_at = order.closed_at = order.verified_at = None
        order.cleared_by_camera, order.cleared_at = False, None
        # No longer a false alarm (nor of the wrong type); the audit log keeps the verdict.
        order.reject_reason = order.corrected_type = None
        if order.sla_due_at is not None:
            # The issue is back: a new deadline as long as the cycle it ends had (from the
            # report, or from the last reopening), and a new escalation when it passes.
            cycle_start = session.exec(select(func.max(AuditEntry.at)).where(
                AuditEntry.order_id == order.id, AuditEntry.to_state == S.reopened)).one() or order.created_at
            order.sla_due_at = now + (as_utc(order.sla_due_at) - as_utc(cycle_start))
            order.escalated_at = None
        if order.worker_id is not None:
            notify(session, order, "reopened", f"order {order.id} reopened: {data.note or 'the issue is back'}",
                   worker_id=order.worker_id)
    note = data.note
    if target == S.rejected and data.reason is not None:
        note = f"{data.reason.value}: {data.note}" if data.note else data.reason.value
    if target == S.closed:
        note = f"rating {data.rating}" + (f": {data.comment}" if data.comment else "")
    return audit(session, order, action, who, before, target, note)


def audit(session: Session, order: Order, action: str, who: Principal, from_state: OrderState | None = None,
          to_state: OrderState | None = None, note: str | None = None) -> AuditEntry:
    assert order.id is not None
    entry = AuditEntry(order_id=order.id, action=action, from_state=from_state, to_state=to_state,
                       actor=who.name[:100], role=who.role.value, note=note)
    session.add(entry)
    session.flush()
    return entry


def notify(session: Session, order: Order, kind: str, message: str, worker_id: int | None = None,
           supervisor: str | None = None) -> None:
    assert order.id is not None
    session.add(Notification(order_id=order.id, worker_id=worker_id, supervisor=supervisor, kind=kind,
                             message=message))
