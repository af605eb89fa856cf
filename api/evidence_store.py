"""Where evidence images live: S3 (MinIO in production, through the `minio` client) or a folder.

Both stores hand out time-limited URLs, so API clients download images straight from
storage (S3 presigned URLs) or from the API's own signed route (local folder).
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import shutil
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Protocol, TypeVar
from urllib.parse import quote

from api.settings import Settings

T = TypeVar("T")
LOCAL_URL_PREFIX = "/api/v1/evidence"


class StoreUnavailable(RuntimeError):
    """The evidence store cannot be used right now; answer 503 and let the edge retry."""


class EvidenceStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str, sha256: str | None = None) -> None:
        """Store the object; `sha256`: the data's hex digest, when the caller has it already."""
        ...

    def put_file(self, key: str, file: BinaryIO, size: int, content_type: str) -> None:
        """Store `size` bytes read from `file` from its start, never all in memory (model files)."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes; FileNotFoundError if there is none."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; no error if it is already gone."""
        ...

    def presigned_url(self, key: str, expires_seconds: int) -> str: ...

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store can take writes now."""
        ...

    def listing(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        """Every object under `prefix` (e.g. "events/") with its last change, in UTC."""
        ...


def check_key(key: str) -> str:
    """Keys are relative, slash-separated names: no '..', no absolute paths, no backslashes."""
    parts = key.split("/")
    if not key or key.startswith("/") or "\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"bad evidence key {key!r}")
    return key


class S3EvidenceStore:
    _MISSING = ("NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound")
    _NEW_BUCKET_WAITS = (0.05, 0.15, 0.4, 1.0)  # seconds between retries while a bucket is missing

    def __init__(self, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str,
                 secure: bool = False, region: str = "us-east-1"):
        from minio import Minio
        from urllib3 import PoolManager, Retry, Timeout

        # Short timeouts and few retries: when S3 is down the edge should hear 503 quickly.
        http = PoolManager(timeout=Timeout(connect=3, read=15), retries=Retry(total=1, backoff_factor=0.2), maxsize=20)
        # The region is given, so the client never asks the server for it (presigning stays offline).
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, region=region,
                            http_client=http)
        from api.s3_put import KeptConnectionPut

        self._kept = KeptConnectionPut(endpoint, access_key, secret_key, region, secure) \
            if access_key and secret_key else None
        self.endpoint = endpoint
        self.bucket = bucket
        self._bucket_ready = False
        self._bucket_lock = threading.Lock()

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            return self._in_bucket(fn, *args, **kwargs)
        except S3Error as exc:
            if exc.code in self._MISSING:
                raise FileNotFoundError(f"s3://{self.bucket}/{args[1] if len(args) > 1 else ''}") from exc
            # Wrong keys, missing rights, a full disk: all mean "cannot store now", never a 500.
            raise StoreUnavailable(f"S3 at {self.endpoint} refused: {exc.code}: {exc.message}") from exc
        except (MinioException, HTTPError, OSError) as exc:
            raise StoreUnavailable(f"S3 at {self.endpoint} unreachable: {exc.__class__.__name__}: {exc}") from exc

    def _in_bucket(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from minio.error import S3Error

        # S3 servers make a new bucket visible eventually, not at once (AWS says so; SeaweedFS's
        # gateway hears of it from the filer's event stream), and an operator may delete it:
        # while it is missing, ensure it again and retry briefly before calling S3 down.
        for wait in self._NEW_BUCKET_WAITS:
            if not self._bucket_ready:
                self._ensure_bucket()
            try:
                return fn(*args, **kwargs)
            except S3Error as exc:
                if exc.code != "NoSuchBucket":
                    raise
                self._bucket_ready = False
                time.sleep(wait)
        self._ensure_bucket()
        return fn(*args, **kwargs)

    def _ensure_bucket(self) -> None:
        from minio.error import S3Error

        with self._bucket_lock:  # one create per process, not one per request in the first burst
            if self._bucket_ready:
                return
            try:
                if not self.client.bucket_exists(self.bucket):
                    self.client.make_bucket(self.bucket)
            except S3Error as exc:
                # Another API process created it between our check and our create.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise
            self._bucket_ready = True

    def put(self, key: str, data: bytes, content_type: str, sha256: str | None = None) -> None:
        key = check_key(key)
        # The plain success on the thread's kept connection (api/s3_put.py); anything else, and
        # the first put of a bucket not yet ensured, through minio.
        if self._kept is not None and self._bucket_ready \
                and self._kept.put(self.bucket, key, data, content_type, sha256):
            return
        self._call(self.client.put_object, self.bucket, key, io.BytesIO(data), len(data), content_type=content_type)

    def put_file(self, key: str, file: BinaryIO, size: int, content_type: str) -> None:
        def put(bucket: str, name: str) -> Any:
            file.seek(0)  # from the start again when a missing bucket made _call retry
            return self.client.put_object(bucket, name, file, size, content_type=content_type)

        self._call(put, self.bucket, check_key(key))

    def get(self, key: str) -> bytes:
        resp = self._call(self.client.get_object, self.bucket, check_key(key))
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def exists(self, key: str) -> bool:
        try:
            self._call(self.client.stat_object, self.bucket, check_key(key))
            return True
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        self._call(self.client.remove_object, self.bucket, check_key(key))

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        return self.client.presigned_get_object(self.bucket, check_key(key), expires=timedelta(seconds=expires_seconds))

    def ping(self) -> None:
        self._bucket_ready = False  # ask the server every time: that is the point of a health check
        self._call(lambda: None)

    def listing(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        from minio.error import MinioException
        from urllib3.exceptions import HTTPError

        try:
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name and obj.last_modified:
                    yield obj.object_name, obj.last_modified.astimezone(timezone.utc)
        except (MinioException, HTTPError, OSError) as exc:
            raise StoreUnavailable(f"S3 at {self.endpoint}: cannot list {prefix}: {exc}") from exc


class LocalEvidenceStore:
    """Files under a folder; URLs point at the API's /api/v1/evidence route with an HMAC signature."""

    def __init__(self, root: Path, signing_key: bytes, url_prefix: str = LOCAL_URL_PREFIX):
        self.root = Path(root)
        self.key = signing_key
        self.url_prefix = url_prefix

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes, content_type: str, sha256: str | None = None) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename: a reader never sees half a file.
            tmp = path.with_name(f".{path.name}.part")
            tmp.write_bytes(data)
            tmp.replace(path)
        except OSError as exc:  # disk full, read-only mount: the edge should retry later
            raise StoreUnavailable(f"evidence folder {self.root}: {exc}") from exc

    def put_file(self, key: str, file: BinaryIO, size: int, content_type: str) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.part")
            file.seek(0)
            with open(tmp, "wb") as out:
                shutil.copyfileobj(file, out, 1 << 20)
            tmp.replace(path)
        except OSError as exc:
            raise StoreUnavailable(f"evidence folder {self.root}: {exc}") from exc

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self.key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: int, signature: str) -> bool:
        # Bytes, not str: compare_digest refuses non-ASCII strings, and a URL may carry anything.
        return expires >= time.time() and hmac.compare_digest(self.signature(key, expires).encode(),
                                                               signature.encode("utf-8", "replace"))

    def presigned_url(self, key: str, expires_seconds: int) -> str:
        expires = int(time.time()) + expires_seconds
        return f"{self.url_prefix}/{quote(check_key(key))}?expires={expires}&signature={self.signature(key, expires)}"

    def ping(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"evidence folder {self.root}: {exc}") from exc
        if not os.access(self.root, os.W_OK):
            raise StoreUnavailable(f"evidence folder {self.root} is not writable")

    def listing(self, prefix: str) -> Iterator[tuple[str, datetime]]:
        base = self.root / prefix
        if not base.is_dir():
            return
        for path in base.rglob("*"):
            try:
                if path.is_file():
                    changed = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                    yield path.relative_to(self.root).as_posix(), changed
            except FileNotFoundError:  # deleted while we walked
                continue


def make_store(settings: Settings) -> EvidenceStore:
    if settings.s3_endpoint:
        return S3EvidenceStore(settings.s3_endpoint, settings.s3_access_key, settings.s3_secret_key,
                               settings.s3_bucket, settings.s3_secure, settings.s3_region)
    return LocalEvidenceStore(settings.evidence_dir, settings.signing_key())
