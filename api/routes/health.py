from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import EngineDep, StoreDep

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
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        store.ping()
        checks["evidence_store"] = "ok"
    except Exception as exc:
        checks["evidence_store"] = f"error: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)
