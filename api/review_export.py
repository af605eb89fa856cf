"""Reviewers' verdicts become labelled data: `streetwatch dataset export-reviews`.

Writes a YOLO folder (images/, labels/, data.yaml with the three issue types) that a dataset
recipe takes as a `yolo` source, plus `provenance.csv` (camera, order, event, model version,
verdict per image) and `negatives.csv` (why each hard negative was rejected).

* confirmed orders (a person dispatched, started, resolved or closed them): each event's full
  frame, with the event's box labelled as the order's issue type;
* rejected orders that were false alarms (not an issue, other): their frames as hard
  negatives, with no box; orders rejected as a duplicate, permitted or outside the
  jurisdiction showed a real issue, so they are labelled like confirmed ones (reason kept);
* reclassified orders (rejected as `wrong_type` with a corrected type): boxes of the corrected type;
  without one they are left out (the issue was there, of a type nobody named).

An order with no verdict (not judged yet, or a rejection reopened) exports nothing, and what
an earlier run exported for it is withdrawn. Each frame names its own camera: one order can
hold several cameras' events and a citizen's report.

Near-identical frames of one order (a stall seen 200 times) are kept once: a 64-bit
difference hash, within `MAX_HAMMING` bits of one already exported for that order, is a
duplicate. Other orders of the same camera are other issues and keep their frames. The
export is incremental and idempotent: `export_state.json` remembers each image; running
again adds what is new and rewrites labels whose verdict changed.
"""

from __future__ import annotations

import csv
import errno
import fcntl
import io
import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from sqlmodel import Session, col, select
from tqdm import tqdm

from api.evidence_store import EvidenceStore
from api.models import Camera, Event, Evidence, Order, OrderState, RejectReason, is_false_alarm
from api.schemas import EvidenceKind, IssueType
from api.verdicts import confirmed_by_people

log = logging.getLogger("streetwatch.export")
CLASSES = [t.value for t in IssueType]  # label ids: 0 street_vending, 1 clutter, 2 flooding
MAX_HAMMING = 6


@dataclass
class Record:
    image: str
    camera: str
    order_id: int
    event_id: str
    model_version: str
    verdict: str  # confirmed | rejected | reclassified
    issue_type: str  # the label's type (the corrected one for reclassified orders)
    reason: str
    dhash: str


@dataclass
class ExportSummary:
    new_images: int = 0
    relabelled: int = 0
    duplicates_skipped: int = 0  # near-duplicates of a kept frame first found in this run
    unreviewed_orders: int = 0  # no verdict (yet, or any more: reopened); their frames are not exported
    withdrawn: int = 0  # images exported before whose order has no verdict now: removed
    missing_objects: int = 0  # frames whose evidence object could not be read: skipped, retried next run
    total_images: int = 0


def verdict_of(order: Order, confirmed: set[int]) -> str | None:
    """confirmed / rejected / reclassified, or None while no person has judged the order;
    `confirmed`: the ids api/verdicts.py says people confirmed."""
    if order.state == OrderState.rejected:
        if order.reject_reason == RejectReason.wrong_type:
            # Another type was there: its frames are labelled with it, or, when the reviewer
            # did not say which, left out (as background they would teach the model to miss it).
            return "reclassified" if order.corrected_type is not None else None
        if is_false_alarm(order.state, order.reject_reason):
            return "rejected"
        return "confirmed"  # a duplicate, permitted or someone else's: the issue was really there
    # Automatic dispatch and camera checks are not a person's verdict; a rejection taken back
    # withdraws any confirmation before it (api/verdicts.py).
    return "confirmed" if order.id in confirmed else None


def dhash(data: bytes) -> int:
    """64-bit difference hash: 9×8 grey thumbnail, one bit per horizontal neighbour pair."""
    with Image.open(io.BytesIO(data)) as img:
        small = np.asarray(img.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (small[:, 1:] > small[:, :-1]).flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


class ExportBusy(BlockingIOError):
    """Another export (an API job, another API process, the CLI) is writing to this folder."""

    def __str__(self) -> str:
        return f"{self.filename}: another export is writing to this folder; try again when it is done"


@contextmanager
def export_lock(out: Path) -> Iterator[None]:
    """Hold the folder's export lock (an flock, so it spans processes) or raise ExportBusy:
    two exports into one folder each counted the other's images as theirs, or failed."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".export.lock", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ExportBusy(errno.EWOULDBLOCK, "busy", str(out)) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def export_reviews(session: Session, store: EvidenceStore, out: Path, since: datetime | None = None,
                   progress: bool = True, locked: bool = False) -> ExportSummary:
    """`locked`: the caller holds `export_lock(out)` already."""
    if not locked:
        with export_lock(out):
            return export_reviews(session, store, out, since, progress, locked=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "images").mkdir(exist_ok=True)
    (out / "labels").mkdir(exist_ok=True)
    state_path = out / "export_state.json"
    records: dict[str, Record] = {}
    skipped: dict[str, int] = {}  # event id → order id of frames left out as near-duplicates
    if state_path.exists():
        state = json.loads(state_path.read_text())
        records = {k: Record(**v) for k, v in state["images"].items()}
        skipped = {k: int(v) for k, v in state.get("skipped", {}).items()}
    # Near-duplicates are looked for within one order only: on a fixed camera two different
    # issues share almost the whole frame, and each must keep its own label.
    hashes: dict[int, list[int]] = {}
    for rec in records.values():
        hashes.setdefault(rec.order_id, []).append(int(rec.dhash, 16))

    # Every order, not only camera ones: a citizen's order that cameras joined has their frames.
    query = select(Order)
    if since is not None:
        query = query.where(col(Order.updated_at) >= since)
    summary = ExportSummary()
    orders = session.exec(query.order_by(col(Order.id))).all()
    confirmed = confirmed_by_people(session, [o.id for o in orders if o.id is not None])  # one query, not one per order
    for order in tqdm(orders, desc="orders", unit="order", disable=not progress):
        verdict = verdict_of(order, confirmed)
        if verdict is None:
            summary.unreviewed_orders += 1
            summary.withdrawn += _withdraw(out, records, hashes, skipped, order.id or 0)
            continue
        label_type = (order.corrected_type if verdict == "reclassified" else order.issue_type).value
        # (a reopened order keeps the reason of its old rejection: only a rejected one has one now)
        reason = order.reject_reason.value if order.state == OrderState.rejected and order.reject_reason else ""
        frames = session.exec(select(Event, Evidence.object_key, Camera.name)
                              .join(Evidence, col(Evidence.event_id) == col(Event.id))
                              .join(Camera, col(Camera.id) == col(Event.camera_id))  # each frame's own camera
                              .where(Event.order_id == order.id, Evidence.kind == EvidenceKind.frame)
                              .order_by(col(Event.id))).all()
        for event, key, camera in frames:
            name = str(event.event_id)
            if name in records:
                old = records[name]
                if (old.verdict, old.issue_type, old.reason) != (verdict, label_type, reason):
                    old.verdict, old.issue_type, old.reason = verdict, label_type, reason
                    _write_label(out, old, event)
                    summary.relabelled += 1
                continue
            if name in skipped:  # a near-duplicate an earlier run already left out: not read again
                continue
            try:
                data = store.get(key)
                h = dhash(data)
            except (OSError, ValueError) as exc:  # gone (FileNotFoundError), or not an image any more
                log.warning("export: event %s: frame %s cannot be read (%s); skipped", name, key, exc)
                summary.missing_objects += 1
                continue
            if any(bin(h ^ other).count("1") <= MAX_HAMMING for other in hashes.get(order.id or 0, [])):
                skipped[name] = order.id or 0
                summary.duplicates_skipped += 1
                continue
            hashes.setdefault(order.id or 0, []).append(h)
            ext = Path(key).suffix or ".jpg"
            rec = Record(image=f"{name}{ext}", camera=camera, order_id=order.id or 0, event_id=name,
                         model_version=f"{event.model_name}:{event.model_version}", verdict=verdict,
                         issue_type=label_type, reason=reason, dhash=f"{h:016x}")
            _atomic_write(out / "images" / rec.image, data)
            _write_label(out, rec, event)
            records[name] = rec
            summary.new_images += 1
    _write_index(out, records, skipped)
    summary.total_images = len(records)
    return summary


def _withdraw(out: Path, records: dict[str, Record], hashes: dict[int, list[int]], skipped: dict[str, int],
              order_id: int) -> int:
    """Remove what an earlier run exported for an order that has no verdict now (a rejection
    reopened): a false alarm's frame must not stay a hard negative while the case is open."""
    gone = [name for name, rec in records.items() if rec.order_id == order_id]
    for name in gone:
        rec = records.pop(name)
        (out / "images" / rec.image).unlink(missing_ok=True)
        (out / "labels" / f"{Path(rec.image).stem}.txt").unlink(missing_ok=True)
    hashes.pop(order_id, None)
    for name in [name for name, of in skipped.items() if of == order_id]:  # judged again, all are looked at
        del skipped[name]
    return len(gone)


def _write_label(out: Path, rec: Record, event: Event) -> None:
    lines = ""
    if rec.verdict != "rejected":  # a false alarm's frame is a hard negative: no box
        cx = (event.x1 + event.x2) / 2 / event.frame_width
        cy = (event.y1 + event.y2) / 2 / event.frame_height
        w, h = (event.x2 - event.x1) / event.frame_width, (event.y2 - event.y1) / event.frame_height
        lines = f"{CLASSES.index(rec.issue_type)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n"
    _atomic_write(out / "labels" / f"{Path(rec.image).stem}.txt", lines.encode())


def _write_index(out: Path, records: dict[str, Record], skipped: dict[str, int]) -> None:
    ordered = sorted(records.values(), key=lambda r: (r.order_id, r.event_id))
    _atomic_write(out / "data.yaml", yaml.safe_dump({"path": ".", "train": "images", "val": "images",
                                                    "names": dict(enumerate(CLASSES))}, sort_keys=False).encode())
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", "camera", "order_id", "event_id", "model_version", "verdict", "issue_type", "reason"])
    for r in ordered:
        writer.writerow([r.image, r.camera, r.order_id, r.event_id, r.model_version, r.verdict, r.issue_type, r.reason])
    _atomic_write(out / "provenance.csv", buf.getvalue().encode())
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["image", "order_id", "reason"])
    for r in ordered:
        if r.verdict == "rejected":
            writer.writerow([r.image, r.order_id, r.reason])
    _atomic_write(out / "negatives.csv", buf.getvalue().encode())
    _atomic_write(out / "export_state.json",
                  json.dumps({"images": {k: asdict(v) for k, v in records.items()}, "skipped": skipped},
                             indent=1).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    # A crash mid-export leaves whole files only: the next run redoes what is missing.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
