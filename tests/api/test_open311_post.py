"""Open311 POST requests: a 311 app files a service request with an open311_client key; it
becomes a citizen report through the same path as POST /api/v1/reports, and every refusal is
a GeoReport error in the requested format that stores nothing."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator

import defusedxml.ElementTree as SafeET
import httpx
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlmodel import Session, func, select

from api.db import get_engine
from api.evidence_store import StoreUnavailable
from api.main import create_app
from api.models import Report
from api.settings import Settings
from tests.api.factories import auth, counts, jpeg, make_key, stored_objects

PUBLIC = {"Authorization": ""}


def stored(settings: Settings) -> dict[str, object]:
    """Everything a refused POST must leave as it was."""
    with Session(get_engine(settings.database_url)) as s:
        reports = s.exec(select(func.count()).select_from(Report)).one()
    return {**counts(settings), "report": reports, "objects": stored_objects(settings)}


def open311_app(settings: Settings, **overrides: object) -> TestClient:
    return TestClient(create_app(settings.model_copy(update={"report_rate_per_minute": 1000, **overrides})),
                      headers=PUBLIC)


@pytest.fixture
def o311(backend: Settings) -> Iterator[TestClient]:
    with open311_app(backend) as c:
        yield c


def fields(key: str, **extra: str) -> dict[str, str]:
    return {"api_key": key, "service_code": "clutter", "lat": "31.2304", "long": "121.4737",
            "description": "mattress on the pavement", "first_name": "Li", "last_name": "Lei",
            "email": "li@example.cn", "address_string": "Nanjing Rd 1", **extra}


def photo(data: bytes | None = None) -> dict[str, tuple[str, bytes, str]]:
    return {"media": ("photo.jpg", data if data is not None else jpeg(), "image/jpeg")}


def error_of(resp, fmt: str) -> tuple[int, str]:
    if fmt == "xml":
        assert resp.headers["content-type"].startswith("text/xml")
        root = SafeET.fromstring(resp.content)
        assert root.tag == "errors" and [e.tag for e in root] == ["error"]
        return int(root.findtext("error/code")), root.findtext("error/description")
    (err,) = resp.json()
    return err["code"], err["description"]


def test_a_posted_request_is_a_citizen_report_and_reads_back(o311, backend):
    key = make_key(backend, "open311_client")
    resp = o311.post("/open311/v2/requests.json", data=fields(key), files=photo())
    assert resp.status_code == 201, resp.text
    (answer,) = resp.json()
    token, request_id = answer["token"], answer["service_request_id"]
    assert token.startswith("SW-") and answer["service_notice"] and answer["account_id"] is None

    (mine,) = o311.get(f"/open311/v2/requests/{request_id}.json").json()
    assert mine["service_code"] == "clutter" and mine["status"] == "open" and mine["media_url"].startswith("http")
    assert (mine["lat"], mine["long"]) == (31.2304, 121.4737)
    assert [r["service_request_id"] for r in o311.get("/open311/v2/requests.json").json()] == [request_id]
    assert o311.get(f"/open311/v2/tokens/{token}.json").json() == [{"service_request_id": request_id,
                                                                     "token": token}]
    progress = o311.get(f"/api/v1/reports/{token}").json()  # the resident's own view works too
    assert progress["issue_type"] == "clutter" and progress["state"] in ("reported", "dispatched")
    with Session(get_engine(backend.database_url)) as s:
        report = s.exec(select(Report)).one()
    assert report.contact == "Li Lei, li@example.cn"
    assert report.text == "mattress on the pavement\naddress: Nanjing Rd 1"

    # Ten metres away, the same issue: it joins the order (dedup), as a report would.
    again = o311.post("/open311/v2/requests.xml", data=fields(key, lat="31.23049"), files=photo())
    assert again.status_code == 201, again.text
    root = SafeET.fromstring(again.content)
    assert root.tag == "service_requests" and [e.tag for e in root] == ["request"]
    assert {e.tag for e in root[0]} == {"service_request_id", "token", "service_notice", "account_id"}
    assert root.findtext("request/service_request_id") == request_id
    assert root.findtext("request/token") != token
    assert stored(backend)["report"] == 2 and stored(backend)["order"] == 1


def test_an_admin_key_in_the_header_may_post_too(o311, backend):
    body = {k: v for k, v in fields("").items() if k != "api_key"}
    resp = o311.post("/open311/v2/requests.json", data=body, files=photo(), headers=auth(make_key(backend, "admin")))
    assert resp.status_code == 201, resp.text


REFUSALS = [  # (fields changed, photo, status, words the description must name)
    ({"service_code": "graffiti"}, None, 400, "service_code"),
    ({"service_code": ""}, None, 400, "service_code"),
    ({"lat": "", "long": ""}, None, 400, "lat and long"),  # only address_string: nowhere to put it
    ({"long": ""}, None, 400, "lat and long"),
    ({"lat": "91"}, None, 400, "lat"),
    ({"long": "nan"}, None, 400, "long"),
    ({"lat": "north"}, None, 400, "lat"),
    ({"api_key": "sw_not-a-key"}, None, 401, "API key"),
    ({"api_key": ""}, None, 401, "api_key"),
    ({"media_url": "https://evil.example.com/p.jpg"}, False, 400, "media_url"),
    ({"media_url": "http://127.0.0.1:9/p.jpg"}, False, 400, "host 127.0.0.1"),
    ({"media_url": "https://evil.example.com/p.jpg"}, None, 400, "not both"),
    ({}, False, 400, "media"),
    ({}, b"\x89PNG\r\n\x1a\n broken", 400, "media"),
    ({"description": "x" * 2001}, None, 400, "description"),
    ({"phone": "1" * 201}, None, 400, "phone"),
    ({"colour": "red"}, None, 400, "colour"),
    ({"jurisdiction_id": "elsewhere.gov"}, None, 404, "jurisdiction_id"),
]


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_bad_posts_are_georeport_errors_in_the_requested_format_and_store_nothing(backend, fmt):
    with open311_app(backend, open311_jurisdiction_id="city.gov.cn") as o311:
        key = make_key(backend, "open311_client")
        before = stored(backend)
        for changes, data, status, words in REFUSALS:
            files = None if data is False else photo(data)
            resp = o311.post(f"/open311/v2/requests.{fmt}", data=fields(key, **changes), files=files)
            code, description = error_of(resp, fmt)
            assert (resp.status_code, code) == (status, status), (changes, resp.text)
            assert words in description, (changes, description)
        for role in ("edge", "reviewer"):
            other = o311.post(f"/open311/v2/requests.{fmt}", data=fields(make_key(backend, role)), files=photo())
            assert other.status_code == 403 and "open311_client" in error_of(other, fmt)[1], role
        assert stored(backend) == before
        ok = o311.post(f"/open311/v2/requests.{fmt}", data=fields(key, jurisdiction_id="city.gov.cn"), files=photo())
        assert ok.status_code == 201, ok.text


def test_reports_and_open311_posts_share_the_rate_limit_and_the_size_limit(sqlite_backend):
    key = make_key(sqlite_backend, "open311_client")
    with open311_app(sqlite_backend, report_rate_per_minute=2, max_upload_bytes=20_000) as o311:
        big = o311.post("/open311/v2/requests.xml", data=fields(key), files=photo(b"\xff\xd8\xff" + b"0" * 20_000))
        assert big.status_code == 413 and error_of(big, "xml")[0] == 413
        citizen = o311.post("/api/v1/reports", data={"issue_type": "clutter", "lat": 31.2, "lon": 121.4},
                            files={"photo": ("p.jpg", jpeg(), "image/jpeg")})
        assert citizen.status_code == 201, citizen.text
        limited = o311.post("/open311/v2/requests.xml", data=fields(key), files=photo())
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert error_of(limited, "xml")[0] == 429
    assert stored(sqlite_backend)["report"] == 1


class _Photos(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        if self.path == "/moved.jpg":  # to a host nobody allowed
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        body = jpeg()
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def photo_host() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Photos)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_media_url_is_fetched_only_from_allowed_hosts_without_redirects(sqlite_backend, photo_host):
    key = make_key(sqlite_backend, "open311_client")
    with open311_app(sqlite_backend) as closed:  # the default: no host is fetched from
        refused = closed.post("/open311/v2/requests.json", data=fields(key, media_url=f"{photo_host}/p.jpg"))
        assert refused.status_code == 400 and "not one this server fetches from" in error_of(refused, "json")[1]
    with open311_app(sqlite_backend, open311_media_hosts=["127.0.0.1"]) as o311:
        moved = o311.post("/open311/v2/requests.json", data=fields(key, media_url=f"{photo_host}/moved.jpg"))
        assert moved.status_code == 400 and "HTTP 302" in error_of(moved, "json")[1]
        assert stored(sqlite_backend)["report"] == 0
        fetched = o311.post("/open311/v2/requests.json", data=fields(key, media_url=f"{photo_host}/p.jpg"))
        assert fetched.status_code == 201, fetched.text
    after = stored(sqlite_backend)
    assert (after["report"], after["evidence"]) == (1, 1)


def test_a_store_outage_is_a_503_georeport_error_that_keeps_nothing(sqlite_backend):
    key = make_key(sqlite_backend, "open311_client")
    with open311_app(sqlite_backend) as o311:
        def down(*args: object, **kwargs: object) -> None:
            raise StoreUnavailable("evidence folder /srv/secret-volume is full")

        o311.app.state.store.put = down
        resp = o311.post("/open311/v2/requests.xml", data=fields(key), files=photo())
        code, description = error_of(resp, "xml")
        assert (resp.status_code, code) == (503, 503) and int(resp.headers["Retry-After"]) >= 1
        assert "nothing was stored" in description and "secret" not in description
    assert stored(sqlite_backend)["report"] == 0


def test_the_published_media_url_is_the_redacted_photo(o311, backend):
    """Filed through the report path, the photo is kept as that path keeps it: no EXIF (names,
    GPS), under a key without the tracking id; media_url serves that copy."""
    exif = Image.Exif()
    exif[0x013B] = "Wang Fang"  # Artist
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 17.0)}  # GPS
    out = io.BytesIO()
    Image.open(io.BytesIO(jpeg())).save(out, "JPEG", exif=exif)
    assert b"Wang Fang" in out.getvalue()
    resp = o311.post("/open311/v2/requests.json", data=fields(make_key(backend, "open311_client")),
                     files=photo(out.getvalue()))
    assert resp.status_code == 201, resp.text
    (answer,) = resp.json()
    (request,) = o311.get(f"/open311/v2/requests/{answer['service_request_id']}.json").json()
    assert answer["token"] not in request["media_url"]
    served = httpx.get(request["media_url"]) if not request["media_url"].startswith("http://testserver/") \
        else o311.get(request["media_url"])
    assert served.status_code == 200 and b"Wang Fang" not in served.content
    assert not Image.open(io.BytesIO(served.content)).getexif()
