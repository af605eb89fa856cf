from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import SessionDep, SettingsDep, StoreDep
from api.models import OrderDetail, OrderState, OrdersPublic
from api.orders import get_order, list_orders
from api.schemas import IssueType

router = APIRouter(prefix="/api/v1/orders", tags=["orders"])


@router.get("")
def read_orders(
    session: SessionDep,
    store: StoreDep,
    settings: SettingsDep,
    state: Annotated[OrderState | None, Query(description="only orders in this state")] = None,
    issue_type: Annotated[IssueType | None, Query(description="only this kind of issue")] = None,
    camera: Annotated[str | None, Query(description="only this camera (by name)")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> OrdersPublic:
    """Work orders, newest first; `snapshot_url` is a presigned link to the annotated evidence."""
    return list_orders(session, store, settings.presign_expiry_seconds, state, issue_type, camera, limit, offset)


@router.get("/{order_id}", responses={404: {"description": "No such order"}})
def read_order(order_id: Annotated[int, Path(ge=1)], session: SessionDep, store: StoreDep,
               settings: SettingsDep) -> OrderDetail:
    """One order with its events and evidence (presigned URLs that expire)."""
    order = get_order(session, store, order_id, settings.presign_expiry_seconds)
    if order is None:
        raise HTTPException(404, f"order {order_id} not found")
    return order
