"""Ingest of edge events: validate, store evidence, then dedup into orders in one transaction.

Order of work keeps storage consistent: evidence objects are written first under keys
unique to this attempt; the database rows follow in one transaction; if that fails (or
turns out to be a replay) the new objects are deleted again. The dedup decision runs
under a lock shared by every API process (PostgreSQL advisory lock, SQLite's write lock).
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.evidence_store import EvidenceStore
from api.geometry import iou
from api.models import OPEN_STATES, Camera, Event, Evidence, Order, utcnow
from api.schemas import EventAccepted, EventIn, EvidenceKind

log = logging.getLogger("streetwatch.api")

FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png")}


class BadImage(ValueError):
    def __init__(self, part: str, reason: str):
        super().__init__(f"{part}: {reason}")
        self.part = part


@dataclass
class CheckedImage:
    kind: EvidenceKind
    data: bytes
    content_type: str
    ext: str
    width: int
    height: int
    sha256: str


def check_image(kind: EvidenceKind, data: bytes) -> CheckedImage:
    """Decode the whole image: a truncated or corrupt JPEG is refused, not stored."""
    if not data:
        raise BadImage(kind.value, "empty file")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            img.load()
            width, height = img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage(kind.value, f"not a decodable JPEG or PNG image ({exc})") from exc
    if fmt not in FORMATS:
        raise BadImage(kind.value, f"must be JPEG or PNG, got {fmt}")
    content_type, ext = FORMATS[fmt]
    return CheckedImage(kind, data, content_type, ext, width, height, hashlib.sha256(data).hexdigest())


def _lock_key(camera: str, issue_type: str) -> int:
    digest = hashlib.sha256(f"{camera}\n{issue_type}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def find_replay(session: Session, event_id: uuid.UUID) -> EventAccepted | None:
    existing = session.exec(select(Event).where(Event.event_id == event_id)).first()
    if existing is None:
        return None
    return EventAccepted(event_id=event_id, order_id=existing.order_id, new_order=False, replay=True)


def _attach_or_create(session: Session, event: EventIn, camera: Camera, dedup_iou: float) -> tuple[Order, bool]:
    candidates = session.exec(
        select(Order).where(Order.camera_id == camera.id, Order.issue_type == event.issue_type,
                            col(Order.state).in_(OPEN_STATES))
    ).all()
    scored = [(iou(event.bbox, (o.x1, o.y1, o.x2, o.y2)), o) for o in candidates]
    best = max(scored, key=lambda s: s[0], default=(0.0, None))
    if best[1] is not None and best[0] >= dedup_iou:
        order = best[1]
        order.last_seen = max(order.last_seen, event.confirmed_at)
        order.event_count += 1
        order.x1, order.y1, order.x2, order.y2 = event.bbox  # the newest view of the issue
        order.updated_at = utcnow()
        return order, False
    x1, y1, x2, y2 = event.bbox
    order = Order(issue_type=event.issue_type, camera_id=camera.id, x1=x1, y1=y1, x2=x2, y2=y2,
                  frame_width=event.frame_width, frame_height=event.frame_height, first_seen=event.first_seen,
                  last_seen=event.confirmed_at, model_name=event.model.name, model_version=event.model.version)
    session.add(order)
    return order, True


def _upsert_camera(session: Session, event: EventIn) -> Camera:
    camera = session.exec(select(Camera).where(Camera.name == event.camera.name)).first()
    if camera is None:
        camera = Camera(name=event.camera.name)
        session.add(camera)
    camera.lat, camera.lon, camera.grid_id = event.camera.lat, event.camera.lon, event.camera.grid_id
    camera.last_seen = utcnow()
    session.flush()
    return camera


def ingest_event(engine: Engine, store: EvidenceStore, event: EventIn, images: list[CheckedImage],
                 dedup_iou: float) -> EventAccepted:
    with Session(engine) as session:
        replay = find_replay(session, event.event_id)
        if replay:
            return replay

    attempt = uuid.uuid4().hex[:8]
    keys: list[str] = []
    try:
        for img in images:
            key = f"events/{event.event_id}/{attempt}-{img.kind.value}.{img.ext}"
            store.put(key, img.data, img.content_type)
            keys.append(key)
        result = _store_rows(engine, event, images, keys, dedup_iou)
    except IntegrityError:
        # Another request stored the same event_id between our check and our insert.
        result = None
    except BaseException:
        _delete_quietly(store, keys)
        raise
    if result is None or result.replay:
        _delete_quietly(store, keys)
        with Session(engine) as session:
            return find_replay(session, event.event_id)
    return result


def _store_rows(engine: Engine, event: EventIn, images: list[CheckedImage], keys: list[str],
                dedup_iou: float) -> EventAccepted:
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": _lock_key(event.camera.name, event.issue_type.value)})
            with Session(bind=conn) as session:
                replay = find_replay(session, event.event_id)
                if replay:
                    return replay
                camera = _upsert_camera(session, event)
                order, new = _attach_or_create(session, event, camera, dedup_iou)
                session.flush()
                x1, y1, x2, y2 = event.bbox
                row = Event(event_id=event.event_id, order_id=order.id, camera_id=camera.id,
                            issue_type=event.issue_type, class_name=event.class_name, confidence=event.confidence,
                            x1=x1, y1=y1, x2=x2, y2=y2, frame_width=event.frame_width,
                            frame_height=event.frame_height, first_seen=event.first_seen,
                            confirmed_at=event.confirmed_at, track_id=event.track_id,
                            model_name=event.model.name, model_version=event.model.version)
                session.add(row)
                session.flush()
                for img, key in zip(images, keys):
                    session.add(Evidence(order_id=order.id, event_id=row.id, kind=img.kind, object_key=key,
                                         content_type=img.content_type, size=len(img.data), sha256=img.sha256,
                                         width=img.width, height=img.height))
                session.flush()
                log.info("event %s (%s, camera %s) → %s order %d", event.event_id, event.issue_type.value,
                         event.camera.name, "new" if new else "existing", order.id)
                return EventAccepted(event_id=event.event_id, order_id=order.id, new_order=new, replay=False)


def _delete_quietly(store: EvidenceStore, keys: list[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except Exception:  # the object may be orphaned; log it rather than hide the first error
            log.warning("could not delete orphaned evidence object %s", key)
