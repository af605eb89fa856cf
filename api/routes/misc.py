from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import EngineDep, StoreDep
from api.evidence_store import LocalEvidenceStore

router = APIRouter(tags=["system"])


@router.get("/healthz")
def healthz(engine: EngineDep, store: StoreDep) -> JSONResponse:
    """200 when the database and the evidence store answer, else 503 naming what failed."""
    checks = {}
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
        checks["evidence_store"] = f"error: {exc.__class__.__name__}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "degraded", **checks}, status_code=200 if ok else 503)


@router.get("/api/v1/evidence/{key:path}", responses={403: {"description": "Bad or expired signature"}},
            response_class=Response)
def read_local_evidence(key: str, store: StoreDep, expires: Annotated[int, Query()],
                        signature: Annotated[str, Query(max_length=128)]) -> Response:
    """Evidence download for the local evidence folder (S3 setups hand out S3 presigned URLs instead)."""
    if not isinstance(store, LocalEvidenceStore):
        raise HTTPException(404, "evidence is served by S3 presigned URLs in this deployment")
    if not store.verify(key, expires, signature):
        raise HTTPException(403, "bad or expired evidence URL signature")
    try:
        data = store.get(key)
    except (FileNotFoundError, ValueError):
        raise HTTPException(404, "evidence object not found")
    media = "image/png" if key.endswith(".png") else "image/jpeg"
    return Response(data, media_type=media, headers={"Cache-Control": "private, max-age=300"})
