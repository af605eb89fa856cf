"""All API settings in one place, read from STREETWATCH_* environment variables."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from ipaddress import ip_network
from pathlib import Path
from urllib.parse import urlsplit

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from api.schemas import IssueType


class IssuePolicy(BaseModel):
    """How orders of one issue type are deduplicated, timed and cleared."""

    model_config = ConfigDict(extra="forbid")

    dedup_iou: float = Field(0.3, gt=0.0, le=1.0, description="same camera: box overlap that joins an open order")
    dedup_radius_m: float = Field(30.0, ge=0.0, description="other cameras and citizens: distance that joins")
    sla_hours: float = Field(24.0, gt=0.0, description="from report to resolution")
    clear_after_minutes: float = Field(30.0, gt=0.0, description="unseen this long → flagged cleared_by_camera")
    recurrence_cooldown_hours: float = Field(72.0, ge=0.0, description="seen again this soon after resolution "
                                                                        "→ a new order linked as a recurrence")


# A flood spreads over a block and is urgent; a stall is a few metres wide; a pile of bags
# can wait a day. Overrides merge per field: STREETWATCH_POLICIES__FLOODING__SLA_HOURS=1.
DEFAULT_POLICIES: dict[str, dict[str, float]] = {
    IssueType.street_vending: {"dedup_iou": 0.3, "dedup_radius_m": 20, "sla_hours": 4, "clear_after_minutes": 20},
    IssueType.clutter: {"dedup_iou": 0.3, "dedup_radius_m": 15, "sla_hours": 24, "clear_after_minutes": 60},
    IssueType.flooding: {"dedup_iou": 0.2, "dedup_radius_m": 60, "sla_hours": 2, "clear_after_minutes": 30},
}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STREETWATCH_", extra="ignore", env_nested_delimiter="__")

    database_url: str = Field("sqlite:///var/streetwatch.db",
                              description="SQLAlchemy URL; sqlite:///path or postgresql+psycopg://user:pw@host/db")
    s3_endpoint: str | None = Field(None, description="host:port of the S3 server; unset → local evidence folder")
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "streetwatch-evidence"
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    evidence_dir: Path = Path("var/evidence")
    export_dir: Path = Field(Path("var/exports"), description="where admin-started review exports are written")
    api_key: str | None = Field(None, description="a static edge key (role edge), besides the keys in the database")
    key_cache_seconds: float = Field(90.0, ge=0, le=3600, description="how long a process remembers a key it "
                                     "looked up; longer than a box's heartbeat interval, so heartbeats cost no key "
                                     "lookup. A key revoked through another process (or the CLI) still works here "
                                     "this long; 0 looks every key up")
    secret_key: str | None = Field(None, description="signs local evidence URLs; unset → read from secret_key_file")
    secret_key_file: Path = Path("var/secret_key")
    # S3 refuses presigned URLs valid for more than 7 days.
    presign_expiry_seconds: int = Field(900, ge=1, le=7 * 24 * 3600)
    max_upload_bytes: int = Field(10 * 1024 * 1024, gt=0)
    max_model_file_bytes: int = Field(512 * 1024 * 1024, gt=0, description="the largest file of a pushed model "
                                                                            "(PUT /api/v1/models/…/files/…, admin)")
    keepalive_requests: int = Field(100, ge=0, description="a keep-alive connection is closed after this many "
                                                           "requests on average, so connections spread over the "
                                                           "worker processes; 0 never closes them")
    opentelemetry: bool | None = Field(None, description="FastAPI's native OpenTelemetry (spans, metrics, logs "
                                       "through the global providers an SDK sets up); unset → on where an "
                                       "OpenTelemetry SDK is installed, e.g. pip install 'fastapi[opentelemetry]'")
    policies: dict[IssueType, IssuePolicy] = Field(default_factory=lambda: _merged_policies({}))
    report_rate_per_minute: float = Field(6.0, gt=0, description="citizen reports per client address per minute "
                                                                   "(burst of the same size), per API process")
    trusted_proxies: list[str] = Field(default_factory=list, description='addresses or networks of reverse proxies '
                                       'whose X-Forwarded-For is believed, e.g. ["127.0.0.1", "10.0.0.0/8"]; '
                                       'empty → the peer address is the client')
    batch_max_events: int = Field(100, ge=1, le=1000, description="the most events one POST /api/v1/events/batch "
                                                                  "takes (422 beyond)")
    batch_max_bytes: int = Field(64 * 1024 * 1024, gt=0, description="the largest body of one POST "
                                                                    "/api/v1/events/batch (413 beyond)")
    max_json_bytes: int = Field(1024 * 1024, gt=0, description="the largest JSON or form-urlencoded body accepted "
                                                               "(413 beyond); image uploads have max_upload_bytes")
    cors_origins: list[str] = Field(default_factory=list, description='browser origins allowed to call the API, '
                                                                      'e.g. ["https://dashboard.city.gov.cn"]')
    auto_dispatch: bool = Field(True, description="dispatch new orders to a grid worker at once")
    sweep_interval_seconds: float = Field(60.0, ge=0.0, description="how often SLAs and clearing are checked; "
                                                                      "0 turns the background sweep off")
    public_url: str | None = Field(None, description="the API's public base URL, e.g. https://streetwatch.city.gov.cn; "
                                                    "Open311 media_url and discovery links are made absolute with "
                                                    "it; unset → the URL each request came to")
    open311_jurisdiction_id: str | None = Field(None, max_length=100, description="if set, an Open311 call that "
                                                "names another jurisdiction_id is refused")
    open311_media_hosts: list[str] = Field(default_factory=list, description="hosts an Open311 POST's media_url "
                                           "may be fetched from; empty → no server-side fetch at all")
    camera_offline_minutes: float = Field(15.0, gt=0, description="a camera not streaming this long notifies "
                                                                  "its grid's supervisor (api/fleet_alerts.py)")

    @field_validator("policies", mode="before")
    @classmethod
    def _merge_policies(cls, value: Any) -> Any:
        return _merged_policies(value) if isinstance(value, dict) else value

    def policy(self, issue_type: IssueType) -> IssuePolicy:
        return self.policies[issue_type]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network (CIDR)") from None
        return [entry.strip() for entry in value]

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        # Links are joined onto it, so it must be a bare http(s) base: no query, no fragment.
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"public_url must be http(s)://host[:port][/path], got {value!r}")
        return value.rstrip("/")

    @field_validator("open311_media_hosts")
    @classmethod
    def _media_hosts(cls, value: list[str]) -> list[str]:
        return [h.strip().lower() for h in value if h.strip()]

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


def _merged_policies(overrides: dict[Any, Any]) -> dict[str, dict[str, Any]]:
    merged = {str(k): dict(v) for k, v in DEFAULT_POLICIES.items()}
    for issue_type, fields in overrides.items():
        key = str(getattr(issue_type, "value", issue_type)).lower()
        if key not in merged:
            raise ValueError(f"policies: unknown issue type {issue_type!r}; one of {sorted(merged)}")
        if isinstance(fields, IssuePolicy):
            fields = fields.model_dump()
        if not isinstance(fields, dict):
            raise ValueError(f"policies.{key}: expected a mapping of fields, got {fields!r}")
        merged[key].update(fields)
    return merged


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
