"""Reading orders with their evidence (as presigned URLs) and events."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, col, func, select

from api.evidence_store import EvidenceStore
from api.models import (Camera, Event, EventPublic, Evidence, EvidencePublic, Order, OrderDetail, OrderPublic,
                        OrderState, OrdersPublic)
from api.schemas import EvidenceKind, IssueType


def _public(order: Order, camera: str, snapshot_url: str | None) -> dict[str, Any]:
    return {**order.model_dump(), "camera": camera, "bbox": order.box, "snapshot_url": snapshot_url}


def _snapshot_urls(session: Session, store: EvidenceStore, order_ids: list[int], expires: int) -> dict[int, str]:
    """Presigned URL of the newest annotated image per order, for a whole page in one query."""
    if not order_ids:
        return {}
    newest = (select(func.max(Evidence.id))
              .where(col(Evidence.order_id).in_(order_ids), Evidence.kind == EvidenceKind.annotated)
              .group_by(col(Evidence.order_id)))
    rows = session.exec(select(Evidence.order_id, Evidence.object_key).where(col(Evidence.id).in_(newest))).all()
    return {order_id: store.presigned_url(key, expires) for order_id, key in rows}


def list_orders(session: Session, store: EvidenceStore, expires: int, state: OrderState | None = None,
                issue_type: IssueType | None = None, camera: str | None = None, limit: int = 100,
                offset: int = 0) -> OrdersPublic:
    """Orders matching the filters, newest first, with the total count for paging."""
    query = select(Order, Camera.name).join(Camera, col(Camera.id) == col(Order.camera_id))
    if state:
        query = query.where(Order.state == state)
    if issue_type:
        query = query.where(Order.issue_type == issue_type)
    if camera:
        query = query.where(Camera.name == camera)
    count = session.exec(select(func.count()).select_from(query.subquery())).one()
    rows = session.exec(query.order_by(col(Order.id).desc()).offset(offset).limit(limit)).all()
    urls = _snapshot_urls(session, store, [o.id for o, _ in rows if o.id is not None], expires)
    data = [OrderPublic.model_validate(_public(o, name, urls.get(o.id))) for o, name in rows]
    return OrdersPublic(data=data, count=count)


def get_order(session: Session, store: EvidenceStore, order_id: int, expires: int) -> OrderDetail | None:
    """One order with all its evidence and events, oldest first; None if there is no such order."""
    row = session.exec(select(Order, Camera.name).join(Camera, col(Camera.id) == col(Order.camera_id))
                       .where(Order.id == order_id)).first()
    if row is None:
        return None
    order, camera = row
    evidence = session.exec(select(Evidence).where(Evidence.order_id == order_id).order_by(col(Evidence.id))).all()
    events = session.exec(select(Event).where(Event.order_id == order_id).order_by(col(Event.id))).all()
    snapshot = next((e for e in reversed(evidence) if e.kind == EvidenceKind.annotated), None)
    return OrderDetail.model_validate({
        **_public(order, camera, store.presigned_url(snapshot.object_key, expires) if snapshot else None),
        "evidence": [EvidencePublic.model_validate({**e.model_dump(), "url": store.presigned_url(e.object_key, expires)})
                     for e in evidence],
        "events": [EventPublic.model_validate({**e.model_dump(), "bbox": e.box}) for e in events],
    })
