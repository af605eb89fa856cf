"""Evidence stores and the signed download route."""

from __future__ import annotations

import io
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from minio import Minio
from minio.error import S3Error

from api.evidence_store import LocalEvidenceStore, S3EvidenceStore, StoreUnavailable, check_key
from api.main import create_app
from tests.api.factories import auth, make_key, event_json, jpeg, post


def frame_url(client: TestClient) -> str:
    order_id = post(client, event_json()).json()["order_id"]
    return client.get(f"/api/v1/orders/{order_id}").json()["evidence"][0]["url"]


def test_signed_url_downloads_and_tampering_is_403(sqlite_client):
    url = frame_url(sqlite_client)
    resp = sqlite_client.get(url)
    assert resp.status_code == 200 and resp.headers["x-content-type-options"] == "nosniff"
    path, query = url.split("?")
    q = {k: v[0] for k, v in parse_qs(query).items()}
    wrong_sig = {**q, "signature": "0" * 64}
    later = {**q, "expires": str(int(q["expires"]) + 3600)}  # a longer life is not ours to give
    for params in (wrong_sig, later):
        resp = sqlite_client.get(path, params=params)
        assert resp.status_code == 403 and "signature" in resp.json()["detail"]
    other_key = path.replace("frame", "annotated")
    assert sqlite_client.get(other_key, params=q).status_code == 403
    assert sqlite_client.get(path, params={"expires": q["expires"]}).status_code == 422


def test_expired_url_is_403(sqlite_backend):
    store = LocalEvidenceStore(sqlite_backend.evidence_dir, sqlite_backend.signing_key())
    store.put("events/x/old-frame.jpg", jpeg(), "image/jpeg")
    expires = int(time.time()) - 1
    url = f"/api/v1/evidence/events/x/old-frame.jpg?expires={expires}&signature={store.signature('events/x/old-frame.jpg', expires)}"
    with TestClient(create_app(sqlite_backend), headers=auth(make_key(sqlite_backend, 'admin'))) as c:
        assert c.get(url).status_code == 403
        assert c.get(store.presigned_url("events/x/old-frame.jpg", 60)).content == jpeg()


def test_dot_dot_keys_are_refused(sqlite_backend, tmp_path):
    store = LocalEvidenceStore(tmp_path / "ev", b"k" * 32)
    for key in ("../secret", "a/../../b", "/etc/passwd", "a//b", "a\\..\\b", ""):
        with pytest.raises(ValueError):
            store.put(key, b"x", "image/jpeg")
        with pytest.raises(ValueError):
            check_key(key)
    assert not (tmp_path / "secret").exists()
    with TestClient(create_app(sqlite_backend), headers=auth(make_key(sqlite_backend, 'admin'))) as c:
        # %2E%2E keeps the client from normalising the path away before the API sees it.
        resp = c.get("/api/v1/evidence/events/%2E%2E/%2E%2E/sw.db", params={"expires": 9999999999, "signature": "0"})
        assert resp.status_code in (400, 404) and resp.status_code != 200


def test_local_store_roundtrip(tmp_path):
    store = LocalEvidenceStore(tmp_path / "ev", b"k" * 32)
    store.put("a/b.jpg", b"data", "image/jpeg")
    assert store.exists("a/b.jpg") and store.get("a/b.jpg") == b"data"
    store.delete("a/b.jpg")
    store.delete("a/b.jpg")  # already gone: no error
    assert not store.exists("a/b.jpg")
    with pytest.raises(FileNotFoundError):
        store.get("a/b.jpg")


def test_s3_store_roundtrip_and_presigned_url(s3):
    store = S3EvidenceStore(s3.endpoint, s3.access_key, s3.secret_key, "roundtrip-bucket")
    store.ping()
    store.put("a/b.jpg", jpeg(), "image/jpeg")
    assert store.exists("a/b.jpg") and store.get("a/b.jpg") == jpeg()
    resp = httpx.get(store.presigned_url("a/b.jpg", 60), timeout=10)
    assert resp.status_code == 200 and resp.content == jpeg()
    assert resp.headers["content-type"] == "image/jpeg"
    store.delete("a/b.jpg")
    assert not store.exists("a/b.jpg")
    with pytest.raises(FileNotFoundError):
        store.get("a/b.jpg")


def test_s3_store_recreates_a_bucket_deleted_behind_its_back(s3):
    store = S3EvidenceStore(s3.endpoint, s3.access_key, s3.secret_key, "deleted-bucket")
    store.put("a.jpg", jpeg(), "image/jpeg")
    s3.drop_bucket("deleted-bucket")
    with pytest.raises(FileNotFoundError):  # NoSuchBucket: the store makes it again, asks again
        store.get("a.jpg")
    store.put("b.jpg", jpeg(), "image/jpeg")
    assert store.get("b.jpg") == jpeg()
    s3.drop_bucket("deleted-bucket")


def _no_such_bucket() -> S3Error:
    return S3Error(None, "NoSuchBucket", "The specified bucket does not exist", None, None, None)


def test_s3_store_waits_out_a_new_bucket_the_server_does_not_see_yet(s3, monkeypatch):
    """S3 servers make a new bucket visible eventually (SeaweedFS's gateway lagged in CI and
    answered NoSuchBucket to a put just after the create): a brief lag is no outage, but a
    bucket that never appears is, and is reported as one."""
    store = S3EvidenceStore(s3.endpoint, s3.access_key, s3.secret_key, "lagging-bucket")
    # minio's path, where the waits are: the kept-connection PUT leaves any refusal to it
    # (tests/api/test_s3_put.py), and the lag is simulated inside minio here.
    store._kept = None
    real_put, refusals = store.client.put_object, {"left": 2}

    def lagging_put(*args, **kwargs):
        if refusals["left"] > 0:
            refusals["left"] -= 1
            raise _no_such_bucket()
        return real_put(*args, **kwargs)

    monkeypatch.setattr(store.client, "put_object", lagging_put)
    store.put("a.jpg", jpeg(), "image/jpeg")
    assert refusals["left"] == 0 and store.get("a.jpg") == jpeg()

    refusals["left"] = 100
    with pytest.raises(StoreUnavailable, match="NoSuchBucket"):
        store.put("b.jpg", jpeg(), "image/jpeg")
    assert refusals["left"] == 100 - len(S3EvidenceStore._NEW_BUCKET_WAITS) - 1
    s3.drop_bucket("lagging-bucket")


def test_s3_server_enforces_credentials(s3):
    """The local S3 server must check keys like MinIO does, or the tests would prove little."""
    wrong = S3EvidenceStore(s3.endpoint, s3.access_key, "not-the-secret", "creds-bucket")
    with pytest.raises(StoreUnavailable, match="refused: (AccessDenied|SignatureDoesNotMatch)"):
        wrong.put("k.jpg", b"x", "image/jpeg")
    anonymous = Minio(s3.endpoint, secure=False)
    with pytest.raises(Exception, match="AccessDenied"):
        anonymous.put_object("creds-bucket", "k.jpg", io.BytesIO(b"x"), 1)


def test_evidence_route_is_404_when_evidence_lives_in_s3(sqlite_backend, s3):
    settings = sqlite_backend.model_copy(update={"s3_endpoint": s3.endpoint, "s3_access_key": s3.access_key,
                                                 "s3_secret_key": s3.secret_key, "s3_bucket": "route-bucket"})
    with TestClient(create_app(settings), headers=auth(make_key(settings, 'admin'))) as c:
        url = frame_url(c)
        assert urlsplit(url).scheme == "http" and "X-Amz-Signature" in url
        resp = c.get("/api/v1/evidence/events/x/frame.jpg", params={"expires": 1, "signature": "x"})
        assert resp.status_code == 404 and "S3" in resp.json()["detail"]


def test_full_s3_server_is_503_and_dropped_buckets_give_their_volume_back():
    """Each bucket takes a SeaweedFS volume: the fixtures drop every test's bucket, and a
    store on a server with no volume left is 'unavailable' (503), never a 500."""
    from api.local_s3 import LocalS3Server

    with LocalS3Server(max_volumes=2) as server:
        for round_ in range(4):  # twice the cap, one bucket at a time
            store = S3EvidenceStore(server.endpoint, server.access_key, server.secret_key, f"b-{round_}")
            store.put("a/b.jpg", jpeg(), "image/jpeg")
            server.drop_bucket(f"b-{round_}")
        kept = [S3EvidenceStore(server.endpoint, server.access_key, server.secret_key, f"k-{i}") for i in range(3)]
        kept[0].put("a.jpg", jpeg(), "image/jpeg")
        kept[1].put("a.jpg", jpeg(), "image/jpeg")
        with pytest.raises(StoreUnavailable, match="refused"):
            kept[2].put("a.jpg", jpeg(), "image/jpeg")
        assert kept[0].get("a.jpg") == jpeg()  # nothing already stored is lost
