"""Grid workers, grids and camera placement: the data dispatch works from."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.camera_rows import write_row_once_more_on_conflict
from api.db import begin_write
from api.location import check_ground_points
from api.schemas import both_or_neither
from api.models import (MAX_GRID_CORNERS, Camera, CameraBase, Grid, GridCreate, GridPublic, GridUpdate, Notification,
                        Worker, WorkerCreate, WorkerPublic, WorkerUpdate, utcnow)
from api.problems import Conflict, InvalidField, NotFound


class CameraUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    grid_id: str | None = Field(default=None, max_length=100)
    ground_points: list[list[float]] | None = Field(
        default=None, description="[[px, py, lat, lon], ...], at least 4 points on the road plane: maps an "
                                  "issue's pixel position to the ground for cross-camera dedup")

    @field_validator("ground_points")
    @classmethod
    def _valid_points(cls, value: list[list[float]] | None) -> list[list[float]] | None:
        if value is not None:
            check_ground_points(value)
        return value

    @model_validator(mode="after")
    def _whole_position(self) -> "CameraUpdate":
        both_or_neither(self)
        return self


class CameraPublic(CameraBase):
    id: int
    ground_points: list[list[float]] | None
    placed_at: datetime | None  # set by PUT: since then events no longer move the camera


class NotificationPublic(BaseModel):
    id: int
    order_id: int | None  # None: about a camera or a box (camera_offline, box_offline, ...)
    worker_id: int | None
    supervisor: str | None
    camera: str | None = None
    box_id: str | None = None
    kind: str
    message: str
    created_at: object


def _check_grids(session: Session, grid_ids: list[str], field: str = "grid_ids") -> None:
    for gid in grid_ids:
        if session.get(Grid, gid) is None:
            raise InvalidField(("body", field), f"no grid with id {gid!r}; create it first")


def create_worker(session: Session, data: WorkerCreate) -> WorkerPublic:
    begin_write(session)
    _check_grids(session, data.grid_ids)
    worker = Worker.model_validate(data)
    session.add(worker)
    session.commit()
    session.refresh(worker)
    return WorkerPublic.model_validate(worker)


def update_worker(session: Session, worker_id: int, data: WorkerUpdate) -> WorkerPublic:
    begin_write(session)
    worker = session.get(Worker, worker_id)
    if worker is None:
        raise NotFound(f"worker {worker_id} not found")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("grid_ids") is not None:
        _check_grids(session, changes["grid_ids"])
    for field, value in changes.items():
        if value is None and field in ("name", "grid_ids", "on_duty"):
            raise InvalidField(("body", field), "may not be null")
        setattr(worker, field, value)
    worker.updated_at = utcnow()
    session.add(worker)
    session.commit()
    session.refresh(worker)
    return WorkerPublic.model_validate(worker)


def list_workers(session: Session) -> list[WorkerPublic]:
    return [WorkerPublic.model_validate(w) for w in session.exec(select(Worker).order_by(col(Worker.id))).all()]


def create_grid(session: Session, data: GridCreate) -> GridPublic:
    if data.polygon is not None:
        _check_polygon(data.polygon)
    begin_write(session)
    if session.get(Grid, data.id) is not None:
        raise Conflict(f"grid {data.id!r} exists already")
    grid = Grid.model_validate(data)
    session.add(grid)
    try:
        session.commit()
    except IntegrityError:  # PostgreSQL: another request created it since our read
        session.rollback()
        raise Conflict(f"grid {data.id!r} exists already") from None
    session.refresh(grid)
    return GridPublic.model_validate(grid)


def _check_polygon(polygon: list[list[float]]) -> None:
    if len(polygon) < 3:
        raise InvalidField(("body", "polygon"), "needs at least 3 [lat, lon] corners")
    if len(polygon) > MAX_GRID_CORNERS:
        raise InvalidField(("body", "polygon"), f"at most {MAX_GRID_CORNERS} corners; simplify the outline")
    for i, corner in enumerate(polygon):
        if len(corner) != 2 or not (-90 <= corner[0] <= 90 and -180 <= corner[1] <= 180):
            raise InvalidField(("body", "polygon", str(i)), "must be [lat, lon] within range")


def update_grid(session: Session, grid_id: str, data: GridUpdate) -> GridPublic:
    """Change a grid's name, outline, cameras or supervisor (new orders use it at once)."""
    begin_write(session)
    grid = session.get(Grid, grid_id)
    if grid is None:
        raise NotFound(f"grid {grid_id!r} not found")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("polygon") is not None:
        _check_polygon(changes["polygon"])
    if "cameras" in changes and changes["cameras"] is None:
        raise InvalidField(("body", "cameras"), "may not be null; send [] for none")
    for field, value in changes.items():
        setattr(grid, field, value)
    session.add(grid)
    session.commit()
    session.refresh(grid)
    return GridPublic.model_validate(grid)


def list_grids(session: Session) -> list[GridPublic]:
    return [GridPublic.model_validate(g) for g in session.exec(select(Grid).order_by(col(Grid.id))).all()]


def update_camera(session: Session, name: str, data: CameraUpdate) -> CameraPublic:
    """Place a camera (position, grid, ground mapping); creates it if no event came from it yet."""
    def build() -> Camera:
        changes = data.model_dump(exclude_unset=True)
        if changes.get("grid_id") is not None:  # as for workers: a grid must exist to be named
            _check_grids(session, [changes["grid_id"]], "grid_id")
        # on PostgreSQL the camera's first event (or another PUT) may insert it after this read:
        # the second pass then updates it
        camera = session.exec(select(Camera).where(Camera.name == name)).first() or Camera(name=name)
        for field, value in changes.items():
            setattr(camera, field, value)
        camera.placed_at = utcnow()  # from now on events do not move it (api/ingest_sql.py: camera_upsert)
        return camera

    camera = write_row_once_more_on_conflict(session, build)
    return CameraPublic.model_validate(camera)


def list_notifications(session: Session, worker_id: int | None = None, limit: int = 100) -> list[NotificationPublic]:
    query = select(Notification)
    if worker_id is not None:
        query = query.where(Notification.worker_id == worker_id)
    rows = session.exec(query.order_by(col(Notification.id).desc()).limit(limit)).all()
    return [NotificationPublic.model_validate(n.model_dump()) for n in rows]
