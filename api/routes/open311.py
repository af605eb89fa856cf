"""Open311 GeoReport v2 read endpoints (JSON). Public, like most cities' 311 read APIs: they
show no reporter contact and no worker, and evidence only as short-lived presigned URLs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import SessionDep, SettingsDep, StoreDep
from api.open311 import Service, ServiceRequest, request_ids, requests, services
from api.schemas import IssueType, UtcDateTime

router = APIRouter(prefix="/open311/v2", tags=["open311"])


def _error(status: int, description: str) -> JSONResponse:
    # GeoReport errors are a list of {code, description}.
    return JSONResponse([{"code": status, "description": description}], status_code=status)


@router.get("/services.json")
def get_services() -> list[Service]:
    """Issue types as 311 services."""
    return services()


@router.get("/requests.json", responses={400: {"description": "A parameter is malformed"}})
def get_requests(
    session: SessionDep, store: StoreDep, settings: SettingsDep,
    service_request_id: Annotated[str | None, Query(
        description="comma-separated request ids, or the tracking ids (SW-…) reports were given; "
                    "other filters are then ignored")] = None,
    service_code: Annotated[str | None, Query(description="comma-separated service codes")] = None,
    start_date: Annotated[UtcDateTime | None, Query()] = None,
    end_date: Annotated[UtcDateTime | None, Query()] = None,
    status: Annotated[str | None, Query(description="open or closed (comma-separated)")] = None,
) -> list[ServiceRequest]:
    """Orders as service requests, newest first, at most 1000; the last 90 days by default."""
    try:
        ids = request_ids(session, service_request_id.split(",")) if service_request_id else None
    except ValueError:
        reason = "service_request_id must be comma-separated request ids or tracking ids (SW-…)"
        return _error(400, reason)  # type: ignore[return-value]
    codes = None
    if service_code:
        try:
            codes = [IssueType(c.strip()) for c in service_code.split(",")]
        except ValueError:
            known = ", ".join(t.value for t in IssueType)
            return _error(400, f"unknown service_code; one of {known}")  # type: ignore[return-value]
    statuses = {s.strip() for s in status.split(",")} if status else set()
    if statuses - {"open", "closed"}:
        return _error(400, "status must be open or closed")  # type: ignore[return-value]
    one_status = statuses.pop() if len(statuses) == 1 else None
    return requests(session, store, settings.presign_expiry_seconds, ids, codes, start_date, end_date, one_status)


@router.get("/requests/{service_request_id}.json", responses={404: {"description": "No such request"}})
def get_request(service_request_id: Annotated[str, Path(max_length=20)], session: SessionDep, store: StoreDep,
                settings: SettingsDep) -> list[ServiceRequest]:
    """One service request (a list of one, as the spec has it), by its id or a report's tracking id."""
    try:
        ids = request_ids(session, [service_request_id])
    except ValueError:
        reason = "service_request_id must be a request id or a tracking id (SW-…)"
        return _error(400, reason)  # type: ignore[return-value]
    found = requests(session, store, settings.presign_expiry_seconds, ids)
    if not found:
        return _error(404, f"no service request {service_request_id}")  # type: ignore[return-value]
    return found
