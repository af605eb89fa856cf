"""Open311 GeoReport v2 in XML, the format the standard requires: the documentation's element
names, the same content as JSON; discovery, service definitions, paging, absolute media URLs."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from api.db import get_engine
from api.evidence_store import make_store
from api.main import create_app
from api.models import Evidence, OrderState, utcnow
from api.open311_xml import to_xml
from api.settings import Settings
from tests.api.factories import event_json, jpeg, post, set_order

PUBLIC = {"Authorization": ""}
# The element names of the GeoReport v2 documentation's examples, per element.
DOCUMENTED = {
    "services": {"service"},
    "service": {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"},
    "service_definition": {"service_code", "attributes"},
    "attributes": {"attribute"},
    "service_requests": {"request"},
    "request": {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url", "token",
                "account_id"},
    "errors": {"error"},
    "error": {"code", "description"},
    "discovery": {"changeset", "contact", "key_service", "endpoints"},
    "endpoints": {"endpoint"},
    "endpoint": {"specification", "url", "changeset", "type", "formats"},
    "formats": {"format"},
}
DECLARATION = b"<?xml version='1.0' encoding='utf-8'?>"


def documented(resp, root: str):
    """Parse an XML answer and check every element against the documentation's names."""
    assert resp.headers["content-type"] == "text/xml; charset=utf-8"
    assert resp.content.startswith(DECLARATION)
    tree = SafeET.fromstring(resp.content)
    assert tree.tag == root
    for element in tree.iter():
        children = {child.tag for child in element}
        if children:
            assert children <= DOCUMENTED[element.tag], (element.tag, children - DOCUMENTED[element.tag])
    return tree


def as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def same_content(tree, items: list[dict]) -> None:
    """Each XML item carries exactly the JSON item's fields, value for value."""
    assert len(tree) == len(items)
    for element, item in zip(tree, items):
        assert [child.tag for child in element] == list(item)
        for child in element:
            assert child.text == as_text(item[child.tag]), child.tag


def test_every_read_endpoint_in_xml_has_the_json_content(client, backend):
    first = post(client, event_json(issue_type="flooding"), annotated=jpeg()).json()["order_id"]
    second = post(client, event_json(issue_type="clutter", camera="cam-2")).json()["order_id"]
    set_order(backend, second, state=OrderState.closed)
    for path, root in [("services", "services"), ("requests", "service_requests"),
                       (f"requests/{first}", "service_requests")]:
        as_json = client.get(f"/open311/v2/{path}.json", headers=PUBLIC).json()
        tree = documented(client.get(f"/open311/v2/{path}.xml", headers=PUBLIC), root)
        if path != "services":  # media URLs are signed anew on each call
            for item in as_json:
                item["media_url"] = item["media_url"] and "…"
            for element in tree:
                media = element.find("media_url")
                media.text = media.text and "…"
        same_content(tree, as_json)
    requests = client.get("/open311/v2/requests.xml", headers=PUBLIC, params={"status": "closed"})
    assert [r.findtext("service_request_id") for r in documented(requests, "service_requests")] == [str(second)]


def test_service_definitions_and_discovery(client):
    for fmt in ("json", "xml"):
        resp = client.get(f"/open311/v2/services/flooding.{fmt}", headers=PUBLIC)
        assert resp.status_code == 200, resp.text
        if fmt == "json":
            assert resp.json() == {"service_code": "flooding", "attributes": []}
        else:
            tree = documented(resp, "service_definition")
            assert tree.findtext("service_code") == "flooding" and list(tree.find("attributes")) == []
        missing = client.get(f"/open311/v2/services/graffiti.{fmt}", headers=PUBLIC)
        assert missing.status_code == 404
    for path in ("/open311/discovery", "/open311/v2/discovery"):
        found = client.get(f"{path}.json", headers=PUBLIC).json()
        (endpoint,) = found["endpoints"]
        assert endpoint["url"] == "http://testserver/open311/v2" and endpoint["changeset"] == found["changeset"]
        assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
        assert set(endpoint["formats"]) == {"text/xml", "application/json"}
        tree = documented(client.get(f"{path}.xml", headers=PUBLIC), "discovery")
        assert [f.text for f in tree.findall("endpoints/endpoint/formats/format")] == endpoint["formats"]


@pytest.mark.parametrize("url,params,status", [
    ("/open311/v2/requests", {"status": "pending"}, 400),
    ("/open311/v2/requests", {"service_code": "graffiti"}, 400),
    ("/open311/v2/requests", {"start_date": "yesterday"}, 400),
    ("/open311/v2/requests", {"page_size": "1001"}, 400),
    ("/open311/v2/requests", {"page": "0"}, 400),
    ("/open311/v2/requests/999", {}, 404),
    ("/open311/v2/tokens/SW-0000000000", {}, 404),
    ("/open311/v2/services", {"jurisdiction_id": "elsewhere.gov"}, 404),
])
def test_errors_come_in_the_requested_format(sqlite_backend, url, params, status):
    settings = sqlite_backend.model_copy(update={"open311_jurisdiction_id": "city.gov.cn"})
    with TestClient(create_app(settings)) as c:
        as_json = c.get(f"{url}.json", params=params)
        assert as_json.status_code == status and as_json.json()[0]["code"] == status
        description = as_json.json()[0]["description"]
        tree = documented(c.get(f"{url}.xml", params=params), "errors")
        assert (tree.findtext("error/code"), tree.findtext("error/description")) == (str(status), description)
        assert c.get("/open311/v2/services.json", params={"jurisdiction_id": "city.gov.cn"}).status_code == 200


def test_paging_and_the_default_window(client, backend):
    ids = [post(client, event_json(camera=f"cam-{n}")).json()["order_id"] for n in range(5)]
    old = post(client, event_json(camera="cam-9")).json()["order_id"]
    set_order(backend, old, created_at=utcnow() - timedelta(days=91))  # outside the standard's 90 days
    newest_first = [str(i) for i in reversed(ids)]

    def page(fmt: str, **params) -> list[str]:
        resp = client.get(f"/open311/v2/requests.{fmt}", headers=PUBLIC, params=params)
        if fmt == "json":
            return [r["service_request_id"] for r in resp.json()]
        return [r.findtext("service_request_id") for r in documented(resp, "service_requests")]

    for fmt in ("json", "xml"):
        assert page(fmt) == newest_first
        assert [page(fmt, page=n, page_size=2) for n in (1, 2, 3, 4)] == [
            newest_first[:2], newest_first[2:4], newest_first[4:], []]
    start = (utcnow() - timedelta(days=100)).isoformat()
    assert page("json", start_date=start) == [str(old), *newest_first]  # ids, newest first


def test_media_url_is_absolute_on_the_public_url_and_serves_the_stored_photo(sqlite_backend):
    settings = sqlite_backend.model_copy(update={"public_url": "https://streetwatch.city.gov.cn/sw/"})
    with TestClient(create_app(settings)) as c:
        report = c.post("/api/v1/reports", files={"photo": ("p.jpg", jpeg(), "image/jpeg")},
                        data={"issue_type": "clutter", "lat": 31.2, "lon": 121.4})
        assert report.status_code == 201, report.text
        (request,) = c.get("/open311/v2/requests.json").json()
        media = urlsplit(request["media_url"])
        assert (media.scheme, media.netloc) == ("https", "streetwatch.city.gov.cn")
        assert media.path.startswith("/sw/api/v1/evidence/")  # the deployment's path prefix kept
        # What the link serves is the stored report photo (redacted when it was stored).
        served = c.get(media.path.removeprefix("/sw") + "?" + media.query)
        with Session(get_engine(settings.database_url)) as s:
            key = s.exec(select(Evidence.object_key)).one()
        assert served.status_code == 200 and served.content == make_store(settings).get(key)
        discovery = c.get("/open311/discovery.json").json()
        assert discovery["endpoints"][0]["url"] == "https://streetwatch.city.gov.cn/sw/open311/v2"
    with TestClient(create_app(sqlite_backend)) as c:  # unset: the URL the request came to
        assert c.get("/open311/v2/requests.json").json()[0]["media_url"].startswith("http://testserver/api/v1/")


def test_xml_writer_escapes_and_drops_what_xml_cannot_carry():
    written = to_xml("errors", [{"code": 400, "description": "a<b & \x01c\ud800"}])
    tree = SafeET.fromstring(written)
    assert tree.findtext("error/description") == "a<b & \ufffdc\ufffd"
    assert SafeET.fromstring(to_xml("service_requests", [{"lat": None, "ok": True}]))[0].findtext("ok") == "true"
    with pytest.raises(ValueError, match="no item element"):
        to_xml("things", [1])


@pytest.mark.parametrize("url", ["ftp://city.gov.cn", "streetwatch.city.gov.cn", "https://city.gov.cn/?a=1"])
def test_public_url_must_be_a_bare_http_base(url):
    with pytest.raises(ValueError, match="public_url"):
        Settings(public_url=url)
