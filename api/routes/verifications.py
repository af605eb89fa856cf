from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, UploadFile

from api.auth import Principal, require
from api.box_binding import check_camera, check_order_camera
from api.deps import SessionDep, SettingsDep, StoreDep, declared_parts_only
from api.images import TooLarge
from api.schemas import MAX_ID
from api.models import Role
from api.verification import CheckRecorded, CheckResult, PendingCheck, pending_checks, record_check

router = APIRouter(prefix="/api/v1/verifications", tags=["verifications"])
Edge = Annotated[Principal, Depends(require(Role.edge))]


@router.get("")
def get_pending(session: SessionDep, settings: SettingsDep, who: Edge,
                camera: Annotated[str, Query(min_length=1, max_length=100)]) -> list[PendingCheck]:
    """Resolved orders of this camera waiting for the camera to confirm the fix (the edge polls)."""
    check_camera(session, who, camera)
    return pending_checks(session, settings, camera)


@router.post("/{order_id}", dependencies=[Depends(declared_parts_only)], responses={404: {"description": "No such order"},
                                       409: {"description": "The order is not waiting for a camera check"}})
def post_check(order_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, store: StoreDep, settings: SettingsDep,
               who: Edge, result: Annotated[CheckResult, Form()],
               frame: Annotated[UploadFile, File(description="the analysed frame, JPEG or PNG")]) -> CheckRecorded:
    """`absent`: the issue stayed away for its clear time → verified, with a before/after pair.
    `present`: the camera still sees it → the order is reopened and its worker told."""
    check_order_camera(session, who, order_id)
    data = frame.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge("frame", settings.max_upload_bytes)
    return record_check(session, store, settings, order_id, result, data, who)
