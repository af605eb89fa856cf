from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile
from pydantic import BaseModel, Field, StrictInt, model_validator

from api.auth import Principal, require
from api.deps import SessionDep, SettingsDep, StoreDep, declared_parts_only
from api.images import TooLarge
from api.lifecycle import TransitionInput
from api.models import OrderSource, OrderState, OrdersPublic, RejectReason, Role
from api.models import CommentBase, CommentPublic
from api.orders import (BulkResult, EvidenceVerification, OrderDetail, OrderFilters, Sort, add_comment, bulk_reject,
                        change_state, get_order, list_orders, verify_evidence)
from api.schemas import MAX_ID, EvidenceKind, IssueType, Text, UtcDateTime

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])

Reader = Annotated[Principal, Depends(require(Role.reviewer, Role.worker))]
Actor = Annotated[Principal, Depends(require(Role.reviewer, Role.worker))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
OrderId = Annotated[int, Path(ge=1, le=MAX_ID)]
MOVE_RESPONSES = {
    403: {"description": "Your role may not make this move, or the order is not assigned to you"},
    404: {"description": "No such order"},
    409: {"description": "The order's state has no such move; `allowed` lists the moves it has"},
}


class DispatchIn(BaseModel):
    # StrictInt: JSON's true would otherwise be taken as worker 1
    worker_id: StrictInt | None = Field(default=None, ge=1, le=MAX_ID,
                                   description="unset → the grid's on-duty worker, else the nearest")
    note: str | None = Field(default=None, max_length=2000)


class NoteIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class ReopenIn(BaseModel):
    note: str = Field(min_length=1, max_length=2000)


class RejectIn(BaseModel):
    reason: RejectReason
    note: str | None = Field(default=None, max_length=2000)
    corrected_type: IssueType | None = Field(default=None, description="with reason wrong_type: what it really is "
                                                                         "(becomes a label of that type in retraining)")

    @model_validator(mode="after")
    def _correction_needs_wrong_type(self) -> "RejectIn":
        if self.corrected_type is not None and self.reason != RejectReason.wrong_type:
            raise ValueError("corrected_type goes with reason wrong_type only")
        return self


class CloseIn(BaseModel):
    rating: StrictInt = Field(ge=1, le=5, description="the reviewer's evaluation of the work, 1–5")
    comment: str | None = Field(default=None, max_length=2000)


@router.get("")
def read_orders(
    session: SessionDep, store: StoreDep, settings: SettingsDep, who: Reader,
    state: Annotated[OrderState | None, Query(description="only orders in this state")] = None,
    issue_type: Annotated[IssueType | None, Query(description="only this kind of issue")] = None,
    camera: Annotated[str | None, Query(max_length=100, description="only this camera (by name)")] = None,
    grid_id: Annotated[str | None, Query(max_length=100)] = None,
    worker_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    source: Annotated[OrderSource | None, Query()] = None,
    overdue: Annotated[bool | None, Query(description="past the SLA and not yet resolved")] = None,
    unassigned: Annotated[bool | None, Query(description="no on-duty worker could take it")] = None,
    model_version: Annotated[str | None, Query(max_length=151, description="made by this model: name:version "
                                                                           "(as the dashboard shows it) or the version")] = None,
    since: Annotated[UtcDateTime | None, Query(description="created at or after (ISO 8601)")] = None,
    until: Annotated[UtcDateTime | None, Query(description="created before (ISO 8601)")] = None,
    sort: Annotated[Sort, Query(description="newest | oldest | updated | due (soonest SLA deadline); with "
                                            "`updated` an order that changes while you page moves to the first "
                                            "page, so a client that syncs starts again from there")] = Sort.newest,
    cursor: Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> OrdersPublic:
    """Work orders; `snapshot_url` is a presigned link to the annotated evidence. Page with
    `cursor` = the previous page's `next_cursor`. A worker key sees only its own orders."""
    filters = OrderFilters(state=state, issue_type=issue_type, camera=camera, grid_id=grid_id, worker_id=worker_id,
                           source=source, overdue=overdue, unassigned=unassigned, model_version=model_version,
                           since=since, until=until)
    return list_orders(session, store, settings.presign_expiry_seconds, filters, who, limit, offset, sort, cursor)


@router.get("/overdue")
def read_overdue(session: SessionDep, store: StoreDep, settings: SettingsDep, who: Reader,
                 limit: Annotated[int, Query(ge=1, le=500)] = 100,
                 offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0) -> OrdersPublic:
    """Orders past their issue type's SLA and not yet resolved."""
    return list_orders(session, store, settings.presign_expiry_seconds, OrderFilters(overdue=True), who, limit,
                       offset)


class BulkRejectIn(BaseModel):
    order_ids: list[Annotated[StrictInt, Field(ge=1, le=MAX_ID)]] = Field(min_length=1, max_length=500)
    reason: RejectReason
    note: str | None = Field(default=None, max_length=2000)


@router.post("/bulk-reject")
def reject_many(body: BulkRejectIn, session: SessionDep, store: StoreDep, settings: SettingsDep,
                who: Reviewer) -> BulkResult:
    """Reject several false alarms at once; orders that cannot be rejected are listed in
    `failed` with the status and reason a single reject would have got."""
    return bulk_reject(session, store, settings.max_upload_bytes, body.order_ids, body.reason, body.note, who)


@router.get("/{order_id}", responses={404: {"description": "No such order"}})
def read_order(order_id: OrderId, session: SessionDep, store: StoreDep, settings: SettingsDep,
               who: Reader) -> OrderDetail:
    """One order with its evidence (presigned URLs that expire), events, citizen reports and
    timeline (the audit log)."""
    return get_order(session, store, order_id, settings.presign_expiry_seconds, who)


@router.get("/{order_id}/evidence/verify", responses={404: {"description": "No such order"}})
def verify_order_evidence(order_id: OrderId, session: SessionDep, store: StoreDep,
                          who: Reader) -> EvidenceVerification:
    """Re-read every evidence object and compare it with the SHA-256 recorded when it was stored."""
    return verify_evidence(session, store, order_id, who)


@router.post("/{order_id}/comments", status_code=201, responses={404: {"description": "No such order"}})
def post_comment(order_id: OrderId, body: CommentBase, session: SessionDep, who: Reader) -> CommentPublic:
    """A remark on the order, shown with the timeline (not a state change)."""
    return add_comment(session, order_id, body.text, who)


def _move(session, store, settings, order_id: int, target: OrderState, who: Principal, data: TransitionInput,
          worker_id: int | None = None, photo: bytes | None = None) -> OrderDetail:
    change_state(session, store, settings.max_upload_bytes, order_id, target, who, data, worker_id, photo)
    return get_order(session, store, order_id, settings.presign_expiry_seconds, who)


@router.post("/{order_id}/dispatch", responses=MOVE_RESPONSES)
def dispatch_order(order_id: OrderId, body: DispatchIn, session: SessionDep, store: StoreDep,
                   settings: SettingsDep, who: Reviewer) -> OrderDetail:
    """reported/reopened → dispatched, to the given worker or the one dispatch picks
    (409 if nobody on duty can take it)."""
    return _move(session, store, settings, order_id, OrderState.dispatched, who, TransitionInput(note=body.note),
                 worker_id=body.worker_id)


@router.post("/{order_id}/start", responses=MOVE_RESPONSES)
def start_order(order_id: OrderId, body: NoteIn, session: SessionDep, store: StoreDep, settings: SettingsDep,
                who: Actor) -> OrderDetail:
    """dispatched/reopened → in_progress, by the assigned worker."""
    return _move(session, store, settings, order_id, OrderState.in_progress, who, TransitionInput(note=body.note))


@router.post("/{order_id}/resolve", dependencies=[Depends(declared_parts_only)],
             responses={**MOVE_RESPONSES, 413: {"description": "Photo too large"},
                        422: {"description": "Missing note, or a photo that is not JPEG/PNG"}})
def resolve_order(order_id: OrderId, session: SessionDep, store: StoreDep, settings: SettingsDep, who: Actor,
                  note: Annotated[Text, Form(min_length=1, max_length=2000, description="what was done")],
                  photo: Annotated[UploadFile | None, File(description="a photo of the fixed street")] = None,
                  ) -> OrderDetail:
    """in_progress → resolved, with the worker's note and optionally a photo (multipart)."""
    data = None
    if photo is not None:
        data = photo.file.read(settings.max_upload_bytes + 1)
        if len(data) > settings.max_upload_bytes:
            raise TooLarge(EvidenceKind.resolution.value, settings.max_upload_bytes)
    return _move(session, store, settings, order_id, OrderState.resolved, who, TransitionInput(note=note),
                 photo=data)


@router.post("/{order_id}/close", responses=MOVE_RESPONSES)
def close_order(order_id: OrderId, body: CloseIn, session: SessionDep, store: StoreDep, settings: SettingsDep,
                who: Reviewer) -> OrderDetail:
    """resolved → closed, with the evaluation (rating 1–5 and a comment)."""
    return _move(session, store, settings, order_id, OrderState.closed, who,
                 TransitionInput(rating=body.rating, comment=body.comment))


@router.post("/{order_id}/reject", responses=MOVE_RESPONSES)
def reject_order(order_id: OrderId, body: RejectIn, session: SessionDep, store: StoreDep, settings: SettingsDep,
                 who: Reviewer) -> OrderDetail:
    """A false alarm: reported/dispatched/reopened → rejected, with a reason from the fixed list."""
    return _move(session, store, settings, order_id, OrderState.rejected, who,
                 TransitionInput(reason=body.reason, note=body.note, corrected_type=body.corrected_type))


@router.post("/{order_id}/reopen", responses=MOVE_RESPONSES)
def reopen_order(order_id: OrderId, body: ReopenIn, session: SessionDep, store: StoreDep, settings: SettingsDep,
                 who: Reviewer) -> OrderDetail:
    """resolved/rejected → reopened, with a note saying why."""
    return _move(session, store, settings, order_id, OrderState.reopened, who, TransitionInput(note=body.note))
