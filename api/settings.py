"""All API settings in one place, read from STREETWATCH_* environment variables."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREETWATCH_", extra="ignore")

    database_url: str = "sqlite:///var/streetwatch.db"
    s3_endpoint: str | None = None  # host:port; unset → evidence in a local folder
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "streetwatch-evidence"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    evidence_dir: Path = Path("var/evidence")
    api_key: str | None = None  # when set, posting events needs it
    secret_key: str | None = None  # signs local evidence URLs; default: var/secret_key, made once
    presign_expiry_seconds: int = 900
    max_upload_bytes: int = 10 * 1024 * 1024
    dedup_iou: float = 0.3

    def signing_key(self) -> bytes:
        if self.secret_key:
            return self.secret_key.encode()
        # Shared by every worker process of this installation, unlike a per-process random key.
        path = self.evidence_dir.parent / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
        return path.read_text().strip().encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
