"""An edge key speaks only for its own box, and a box only for its own cameras.

Edge boxes stand on the street and their keys get stolen. A key made with a box
(`create-key --role edge --box B`) may send heartbeats only as box B, and events and camera
checks only for the cameras B declared in its heartbeats (the first box to declare a camera
holds it until an admin releases it). A key without a box (older keys, STREETWATCH_API_KEY)
speaks only for cameras no box holds: a single box without fleet config keeps working, and
cannot speak for a fleet's cameras. Admin keys speak for everyone.

Whose a camera is, is asked on every event, so each API process remembers the answer for
OWNER_CACHE_SECONDS (like keys, api/auth.py): a release in another process takes effect
within that time.
"""

from __future__ import annotations

import threading
import time

from fastapi.concurrency import run_in_threadpool
from sqlmodel import Session, col, select

from api.auth import Principal
from api.fleet_models import CameraStatus
from api.models import Camera, Order, Role
from api.problems import Forbidden

OWNER_CACHE_SECONDS = 5.0
_UNKNOWN = object()

# camera name → (its box id or None, monotonic expiry)
_owners: dict[str, tuple[str | None, float]] = {}
_owners_lock = threading.Lock()


def forget_owners() -> None:
    with _owners_lock:
        _owners.clear()


def remember_owner(camera: str, box_id: str | None) -> None:
    with _owners_lock:
        _owners[camera] = (box_id, time.monotonic() + OWNER_CACHE_SECONDS)


def check_box(who: Principal, box_id: str) -> None:
    """403 unless the caller may speak as this box."""
    if who.role == Role.admin or (who.role == Role.edge and who.box_id == box_id):
        return
    if who.role == Role.edge and who.box_id is None:
        raise Forbidden(f"this edge key belongs to no box; make one for box {box_id!r} "
                        f"(streetwatch api create-key --role edge --box {box_id})")
    raise Forbidden(f"this key speaks for box {who.box_id!r}, not {box_id!r}")


def owner_of(session: Session, camera: str) -> str | None:
    """The box holding a camera (None: no box declared it), from the database."""
    box_id = session.exec(select(CameraStatus.box_id).join(Camera, col(Camera.id) == col(CameraStatus.camera_id))
                          .where(Camera.name == camera)).first()
    # End the read: the route's write transaction must begin on its own terms (SQLite's
    # BEGIN IMMEDIATE), as after the key lookup.
    session.rollback()
    remember_owner(camera, box_id)
    return box_id


def _cached_owner(camera: str) -> object:
    known = _owners.get(camera)
    if known is not None and known[1] > time.monotonic():
        return known[0]
    return _UNKNOWN


def _judge(who: Principal, camera: str, owner: str | None) -> None:
    if who.box_id == owner:
        return
    if who.box_id is None:
        raise Forbidden(f"camera {camera!r} belongs to box {owner!r}; this edge key belongs to no box")
    if owner is None:
        raise Forbidden(f"camera {camera!r} is not a camera of box {who.box_id!r}: a box declares its cameras "
                        "in its heartbeat")
    raise Forbidden(f"camera {camera!r} belongs to box {owner!r}, not to this key's box {who.box_id!r}")


def check_camera(session: Session, who: Principal, camera: str) -> None:
    """403 unless the caller may speak for this camera (blocking: may ask the database)."""
    if who.role != Role.edge:
        return
    owner = _cached_owner(camera)
    _judge(who, camera, owner_of(session, camera) if owner is _UNKNOWN else owner)  # type: ignore[arg-type]


async def ensure_camera(session: Session, who: Principal, camera: str) -> None:
    """check_camera for async routes: the database only on a cache miss, in a thread."""
    if who.role != Role.edge:
        return
    owner = _cached_owner(camera)
    if owner is _UNKNOWN:
        owner = await run_in_threadpool(owner_of, session, camera)
    _judge(who, camera, owner)  # type: ignore[arg-type]


def check_order_camera(session: Session, who: Principal, order_id: int) -> None:
    """403 unless the caller may speak for the camera of this order (a camera check)."""
    if who.role != Role.edge:
        return
    camera = session.exec(select(Camera.name).join(Order, col(Order.camera_id) == col(Camera.id))
                          .where(Order.id == order_id)).first()
    session.rollback()
    if camera is not None:  # no such order, or a citizen's: the check itself answers 404 / 409
        check_camera(session, who, camera)
