"""A durable outbox: confirmed events and their evidence live on disk until the API has them.

    outbox/outbox.db        SQLite (WAL, synchronous=FULL): one row per event, in order
    outbox/evidence/<event_id>/<kind>.jpg

`journal()` records a confirmation the moment it happens; `put()` writes the rendered images
(temp file, fsync, rename) and then commits the event's row (and clears its journal entry),
returning only after both are on disk: from then on a `kill -9` or a power cut loses nothing.
A confirmation still in the journal after a crash has lost its in-memory frame (the unblurred
frame never goes to disk); the edge renders it from that camera's next frame after restart. A row
is deleted only after the API acknowledged its event (201, or 200 for a replay); an event
sent whose deletion a crash prevented is sent again after restart with the same event id,
which the API answers as a replay. So every event arrives, and arrives once.

Disk cap: when the evidence would exceed `max_bytes`, the oldest events' images are deleted
first, counted in `dropped_images` and logged. Their metadata stays and is still sent, with a
small thumbnail of the (already blurred) frame in place of the images, because the API
requires a frame with every event; the event's frame size and box are rewritten to the
thumbnail's, which the API checks the frame against. Event metadata is a few hundred bytes
and never dropped.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from api.geometry import scale_box

log = logging.getLogger("streetwatch.outbox")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    event_json TEXT NOT NULL,
    kinds TEXT NOT NULL,            -- JSON list of evidence kinds still on disk
    image_bytes INTEGER NOT NULL,   -- their size
    images_dropped INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
-- confirmations whose evidence is still being blurred and rendered (in memory only: the
-- unblurred frame never touches the disk); after a crash they get a frame taken at restart
CREATE TABLE IF NOT EXISTS confirmed (
    event_id TEXT PRIMARY KEY,
    camera TEXT NOT NULL,
    issue_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass
class StoredEvent:
    seq: int
    event_id: str
    event_json: str
    images: dict[str, bytes]  # kind → JPEG, empty when dropped for the cap
    images_dropped: bool
    attempts: int


class Outbox:
    """Thread-safe; one instance per folder (the box runs one edge process)."""

    def __init__(self, folder: Path | str, max_bytes: int = 500 * 2**20):
        self.folder = Path(folder)
        self.evidence = self.folder / "evidence"
        self.evidence.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.folder / "outbox.db", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a commit is on disk when it returns
        self._db.executescript(_SCHEMA)
        self._sweep_orphans()

    # -- writing ------------------------------------------------------------------------
    def put(self, event_id: uuid.UUID | str, event_json: str, images: dict[str, bytes]) -> None:
        """Store one event durably. Idempotent: the same event id again is ignored."""
        event_id = str(event_id)
        size = sum(len(b) for b in images.values())
        with self._lock:
            if self._db.execute("SELECT 1 FROM events WHERE event_id = ?", (event_id,)).fetchone():
                return
            self._make_room(size)
            folder = self.evidence / event_id
            folder.mkdir(exist_ok=True)
            for kind, data in images.items():
                _write_durably(folder / f"{kind}.jpg", data)
            _fsync_dir(folder)
            _fsync_dir(self.evidence)
            self._db.execute("BEGIN")
            try:
                self._db.execute("INSERT INTO events (event_id, event_json, kinds, image_bytes, created_at) "
                                 "VALUES (?, ?, ?, ?, strftime('%s','now'))",
                                 (event_id, event_json, json.dumps(sorted(images)), size))
                self._db.execute("DELETE FROM confirmed WHERE event_id = ?", (event_id,))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def journal(self, event_id: uuid.UUID | str, camera: str, issue_json: str) -> None:
        """Record a confirmation the moment it happens, before its evidence is rendered (which
        takes a while): a crash in between must not lose the event."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO confirmed (event_id, camera, issue_json, created_at) "
                             "VALUES (?, ?, ?, strftime('%s','now'))", (str(event_id), camera, issue_json))

    def unrendered(self) -> list[tuple[str, str, str]]:
        """(event_id, camera, issue_json) of confirmations a crash left without evidence."""
        with self._lock:
            return self._db.execute("SELECT event_id, camera, issue_json FROM confirmed ORDER BY created_at, rowid"
                                    ).fetchall()

    def forget_unrendered(self, event_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM confirmed WHERE event_id = ?", (event_id,))

    def _make_room(self, incoming: int) -> None:
        used = self._db.execute("SELECT COALESCE(SUM(image_bytes), 0) FROM events").fetchone()[0]
        if used + incoming <= self.max_bytes:
            return
        rows = self._db.execute("SELECT seq, event_id, event_json, kinds, image_bytes FROM events "
                                "WHERE images_dropped = 0 ORDER BY seq").fetchall()
        for seq, event_id, event_json, kinds, nbytes in rows:
            if used + incoming <= self.max_bytes:
                break
            folder = self.evidence / event_id
            small = _thumbnail(folder / "frame.jpg")
            shutil.rmtree(folder, ignore_errors=True)
            kept, thumb = [], b""
            if small is not None:
                thumb, size = small
                folder.mkdir()
                _write_durably(folder / "frame.jpg", thumb)
                kept, event_json = ["frame"], _resized_event(event_json, size)
            self._db.execute("UPDATE events SET event_json = ?, kinds = ?, image_bytes = ?, images_dropped = 1 "
                             "WHERE seq = ?", (event_json, json.dumps(kept), len(thumb), seq))
            dropped = len(json.loads(kinds))
            self._bump("dropped_images", dropped)
            self._bump("dropped_bytes", nbytes)
            used -= nbytes - len(thumb)
            log.warning("outbox over its cap (%.0f MB): dropped the %d evidence image(s) of event %s, the oldest; "
                        "its metadata will still be sent", self.max_bytes / 2**20, dropped, event_id)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute("INSERT INTO counters (name, value) VALUES (?, ?) "
                         "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value", (name, by))

    # -- reading and acknowledging ---------------------------------------------------
    def peek(self) -> StoredEvent | None:
        """The oldest event not yet acknowledged, with whatever images it still has."""
        with self._lock:
            row = self._db.execute("SELECT seq, event_id, event_json, kinds, images_dropped, attempts FROM events "
                                   "ORDER BY seq LIMIT 1").fetchone()
            if row is None:
                return None
            seq, event_id, event_json, kinds, dropped, attempts = row
            return StoredEvent(seq, event_id, event_json, self._read_images(event_id, kinds), bool(dropped), attempts)

    def peek_many(self, limit: int, max_bytes: int) -> list[StoredEvent]:
        """The oldest events not yet acknowledged, at most `limit` of them and, past the
        first, no more than `max_bytes` of images together (a backlog drained in batches)."""
        out: list[StoredEvent] = []
        total = 0
        # Read under the lock, as peek: the cap may swap an event's images for a thumbnail.
        with self._lock:
            rows = self._db.execute("SELECT seq, event_id, event_json, kinds, images_dropped, attempts, image_bytes "
                                    "FROM events ORDER BY seq LIMIT ?", (max(1, limit),)).fetchall()
            for seq, event_id, event_json, kinds, dropped, attempts, nbytes in rows:
                total += nbytes
                if out and total > max_bytes:
                    break
                out.append(StoredEvent(seq, event_id, event_json, self._read_images(event_id, kinds), bool(dropped),
                                       attempts))
        return out

    def _read_images(self, event_id: str, kinds: str) -> dict[str, bytes]:
        images = {}
        for kind in json.loads(kinds):
            try:
                images[kind] = (self.evidence / event_id / f"{kind}.jpg").read_bytes()
            except FileNotFoundError:  # removed by hand: send what is left
                log.warning("outbox: evidence %s of event %s is missing", kind, event_id)
        return images

    def attempted(self, seq: int) -> None:
        with self._lock:
            self._db.execute("UPDATE events SET attempts = attempts + 1 WHERE seq = ?", (seq,))

    def ack(self, seq: int) -> None:
        """The API has the event: forget it (row first, so a crash leaves at worst orphan files)."""
        with self._lock:
            row = self._db.execute("SELECT event_id FROM events WHERE seq = ?", (seq,)).fetchone()
            self._db.execute("DELETE FROM events WHERE seq = ?", (seq,))
            if row:
                shutil.rmtree(self.evidence / row[0], ignore_errors=True)

    def _sweep_orphans(self) -> None:
        """Evidence folders without a row: written just before a crash, or left by an ack."""
        known = {r[0] for r in self._db.execute("SELECT event_id FROM events")}
        for folder in self.evidence.iterdir():
            if folder.is_dir() and folder.name not in known:
                shutil.rmtree(folder, ignore_errors=True)

    # -- figures --------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        with self._lock:
            n, nbytes = self._db.execute("SELECT COUNT(*), COALESCE(SUM(image_bytes), 0) FROM events").fetchone()
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            rendering = self._db.execute("SELECT COUNT(*) FROM confirmed").fetchone()[0]
        return {"events": n, "bytes": nbytes, "dropped_images": counters.get("dropped_images", 0),
                "dropped_bytes": counters.get("dropped_bytes", 0), "rendering": rendering}

    def __len__(self) -> int:
        return self.stats()["events"]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _thumbnail(path: Path, width: int = 160) -> tuple[bytes, tuple[int, int]] | None:
    """A small JPEG of an evidence frame (a few kB) and its (w, h), or None if it cannot be read."""
    import cv2
    import numpy as np

    try:
        image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    except OSError:
        return None
    if image is None:
        return None
    h, w = image.shape[:2]
    size = (width, max(1, round(h * width / w)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 70])
    return (buf.tobytes(), size) if ok else None


def _resized_event(event_json: str, size: tuple[int, int]) -> str:
    """The event as seen in a frame of `size` (w, h): frame size and box scaled to it."""
    event = json.loads(event_json)
    width, height = event.get("frame_width"), event.get("frame_height")
    if not width or not height:
        return event_json
    x1, y1, x2, y2 = scale_box(tuple(event["bbox"]), (width, height), size)
    event.update(frame_width=size[0], frame_height=size[1],
                 bbox=[min(x1, size[0]), min(y1, size[1]), min(x2, size[0]), min(y2, size[1])])
    return json.dumps(event)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk must not also keep the half-written file
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
