"""Where evidence images live: S3 (MinIO in production, through the `minio` client) or a folder.

Both stores hand out time-limited URLs, so API clients download images straight from
storage (S3 presigned URLs) or from the API's own signed route (local folder).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import time
from datetime import timedelta
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from api.settings import Settings


class StoreUnavailable(RuntimeError):
    """The evidence store cannot be reached; the caller should answer 503 and let the edge retry."""


class EvidenceStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def delete(self, key: str) -> None: ...
    def presigned_url(self, key: str, expires_seconds: int) -> str: ...
    def ping(self) -> None: ...


class S3EvidenceStore:
    def __init__(self, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str,
                 secure: bool = False, region: str = "us-east-1"):
        from minio import Minio
        from urllib3 import PoolManager, Retry, Timeout

        # Short timeouts and few retries: when S3 is down the edge should hear 503 quickly.
        http = PoolManager(timeout=Timeout(connect=3, read=10), retries=Retry(total=1, backoff_factor=0.2), maxsize=20)
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                            http_client=http)
        self.bucket = bucket
        self._bucket_ready = False

    def _call(self, fn, *args, **kwargs):
        from minio.error import S3Error
        from urllib3.exceptions import HTTPError

        try:
            if not self._bucket_ready:
                self._ensure_bucket()
            return fn(*args, **kwargs)
        except S3Error:
            raise
        except (HTTPError, OSError) as exc:
            raise StoreUnavailable(f"S3 evidence store unreachable: {exc}") from exc

    def _ensure_bucket(self) -> None:
        from minio.error import S3Error

        try:
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        except S3Error as exc:
            # Another request (or API process) created it between our check and our create.
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        self._bucket_ready = True

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self._call(self.client.put_object, self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def get(self, key: str) -> bytes:
        resp = self._call(self.client.get_object, self.bucket, key)
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        from minio.error import S3Error

        try:
            self._call(self.client.stat_object, self.bucket, key)
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise

    def delete(self, key: str) -> None:
        self._call(self.client.remove_object, self.bucket, key)

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        # Signing is local arithmetic; no request is made.
        return self.client.presigned_get_object(self.bucket, key, expires=timedelta(seconds=expires_seconds))

    def ping(self) -> None:
        self._call(lambda: None)


class LocalEvidenceStore:
    """Files under a folder; URLs point at the API's /api/v1/evidence route with an HMAC signature."""

    def __init__(self, root: Path, signing_key: bytes, url_prefix: str = "/api/v1/evidence"):
        self.root = Path(root)
        self.key = signing_key
        self.url_prefix = url_prefix

    def _path(self, key: str) -> Path:
        if not key or ".." in key.split("/") or key.startswith("/"):
            raise ValueError(f"bad evidence key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self.key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int, signature: str) -> bool:
        return expires >= time.time() and hmac.compare_digest(self.signature(key, expires), signature)

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        expires = int(time.time()) + expires_seconds
        return f"{self.url_prefix}/{quote(key)}?expires={expires}&signature={self.signature(key, expires)}"

    def ping(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)


def make_store(settings: Settings) -> EvidenceStore:
    if settings.s3_endpoint:
        return S3EvidenceStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                               settings.s3_bucket, settings.s3_secure, settings.s3_region)
    return LocalEvidenceStore(settings.evidence_dir, settings.signing_key())
