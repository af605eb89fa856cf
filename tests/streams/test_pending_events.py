"""A full disk between confirmation and sending: the edge keeps the rendered events in memory,
in order, and stores them once the outbox can take them again; nothing is lost."""

from __future__ import annotations

import sqlite3
import threading
import time
from types import SimpleNamespace

import numpy as np

from streams.config import EdgeConfig
from streams.outbox import Outbox
from streams.pending_events import PendingEvents
from tests.streams.helpers import wait_for
from tests.streams.test_edge_faults import NoDetections
from tests.streams.test_pipeline import stall


def _event(n: int) -> SimpleNamespace:
    return SimpleNamespace(event=SimpleNamespace(event_id=f"e{n}"))


def test_events_the_outbox_refused_are_stored_later_in_order():
    stored, disk_full = [], {"now": True}

    def store(item):
        if disk_full["now"]:
            raise OSError(28, "No space left on device")
        stored.append(item.event.event_id)

    pending = PendingEvents(store, retry_s=0.05, limit=3)
    for n in range(4):  # one more than it holds: the oldest gives way, counted
        pending.store(_event(n))
    assert len(pending) == 3 and pending.lost == 1 and stored == []
    disk_full["now"] = False
    time.sleep(0.06)
    pending.store(_event(4))  # the waiting ones first, then this one
    assert stored == ["e1", "e2", "e3", "e4"] and len(pending) == 0

    disk_full["now"] = True
    pending.store(_event(5))
    disk_full["now"] = False
    pending.store(_event(6))  # before the retry time: behind e5, not before it
    assert stored[-1] == "e4" and len(pending) == 2
    time.sleep(0.06)
    pending.retry()
    assert stored[-2:] == ["e5", "e6"] and len(pending) == 0


def test_a_full_disk_at_confirmation_loses_no_event(tmp_path, monkeypatch):
    """The journal write and the outbox write both fail while the disk is full; the event
    reaches the outbox once there is room (it was lost, with a log line)."""
    from streams.pipeline import EdgePipeline

    config = EdgeConfig.model_validate({"http": None, "privacy_blur": False,
                                        "issues": {"street_vending": {"confirm_seconds": 1}},
                                        "cameras": [{"name": "gate", "url": "rtsp://127.0.0.1/a"}]})
    edge = EdgePipeline(config, detector=NoDetections())
    edge.outbox, edge.sender = Outbox(tmp_path / "ob"), SimpleNamespace(wake=lambda: None, sent=0, rejected=0)
    edge.pending.retry_s = 0.05
    disk = {"full": True}
    real_put, real_journal = edge.outbox.put, edge.outbox.journal

    def put(*args):
        if disk["full"]:
            raise sqlite3.OperationalError("database or disk is full")
        return real_put(*args)

    def journal(*args):
        if disk["full"]:
            raise sqlite3.OperationalError("database or disk is full")
        return real_journal(*args)

    monkeypatch.setattr(edge.outbox, "put", put)
    monkeypatch.setattr(edge.outbox, "journal", journal)
    evidence = threading.Thread(target=edge._evidence_loop, daemon=True)
    evidence.start()
    try:
        image = np.zeros((360, 640, 3), np.uint8)
        for t in range(6):
            frame = SimpleNamespace(captured_at=time.time() - 6 + t, image=image)
            edge._on_result("gate", frame, stall((100, 100, 300, 300)), reused=False)
        assert edge.cameras["gate"].events == 1
        assert wait_for(lambda: len(edge.pending) == 1, 10)
        assert len(edge.outbox) == 0 and edge.health()["outbox"]["unstored"] == 1
        disk["full"] = False
        assert wait_for(lambda: len(edge.outbox) == 1, 10)
        assert len(edge.pending) == 0 and edge.evidence_errors == 0
    finally:
        edge._stop.set()
        evidence.join(5)
        edge.outbox.close()
