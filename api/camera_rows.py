"""Rows kept one per camera (its central zones, its latest snapshot): find the camera by name,
and create or update its row."""

from __future__ import annotations

from typing import Callable, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, select

from api.db import begin_write
from api.models import Camera
from api.problems import NotFound

Row = TypeVar("Row", bound=SQLModel)


def camera_id_by_name(session: Session, name: str, hint: str = "") -> int:
    """The camera's id; 404 naming it (and `hint`, what to do about it) when there is none."""
    camera_id = session.exec(select(Camera.id).where(Camera.name == name)).first()
    if camera_id is None:
        raise NotFound(f"camera {name!r} not found{': ' + hint if hint else ''}")
    return camera_id


def write_row_once_more_on_conflict(session: Session, build: Callable[[], Row]) -> Row:
    """`build` the row (create it or take the one there is, and fill it) in a write transaction
    and commit. Two first writers race on PostgreSQL: the loser's INSERT fails on the key, and
    its second pass finds and updates the winner's row."""
    for attempt in range(2):
        begin_write(session)
        row = build()
        session.add(row)
        try:
            session.commit()
            break
        except IntegrityError:
            session.rollback()
            if attempt:
                raise
    session.refresh(row)
    return row


def save_camera_row(session: Session, table: type[Row], camera_id: Callable[[], int],
                    new: Callable[[int], Row], fill: Callable[[Row], None]) -> Row:
    """Create the camera's row of `table` (`new`) or take the one there is, `fill` it, commit.
    `camera_id` is asked inside the write transaction."""
    def build() -> Row:
        key = camera_id()
        row = session.get(table, key) or new(key)
        fill(row)
        return row

    return write_row_once_more_on_conflict(session, build)
