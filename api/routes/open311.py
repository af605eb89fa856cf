"""Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2): every endpoint in XML (the
format the standard requires) and JSON, by the path's extension; service discovery; POST of
service requests with an Open311 key; the paging extension (`page`, `page_size`).

Reading is public, like most cities' 311 read APIs: it shows no reporter contact and no worker,
and evidence only as short-lived presigned URLs. Refusals are GeoReport errors in the requested
format (api/open311_format.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from starlette.datastructures import FormData

from api.auth import Principal, known_principal, look_up_key
from api.deps import SessionDep, SettingsDep, StoreDep
from api.models import Role
from api.open311 import (MAX_REQUESTS, Discovery, Service, ServiceDefinition, ServiceRequest, TokenAnswer,
                         check_jurisdiction, discovery, request_ids, requests, service_definition, services,
                         token_request)
from api.open311_format import Open311Error, Open311Route, render
from api.open311_post import FIELDS, PostedRequest, file_request
from api.rate_limit import limit_reports
from api.schemas import IssueType, UtcDateTime

Fmt = Annotated[Literal["json", "xml"], Path(description="the answer's format: xml (the standard's) or json")]
OPEN311_ROLES = frozenset({Role.open311_client, Role.admin})


class GeoReportError(BaseModel):
    code: int
    description: str


def _answers(model: Any = None, **errors: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI: every answer comes as JSON or XML; errors as GeoReport's list of {code, description}."""
    xml = {"text/xml": {"schema": {"type": "string"}}}
    docs: dict[int | str, dict[str, Any]] = {200: {"content": xml}}
    if model is not None:
        docs = {201: {"model": model, "content": xml}}
    docs[400] = {"model": list[GeoReportError], "description": "A parameter is missing or malformed", "content": xml}
    docs[404] = {"model": list[GeoReportError], "description": "Unknown jurisdiction_id", "content": xml}
    for status, description in errors.items():
        docs[int(status[1:])] = {"model": list[GeoReportError], "description": description, "content": xml}
    return docs


async def _jurisdiction(settings: SettingsDep, jurisdiction_id: Annotated[str | None, Query(
        max_length=100, description="checked against STREETWATCH_OPEN311_JURISDICTION_ID when that is set")] = None
                        ) -> None:
    check_jurisdiction(jurisdiction_id, settings)


async def _base_url(request: Request, settings: SettingsDep) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


BaseUrl = Annotated[str, Depends(_base_url)]
router = APIRouter(prefix="/open311", tags=["open311"], route_class=Open311Route,
                   dependencies=[Depends(_jurisdiction)])


@router.get("/discovery.{fmt}", response_model=Discovery, responses=_answers())
@router.get("/v2/discovery.{fmt}", response_model=Discovery, responses=_answers())
def get_discovery(fmt: Fmt, base: BaseUrl) -> Response:
    """Service discovery: the endpoint, its formats and the spec it follows."""
    return render(fmt, "discovery", discovery(base))


@router.get("/v2/services.{fmt}", response_model=list[Service], responses=_answers())
def get_services(fmt: Fmt) -> Response:
    """Issue types as 311 services."""
    return render(fmt, "services", services())


@router.get("/v2/services/{service_code}.{fmt}", response_model=ServiceDefinition, responses=_answers())
def get_service_definition(service_code: Annotated[str, Path(max_length=40)], fmt: Fmt) -> Response:
    """A service's definition: no service has extra attributes, so the list is empty."""
    try:
        code = IssueType(service_code)
    except ValueError:
        raise Open311Error(404, f"service_code: no service {service_code!r}") from None
    return render(fmt, "service_definition", service_definition(code))


@router.get("/v2/requests.{fmt}", response_model=list[ServiceRequest], responses=_answers())
def get_requests(
    fmt: Fmt, session: SessionDep, store: StoreDep, settings: SettingsDep, base: BaseUrl,
    service_request_id: Annotated[str | None, Query(
        description="comma-separated request ids, or the tracking ids (SW-…) reports were given; "
                    "other filters are then ignored")] = None,
    service_code: Annotated[str | None, Query(description="comma-separated service codes")] = None,
    start_date: Annotated[UtcDateTime | None, Query()] = None,
    end_date: Annotated[UtcDateTime | None, Query()] = None,
    status: Annotated[str | None, Query(description="open or closed (comma-separated)")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000, description="paging extension: the page, from 1")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_REQUESTS, description="paging extension: requests per page")
                         ] = MAX_REQUESTS,
) -> Response:
    """Orders as service requests, newest first, 1000 a page; the last 90 days by default."""
    try:
        ids = request_ids(session, service_request_id.split(",")) if service_request_id else None
    except ValueError:
        raise Open311Error(400, "service_request_id: must be comma-separated request ids or tracking ids (SW-…)"
                           ) from None
    codes = None
    if service_code:
        try:
            codes = [IssueType(c.strip()) for c in service_code.split(",")]
        except ValueError:
            known = ", ".join(t.value for t in IssueType)
            raise Open311Error(400, f"service_code: unknown; one of {known}") from None
    statuses = {s.strip() for s in status.split(",")} if status else set()
    if statuses - {"open", "closed"}:
        raise Open311Error(400, "status: must be open or closed")
    one_status = statuses.pop() if len(statuses) == 1 else None
    found = requests(session, store, settings.presign_expiry_seconds, base, ids, codes, start_date, end_date,
                     one_status, page, page_size)
    return render(fmt, "service_requests", found)


@router.get("/v2/requests/{service_request_id}.{fmt}", response_model=list[ServiceRequest],
            responses=_answers(e404="No such request"))
def get_request(service_request_id: Annotated[str, Path(max_length=20)], fmt: Fmt, session: SessionDep,
                store: StoreDep, settings: SettingsDep, base: BaseUrl) -> Response:
    """One service request (a list of one, as the spec has it), by its id or a report's tracking id."""
    try:
        ids = request_ids(session, [service_request_id])
    except ValueError:
        raise Open311Error(400, "service_request_id: must be a request id or a tracking id (SW-…)") from None
    found = requests(session, store, settings.presign_expiry_seconds, base, ids)
    if not found:
        raise Open311Error(404, f"service_request_id: no service request {service_request_id}")
    return render(fmt, "service_requests", found)


@router.get("/v2/tokens/{token}.{fmt}", response_model=list[TokenAnswer], responses=_answers(e404="No such token"))
def get_token(token: Annotated[str, Path(max_length=20)], fmt: Fmt, session: SessionDep) -> Response:
    """The service request a POST's token was filed under."""
    answer = token_request(session, token)
    if answer is None:
        raise Open311Error(404, f"token: no service request for token {token}")
    return render(fmt, "service_requests", [answer])


async def _form(request: Request) -> AsyncIterator[FormData]:
    # Parsed once here (the key is one of its fields); the photo part is spooled to disk by
    # Starlette and closed when the request is done.
    form = await request.form(max_files=2, max_fields=len(FIELDS) + 20)
    try:
        yield form
    finally:
        await form.close()


FormDep = Annotated[FormData, Depends(_form)]


async def open311_client(
    form: FormDep, session: SessionDep, settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>, instead of the api_key field")] = None,
    x_api_key: Annotated[str | None, Header(description="alternative to Authorization")] = None,
) -> Principal:
    """The caller of a POST: GeoReport sends the key as the `api_key` field; the project's own
    headers work too. (Deliberately not marked with `roles` like api.auth.require: that mark
    makes api/key_first.py demand a header key before the body, where this key is.)"""
    field = form.get("api_key")
    key = field.strip() if isinstance(field, str) else None
    if not key and x_api_key:
        key = x_api_key.strip()
    if not key and authorization and authorization[:7].lower() == "bearer ":
        key = authorization[7:].strip()
    if not key:
        raise Open311Error(401, "api_key: required to file a service request (a key with the open311_client role)")
    principal = known_principal(settings.api_key, key) or await run_in_threadpool(
        look_up_key, session, key, settings.key_cache_seconds)
    if principal.role not in OPEN311_ROLES:
        raise Open311Error(403, f"api_key: role {principal.role.value} may not file service requests; "
                                "open311_client and admin keys may")
    return principal


POST_FIELDS = {name: {"type": "string"} for name in FIELDS if name != "media"} | {
    "media": {"type": "string", "format": "binary", "description": "the photo, JPEG or PNG"}}
POST_BODY = {"requestBody": {"content": {
    "multipart/form-data": {"schema": {"type": "object", "properties": POST_FIELDS}},
    "application/x-www-form-urlencoded": {"schema": {"type": "object", "properties": POST_FIELDS}}}}}


@router.post("/v2/requests.{fmt}", status_code=201, openapi_extra=POST_BODY,
             dependencies=[Depends(open311_client), Depends(limit_reports)],
             responses=_answers(list[PostedRequest], e401="No api_key, or an unknown one",
                                e403="The key's role may not file requests", e413="Photo too large",
                                e429="Too many reports from this address; see Retry-After",
                                e503="Evidence store unavailable; nothing was stored"))
def post_request(fmt: Fmt, form: FormDep, session: SessionDep, store: StoreDep, settings: SettingsDep,
                 base: BaseUrl) -> Response:
    """File a service request: `service_code`, `lat` and `long`, a photo as the multipart `media`
    part (or `media_url` on a host in STREETWATCH_OPEN311_MEDIA_HOSTS), optional `description`,
    `address_string` and contact fields. It is a citizen report like POST /api/v1/reports: it
    joins an open order of its type nearby or opens one."""
    return render(fmt, "service_requests", [file_request(session, store, settings, form, base)], 201)
