"""The evidence store's kept-connection PUT (api/s3_put.py) against a real S3 server
(SeaweedFS, which checks signatures): what it stores is what minio reads back, a connection the
server dropped is replaced, and anything but a plain success is left to minio's path."""

from __future__ import annotations

import socket
import uuid

import pytest

from api.evidence_store import S3EvidenceStore, StoreUnavailable
from api.local_s3 import LocalS3Server
from api.s3_put import KeptConnectionPut
from tests.api.factories import jpeg


@pytest.fixture
def store(s3: LocalS3Server):
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    store = S3EvidenceStore(s3.endpoint, s3.access_key, s3.secret_key, bucket)
    store.put("warm/first.jpg", jpeg(), "image/jpeg")  # through minio: the bucket is made
    yield store
    s3.drop_bucket(bucket)


def test_what_it_stores_minio_reads_back_with_its_type(store, s3):
    kept = KeptConnectionPut(s3.endpoint, s3.access_key, s3.secret_key, "us-east-1", secure=False)
    data = jpeg(size=(640, 360))
    for key in ("events/0b7e/1a2b-frame.jpg", "odd names/a+b=c ü.jpg"):
        assert kept.put(store.bucket, key, data, "image/jpeg")
        assert store.get(key) == data
        stat = store.client.stat_object(store.bucket, key)
        assert stat.content_type == "image/jpeg"


def test_a_connection_the_server_dropped_is_replaced(store, s3):
    kept = KeptConnectionPut(s3.endpoint, s3.access_key, s3.secret_key, "us-east-1", secure=False)
    assert kept.put(store.bucket, "a.jpg", jpeg(), "image/jpeg")
    # As when the server closes an idle kept connection: our end's peer is gone.
    ours, theirs = socket.socketpair()
    theirs.close()
    kept._local.conn.sock.close()
    kept._local.conn.sock = ours
    assert kept.put(store.bucket, "b.jpg", jpeg(), "image/jpeg")
    assert store.exists("b.jpg")


def test_refusals_and_a_server_away_are_left_to_minio(store, s3):
    wrong = KeptConnectionPut(s3.endpoint, s3.access_key, "not-the-secret", "us-east-1", secure=False)
    assert not wrong.put(store.bucket, "c.jpg", jpeg(), "image/jpeg")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    away = KeptConnectionPut(f"127.0.0.1:{closed_port}", s3.access_key, s3.secret_key, "us-east-1", secure=False)
    assert not away.put(store.bucket, "c.jpg", jpeg(), "image/jpeg")
    assert not store.exists("c.jpg")


def test_the_store_still_answers_for_what_the_kept_put_declines(s3, store):
    bad = S3EvidenceStore(s3.endpoint, s3.access_key, "not-the-secret", store.bucket)
    bad._bucket_ready = True  # straight to the kept PUT, which the server refuses
    with pytest.raises(StoreUnavailable, match="refused"):
        bad.put("d.jpg", jpeg(), "image/jpeg")
    assert not store.exists("d.jpg")
