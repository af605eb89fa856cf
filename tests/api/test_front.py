"""The layers in front of FastAPI's own entry (api/front.py): a plain heartbeat and a plain
event are answered there, everything else goes on into FastAPI as before, with the client's
address settled first; FastAPI's OpenTelemetry check is off unless an SDK could use it."""

from __future__ import annotations

import asyncio
import importlib.util

import pytest
from fastapi.testclient import TestClient

from api import front
from api.auth import forget_keys
from api.front import FrontedAPI, telemetry_config
from api.main import create_app
from api.settings import Settings
from tests.api.factories import auth, make_key
from tests.api.fleet_helpers import beat, box_key, camera


@pytest.fixture(autouse=True)
def _fresh_keys():
    forget_keys()
    yield
    forget_keys()


def _innermost(app: FrontedAPI):
    """The front's last layer: the one whose `app` is FastAPI's own entry."""
    layer = app.front
    while layer.app != app.behind_front:
        layer = layer.app
    return layer


def _count_entries(app: FrontedAPI) -> list[str]:
    """The paths that reach FastAPI's own entry from now on."""
    entered: list[str] = []
    layer = _innermost(app)

    async def counting(scope, receive, send):
        entered.append(scope["path"])
        await app.behind_front(scope, receive, send)

    layer.app = counting
    return entered


def test_a_plain_heartbeat_is_answered_in_front_of_fastapi(backend: Settings) -> None:
    app = create_app(backend)
    key = box_key(backend, "box-1")
    with TestClient(app) as client:
        assert beat(client, "box-1", key, camera("cam-1")).status_code == 200  # the key is remembered now
        entered = _count_entries(app)
        answer = beat(client, "box-1", key, camera("cam-1", fps=2.5))
        assert (answer.status_code, answer.json()) == (200, {"box_id": "box-1", "cameras": 1, "changes": 0})
        assert entered == []
        # Anything else goes on into FastAPI: a refused heartbeat (its 422 is the route's) and a read.
        refused = beat(client, "box-1", key, camera("cam-1", "dancing"))
        assert refused.status_code == 422 and "state" in refused.text
        cameras = client.get("/api/v1/cameras", headers=auth(make_key(backend, "admin")))
        assert cameras.status_code == 200 and cameras.json()[0]["fps"] == 2.5
        assert entered == ["/api/v1/boxes/box-1/heartbeat", "/api/v1/cameras"]


def test_the_client_address_is_settled_in_front(backend: Settings) -> None:
    app = create_app(backend.model_copy(update={"trusted_proxies": ["127.0.0.1"]}))
    layer, seen = _innermost(app), []

    async def spy(scope, receive, send):
        seen.append(scope["client"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    layer.app = spy
    scope = {"type": "http", "method": "GET", "path": "/healthz", "raw_path": b"/healthz", "query_string": b"",
             "root_path": "", "headers": [(b"x-forwarded-for", b"203.0.113.7")], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8000), "scheme": "http", "http_version": "1.1"}
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert seen == [("203.0.113.7", 0)] and sent[0]["status"] == 204


def test_fastapi_telemetry_is_off_unless_an_sdk_is_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    off = {"tracing": False, "metrics": False, "logs": False}
    spec = importlib.util.find_spec("json")  # any spec: "found"
    assert telemetry_config(False) == off
    assert telemetry_config(True) is None  # FastAPI's defaults
    monkeypatch.setattr(front.importlib.util, "find_spec", lambda name: None)
    assert telemetry_config(None) == off
    monkeypatch.setattr(front.importlib.util, "find_spec", lambda name: spec)
    assert telemetry_config(None) is None


def test_the_app_asks_no_telemetry_provider_per_request(backend: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """With telemetry off, FastAPI's per-request check does not reach OpenTelemetry."""
    from fastapi.telemetry import _asgi

    asked: list[str] = []
    monkeypatch.setattr(_asgi.trace, "get_tracer_provider", lambda: asked.append("trace"))
    app = create_app(backend.model_copy(update={"opentelemetry": False}))
    with TestClient(app) as client:
        assert client.get("/healthz").status_code == 200
    assert asked == []
