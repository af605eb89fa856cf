"""The edge's YAML configuration, validated by pydantic (typos are errors naming the field).

    api: {url: http://127.0.0.1:8000, key: ...}
    model: models/streetwatch-demo
    issues: {flooding: {confirm_seconds: 20}}
    cameras:
      - {name: gate-3, url: rtsp://..., lat: 31.2, lon: 121.4, grid_id: g-12}
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from api.schemas import IssueType

Point = tuple[float, float]


class ConfigError(ValueError):
    """A configuration that cannot be used; str() is one line naming the file and the field."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ApiTarget(Strict):
    url: str = "http://127.0.0.1:8000"
    key: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")


class IssueSettings(Strict):
    confirm_seconds: float = Field(default=10.0, ge=0)
    min_hits: int = Field(default=3, ge=1)
    clear_seconds: float = Field(default=120.0, gt=0)
    threshold: float | None = Field(default=None, ge=0, le=1)  # overrides the model manifest's


class Zone(Strict):
    polygon: list[Point] = Field(min_length=3)
    issue_types: list[IssueType] = Field(default_factory=list)  # empty: every type


class CameraConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=100)
    url: str
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    grid_id: str | None = None
    enabled: bool = True
    sample_interval_s: float | None = Field(default=None, gt=0)
    zones: dict[str, Zone] = Field(default_factory=dict)
    masks: list[list[Point]] = Field(default_factory=list)

    @field_validator("url")
    @classmethod
    def _rtsp(cls, v: str) -> str:
        if not v.startswith(("rtsp://", "rtsps://", "file://", "/")):
            raise ValueError("must be an rtsp:// URL (or a file path for testing)")
        return v

    @field_validator("masks")
    @classmethod
    def _polygons(cls, v: list[list[Point]]) -> list[list[Point]]:
        if any(len(p) < 3 for p in v):
            raise ValueError("each mask needs at least 3 points")
        return v


class EdgeConfig(Strict):
    api: ApiTarget = Field(default_factory=ApiTarget)
    model: Path = Path("models/streetwatch-demo")
    detector: str = "ultralytics"
    sample_interval_s: float = Field(default=1.0, gt=0)
    open_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=5.0, gt=0)
    stall_timeout_s: float = Field(default=10.0, gt=0)
    issues: dict[IssueType, IssueSettings] = Field(default_factory=dict)
    cameras: list[CameraConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "EdgeConfig":
        names = [c.name for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"camera names must be unique; repeated: {', '.join(dupes)}")
        return self

    def issue(self, issue_type: IssueType) -> IssueSettings:
        return self.issues.get(issue_type, IssueSettings())


def first_error(exc: ValidationError) -> str:
    """The most telling error on one line: a misspelt key first, since it explains the
    'field required' error that usually comes with it."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    where = ".".join(str(p) for p in err["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {err['msg']}{more}"


def load_config(path: Path | str) -> EdgeConfig:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{line} not valid YAML") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_error(exc)}") from exc
    if not config.model.is_absolute():
        # Relative model paths are relative to the config file, like Frigate's.
        config.model = (path.parent / config.model).resolve()
    return config
