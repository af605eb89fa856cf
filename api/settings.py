"""All API settings in one place, read from STREETWATCH_* environment variables."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREETWATCH_", extra="ignore")

    database_url: str = Field("sqlite:///var/streetwatch.db",
                              description="SQLAlchemy URL; sqlite:///path or postgresql+psycopg://user:pw@host/db")
    s3_endpoint: str | None = Field(None, description="host:port of the S3 server; unset → local evidence folder")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "streetwatch-evidence"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    evidence_dir: Path = Path("var/evidence")
    api_key: str | None = Field(None, description="when set, POST /api/v1/events needs it")
    secret_key: str | None = Field(None, description="signs local evidence URLs; unset → read from secret_key_file")
    secret_key_file: Path = Path("var/secret_key")
    # S3 refuses presigned URLs valid for more than 7 days.
    presign_expiry_seconds: int = Field(900, ge=1, le=7 * 24 * 3600)
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    dedup_iou: float = Field(0.3, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _endpoint_without_scheme(self) -> "Settings":
        # The minio client wants host:port; people paste URLs, so accept those too.
        if self.s3_endpoint and "://" in self.s3_endpoint:
            parts = urlsplit(self.s3_endpoint)
            if parts.scheme not in ("http", "https") or parts.path not in ("", "/") or not parts.netloc:
                raise ValueError(f"s3_endpoint must be host:port (or http(s)://host:port), got {self.s3_endpoint!r}")
            self.s3_endpoint = parts.netloc
            self.s3_secure = parts.scheme == "https"
        return self

    def signing_key(self) -> bytes:
        if self.secret_key:
            return self.secret_key.encode()
        return _shared_secret(self.secret_key_file)


def _shared_secret(path: Path) -> bytes:
    """The key every worker process of this installation shares (a per-process random key
    would make URLs signed by one worker fail on another). Made once, atomically: the first
    writer wins and the others read its key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # fails if another process got there first
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds a signing key shorter than 32 characters; delete it or set "
                           "STREETWATCH_SECRET_KEY")
    return key.encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
