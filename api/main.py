"""The Streetwatch order review API (FastAPI)."""

from __future__ import annotations

from fastapi import FastAPI

from api.db import check_migrated, get_engine
from api.evidence_store import make_store
from api.routes import events, misc, orders
from api.settings import Settings, get_settings


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; refuses (DatabaseNotMigrated) a database that is not at the newest migration."""
    settings = settings or get_settings()
    engine = get_engine(settings.database_url)
    check_migrated(engine, settings.database_url)
    app = FastAPI(
        title="Streetwatch order review API",
        version="0.1.0",
        description="Work orders for street issues (street vending, clutter, flooding) found by city cameras, "
        "with snapshot evidence. Edge boxes post events; reviewers read orders.",
        license_info={"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.store = make_store(settings)
    app.include_router(events.router)
    app.include_router(orders.router)
    app.include_router(misc.router)
    return app
