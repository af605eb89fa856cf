"""Every route declares who may call it, and every role gets 401/403 where it must.

Generated from the app's route table, so a new route cannot be forgotten: it either declares
its roles with `api.auth.require(...)` or is listed in PUBLIC below."""

from __future__ import annotations

import re
from typing import Iterator

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from api.main import create_app
from api.models import Role
from tests.api.factories import add_worker, auth, event_json, make_key, post

PUBLIC = {
    ("GET", "/healthz"),
    ("GET", "/api/v1/evidence/{key:path}"),  # the URL's own signature is the credential
    ("POST", "/api/v1/reports"),
    ("GET", "/api/v1/reports/{tracking_id}"),
    ("GET", "/open311/v2/services.{fmt}"),  # 311 read APIs are public; they show no contacts or workers
    ("GET", "/open311/v2/services/{service_code}.{fmt}"),
    ("GET", "/open311/v2/requests.{fmt}"),
    ("GET", "/open311/v2/requests/{service_request_id}.{fmt}"),
    ("GET", "/open311/v2/tokens/{token}.{fmt}"),
    ("GET", "/open311/discovery.{fmt}"),
    ("GET", "/open311/v2/discovery.{fmt}"),
    # GeoReport sends its key as the `api_key` form field, which the route checks itself
    # (open311_client role; tests/api/test_open311_post.py): no header check can run first.
    ("POST", "/open311/v2/requests.{fmt}"),
}
PARAMS = {"order_id": "1", "grid_id": "g-1", "worker_id": "1", "key_id": "1", "name": "cam-1", "tracking_id": "SW-0000000000",
          "key:path": "events/x/a.jpg", "job_id": "no-such-job", "service_request_id": "1",
          "fmt": "json", "service_code": "clutter", "token": "SW-0000000000",
          "box_id": "box-1", "version": "1", "path:path": "w.onnx"}


def _routes(routes) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # an included router
            yield from _routes(route.original_router.routes)


def _declared_roles(route: APIRoute) -> set[Role] | None:
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        if hasattr(dep.call, "roles"):
            return set(dep.call.roles)
        stack.extend(dep.dependencies)
    return None


def _table(app) -> list[tuple[str, str, set[Role] | None]]:
    rows = []
    for route in _routes(app.router.routes):
        if not route.include_in_schema:
            continue
        for method in sorted(route.methods - {"HEAD"}):
            rows.append((method, route.path, _declared_roles(route)))
    return rows


def test_every_route_declares_roles_or_is_public(sqlite_backend):
    app = create_app(sqlite_backend)
    undeclared = {(m, p) for m, p, roles in _table(app) if roles is None}
    assert undeclared == PUBLIC, "declare roles with api.auth.require(...) or add the route to PUBLIC"


def test_each_role_is_refused_exactly_where_it_must_be(sqlite_backend):
    app = create_app(sqlite_backend)
    with TestClient(app) as client:
        admin = auth(make_key(sqlite_backend, "admin"))
        worker_id = add_worker(TestClient(app, headers=admin), "W")
        keys = {role: auth(make_key(sqlite_backend, role.value, worker_id if role == Role.worker else None))
                for role in Role}
        post(client, event_json(), headers=keys[Role.edge])  # order 1 exists
        checked = 0
        for method, path, roles in _table(app):
            if roles is None:
                continue
            url = re.sub(r"\{([^}]+)\}", lambda m: PARAMS[m.group(1)], path)
            assert client.request(method, url).status_code == 401, (method, path)
            assert client.request(method, url, headers={"Authorization": "Bearer wrong"}).status_code == 401
            for role, headers in keys.items():
                status = client.request(method, url, headers=headers).status_code
                if role in roles:
                    # Allowed in; a worker may still meet 403 on an order that is not theirs, and
                    # an edge key (made without a box) on a box's own configuration.
                    theirs = role == Role.worker or (role == Role.edge and path.startswith("/api/v1/boxes/{box_id}"))
                    assert status != 401 and (status != 403 or theirs), (method, path, role, status)
                else:
                    assert status == 403, (method, path, role, status)
                checked += 1
        assert checked >= 4 * 20
