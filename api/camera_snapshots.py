"""Each camera's latest privacy-blurred frame, uploaded by its box at a low rate.

One object per camera (`cameras/<camera id>/snapshot.jpg`), overwritten by each upload, so the
store holds as many snapshots as there are cameras however long the fleet runs. The key uses
the camera's numeric id, not its name: a name may be `..`, which no object key may contain.
The row beside it says when and from which box it came, so a reader learns "none yet" without
asking the store, and the page can show how old the picture is.

Written object first, row second: a failed store leaves the previous snapshot and its row as
they were; a failed commit after a stored object leaves a newer picture under the old row's
time, which the next upload corrects (the ETag is the sha256 of what the row describes, so a
client holding that picture re-fetches).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session

from api.auth import Principal
from api.camera_rows import camera_id_by_name, save_camera_row
from api.evidence_store import EvidenceStore
from api.fleet_models import CameraSnapshot
from api.images import BadImage, TooLarge, check_image
from api.models import Role, as_utc, utcnow
from api.problems import InvalidField, NotFound, Problem
from api.schemas import EvidenceKind

JPEG = "image/jpeg"
HINT = "a box declares its cameras in its heartbeat"


class UnsupportedMedia(Problem):
    status = 415


class CameraSnapshotPublic(BaseModel):
    camera: str
    box_id: str | None
    uploaded_at: datetime
    width: int
    height: int
    size: int
    sha256: str


def object_key(camera_id: int) -> str:
    return f"cameras/{camera_id}/snapshot.jpg"


def check_media_type(content_type: str | None) -> None:
    """415 unless the body is declared a JPEG (before a byte of it is read)."""
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime != JPEG:
        raise UnsupportedMedia(f"Content-Type: a snapshot is sent as {JPEG}, not {mime or 'nothing'!r}")


def _public(name: str, row: CameraSnapshot) -> CameraSnapshotPublic:
    return CameraSnapshotPublic(camera=name, box_id=row.box_id, uploaded_at=as_utc(row.uploaded_at), width=row.width,
                                height=row.height, size=row.size, sha256=row.sha256)


def put_snapshot(session: Session, store: EvidenceStore, who: Principal, name: str, data: bytes,
                 max_bytes: int) -> CameraSnapshotPublic:
    """Check the JPEG whole (decoded, as event frames are), store it over the camera's previous
    one, and record when. The caller has checked that `who` speaks for the camera."""
    camera_id = camera_id_by_name(session, name, HINT)
    session.rollback()  # a read only: hold nothing while decoding and storing
    try:
        image = check_image(EvidenceKind.frame, data, max_bytes, field="body")
    except TooLarge:
        raise
    except BadImage as exc:
        raise InvalidField(("body",), exc.reason) from None
    if image.content_type != JPEG:
        raise UnsupportedMedia(f"body: a snapshot must be a JPEG; this is {image.content_type}")
    key = object_key(camera_id)
    store.put(key, data, JPEG)
    box_id = who.box_id if who.role == Role.edge else None

    def fill(row: CameraSnapshot) -> None:
        row.box_id, row.object_key, row.sha256, row.size = box_id, key, image.sha256, len(data)
        row.width, row.height, row.uploaded_at = image.width, image.height, utcnow()

    row = save_camera_row(session, CameraSnapshot, lambda: camera_id,
                          lambda camera_id: CameraSnapshot(camera_id=camera_id, object_key=key, sha256="", size=0,
                                                           width=0, height=0),
                          fill)
    return _public(name, row)


def snapshot_row(session: Session, name: str) -> CameraSnapshotPublic:
    """The latest snapshot's description; 404 with the reason when there is none."""
    row = session.get(CameraSnapshot, camera_id_by_name(session, name, HINT))
    if row is None:
        raise NotFound(f"camera {name!r} has no snapshot yet: its box sends one soon after the camera streams, "
                       "then every api.snapshot_s")
    return _public(name, row)


def snapshot_bytes(store: EvidenceStore, session: Session, name: str) -> bytes:
    camera_id = camera_id_by_name(session, name, HINT)
    session.rollback()
    try:
        return store.get(object_key(camera_id))
    except FileNotFoundError:
        raise NotFound(f"camera {name!r}: its snapshot is missing from the evidence store") from None
