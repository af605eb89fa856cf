"""The Streetwatch order review API (FastAPI).

Start with `uvicorn --factory api.main:create_app` (what `streetwatch api serve` does) or
`uvicorn api.main:app`. Either refuses to start, with one line saying why, on a database
that is not at the newest migration.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

from api.body_limit import BodySizeLimit
from api.client_address import TrustedProxies
from api.event_route import EventFirst
from api.heartbeat_route import HeartbeatFirst
from api.key_first import KeyBeforeBody
from api.keepalive import RotateKeepAlive
from api.nul_guard import RefuseNul
from api.db import check_migrated, get_engine
from api.errors import install_error_handlers
from api import form_text
from api.evidence_store import make_store
from api.front import FrontedAPI, telemetry_config
from api.rate_limit import RateLimiter
from api.routes import events, evidence, exports, health, open311, orders, reports, stats, verifications, workforce
from api.routes import docs, fleet, snapshots, web
from api.routes import models as model_routes
from api.sweeper import sweeper_lifespan
from api.settings import Settings, get_settings

DESCRIPTION = """
Work orders for street issues (street vending, clutter, flooding) found by city cameras,
with snapshot evidence.

* **Edge boxes** post confirmed issues to `POST /api/v1/events` (multipart: an `event` JSON
  field plus `frame`, `annotated`, `crop` images). Sightings of the same issue join one order.
* **Reviewers** read `GET /api/v1/orders` and move orders through the closed loop
  (dispatch, reject, close, reopen); **grid workers** start and resolve their own orders.
  Evidence comes as presigned URLs that expire.
* **Residents** post `POST /api/v1/reports` (no key) and follow `GET /api/v1/reports/{tracking_id}`.
* Every call but health, evidence downloads and citizen reports needs an API key with a role
  (`Authorization: Bearer <key>`): edge, reviewer, worker or admin.
"""

# Three image parts plus the event JSON and multipart framing.
FORM_OVERHEAD_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app. Raises DatabaseNotMigrated / DatabaseUnavailable (SystemExit subclasses
    with a one-line message) when the database is not ready to serve."""
    settings = settings or get_settings()
    engine = get_engine(settings.database_url)
    check_migrated(engine, settings.database_url)
    app = FrontedAPI(
        telemetry=telemetry_config(settings.opentelemetry),
        title="Streetwatch order review API",
        version="0.1.0",
        description=DESCRIPTION,
        license_info={"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        lifespan=sweeper_lifespan,
        docs_url=None, redoc_url=None,  # served from installed files instead of a CDN: api/routes/docs.py
        openapi_tags=[
            {"name": "events", "description": "What edge boxes post"},
            {"name": "orders", "description": "Work orders: reading and the lifecycle"},
            {"name": "reports", "description": "Citizen reports and their tracking ids"},
            {"name": "dispatch", "description": "Grid workers, grids, cameras, notifications, keys"},
            {"name": "verifications", "description": "Camera checks of resolved orders (edge)"},
            {"name": "stats", "description": "Figures for dashboards"},
            {"name": "exports", "description": "Reviewed orders as training data (admin)"},
            {"name": "open311", "description": "Open311 GeoReport v2 in XML and JSON: issue types as services, "
                                                 "orders as requests; POST files a citizen report"},
            {"name": "evidence", "description": "Evidence downloads when images are kept in a local folder"},
            {"name": "fleet", "description": "Edge boxes' heartbeats; boxes and cameras with their health"},
            {"name": "system", "description": "Health"},
        ],
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = make_store(settings)
    app.state.report_limiter = RateLimiter(settings.report_rate_per_minute)
    app.state.export_jobs = {}
    app.add_middleware(RefuseNul)  # inside the body cap, which counts what it reads
    app.add_middleware(KeyBeforeBody, api=app)  # before RefuseNul reads a JSON body
    app.add_middleware(BodySizeLimit, max_bytes=3 * settings.max_upload_bytes + FORM_OVERHEAD_BYTES,
                       max_text_bytes=settings.max_json_bytes,
                       overrides=[("PUT", model_routes.MODEL_FILE_PATH, settings.max_model_file_bytes),
                                  ("POST", events.BATCH_PATH_RE, settings.batch_max_bytes)])
    # In front of FastAPI's own entry (api/front.py), built from the inside out. A request meets
    # TrustedProxies first (every layer after it, uvicorn's access log included, sees the settled
    # client), then CORS and the keep-alive rotation; a plain single event and a plain heartbeat
    # are answered next (api/event_route.py, api/heartbeat_route.py), before FastAPI's stack with
    # the body cap, the key check, the NUL guard and the router.
    front: ASGIApp = HeartbeatFirst(app.behind_front, api=app)
    front = EventFirst(front, api=app)
    if settings.keepalive_requests:
        front = RotateKeepAlive(front, mean_requests=settings.keepalive_requests)
    if settings.cors_origins:
        front = CORSMiddleware(front, allow_origins=settings.cors_origins, allow_credentials=False,
                               allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                               allow_headers=["Authorization", "X-API-Key", "Content-Type", "Idempotency-Key"])
    app.front = TrustedProxies(front, trusted=settings.trusted_proxies)
    install_error_handlers(app)
    form_text.install()  # form fields that are not UTF-8 are refused, not kept as Latin-1
    for module in (events, orders, reports, verifications, workforce, stats, exports, open311, evidence, health):
        app.include_router(module.router)
    app.include_router(fleet.router)
    app.include_router(snapshots.router)
    app.include_router(model_routes.router)
    web.install(app)  # the review page at /review/
    docs.install(app)  # /docs and /redoc
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn api.main:app` works, but importing this module builds nothing (and touches no
    # database) until someone asks for `app`.
    if name == "app":
        globals()["app"] = application = create_app()
        return application
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
