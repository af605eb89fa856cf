"""What people said about orders: the verdict behind review exports and the dashboard's rates.

An order is *confirmed* once a person moved it on as a real issue (dispatched, started,
resolved, closed it), *rejected* while it stands rejected (its reason says whether it was a
false alarm), and has no verdict while nobody has judged it: automatic dispatch (actor
"system") and camera checks are not a person's word. Taking a rejection back (rejected →
reopened) withdraws the verdict; a person reopening a fixed order confirms the issue again.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from api.auth import SYSTEM
from api.models import AuditEntry, OrderState, Role

HUMAN_ROLES = {Role.reviewer.value, Role.worker.value, Role.admin.value}
CONFIRMING_STATES = {OrderState.dispatched, OrderState.in_progress, OrderState.resolved, OrderState.closed}
CHUNK = 500  # order ids per query: bounds the statement's parameters (SQLite's limit)


def confirmed_by_people(session: Session, order_ids: Iterable[int]) -> set[int]:
    """The orders among `order_ids` whose latest word from a person confirms them."""
    ids = list(order_ids)
    verdict: dict[int, bool] = {}
    for start in range(0, len(ids), CHUNK):
        _read_verdicts(session, ids[start:start + CHUNK], verdict)
    return {order_id for order_id, yes in verdict.items() if yes}


def _read_verdicts(session: Session, ids: list[int], verdict: dict[int, bool]) -> None:
    moves = session.exec(
        select(AuditEntry.order_id, AuditEntry.from_state, AuditEntry.to_state)
        .where(col(AuditEntry.order_id).in_(ids), col(AuditEntry.role).in_(HUMAN_ROLES),
               AuditEntry.actor != SYSTEM.name,
               col(AuditEntry.to_state).in_(CONFIRMING_STATES | {OrderState.rejected, OrderState.reopened}))
        .order_by(col(AuditEntry.id)))
    for order_id, from_state, to_state in moves:
        if to_state in CONFIRMING_STATES:
            verdict[order_id] = True
        elif to_state == OrderState.rejected or from_state == OrderState.rejected:
            verdict[order_id] = False  # rejected, or the rejection taken back: no confirmation stands
        else:
            verdict[order_id] = True  # a person reopened a fixed order: the issue is real
