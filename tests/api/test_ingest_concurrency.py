from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlmodel import Session, func, select

from api.db import get_engine
from api.events import check_image, ingest_event
from api.evidence_store import make_store
from api.main import create_app
from api.models import Event, Evidence, Order
from api.schemas import EventIn, EvidenceKind
from tests.api.conftest import event_json, jpeg, post


def test_concurrent_events_for_one_issue_make_one_order(backend):
    """Many edge boxes posting at once about the same stall: one order, every event kept.
    Each thread uses its own database connection, as separate API processes would."""
    engine, store = get_engine(backend.database_url), make_store(backend)
    images = [check_image(EvidenceKind.frame, jpeg())]
    events = [EventIn.model_validate(event_json(bbox=(100 + i % 5, 100, 200 + i % 5, 200))) for i in range(30)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda ev: ingest_event(engine, store, ev, images, backend.dedup_iou), events))
    assert len({r.order_id for r in results}) == 1
    assert sum(r.new_order for r in results) == 1
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Order)).one() == 1
        assert s.exec(select(func.count()).select_from(Event)).one() == 30
        order = s.exec(select(Order)).one()
        assert order.event_count == 30


def test_concurrent_replays_of_one_event_store_it_once(backend):
    engine, store = get_engine(backend.database_url), make_store(backend)
    images = [check_image(EvidenceKind.frame, jpeg())]
    ev = EventIn.model_validate(event_json(event_id=uuid.uuid4()))
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: ingest_event(engine, store, ev, images, 0.3), range(16)))
    assert sum(not r.replay for r in results) == 1
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Event)).one() == 1
        keys = s.exec(select(Evidence.object_key)).all()
    assert len(keys) == 1 and store.exists(keys[0])


def test_s3_down_answers_503_and_stores_nothing(backend, tmp_path):
    from streams.camera_server import free_port

    down = backend.model_copy(update={"s3_endpoint": f"127.0.0.1:{free_port()}", "s3_access_key": "a",
                                      "s3_secret_key": "b"})
    with TestClient(create_app(down)) as c:
        resp = post(c, event_json())
        assert resp.status_code == 503 and "retry" in resp.text
        assert c.get("/healthz").status_code == 503
    with Session(get_engine(backend.database_url)) as s:
        assert s.exec(select(func.count()).select_from(Order)).one() == 0
