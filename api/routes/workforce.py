"""Grid workers, grids, camera placement, notifications and the SLA sweep (admin mostly)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, Field, StrictInt
from sqlmodel import select

from api.auth import Principal, create_key, hash_key, require, revoke_key
from api.deps import SessionDep, SettingsDep
from api.sweeper import sweep_all
from api.schemas import MAX_ID
from api.models import ApiKey, GridCreate, GridPublic, GridUpdate, Role, WorkerCreate, WorkerPublic, WorkerUpdate
from api.problems import Forbidden, InvalidField, NotFound
from api.workforce import (CameraPublic, CameraUpdate, NotificationPublic, create_grid, create_worker, list_grids,
                           list_notifications, list_workers, update_camera, update_grid, update_worker)

router = APIRouter(prefix="/api/v1", tags=["dispatch"])
Admin = Annotated[Principal, Depends(require())]
Staff = Annotated[Principal, Depends(require(Role.reviewer, Role.worker))]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]


@router.post("/workers", status_code=201)
def post_worker(body: WorkerCreate, session: SessionDep, _: Admin) -> WorkerPublic:
    """Add a grid worker (name, phone, grid ids, position, on/off duty)."""
    return create_worker(session, body)


@router.get("/workers")
def get_workers(session: SessionDep, _: Reviewer) -> list[WorkerPublic]:
    return list_workers(session)


@router.patch("/workers/{worker_id}", responses={403: {"description": "A worker may change only themself"},
                                                 404: {"description": "No such worker"}})
def patch_worker(worker_id: Annotated[int, Path(ge=1, le=MAX_ID)], body: WorkerUpdate, session: SessionDep,
                 who: Staff) -> WorkerPublic:
    """Change a worker; a worker's own key may update its position and duty status."""
    if who.role == Role.reviewer:
        raise Forbidden("reviewers may not change workers; use an admin key")
    if who.role == Role.worker:
        if who.worker_id != worker_id:
            raise Forbidden("a worker key may change only its own worker")
        if body.model_dump(exclude_unset=True).keys() - {"lat", "lon", "on_duty"}:
            raise Forbidden("a worker may change only lat, lon and on_duty")
    return update_worker(session, worker_id, body)


@router.post("/grids", status_code=201, responses={409: {"description": "A grid with this id exists"}})
def post_grid(body: GridCreate, session: SessionDep, _: Admin) -> GridPublic:
    """Add a grid: an outline ([[lat, lon], ...]) and/or a list of camera names, and its supervisor."""
    return create_grid(session, body)


@router.get("/grids")
def get_grids(session: SessionDep, _: Reviewer) -> list[GridPublic]:
    return list_grids(session)


@router.patch("/grids/{grid_id}", responses={404: {"description": "No such grid"}})
def patch_grid(grid_id: Annotated[str, Path(max_length=100)], body: GridUpdate, session: SessionDep,
               _: Admin) -> GridPublic:
    """Change a grid's name, outline, cameras or supervisor."""
    return update_grid(session, grid_id, body)


@router.put("/cameras/{name}")
def put_camera(name: Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")], body: CameraUpdate,
               session: SessionDep, _: Admin) -> CameraPublic:
    """Place a camera: position, grid, and optionally ground points mapping pixels to lat/lon."""
    return update_camera(session, name, body)


@router.get("/notifications")
def get_notifications(session: SessionDep, who: Staff,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[NotificationPublic]:
    """Messages for people (dispatches, reopenings, escalations); a worker sees only its own."""
    return list_notifications(session, who.worker_id if who.role == Role.worker else None, limit)


@router.post("/sweep")
def post_sweep(session: SessionDep, settings: SettingsDep, _: Admin) -> dict[str, int]:
    """Run the sweep now: SLAs, clearing, blind cameras, silent boxes (it also runs every
    STREETWATCH_SWEEP_INTERVAL_SECONDS)."""
    return sweep_all(session, settings)


class KeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    worker_id: StrictInt | None = Field(default=None, ge=1, le=MAX_ID, description="required for worker keys")
    box_id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$",
                               description="edge keys: the box it speaks for (only that box's cameras)")


class KeyCreated(BaseModel):
    id: int
    name: str
    role: Role
    box_id: str | None = None
    key: str = Field(description="shown only now; store it in the client's config")


@router.post("/keys", status_code=201)
def post_key(body: KeyIn, session: SessionDep, _: Admin) -> KeyCreated:
    """Create an API key with a role (edge, reviewer, worker, admin)."""
    try:
        key = create_key(session, body.name, body.role, body.worker_id, body.box_id)
    except ValueError as exc:
        raise InvalidField(("body", "box_id" if "box" in str(exc) else "worker_id"), str(exc)) from None
    row = session.exec(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).one()
    assert row.id is not None
    return KeyCreated(id=row.id, name=row.name, role=row.role, box_id=row.box_id, key=key)


@router.delete("/keys/{key_id}", status_code=204, responses={404: {"description": "No such key"}})
def delete_key(key_id: Annotated[int, Path(ge=1, le=MAX_ID)], session: SessionDep, _: Admin) -> None:
    """Revoke a key (it stays listed in the audit trail by name)."""
    if not revoke_key(session, key_id):
        raise NotFound(f"key {key_id} not found")
