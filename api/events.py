"""Ingest of edge events: validate, store evidence, then dedup into orders in one transaction.

Order of work keeps storage consistent: evidence objects are written first under keys
unique to this attempt; the database rows follow in one transaction; if that fails (or
turns out to be a replay) the new objects are deleted again. The dedup decision runs under
locks shared by every API process (PostgreSQL advisory locks on the sighting's camera and
surroundings, see api/dedup_locks.py; SQLite's write lock).
"""

from __future__ import annotations

import logging
import uuid
from typing import Callable, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api import ingest_sql
from api.db import begin_write
from api.evidence_store import EvidenceStore
from api.images import CheckedImage, check_images
from api.dedup import CameraInfo, Sighting, locate
from api.dedup_locks import lock_step
from api.driver_pipeline import Step, run_together
from api.models import Evidence, utcnow
from api.sightings import file_sighting
from api.schemas import CameraRef, EventAccepted, EventIn, EvidenceKind
from api.settings import Settings

log = logging.getLogger("streetwatch.api")
T = TypeVar("T")


def object_key(prefix: str, attempt: str, image: CheckedImage) -> str:
    # The attempt part matters: two racing posts of one event must never write (and the
    # loser then delete) the same object the winner's rows point at.
    return f"{prefix}/{attempt}-{image.kind.value}.{image.ext}"


def find_replay(session: Session, event_id: uuid.UUID) -> EventAccepted | None:
    """The answer the first post of this event got, marked as a replay; None if it is new."""
    conn = session.connection()
    row = conn.execute(ingest_sql.FIND_EVENT, {"event_id": event_id}).first()
    if row is None:
        return None
    first = conn.execute(ingest_sql.FIRST_EVENT_OF_ORDER, {"order_id": row.order_id}).scalar_one()
    return EventAccepted(event_id=event_id, order_id=row.order_id, new_order=first == row.id, replay=True)


def ingest_event(session: Session, store: EvidenceStore, settings: Settings, event: EventIn,
                 images: dict[EvidenceKind, bytes]) -> EventAccepted:
    """Store one edge event and its images; attach it to an open order or open a new one.

    Raises BadImage / TooLarge (nothing stored), StoreUnavailable (nothing stored; retry).
    Posting an event_id again returns the first answer with replay=True and stores nothing.
    """
    # The box is in the frame's pixels: a frame of another size makes it point elsewhere (and
    # the review export would label the wrong place). Checked from the headers, before decoding.
    checked = check_images(images, settings.max_upload_bytes, (event.frame_width, event.frame_height))
    # No replay check up front: the unique event_id refuses a replay's INSERT, and only then
    # is the first answer looked up. A replay (the edge retrying after a lost answer) is rare
    # and costs an S3 put and delete; a check on every event cost a statement on every event.
    keys = _put_objects(store, f"events/{event.event_id}", checked)
    try:
        result = _write_rows(session, settings, event, checked, keys)
    except IntegrityError as exc:
        # This event_id is stored already: sent before, or by a twin racing this one.
        session.rollback()
        _delete_quietly(store, keys)
        replay = find_replay(session, event.event_id)
        if replay is None:
            raise exc
        return replay
    except BaseException:
        session.rollback()
        _discard_unless_committed(session, store, f"event {event.event_id}", keys)
        raise
    return result


def store_then_commit(session: Session, store: EvidenceStore, prefix: str, images: list[CheckedImage],
                      write: Callable[[list[str]], T]) -> T:
    """Objects first, then `write(keys)`, which adds the rows and commits; if it fails the
    objects go again (a citizen's photo or a worker's follows the same rule as events)."""
    keys = _put_objects(store, prefix, images)
    try:
        return write(keys)
    except BaseException:
        session.rollback()
        _discard_unless_committed(session, store, prefix, keys)
        raise


def _put_objects(store: EvidenceStore, prefix: str, images: list[CheckedImage]) -> list[str]:
    attempt = uuid.uuid4().hex[:12]
    keys: list[str] = []
    try:
        for img in images:
            key = object_key(prefix, attempt, img)
            store.put(key, img.data, img.content_type, img.sha256)
            keys.append(key)
    except BaseException:
        _delete_quietly(store, keys)
        raise
    return keys


def _write_rows(session: Session, settings: Settings, event: EventIn, images: list[CheckedImage],
                keys: list[str]) -> EventAccepted:
    # A replay, or a twin that committed while we waited, makes our INSERT hit the unique
    # event_id, which the caller turns into the replay answer. Every statement here runs
    # while other sightings nearby wait, so there are few of them.
    # SQLite: the one writer lock, so two processes never both read "no order yet" before
    # either writes; PostgreSQL: the dedup locks follow once the place is known (api/dedup_locks.py).
    begin_write(session)
    camera = _upsert_camera(session, event.camera)
    lat, lon = locate(camera, event.bbox)
    sighting = Sighting(event.issue_type, event.confirmed_at, camera, event.bbox, lat, lon,
                        (event.frame_width, event.frame_height))
    filed = file_sighting(session, settings, sighting, (event.frame_width, event.frame_height), event.model,
                          event.first_seen, lock=lock_step(session, settings, sighting), defer_update=True)
    x1, y1, x2, y2 = event.bbox
    now = utcnow()
    writes: list[Step] = [*filed.deferred, (ingest_sql.INSERT_EVENT_RAW, dict(
        event_id=event.event_id, order_id=filed.order_id, camera_id=camera.id, issue_type=event.issue_type,
        class_name=event.class_name, confidence=event.confidence, x1=x1, y1=y1, x2=x2, y2=y2,
        frame_width=event.frame_width, frame_height=event.frame_height, first_seen=event.first_seen,
        confirmed_at=event.confirmed_at, track_id=event.track_id, model_name=event.model.name,
        model_version=event.model.version, lat=lat, lon=lon, received_at=now))]
    writes += [(ingest_sql.INSERT_EVENT_EVIDENCE_RAW, dict(
        order_id=filed.order_id, of_event=event.event_id, report_id=None, audit_id=None, kind=img.kind,
        object_key=key, content_type=img.content_type, size=len(img.data), sha256=img.sha256,
        width=img.width, height=img.height, created_at=now)) for img, key in zip(images, keys)]
    session.flush()  # a new order's rows first: the commit below goes with these writes
    run_together(session.connection(), writes, commit=True)
    session.commit()
    log.info("event %s (%s, camera %s) → order %d (%s)", event.event_id, event.issue_type.value, event.camera.name,
             filed.order_id, filed.match.value)
    return EventAccepted(event_id=event.event_id, order_id=filed.order_id, new_order=filed.new, replay=False)


def _upsert_camera(session: Session, ref: CameraRef) -> CameraInfo:
    """Insert the camera or move its last_seen, and read back what dedup needs (one statement)."""
    conn = session.connection()
    # Through run_together although alone: on PostgreSQL its BEGIN then goes in the same round trip.
    [((id_, lat, lon, grid_id, ground_points),)] = run_together(conn, [(
        ingest_sql.camera_upsert_raw(conn.dialect.name),
        {"name": ref.name, "lat": ref.lat, "lon": ref.lon, "grid_id": ref.grid_id, "now": utcnow()})])
    return CameraInfo(id_, ref.name, lat, lon, grid_id, ground_points)


def _discard_unless_committed(session: Session, store: EvidenceStore, what: str, keys: list[str]) -> None:
    """After a failure, delete this attempt's objects, unless the rows pointing at them made it
    in after all (a commit can fail on the wire yet succeed) or we cannot tell: an orphaned
    object costs a little disk, evidence lost from an order costs the case."""
    try:
        committed = session.exec(select(Evidence.id).where(col(Evidence.object_key).in_(keys))).first() is not None
        session.rollback()
    except Exception:  # the database is down: we cannot tell
        log.warning("%s: cannot tell whether it was stored; keeping objects %s", what, keys)
        return
    if not committed:
        _delete_quietly(store, keys)


def _delete_quietly(store: EvidenceStore, keys: list[str]) -> None:
    for key in keys:
        try:
            store.delete(key)
        except Exception:  # log the orphan rather than hide the error that got us here
            log.warning("could not delete orphaned evidence object %s", key)
