"""Reading orders (with presigned evidence URLs, events, reports and the audit trail) and
moving them through the lifecycle."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any

from pydantic import BaseModel
from sqlalchemy import or_, tuple_
from sqlmodel import Session, col, func, select

from api.auth import Principal
from api.db import begin_write
from api.dispatch import UNRESOLVED, dispatch, is_overdue
from api.events import store_then_commit
from api.evidence_store import EvidenceStore
from api.images import check_image
from api.lifecycle import ActionForbidden, TransitionInput, check_move, lock_order, move
from api.models import (AuditEntry, AuditEntryPublic, Camera, Comment, CommentPublic, Event, EventPublic, Evidence,
                        EvidencePublic, Order, OrderPublic, OrderSource, OrderState, OrdersPublic, RejectReason, Report,
                        Role, Worker, as_utc, utcnow)
from api.problems import Conflict, InvalidField, NotFound, Problem
from api.schemas import MAX_ID, EvidenceKind, IssueType, to_utc


class ReportSummary(BaseModel):
    tracking_id: str
    text: str | None
    lat: float
    lon: float
    created_at: Any


class OrderDetail(OrderPublic):
    evidence: list[EvidencePublic]
    events: list[EventPublic]
    timeline: list[AuditEntryPublic]
    reports: list[ReportSummary]
    comments: list[CommentPublic]


class OrderFilters(BaseModel):
    state: OrderState | None = None
    issue_type: IssueType | None = None
    camera: str | None = None
    grid_id: str | None = None
    worker_id: int | None = None
    source: OrderSource | None = None
    overdue: bool | None = None
    unassigned: bool | None = None
    model_version: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


class Sort(StrEnum):
    newest = "newest"
    oldest = "oldest"
    updated = "updated"  # most recently changed first
    due = "due"  # soonest SLA deadline first


FAR_FUTURE = datetime(9999, 1, 1, tzinfo=timezone.utc)


def _sort_key(sort: Sort) -> tuple[Any, bool]:
    """The column to order by (always with the id as tie-break) and whether it descends."""
    if sort == Sort.updated:
        return col(Order.updated_at), True
    if sort == Sort.due:
        return func.coalesce(col(Order.sla_due_at), FAR_FUTURE), False
    return col(Order.id), sort == Sort.newest


def _encode_cursor(value: Any, order_id: int) -> str:
    raw = json.dumps([value.isoformat() if isinstance(value, datetime) else value, order_id])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _is_id(value: Any) -> bool:
    # bool is an int to Python (and to isinstance), not to the database
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, int]:
    """Raises InvalidField for anything that is not a cursor this API handed out."""
    try:
        value, order_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if sort in (Sort.updated, Sort.due):
            value = to_utc(datetime.fromisoformat(value))  # ValueError past year 1 or 9999 in UTC
        elif not _is_id(value):
            raise ValueError
        if not _is_id(order_id):
            raise ValueError
        return value, order_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidField(("query", "cursor"), "not a cursor from this listing (with the same sort)") from None


class OrderNotFound(NotFound):
    pass


def _public(order: Order, camera: str | None, snapshot_url: str | None) -> dict[str, Any]:
    return {**order.model_dump(), "camera": camera, "bbox": order.box, "overdue": is_overdue(order),
            "snapshot_url": snapshot_url}


def _snapshot_urls(session: Session, store: EvidenceStore, order_ids: list[int], expires: int) -> dict[int, str]:
    """Presigned URL of the newest annotated image (or citizen photo) per order, one query a page."""
    if not order_ids:
        return {}
    newest = (select(func.max(Evidence.id))
              .where(col(Evidence.order_id).in_(order_ids),
                     col(Evidence.kind).in_([EvidenceKind.annotated, EvidenceKind.report]))
              .group_by(col(Evidence.order_id)))
    rows = session.exec(select(Evidence.order_id, Evidence.object_key).where(col(Evidence.id).in_(newest))).all()
    return {order_id: store.presigned_url(key, expires) for order_id, key in rows}


def list_orders(session: Session, store: EvidenceStore, expires: int, filters: OrderFilters, who: Principal,
                limit: int = 100, offset: int = 0, sort: Sort = Sort.newest, cursor: str | None = None
                ) -> OrdersPublic:
    """Orders matching the filters, with the total count. Page with `next_cursor` (stable while
    orders arrive; with sort=updated an order that changes meanwhile moves to the first page) or
    offset. A worker sees only the orders assigned to them."""
    query = select(Order, Camera.name).join(Camera, col(Camera.id) == col(Order.camera_id), isouter=True)
    if who.role == Role.worker:
        query = query.where(Order.worker_id == who.worker_id)
    for field in ("state", "issue_type", "grid_id", "worker_id", "source", "unassigned"):
        value = getattr(filters, field)
        if value is not None:
            query = query.where(getattr(Order, field) == value)
    if filters.model_version is not None:
        # "name:version" as the page and the dashboard show a model, or the version alone
        name, _, version = filters.model_version.rpartition(":")
        same = Order.model_version == filters.model_version
        query = query.where(or_(same, (Order.model_name == name) & (Order.model_version == version)) if name else same)
    if filters.camera:
        query = query.where(Camera.name == filters.camera)
    if filters.overdue is not None:
        late = col(Order.state).in_(UNRESOLVED) & (col(Order.sla_due_at) < utcnow())
        query = query.where(late if filters.overdue else ~late)
    if filters.since is not None:
        query = query.where(col(Order.created_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(Order.created_at) < filters.until)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    key, descending = _sort_key(sort)
    if cursor is not None:
        value, after_id = decode_cursor(cursor, sort)
        if key is col(Order.id):
            query = query.where(key < after_id if descending else key > after_id)
        else:
            after = tuple_(key, col(Order.id))
            query = query.where(after < (value, after_id) if descending else after > (value, after_id))
    ordering = (key.desc(), col(Order.id).desc()) if descending else (key.asc(), col(Order.id).asc())
    rows = session.exec(query.order_by(*ordering).offset(offset).limit(limit + 1)).all()
    more, rows = len(rows) > limit, rows[:limit]
    urls = _snapshot_urls(session, store, [o.id for o, _ in rows if o.id is not None], expires)
    data = [OrderPublic.model_validate(_public(o, name, urls.get(o.id))) for o, name in rows]
    next_cursor = None
    if more and rows:
        last = rows[-1][0]
        value = {Sort.updated: last.updated_at, Sort.due: last.sla_due_at or FAR_FUTURE}.get(sort, last.id)
        next_cursor = _encode_cursor(as_utc(value) if isinstance(value, datetime) else value, last.id)
    return OrdersPublic(data=data, count=count, next_cursor=next_cursor)


def _visible(order: Order, who: Principal) -> None:
    if who.role == Role.worker and order.worker_id != who.worker_id:
        raise ActionForbidden(f"order {order.id} is not assigned to you")


def get_order(session: Session, store: EvidenceStore, order_id: int, expires: int, who: Principal) -> OrderDetail:
    """One order with its evidence, events, citizen reports and timeline, oldest first."""
    row = session.exec(select(Order, Camera.name).join(Camera, col(Camera.id) == col(Order.camera_id), isouter=True)
                       .where(Order.id == order_id)).first()
    if row is None:
        raise OrderNotFound(f"order {order_id} not found")
    order, camera = row
    _visible(order, who)
    evidence = session.exec(select(Evidence).where(Evidence.order_id == order_id).order_by(col(Evidence.id))).all()
    events = session.exec(select(Event).where(Event.order_id == order_id).order_by(col(Event.id))).all()
    timeline = session.exec(select(AuditEntry).where(AuditEntry.order_id == order_id)
                            .order_by(col(AuditEntry.id))).all()
    reports = session.exec(select(Report).where(Report.order_id == order_id).order_by(col(Report.id))).all()
    comments = session.exec(select(Comment).where(Comment.order_id == order_id).order_by(col(Comment.id))).all()
    snapshot = next((e for e in reversed(evidence) if e.kind in (EvidenceKind.annotated, EvidenceKind.report)), None)
    return OrderDetail.model_validate({
        **_public(order, camera, store.presigned_url(snapshot.object_key, expires) if snapshot else None),
        "evidence": [EvidencePublic.model_validate({**e.model_dump(), "url": store.presigned_url(e.object_key, expires)})
                     for e in evidence],
        "events": [EventPublic.model_validate({**e.model_dump(), "bbox": e.box}) for e in events],
        "timeline": [AuditEntryPublic.model_validate(a.model_dump()) for a in timeline],
        "reports": [ReportSummary.model_validate(r.model_dump()) for r in reports],
        "comments": [CommentPublic.model_validate(c.model_dump()) for c in comments],
    })


def add_comment(session: Session, order_id: int, text: str, who: Principal) -> CommentPublic:
    begin_write(session)
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} not found")
    _visible(order, who)
    comment = Comment(order_id=order_id, author=who.name[:100], role=who.role.value, text=text)
    session.add(comment)
    session.commit()
    session.refresh(comment)
    return CommentPublic.model_validate(comment.model_dump())


class BulkFailure(BaseModel):
    order_id: int
    status: int
    detail: str


class BulkResult(BaseModel):
    rejected: list[int]
    failed: list[BulkFailure]


def bulk_reject(session: Session, store: EvidenceStore, max_bytes: int, order_ids: list[int], reason: RejectReason,
                note: str | None, who: Principal) -> BulkResult:
    """Reject several false alarms; each order in its own transaction, so one order that cannot
    be rejected (say, already closed) does not hold back the others."""
    done, failed = [], []
    for order_id in dict.fromkeys(order_ids):  # once each, in the order given
        try:
            change_state(session, store, max_bytes, order_id, OrderState.rejected, who,
                         TransitionInput(reason=reason, note=note))
            done.append(order_id)
        except Problem as exc:
            session.rollback()
            failed.append(BulkFailure(order_id=order_id, status=exc.status, detail=str(exc)))
    return BulkResult(rejected=done, failed=failed)


def change_state(session: Session, store: EvidenceStore, max_bytes: int, order_id: int, target: OrderState,
                 who: Principal, data: TransitionInput, worker_id: int | None = None,
                 photo: bytes | None = None) -> int:
    """Move an order, under its row lock; a resolution photo is stored like evidence.
    Raises OrderNotFound, TransitionNotAllowed (409), ActionForbidden (403), InvalidField (422)."""
    checked = check_image(EvidenceKind.resolution, photo, max_bytes, field="photo") if photo is not None else None

    def write(keys: list[str]) -> int:
        order = lock_order(session, order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} not found")
        check_move(order, target, who)
        if target == OrderState.dispatched:
            worker = None
            if worker_id is not None:
                worker = session.get(Worker, worker_id)
                if worker is None:
                    raise InvalidField(("body", "worker_id"), f"no worker with id {worker_id}")
            if not dispatch(session, order, who, worker, data.note):
                raise NoWorkerAvailable(f"order {order_id}: no on-duty worker for grid {order.grid_id or '(none)'} "
                                        "and none with a known position; pass worker_id")
            entry_id = None
        else:
            entry_id = move(session, order, target, who, data).id
        for key in keys:
            assert checked is not None
            session.add(Evidence(order_id=order_id, audit_id=entry_id, kind=checked.kind, object_key=key,
                                 content_type=checked.content_type, size=len(checked.data), sha256=checked.sha256,
                                 width=checked.width, height=checked.height))
        session.commit()
        return order_id

    return store_then_commit(session, store, f"orders/{order_id}", [checked] if checked else [], write)


class NoWorkerAvailable(Conflict):
    """409: dispatch asked for, but nobody can take the order."""


class EvidenceCheck(BaseModel):
    evidence_id: int
    object_key: str
    expected_sha256: str
    actual_sha256: str | None
    status: str  # "ok", "mismatch", "missing"


class EvidenceVerification(BaseModel):
    order_id: int
    checked: int
    ok: bool
    problems: list[EvidenceCheck]


def verify_evidence(session: Session, store: EvidenceStore, order_id: int, who: Principal) -> EvidenceVerification:
    """Re-read every stored object of the order and compare its SHA-256 with the recorded one."""
    order = session.get(Order, order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} not found")
    _visible(order, who)
    rows = session.exec(select(Evidence).where(Evidence.order_id == order_id).order_by(col(Evidence.id))).all()
    problems = []
    for row in rows:
        assert row.id is not None
        try:
            actual: str | None = hashlib.sha256(store.get(row.object_key)).hexdigest()
        except FileNotFoundError:
            actual = None
        if actual != row.sha256:
            problems.append(EvidenceCheck(evidence_id=row.id, object_key=row.object_key, expected_sha256=row.sha256,
                                          actual_sha256=actual, status="missing" if actual is None else "mismatch"))
    return EvidenceVerification(order_id=order_id, checked=len(rows), ok=not problems, problems=problems)
