from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, UploadFile

from api.deps import SessionDep, SettingsDep, StoreDep, declared_parts_only
from api.images import TooLarge
from api.rate_limit import limit_reports
from api.reports import TRACKING_PATTERN, ReportAccepted, ReportIn, ReportProgress, create_report, report_progress
from api.schemas import EvidenceKind, IssueType, Text

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])


@router.post("", status_code=201, dependencies=[Depends(limit_reports), Depends(declared_parts_only)],
             responses={413: {"description": "Photo too large"},
                        422: {"description": "A field is missing or invalid (`loc` names it)"},
                        429: {"description": "Too many reports from this address; see Retry-After"}})
def post_report(
    session: SessionDep, store: StoreDep, settings: SettingsDep,
    photo: Annotated[UploadFile, File(description="a photo of the issue, JPEG or PNG")],
    issue_type: Annotated[IssueType, Form()],
    lat: Annotated[float, Form(ge=-90, le=90)],
    lon: Annotated[float, Form(ge=-180, le=180)],
    text: Annotated[Text | None, Form(max_length=2000, description="what the resident saw")] = None,
    contact: Annotated[Text | None, Form(max_length=200, description="optional phone or e-mail")] = None,
) -> ReportAccepted:
    """A resident's report (multipart; no key needed). It joins an open order of the same
    issue type nearby or opens a new one; keep the `tracking_id` to follow it."""
    data = photo.file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge("photo", settings.max_upload_bytes)
    report = ReportIn(issue_type=issue_type, lat=lat, lon=lon, text=text, contact=contact)
    return create_report(session, store, settings, report, data)


@router.get("/{tracking_id}", responses={404: {"description": "No report with this tracking id"},
                                         422: {"description": "Not a tracking id (SW- and 10 characters)"}})
def read_report(tracking_id: Annotated[str, Path(pattern=TRACKING_PATTERN, description="e.g. SW-7K2M9Q4XRT")],
                session: SessionDep) -> ReportProgress:
    """The state of the order a report was filed under, and its steps so far."""
    progress = report_progress(session, tracking_id)
    if progress is None:
        raise HTTPException(404, f"no report with tracking id {tracking_id}")
    return progress
