"""Reading orders with their evidence (as presigned URLs) and events."""

from __future__ import annotations

from sqlmodel import Session, col, func, select

from api.evidence_store import EvidenceStore
from api.models import (Camera, Event, EventPublic, Evidence, EvidencePublic, Order, OrderDetail, OrderPublic,
                        OrderState, OrdersPublic)
from api.schemas import EvidenceKind, IssueType


def _public(order: Order, camera: str, snapshot_url: str | None) -> dict:
    return {**order.model_dump(), "camera": camera, "bbox": (order.x1, order.y1, order.x2, order.y2),
            "snapshot_url": snapshot_url}


def _snapshot_url(session: Session, store: EvidenceStore, order_id: int, expires: int) -> str | None:
    ev = session.exec(
        select(Evidence).where(Evidence.order_id == order_id, Evidence.kind == EvidenceKind.annotated)
        .order_by(col(Evidence.id).desc())
    ).first()
    return store.presigned_url(ev.object_key, expires) if ev else None


def list_orders(session: Session, store: EvidenceStore, expires: int, state: OrderState | None = None,
                issue_type: IssueType | None = None, camera: str | None = None, limit: int = 100,
                offset: int = 0) -> OrdersPublic:
    query = select(Order, Camera.name).join(Camera, Camera.id == Order.camera_id)
    if state:
        query = query.where(Order.state == state)
    if issue_type:
        query = query.where(Order.issue_type == issue_type)
    if camera:
        query = query.where(Camera.name == camera)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Order.id).desc()).offset(offset).limit(limit)).all()
    data = [OrderPublic.model_validate(_public(o, name, _snapshot_url(session, store, o.id, expires))) for o, name in rows]
    return OrdersPublic(data=data, count=count)


def get_order(session: Session, store: EvidenceStore, order_id: int, expires: int) -> OrderDetail | None:
    row = session.exec(select(Order, Camera.name).join(Camera, Camera.id == Order.camera_id)
                       .where(Order.id == order_id)).first()
    if row is None:
        return None
    order, camera = row
    evidence = session.exec(select(Evidence).where(Evidence.order_id == order_id).order_by(col(Evidence.id))).all()
    events = session.exec(select(Event).where(Event.order_id == order_id).order_by(col(Event.id))).all()
    return OrderDetail.model_validate({
        **_public(order, camera, _snapshot_url(session, store, order_id, expires)),
        "evidence": [EvidencePublic.model_validate({**e.model_dump(), "url": store.presigned_url(e.object_key, expires)})
                     for e in evidence],
        "events": [EventPublic.model_validate({**e.model_dump(), "bbox": (e.x1, e.y1, e.x2, e.y2)}) for e in events],
    })
