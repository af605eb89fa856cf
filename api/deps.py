"""FastAPI dependencies: settings, a database session, the evidence store (who the caller is: api/auth.py).

They are `async def` where they do no I/O: FastAPI runs a plain `def` dependency in its thread
pool, a hand-off each that the event endpoint paid several times per request.

Everything comes from `app.state`, set once by `create_app(settings)`, so tests and several
apps in one process each get their own settings, engine and store.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
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


async def declared_parts_only(request: Request) -> None:
    """A form post may carry only the fields its route declares, each once: a misspelled part
    (`annotate`) or a second `frame` would otherwise be dropped without a word. (FastAPI has
    parsed the form already; `request.form()` hands back that parse.)"""
    route = request.scope.get("route")
    content_type = request.headers.get("content-type", "")
    if route is None or not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return
    declared = {field.alias for field in route.dependant.body_params}
    seen: set[str] = set()
    for name, _ in (await request.form()).multi_items():
        if name not in declared:
            msg = f"unknown part; this call takes {', '.join(sorted(declared))}"
        elif name in seen:
            msg = "sent more than once; send each part once"
        else:
            seen.add(name)
            continue
        raise RequestValidationError([{"type": "value_error", "loc": ("body", name), "msg": msg}])


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
EngineDep = Annotated[Engine, Depends(get_app_engine)]
StoreDep = Annotated[EvidenceStore, Depends(get_store)]
SessionDep = Annotated[Session, Depends(get_session)]
