"""FastAPI dependencies: settings, a database session, the evidence store (who the caller is: api/auth.py).

They are `async def` where they do no I/O: FastAPI runs a plain `def` dependency in its thread
pool, a hand-off each that the event endpoint paid several times per request.

Everything comes from `app.state`, set once by `create_app(settings)`, so tests and several
apps in one process each get their own settings, engine and store.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.db import get_session
from api.evidence_store import EvidenceStore
from api.settings import Settings


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_app_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_store(request: Request) -> EvidenceStore:
    return request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_app_engine)]
StoreDep = Annotated[EvidenceStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
