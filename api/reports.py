"""Citizen reports: a resident's photo and position create or join an order, and a tracking
id lets them follow it (the resident's 'view progress')."""

from __future__ import annotations

import secrets

from pydantic import BaseModel, Field
from sqlmodel import Session, col, select

from api.dedup import Sighting
from api.dedup_locks import lock_step
from api.db import begin_write
from api.events import store_then_commit
from api.evidence_store import EvidenceStore
from api.photos import redacted_photo
from api.models import AuditEntry, Evidence, Order, OrderState, Report, as_utc, utcnow
from api.schemas import EvidenceKind, IssueType
from api.settings import Settings
from api.sightings import file_sighting

# Crockford's base32 without I, L, O, U: read aloud over the phone without confusion.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
TRACKING_PATTERN = r"^SW-[0-9A-HJKMNP-TV-Z]{10}$"


def new_tracking_id() -> str:
    return "SW-" + "".join(secrets.choice(ALPHABET) for _ in range(10))


class ReportIn(BaseModel):
    issue_type: IssueType
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    text: str | None = Field(default=None, max_length=2000)
    contact: str | None = Field(default=None, max_length=200)


class ReportAccepted(BaseModel):
    tracking_id: str
    status_url: str


class ProgressStep(BaseModel):
    state: OrderState
    at: str


# What a resident reads about their report: fixed texts per state, as Open311 shows, never the
# audit log's notes (a worker's resolution note named people and phone numbers).
STATUS_NOTES = {
    OrderState.reported: "received; waiting to be dispatched",
    OrderState.dispatched: "dispatched to the grid's worker",
    OrderState.in_progress: "a worker is on it",
    OrderState.resolved: "resolved; waiting for review",
    OrderState.closed: "closed: the issue was dealt with",
    OrderState.rejected: "closed without action",
    OrderState.reopened: "reopened: seen again after it was resolved",
}


class ReportProgress(BaseModel):
    """What a resident sees: no worker names, no other residents' contacts, no free text."""

    tracking_id: str
    issue_type: IssueType
    state: OrderState = Field(description="the state of the order the report was filed under")
    status_note: str = Field(description="a fixed text for the state")
    reported_at: str
    updated_at: str
    steps: list[ProgressStep]


def create_report(session: Session, store: EvidenceStore, settings: Settings, report: ReportIn,
                  photo: bytes) -> ReportAccepted:
    checked = redacted_photo(photo, settings.max_upload_bytes)
    tracking_id = new_tracking_id()

    def write(keys: list[str]) -> ReportAccepted:
        begin_write(session)
        now = utcnow()
        sighting = Sighting(report.issue_type, now, None, None, report.lat, report.lon)
        filed = file_sighting(session, settings, sighting, lock=lock_step(session, settings, sighting))
        row = Report(tracking_id=tracking_id, order_id=filed.order_id, issue_type=report.issue_type, lat=report.lat,
                     lon=report.lon, text=report.text, contact=report.contact, created_at=now)
        session.add(row)
        session.flush()
        session.add(Evidence(order_id=filed.order_id, report_id=row.id, kind=EvidenceKind.report, object_key=keys[0],
                             content_type=checked.content_type, size=len(checked.data), sha256=checked.sha256,
                             width=checked.width, height=checked.height))
        session.commit()
        return ReportAccepted(tracking_id=tracking_id, status_url=f"/api/v1/reports/{tracking_id}")

    # Not under the tracking id: object keys end up in public media URLs, and the tracking id
    # is what opens the report's progress (the key's random attempt part makes it unique).
    return store_then_commit(session, store, "reports", [checked], write)


def report_progress(session: Session, tracking_id: str) -> ReportProgress | None:
    report = session.exec(select(Report).where(Report.tracking_id == tracking_id)).first()
    if report is None:
        return None
    order = session.get(Order, report.order_id)
    assert order is not None
    moves = session.exec(select(AuditEntry).where(AuditEntry.order_id == order.id,
                                                  col(AuditEntry.to_state).is_not(None))
                         .order_by(col(AuditEntry.id))).all()
    steps = [ProgressStep(state=m.to_state, at=as_utc(m.at).isoformat()) for m in moves if m.to_state is not None]
    return ReportProgress(tracking_id=tracking_id, issue_type=report.issue_type, state=order.state,
                          status_note=STATUS_NOTES[order.state], reported_at=as_utc(report.created_at).isoformat(),
                          updated_at=as_utc(order.updated_at).isoformat(), steps=steps)
