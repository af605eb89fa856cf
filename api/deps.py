"""FastAPI dependencies: settings, a database session, the evidence store, the edge's key.

Everything comes from `app.state`, set once by `create_app(settings)`, so tests and several
apps in one process each get their own settings, engine and store.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.db import get_session
from api.evidence_store import EvidenceStore
from api.settings import Settings


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_app_engine(request: Request) -> Engine:
    return request.app.state.engine


def get_store(request: Request) -> EvidenceStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_app_engine)]
StoreDep = Annotated[EvidenceStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]


def require_edge_key(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header(description="Bearer <STREETWATCH_API_KEY>")] = None,
    x_api_key: Annotated[str | None, Header(description="alternative to Authorization")] = None,
) -> None:
    if not settings.api_key:
        return
    given = x_api_key
    if given is None and authorization and authorization[:7].lower() == "bearer ":
        given = authorization[7:].strip()
    # compare_digest: the time taken must not tell how much of a guess was right.
    if not given or not hmac.compare_digest(given.encode(), settings.api_key.encode()):
        raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
                            headers={"WWW-Authenticate": "Bearer"})
