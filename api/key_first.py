"""The API key is checked before the body is read, on routes that need one.

FastAPI reads and parses a request's body before it runs the route's dependencies, the key
check among them: ten 31 MB JSON posts without a key all got their 401, but only after the
API had read them (270 MiB more). This middleware finds the route a request is for and, if
that route requires a key (api.auth.require), answers 401 for a missing or unknown key
before a byte of the body is received. The route's own check still runs (it decides the
role); a key found here is remembered (api/auth.py), so that costs no second lookup.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlmodel import Session
from starlette.responses import JSONResponse
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import _given_key, known_principal, look_up_key

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _needs_key(route: APIRoute) -> bool:
    def walk(dependant: Any) -> bool:
        return any(hasattr(d.call, "roles") or walk(d) for d in dependant.dependencies)
    return walk(route.dependant)


def _flat(routes: list[Any]) -> list[Any]:
    """The app's routes in matching order, included routers opened (our routers carry their
    prefix themselves, so their routes match the full path)."""
    out: list[Any] = []
    for route in routes:
        if hasattr(route, "original_router"):
            out += _flat(route.original_router.routes)
        else:
            out.append(route)
    return out


class KeyBeforeBody:
    def __init__(self, app: ASGIApp, api: FastAPI):
        self.app = app
        self.api = api
        self._routes: list[tuple[Any, bool]] | None = None

    def _route_needs_key(self, scope: Scope) -> bool:
        if self._routes is None:  # on the first request: every route is added by then
            self._routes = [(r, isinstance(r, APIRoute) and _needs_key(r)) for r in _flat(self.api.router.routes)]
        for route, needs in self._routes:
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return needs
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        key = _given_key(*_key_headers(scope["headers"]))
        state = self.api.state
        # A key this process knows (a box posting every few seconds) lets the request through
        # whichever route it is for, without walking the route table (~0.1 ms a request); the
        # route's own check decides the role.
        if key and known_principal(state.settings.api_key, key) is not None \
                or not self._route_needs_key(scope):
            await self.app(scope, receive, send)
            return
        try:
            if known_principal(state.settings.api_key, key) is None:
                assert key is not None  # known_principal raised 401 otherwise
                await run_in_threadpool(_look_up, state.engine, key, state.settings.key_cache_seconds)
        except HTTPException as exc:
            await JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)(
                scope, receive, send)
            return
        except Exception:  # the database is away: the route's own key check answers (503)
            pass
        await self.app(scope, receive, send)


def _key_headers(headers: list[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """Authorization and X-API-Key, as api.auth reads them."""
    authorization = x_api_key = None
    for name, value in headers:
        name = name.lower()
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"x-api-key":
            x_api_key = value.decode("latin-1")
    return authorization, x_api_key


def _look_up(engine: Any, key: str, remember_s: float) -> None:
    with Session(engine) as session:
        look_up_key(session, key, remember_s)
