"""Open311 as a 311 app meets it: two published GeoReport v2 clients from PyPI drive a real API
server (uvicorn on loopback, SQLite, local evidence folder).

* `georeport` 0.3.1 reads: services, service definitions, requests, one request, in JSON and
  XML. It cannot post (its README: "does not currently support the creation of new 311 service
  requests") and has no paging parameter.
* `three` 0.8.0 (the PyPI release, 2013) posts, reads tokens and pages. It is Python 2 code:
  on Python 3 `import three` fails at `from itertools import ifilter`; `three_client()` puts
  Python 3's `filter` (the same lazy filter) under that name for the import and changes nothing
  else. Its XML reader cannot work on Python >= 3.9 (relaxml calls Element.getchildren(), which
  is gone), so three is used in JSON only; XML posts are tested in test_open311_post.py.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
import requests
import uvicorn
from georeport import GeoReport
from sqlmodel import Session, func, select

from api.db import get_engine, upgrade_database
from api.main import create_app
from api.models import Order, OrderSource, Report, utcnow
from api.schemas import IssueType
from api.settings import Settings
from tests.api.conftest import sqlite_settings
from tests.api.factories import jpeg, make_key

SEEDED = 2500  # flooding orders, to page through; the clients' own posts are clutter


def three_client(endpoint: str, api_key: str):
    """three 0.8.0 with the one Python 2 name its import needs (see the module docstring)."""
    had = hasattr(itertools, "ifilter")
    itertools.ifilter = filter  # type: ignore[attr-defined]
    try:
        from three import Three
    finally:
        if not had:
            del itertools.ifilter  # type: ignore[attr-defined]
    return Three(endpoint, api_key=api_key, format="json")


@dataclass
class Server:
    url: str
    settings: Settings
    key: str

    @property
    def endpoint(self) -> str:
        return f"{self.url}/open311/v2"

    def reports(self) -> int:
        with Session(get_engine(self.settings.database_url)) as s:
            return s.exec(select(func.count()).select_from(Report)).one()


def _seed(settings: Settings) -> None:
    """SEEDED orders over the last 60 days, as if residents had reported them."""
    now = utcnow()
    with Session(get_engine(settings.database_url)) as s:
        for n in range(SEEDED):
            at = now - timedelta(days=60) + timedelta(minutes=30 * n)
            s.add(Order(issue_type=IssueType.flooding, source=OrderSource.citizen, first_seen=at, last_seen=at,
                        lat=31.0 + n * 0.001, lon=121.0, created_at=at, updated_at=at))
        s.commit()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    settings = sqlite_settings(tmp_path_factory.mktemp("open311"))
    settings = settings.model_copy(update={"report_rate_per_minute": 1000})
    upgrade_database(settings.database_url)
    _seed(settings)
    key = make_key(settings, "open311_client")
    uv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started, "uvicorn did not start"
    port = uv.servers[0].sockets[0].getsockname()[1]
    try:
        yield Server(f"http://127.0.0.1:{port}", settings, key)
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def photo_file(tmp_path):
    path = tmp_path / "pile.jpg"
    path.write_bytes(jpeg())
    with path.open("rb") as f:
        yield f


def test_three_posts_a_request_and_reads_it_back(server, photo_file):
    t = three_client(server.endpoint, server.key)
    (endpoint,) = t.discovery()["endpoints"]
    assert endpoint["url"] == server.endpoint and "text/xml" in endpoint["formats"]
    assert {s["service_code"] for s in t.services()} == {"street_vending", "clutter", "flooding"}
    assert t.services("clutter") == {"service_code": "clutter", "attributes": []}

    before = server.reports()
    answer = t.post("clutter", lat="31.2304", long="121.4737", address="Nanjing Rd 1", name="Li Lei",
                    email="li@example.cn", description="mattress on the pavement", media=photo_file)
    assert t.post_response.status_code == 201, answer
    (posted,) = answer
    request_id, token = posted["service_request_id"], posted["token"]
    assert server.reports() == before + 1

    assert t.token(token) == [{"service_request_id": request_id, "token": token}]
    (mine,) = t.request(request_id)
    assert mine["service_code"] == "clutter" and mine["status"] == "open"
    assert mine["media_url"].startswith(server.url + "/api/v1/evidence/")
    assert requests.get(mine["media_url"], timeout=10).headers["content-type"] == "image/jpeg"
    listed = t.requests("clutter")
    assert request_id in [r["service_request_id"] for r in listed]
    for fmt in ("json", "xml"):  # and georeport, which cannot post, reads it back in both formats
        reader = GeoReport(server.endpoint, output_format=fmt)
        assert reader.get_service_request(request_id)["service_code"] == "clutter"
        found = reader.get_service_requests(service_code="clutter")
        found = found if isinstance(found, list) else [found]  # xmltodict gives one <request> as a dict
        assert request_id in [r["service_request_id"] for r in found]


def test_three_gets_georeport_errors_and_nothing_is_stored(server, photo_file):
    t = three_client(server.endpoint, server.key)
    before = server.reports()
    cases = [  # (arguments, status, words of the description)
        ({"code": "graffiti", "lat": "31.2", "long": "121.4"}, 400, "service_code"),
        ({"code": "clutter", "address": "Nanjing Rd 1"}, 400, "lat and long"),
        ({"code": "clutter", "lat": "31.2", "long": "121.4", "api_key": "sw_wrong"}, 401, "API key"),
        ({"code": "clutter", "lat": "31.2", "long": "121.4", "media_url": "https://photos.example.com/1.jpg"},
         400, "media_url"),
    ]
    for kwargs, status, words in cases:
        code = kwargs.pop("code")
        answer = t.post(code, **kwargs) if "media_url" in kwargs else t.post(code, media=photo_file, **kwargs)
        photo_file.seek(0)
        assert t.post_response.status_code == status, answer
        (error,) = answer
        assert error["code"] == status and words in error["description"], error
    assert server.reports() == before


def test_three_pages_through_2500_requests(server):
    t = three_client(server.endpoint, server.key)
    default = t.requests("flooding")
    assert len(default) == 1000  # the standard's cap when no page is asked for
    pages = [t.requests("flooding", page=n, count=1000) for n in (1, 2, 3, 4)]  # three sends count as page_size
    assert [len(p) for p in pages] == [1000, 1000, 500, 0]
    ids = [r["service_request_id"] for p in pages for r in p]
    assert len(set(ids)) == SEEDED and ids == sorted(ids, key=int, reverse=True)  # newest first, none twice
    assert len({r["service_request_id"] for n in range(1, 6) for r in t.requests("flooding", page=n, count=500)}) \
        == SEEDED


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_georeport_reads_in_json_and_xml(server, fmt):
    client = GeoReport(server.endpoint, output_format=fmt)
    services = client.get_service_list()
    assert {s["service_code"] for s in services} == {"street_vending", "clutter", "flooding"}
    assert {s["metadata"] for s in services} == ({False} if fmt == "json" else {"false"})
    definition = client.get_service_definition("flooding")
    assert definition["service_code"] == "flooding"

    floods = client.get_service_requests(service_code="flooding", status="open")
    assert len(floods) == 1000  # georeport has no paging parameter: it sees the standard's first 1000
    newest = floods[0]
    one = client.get_service_request(newest["service_request_id"])
    assert one == newest
    assert float(one["lat"]) == pytest.approx(31.0 + (SEEDED - 1) * 0.001)
    by_ids = client.get_service_requests(service_request_id=f"{floods[0]['service_request_id']},"
                                                            f"{floods[1]['service_request_id']}")
    assert [r["service_request_id"] for r in by_ids] == [floods[0]["service_request_id"],
                                                         floods[1]["service_request_id"]]

    with pytest.raises(requests.HTTPError) as refused:
        client.get_service_definition("graffiti")
    answer = refused.value.response
    assert answer.status_code == 404
    if fmt == "xml":
        assert answer.headers["content-type"].startswith("text/xml") and b"<errors><error><code>404" in answer.content
    else:
        assert answer.json()[0]["code"] == 404
