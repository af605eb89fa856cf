"""Grid workers and the grids they cover: who is dispatched where (api/dispatch.py,
api/workforce.py). SQLModel tables like those of api/models.py, which re-exports them."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import sqlalchemy as sa
from pydantic import ConfigDict, field_validator, model_validator
from sqlmodel import Field, SQLModel

from api.schemas import both_or_neither


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class WorkerBase(SQLModel):
    name: str = Field(min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    grid_ids: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    on_duty: bool = False


# Admin input is input too: a worker sent with 10,000 copies of one grid id, or a grid outline
# of 100,000 corners (read by dispatch for every new order), was accepted.
MAX_WORKER_GRIDS = 100
MAX_GRID_CAMERAS = 1000
MAX_GRID_CORNERS = 2000


def distinct(value: list[str] | None, most: int) -> list[str] | None:
    """A list of ids: each once, at most `most` of them."""
    if value is None:
        return None
    if len(value) > most:
        raise ValueError(f"at most {most} ids")
    repeated = sorted({v for v in value if value.count(v) > 1}) if len(set(value)) != len(value) else []
    if repeated:
        raise ValueError(f"ids given more than once: {', '.join(repeated[:5])}")
    return value


class WorkerCreate(WorkerBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    @field_validator("grid_ids")
    @classmethod
    def _distinct_grids(cls, value: list[str]) -> list[str]:
        return distinct(value, MAX_WORKER_GRIDS) or []

    @model_validator(mode="after")
    def _whole_position(self) -> "WorkerCreate":
        both_or_neither(self)
        return self


class WorkerUpdate(SQLModel):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]  # `id` was ignored silently

    name: str | None = Field(default=None, min_length=1, max_length=100)
    phone: str | None = Field(default=None, max_length=40)
    grid_ids: list[str] | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    on_duty: bool | None = None

    @field_validator("grid_ids")
    @classmethod
    def _distinct_grids(cls, value: list[str] | None) -> list[str] | None:
        return distinct(value, MAX_WORKER_GRIDS)

    @model_validator(mode="after")
    def _whole_position(self) -> "WorkerUpdate":
        both_or_neither(self)
        return self


class Worker(WorkerBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    updated_at: datetime = Field(default_factory=utcnow)


class WorkerPublic(WorkerBase):
    id: int
    updated_at: datetime


class GridBase(SQLModel):
    name: str | None = Field(default=None, max_length=100)
    # [[lat, lon], ...]: the grid's outline, if it is drawn on the map.
    polygon: list[list[float]] | None = Field(default=None, sa_type=sa.JSON)
    cameras: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    supervisor: str | None = Field(default=None, max_length=100, description="who hears about overdue orders")


class GridCreate(GridBase):
    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    id: str = Field(min_length=1, max_length=100, description="letters, digits, '_', '.', '-'")

    @field_validator("cameras")
    @classmethod
    def _distinct_cameras(cls, value: list[str]) -> list[str]:
        return distinct(value, MAX_GRID_CAMERAS) or []

    @field_validator("id")
    @classmethod
    def _plain_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
            raise ValueError("may contain only letters, digits, '_', '.' and '-'")
        return value


class GridUpdate(SQLModel):
    """Fields to change; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")  # type: ignore[assignment]

    name: str | None = Field(default=None, max_length=100)
    polygon: list[list[float]] | None = None
    cameras: list[str] | None = None
    supervisor: str | None = Field(default=None, max_length=100)

    @field_validator("cameras")
    @classmethod
    def _distinct_cameras(cls, value: list[str] | None) -> list[str] | None:
        return distinct(value, MAX_GRID_CAMERAS)


class Grid(GridBase, table=True):
    id: str = Field(primary_key=True, max_length=100)


class GridPublic(GridBase):
    id: str
