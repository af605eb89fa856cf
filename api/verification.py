"""Camera verification of a fix: the edge re-checks the region of a resolved order.

The edge polls `GET /api/v1/verifications?camera=NAME` (no inbound connection to the edge box
is needed), watches each listed region on its next analysed frames, and posts the outcome:
`absent` for the type's clear time → the order is marked verified with a before/after pair;
`present` → the order is reopened with the new frame and its worker is told.
"""

from __future__ import annotations

import logging
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.auth import Principal
from api.events import store_then_commit
from api.evidence_store import EvidenceStore
from api.images import BadImage, check_image
from api.lifecycle import TransitionInput, audit, lock_order, move
from api.models import Camera, Evidence, Order, OrderState, as_utc, utcnow
from api.orders import OrderNotFound
from api.problems import Conflict
from api.schemas import EvidenceKind, IssueType
from api.settings import Settings

log = logging.getLogger("streetwatch.api")


class CheckResult(StrEnum):
    absent = "absent"
    present = "present"


class PendingCheck(BaseModel):
    order_id: int
    issue_type: IssueType
    bbox: tuple[float, float, float, float]
    frame_width: int
    frame_height: int
    resolved_at: datetime
    clear_seconds: float  # how long the region must stay empty to count as fixed


class CheckRecorded(BaseModel):
    order_id: int
    state: OrderState
    verified: bool


class NotAwaitingCheck(Conflict):
    """409: the order is not a resolved camera order waiting for its check."""


def pending_checks(session: Session, settings: Settings, camera_name: str) -> list[PendingCheck]:
    rows = session.exec(select(Order).join(Camera, col(Camera.id) == col(Order.camera_id))
                        .where(Camera.name == camera_name, Order.state == OrderState.resolved,
                               col(Order.verified_at).is_(None)).order_by(col(Order.id))).all()
    return [PendingCheck(order_id=o.id, issue_type=o.issue_type, bbox=o.box, frame_width=o.frame_width,
                         frame_height=o.frame_height, resolved_at=as_utc(o.resolved_at or o.updated_at),
                         clear_seconds=settings.policy(o.issue_type).clear_after_minutes * 60)
            for o in rows if o.box is not None and o.id is not None]


def record_check(session: Session, store: EvidenceStore, settings: Settings, order_id: int, result: CheckResult,
                 frame: bytes, who: Principal) -> CheckRecorded:
    images = [check_image(EvidenceKind.after, frame, settings.max_upload_bytes, field="frame")]
    if result == CheckResult.absent:
        # The pair: a copy of the newest frame the issue was seen in, stored beside the new one.
        before = _newest_frame(session, order_id)
        if before is not None:
            try:
                images.append(check_image(EvidenceKind.before, store.get(before.object_key)))
            except (FileNotFoundError, BadImage) as exc:
                # The stored frame is lost or damaged (GET .../evidence/verify says which):
                # the camera's check still counts, it only goes without its "before" copy.
                log.warning("order %d: no before copy for the camera check: %s is %s", order_id, before.object_key,
                            "missing" if isinstance(exc, FileNotFoundError) else "not a readable image")
        session.rollback()

    def write(keys: list[str]) -> CheckRecorded:
        order = lock_order(session, order_id)
        if order is None:
            raise OrderNotFound(f"order {order_id} not found")
        if order.state != OrderState.resolved or order.verified_at is not None or order.camera_id is None:
            raise NotAwaitingCheck(f"order {order_id} is {order.state.value}"
                                   f"{' and already verified' if order.verified_at else ''}: no camera check pending")
        if result == CheckResult.absent:
            order.verified_at = utcnow()
            session.add(order)
            entry = audit(session, order, "verified", who, note="the camera no longer sees the issue")
        else:
            entry = move(session, order, OrderState.reopened, who,
                         TransitionInput(note="the camera still sees the issue after it was resolved"),
                         action="camera_check")
        for img, key in zip(images, keys):
            session.add(Evidence(order_id=order_id, audit_id=entry.id, kind=img.kind, object_key=key,
                                 content_type=img.content_type, size=len(img.data), sha256=img.sha256,
                                 width=img.width, height=img.height))
        session.commit()
        return CheckRecorded(order_id=order_id, state=order.state, verified=order.verified_at is not None)

    return store_then_commit(session, store, f"orders/{order_id}/check", images, write)


def _newest_frame(session: Session, order_id: int) -> Evidence | None:
    return session.exec(select(Evidence).where(Evidence.order_id == order_id,
                                               col(Evidence.kind).in_([EvidenceKind.annotated, EvidenceKind.frame]))
                        .order_by(col(Evidence.id).desc())).first()
