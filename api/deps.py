"""FastAPI dependencies: settings, a database session, the evidence store, the edge's key."""

from __future__ import annotations

import hmac
from typing import Annotated, Iterator

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.evidence_store import EvidenceStore
from api.settings import Settings


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_engine_dep(request: Request) -> Engine:
    return request.app.state.engine


def get_store(request: Request) -> EvidenceStore:
    return request.app.state.store


def get_session(engine: Annotated[Engine, Depends(get_engine_dep)]) -> Iterator[Session]:
    with Session(engine) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
EngineDep = Annotated[Engine, Depends(get_engine_dep)]
StoreDep = Annotated[EvidenceStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]


def require_edge_key(settings: SettingsDep, authorization: Annotated[str | None, Header()] = None,
                     x_api_key: Annotated[str | None, Header()] = None) -> None:
    if not settings.api_key:
        return
    given = x_api_key or (authorization[7:] if authorization and authorization.lower().startswith("bearer ") else None)
    if not given or not hmac.compare_digest(given, settings.api_key):
        raise HTTPException(401, "missing or wrong API key (send 'Authorization: Bearer <key>' or 'X-API-Key')",
                            headers={"WWW-Authenticate": "Bearer"})
