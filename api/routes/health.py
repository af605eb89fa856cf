from __future__ import annotations

import logging

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import EngineDep, StoreDep

log = logging.getLogger("streetwatch.api")

router = APIRouter(tags=["system"])


@router.get("/healthz", responses={200: {"description": "Database and evidence store answer"},
                                   503: {"description": "Something is down; the body names it"}})
def healthz(engine: EngineDep, store: StoreDep) -> JSONResponse:
    """`{"status": "ok", "database": "ok", "evidence_store": "ok"}`, or 503 naming what failed."""
    checks: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # report, don't crash: this is what health checks are for
        log.warning("health check: database: %s", exc)
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        store.ping()
        checks["evidence_store"] = "ok"
    except Exception as exc:
        # The class only: /healthz needs no key, and the message holds paths and endpoints.
        log.warning("health check: evidence store: %s", exc)
        checks["evidence_store"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)
