"""Tables of model rollout: pushed model versions, their files, and who is to run which.

A version is `uploading` until every file it declared has arrived with its declared size and
sha256, then `ready`; only a ready version can be assigned, so a push whose upload broke or
was corrupted never reaches a box. An assignment row's target is a box id, or "*" for every
box without one of its own.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from api.models import utcnow

ALL_BOXES = "*"


class ModelVersionBase(SQLModel):
    name: str = Field(max_length=100)
    version: str = Field(max_length=100)
    weights: str = Field(max_length=200)  # the manifest's weights file: its sha256 names the version on boxes
    manifest: str  # the manifest's text as pushed
    classes: dict = Field(default_factory=dict, sa_type=sa.JSON)


class ModelVersion(ModelVersionBase, table=True):
    __tablename__ = "model_version"
    __table_args__ = (sa.UniqueConstraint("name", "version", name="uq_model_version_name_version"),)
    id: int | None = Field(default=None, primary_key=True)
    status: str = Field(default="uploading", max_length=20)  # uploading | ready
    pushed_at: datetime = Field(default_factory=utcnow)
    pushed_by: str = Field(max_length=100)
    ready_at: datetime | None = None


class ModelFileRow(SQLModel, table=True):
    __tablename__ = "model_file"
    version_id: int = Field(foreign_key="model_version.id", primary_key=True)
    path: str = Field(primary_key=True, max_length=200)
    sha256: str = Field(max_length=64)
    size: int = Field(sa_type=sa.BigInteger)
    stored_at: datetime | None = None  # arrived whole and matching: set only then


class ModelAssignment(SQLModel, table=True):
    __tablename__ = "model_assignment"
    target: str = Field(primary_key=True, max_length=100)  # a box id, or ALL_BOXES
    version_id: int = Field(foreign_key="model_version.id", index=True)
    assigned_at: datetime = Field(default_factory=utcnow)
    assigned_by: str = Field(max_length=100)
