"""Open311 GeoReport v2, read side: issue types as services, orders as service requests, so
existing city 311 tools can read Streetwatch's orders. Field names follow the spec; the
paging extension (`page`, `page_size`) is the one Chicago, Boston and Toronto run."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlmodel import Session, col, select

from api.evidence_store import EvidenceStore
from api.open311_format import Open311Error
from api.models import DONE_STATES, Camera, Evidence, Order, OrderState, Report, as_utc, utcnow
from api.reports import TRACKING_PATTERN
from api.schemas import MAX_ID, EvidenceKind, IssueType
from api.settings import Settings

SERVICES = {
    IssueType.street_vending: ("Street vending", "Stalls, carts or hawkers occupying road or sidewalk", "Street order"),
    IssueType.clutter: ("Clutter and waste", "Piled goods, dumped bulky waste, exposed garbage, overflowing bins",
                        "Sanitation"),
    IssueType.flooding: ("Flooding", "Water pooling on a road", "Drainage"),
}
# GeoReport has two statuses; `closed` means nobody needs to act any more.
# Open311 is public: status notes are fixed texts per state, never the audit log's notes,
# which name workers and supervisors and carry reviewers' free text.
STATUS_NOTES = {
    OrderState.reported: "reported; waiting to be dispatched",
    OrderState.dispatched: "dispatched to the grid's worker",
    OrderState.in_progress: "a worker is on it",
    OrderState.resolved: "resolved; waiting for review",
    OrderState.closed: "closed",
    OrderState.rejected: "rejected",
    OrderState.reopened: "reopened: seen again after it was resolved",
}
MAX_REQUESTS = 1000  # the spec's upper bound per response, and the page size unless one is asked for
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default when no dates are given
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this endpoint's behaviour last changed (discovery's `changeset`): clients re-read the
# service list when it moves. Change it with any change to what the endpoint accepts or answers.
CHANGESET = "2026-12-03T00:00:00Z"


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool = False
    type: str = "realtime"
    keywords: str
    group: str


class ServiceDefinition(BaseModel):
    """No service has extra attributes (`metadata` is false), but clients may still ask."""

    service_code: str
    attributes: list[dict[str, str]] = []


class Endpoint(BaseModel):
    specification: str = SPECIFICATION
    url: str
    changeset: str = CHANGESET
    type: str = "production"
    formats: list[str] = ["text/xml", "application/json"]


class Discovery(BaseModel):
    changeset: str = CHANGESET
    contact: str
    key_service: str
    endpoints: list[Endpoint]


class TokenAnswer(BaseModel):
    service_request_id: str
    token: str


class ServiceRequest(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None = None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None
    long: float | None
    media_url: str | None


def services() -> list[Service]:
    return [Service(service_code=t.value, service_name=name, description=desc, keywords=t.value.replace("_", " "),
                    group=group) for t, (name, desc, group) in SERVICES.items()]


def check_jurisdiction(given: str | None, settings: Settings) -> None:
    """Clients name the jurisdiction with every call; one this endpoint does not serve is a 404."""
    served = settings.open311_jurisdiction_id
    if given and served and given != served:
        raise Open311Error(404, f"jurisdiction_id: {given[:100]!r} is not served here; this endpoint serves {served!r}")


def service_definition(code: IssueType) -> ServiceDefinition:
    return ServiceDefinition(service_code=code.value)


def discovery(base_url: str) -> Discovery:
    return Discovery(contact=f"{base_url}/docs",
                     key_service="an api_key for POST requests is an API key with the open311_client role, "
                                 "made by this deployment's administrator",
                     endpoints=[Endpoint(url=f"{base_url}/open311/v2")])


def token_request(session: Session, token: str) -> TokenAnswer | None:
    """A POST's token is the report's tracking id: it names the order the report was filed under."""
    if not re.fullmatch(TRACKING_PATTERN, token.upper()):
        return None
    order_id = session.exec(select(Report.order_id).where(Report.tracking_id == token.upper())).first()
    return TokenAnswer(service_request_id=str(order_id), token=token.upper()) if order_id is not None else None


def request_ids(session: Session, given: list[str]) -> list[int]:
    """Order ids for what a client gives as service_request_id: an order id, or the tracking id
    (SW-…) a resident got when reporting, which is all they have. ValueError if neither."""
    ids, tracking = [], []
    for raw in (g.strip() for g in given):
        if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_ID:
            ids.append(int(raw))
        elif re.fullmatch(TRACKING_PATTERN, raw.upper()):
            tracking.append(raw.upper())
        else:
            raise ValueError(raw)
    if tracking:
        ids += session.exec(select(Report.order_id).where(col(Report.tracking_id).in_(tracking))).all()
    return ids


def _iso(ts: datetime | None) -> str | None:
    return as_utc(ts).isoformat().replace("+00:00", "Z") if ts is not None else None


def requests(session: Session, store: EvidenceStore, expires: int, base_url: str, ids: list[int] | None = None,
             service_codes: list[IssueType] | None = None, start: datetime | None = None, end: datetime | None = None,
             status: str | None = None, page: int = 1, page_size: int = MAX_REQUESTS) -> list[ServiceRequest]:
    """Newest first, `page_size` (at most MAX_REQUESTS) per page. Media URLs are absolute on
    `base_url`: a 311 app on another host cannot resolve the local store's relative links."""
    query = select(Order, Camera.name).join(Camera, col(Camera.id) == col(Order.camera_id), isouter=True)
    if ids is not None:  # GeoReport v2: with ids, every other filter is ignored
        query = query.where(col(Order.id).in_(ids))
    else:
        end = end or utcnow()
        if start is None:
            start = end - DEFAULT_WINDOW if end > datetime.min.replace(tzinfo=end.tzinfo) + DEFAULT_WINDOW else end
        query = query.where(col(Order.created_at) >= start, col(Order.created_at) < end)
        if service_codes:
            query = query.where(col(Order.issue_type).in_(service_codes))
        if status == "open":
            query = query.where(col(Order.state).not_in(DONE_STATES))
        elif status == "closed":
            query = query.where(col(Order.state).in_(DONE_STATES))
    page_size = min(page_size, MAX_REQUESTS)
    rows = session.exec(query.order_by(col(Order.id).desc()).offset((page - 1) * page_size).limit(page_size)).all()
    order_ids = [o.id for o, _ in rows]
    media = _media(session, order_ids)
    return [_request(o, cam, absolute(base_url, store.presigned_url(media[o.id], expires)) if o.id in media
                     else None) for o, cam in rows]


def absolute(base_url: str, url: str) -> str:
    """An S3 presigned URL is absolute already (its host is signed); the local store's links
    are paths of this API, so they go under the public base, path prefix included."""
    return base_url + url if url.startswith("/") else url


def _status_note(order: Order) -> str:
    note = STATUS_NOTES[order.state]
    if order.state == OrderState.rejected and order.reject_reason is not None:
        note += f" ({order.reject_reason.value.replace('_', ' ')})"  # a code from a fixed list, not free text
    return note


def _request(order: Order, camera: str | None, media_url: str | None) -> ServiceRequest:
    name, _, _ = SERVICES[order.issue_type]
    closed = order.state in DONE_STATES
    return ServiceRequest(
        service_request_id=str(order.id), status="closed" if closed else "open",
        status_notes=_status_note(order), service_name=name,
        service_code=order.issue_type.value,
        description=f"seen by camera {camera}" if camera else "reported by a resident",
        agency_responsible=f"grid {order.grid_id}" if order.grid_id else None,
        requested_datetime=_iso(order.created_at) or "", updated_datetime=_iso(order.updated_at) or "",
        expected_datetime=None if closed else _iso(order.sla_due_at),
        address=f"camera {camera}" if camera else None, lat=order.lat, long=order.lon, media_url=media_url)


def _media(session: Session, order_ids: list) -> dict[int, str]:
    if not order_ids:
        return {}
    rows = session.exec(select(Evidence.order_id, Evidence.object_key)
                        .where(col(Evidence.order_id).in_(order_ids),
                               col(Evidence.kind).in_([EvidenceKind.annotated, EvidenceKind.report]))
                        .order_by(col(Evidence.id))).all()
    return {order_id: key for order_id, key in rows}
