"""Open311 POST requests: a 311 app's service request becomes a citizen report, filed by
api.reports.create_report, the very path of POST /api/v1/reports (image checks and
redaction, size limits, dedup into orders, tracking id). This module only translates
GeoReport's fields into that call and refuses, naming the field, what it cannot take."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel
from sqlmodel import Session
from starlette.datastructures import FormData, UploadFile

from api.evidence_store import EvidenceStore
from api.images import BadImage, TooLarge
from api.open311 import check_jurisdiction, token_request
from api.open311_format import Open311Error
from api.reports import ReportIn, create_report
from api.schemas import IssueType
from api.settings import Settings

TEXT_FIELDS = ("api_key", "jurisdiction_id", "service_code", "lat", "long", "address_string", "address_id", "email",
               "device_id", "account_id", "first_name", "last_name", "phone", "description", "media_url")
FIELDS = (*TEXT_FIELDS, "media")  # `media`: the multipart photo part several cities accept
MAX_TEXT = 2000  # ReportIn.text
MAX_CONTACT = 200  # ReportIn.contact
MEDIA_FETCH_TIMEOUT_S = 10.0


class PostedRequest(BaseModel):
    """GeoReport's answer to a POST. The order is known at once, so `service_request_id` is
    always there; `token` is the report's tracking id (GET tokens/{token}, or the resident's
    GET /api/v1/reports/{tracking_id})."""

    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None = None


@dataclass(frozen=True)
class Photo:
    part: UploadFile | None
    url: str | None


def _fields(form: FormData) -> dict[str, str]:
    """The plain fields, each once; the photo part is read separately."""
    values: dict[str, str] = {}
    sent = Counter(name for name, _ in form.multi_items())
    for name, value in form.multi_items():
        if name.startswith("attribute[") and name.endswith("]"):
            continue  # no service has attributes (`metadata` is false); nothing to read
        if name not in FIELDS:
            raise Open311Error(400, f"{name}: unknown field; this call takes {', '.join(FIELDS)}")
        if sent[name] > 1:
            raise Open311Error(400, f"{name}: sent more than once; send each field once")
        if name == "media":
            if not isinstance(value, UploadFile):
                raise Open311Error(400, "media: must be a file part of a multipart/form-data request")
            continue
        if isinstance(value, UploadFile):
            raise Open311Error(400, f"{name}: must be a plain field, not a file")
        values[name] = value.strip()
    return values


def _coordinate(fields: dict[str, str], name: str, bound: float) -> float:
    try:
        value = float(fields[name])
    except ValueError:
        raise Open311Error(400, f"{name}: must be a number, got {fields[name][:40]!r}") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise Open311Error(400, f"{name}: must be between -{bound:g} and {bound:g}")
    return value


def parse_post(form: FormData, settings: Settings) -> tuple[ReportIn, Photo]:
    """The report a POST asks for and where its photo is; Open311Error (400/404) names the field."""
    fields = {k: v for k, v in _fields(form).items() if v}
    check_jurisdiction(fields.get("jurisdiction_id"), settings)
    code = fields.get("service_code")
    if code is None:
        raise Open311Error(400, "service_code: required; GET services.json lists them")
    try:
        issue_type = IssueType(code)
    except ValueError:
        known = ", ".join(t.value for t in IssueType)
        raise Open311Error(400, f"service_code: {code[:40]!r} is not a service here; one of {known}") from None
    if "lat" not in fields or "long" not in fields:
        # address_string and address_id alone cannot be placed: there is no geocoder here.
        raise Open311Error(400, "lat and long: both required (an address_string alone cannot be placed)")
    lat, lon = _coordinate(fields, "lat", 90), _coordinate(fields, "long", 180)
    text = "\n".join(filter(None, [fields.get("description"),
                                   f"address: {fields['address_string']}" if "address_string" in fields else None]))
    if len(text) > MAX_TEXT:
        raise Open311Error(400, f"description and address_string: at most {MAX_TEXT} characters together")
    name = " ".join(filter(None, [fields.get("first_name"), fields.get("last_name")]))
    contact = ", ".join(filter(None, [name, fields.get("email"), fields.get("phone")]))
    if len(contact) > MAX_CONTACT:
        raise Open311Error(400, f"first_name, last_name, email and phone: at most {MAX_CONTACT} characters together")
    part = form.get("media")
    url = fields.get("media_url")
    if part is None and url is None:
        raise Open311Error(400, "media: a photo is required, as a multipart `media` part (or a media_url on a "
                                "host this server fetches from)")
    if part is not None and url is not None:
        raise Open311Error(400, "media and media_url: send the photo one way, not both")
    report = ReportIn(issue_type=issue_type, lat=lat, lon=lon, text=text or None, contact=contact or None)
    return report, Photo(part if isinstance(part, UploadFile) else None, url)


def _allowed(url: str, settings: Settings) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise Open311Error(400, "media_url: must be an http(s) URL without credentials")
    host = parts.hostname.lower()
    hosts = settings.open311_media_hosts
    if host not in hosts and f"{host}:{parts.port}" not in hosts:
        # No server-side fetch of arbitrary URLs: they could reach the city's internal network.
        raise Open311Error(400, f"media_url: host {host} is not one this server fetches from; send the photo as "
                                "a multipart `media` part")
    return url


def fetch_media(url: str, settings: Settings) -> bytes:
    """The photo at an allowed `media_url`: no redirects (they could lead to any host), no more
    than the upload limit."""
    limit = settings.max_upload_bytes
    try:
        with httpx.Client(timeout=MEDIA_FETCH_TIMEOUT_S, follow_redirects=False) as client, \
                client.stream("GET", _allowed(url, settings)) as answer:
            if answer.status_code != 200:
                raise Open311Error(400, f"media_url: its server answered HTTP {answer.status_code}")
            data = bytearray()
            for chunk in answer.iter_bytes():
                data += chunk
                if len(data) > limit:
                    raise TooLarge("media_url", limit)
            return bytes(data)
    except httpx.HTTPError as exc:
        raise Open311Error(400, f"media_url: could not be fetched ({type(exc).__name__})") from None


def read_part(part: UploadFile, limit: int) -> bytes:
    data = part.file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge("media", limit)
    return data


def file_request(session: Session, store: EvidenceStore, settings: Settings, form: FormData,
                 base_url: str) -> PostedRequest:
    """Everything is checked before the photo is fetched, and the photo before anything is stored."""
    report, photo = parse_post(form, settings)
    data = read_part(photo.part, settings.max_upload_bytes) if photo.part is not None else \
        fetch_media(photo.url or "", settings)
    source = "media" if photo.part is not None else "media_url"
    try:
        accepted = create_report(session, store, settings, report, data)
    except BadImage as exc:  # named after the report's field (`photo`): say which of ours it was
        raise Open311Error(400, f"{source}: {exc.reason}") from None
    except TooLarge:
        raise Open311Error(413, f"{source}: larger than the limit of {settings.max_upload_bytes} bytes") from None
    filed = token_request(session, accepted.tracking_id)
    assert filed is not None  # committed by create_report just now
    return PostedRequest(service_request_id=filed.service_request_id, token=accepted.tracking_id,
                         service_notice=f"keep {accepted.tracking_id} to follow it: "
                                        f"{base_url}/open311/v2/requests/{accepted.tracking_id}.json")
