"""The edge's YAML configuration, validated by pydantic (typos are errors naming the field).

    api: {url: http://127.0.0.1:8000, key: ...}
    model: models/streetwatch-v5
    issues: {flooding: {confirm_seconds: 20}}
    cameras:
      - {name: gate-3, url: rtsp://..., lat: 31.2, lon: 121.4, grid_id: g-12}
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Union
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from api.schemas import IssueType, Text, both_or_neither
from vision.yaml_file import read_yaml
from vision.zones import parse_hours

Point = tuple[float, float]


class ConfigError(ValueError):
    """A configuration that cannot be used; str() is one line naming the file and the field."""


class Strict(BaseModel):
    # inf and nan pass `gt=0`; as a timeout they overflow the clock in a camera thread later.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# Durations in seconds: above a day none of them means anything, and 1e300 overflows the clock.
DAY = 86_400.0


class ApiTarget(Strict):
    url: str = "http://127.0.0.1:8000"
    key: str | None = None
    timeout_s: float = Field(default=10.0, gt=0, le=DAY)
    # A backlog (after an outage) goes in batches of up to this many events, one request each
    # (POST /api/v1/events/batch; an API without it gets one per request); 1: never batched.
    batch_max_events: int = Field(default=25, ge=1, le=1000)
    # The box's name in the fleet (its key must be made for it: create-key --box); set, the box
    # sends a heartbeat every heartbeat_s (streams/heartbeat.py). Unset: a box on its own.
    box_id: str | None = Field(default=None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    heartbeat_s: float = Field(default=30.0, ge=1, le=3600)
    config_poll_s: float = Field(default=60.0, ge=1, le=DAY)  # central zones (streams/remote_config.py)
    # A privacy-blurred frame of each streaming camera goes to the API this often (the review
    # page draws zones over it; streams/camera_snapshots.py); the first soon after it streams.
    # 0: none. With api.box_id only.
    snapshot_s: float = Field(default=600.0, ge=0, le=DAY)

    @field_validator("url")
    @classmethod
    def _http(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        _host_and_port(v)
        return v.rstrip("/")

    @field_validator("key")
    @classmethod
    def _header_safe(cls, v: str | None) -> str | None:
        # It travels in an HTTP header: anything else fails on every upload, not at startup.
        if v is not None and not (v.isascii() and v.isprintable() and v.strip() == v and v):
            raise ValueError("must be printable ASCII without surrounding spaces (the key the API printed)")
        return v


def _host_and_port(url: str) -> None:
    """ValueError unless the URL names a host and, if it gives one, a port number in range."""
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for "host:abc" or a port past 65535
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    if not parts.hostname:
        raise ValueError("names no host")
    if port == 0:
        raise ValueError("port 0 is not a port to connect to")


class IssueSettings(Strict):
    confirm_seconds: float = Field(default=10.0, ge=0, le=DAY)
    min_hits: int = Field(default=3, ge=1)
    clear_seconds: float = Field(default=120.0, gt=0, le=DAY)
    threshold: float | None = Field(default=None, ge=0, le=1)  # overrides the model manifest's
    # Hysteresis: a track counts while the median of its last `score_window` scores is over
    # the threshold, so a one-frame spike never confirms anything.
    score_window: int = Field(default=5, ge=1, le=50)
    # Sparse samples (snapshot modes, or intervals of 10 s and more: vision/sparse_confirm.py):
    # the same region in min_hits of the last sample_window samples confirms it (None: the
    # larger of 5 and min_hits).
    sample_window: int | None = Field(default=None, ge=1, le=100)
    # Cameras watching this issue type are sampled at least this often (the shortest wins;
    # a camera's own sample_interval_s overrides it).
    sample_interval_s: float | None = Field(default=None, gt=0, le=DAY)

    @model_validator(mode="after")
    def _hits_fit_window(self) -> "IssueSettings":
        if self.sample_window is not None and self.min_hits > self.sample_window:
            raise ValueError(f"min_hits ({self.min_hits}) cannot exceed sample_window ({self.sample_window})")
        return self


def _check_hours(v: list[str]) -> list[str]:
    for h in v:
        parse_hours(h)  # ValueError names the bad range
    return v


class Zone(Strict):
    polygon: list[Point] = Field(min_length=3)
    issue_types: list[IssueType] = Field(default_factory=list)  # empty: every type
    anchor: Point = (0.5, 1.0)  # where a box is placed: (0.5, 1) bottom centre, (0.5, 0.5) centre
    hours: list[str] = Field(default_factory=list)  # "HH:MM-HH:MM" local time; empty: always

    @field_validator("anchor")
    @classmethod
    def _unit(cls, v: Point) -> Point:
        if not (0 <= v[0] <= 1 and 0 <= v[1] <= 1):
            raise ValueError("anchor is a fraction of the box: both values between 0 and 1")
        return v

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: list[str]) -> list[str]:
        return _check_hours(v)


class Mask(Zone):
    """Like a zone, but detections anchored inside are dropped (of its types, during its hours)."""


DecodeMode = Literal["auto", "keyframes", "all"]
RtspClient = Literal["native", "ffmpeg"]
# How a camera is sampled (streams/sampling.py): hold its stream open (`stream`), or fetch one
# picture when a frame is due: the first keyframe of a short RTSP session (`rtsp_snapshot`) or
# the JPEG of its HTTP snapshot URL (`http_snapshot`).
SamplingMode = Literal["stream", "rtsp_snapshot", "http_snapshot"]
# RTP over the RTSP connection (tcp), over UDP (udp), or TCP first and UDP when the camera
# refuses it (461) or does not answer SETUP over TCP (auto, what FFmpeg does).
RtspTransport = Literal["tcp", "udp", "auto"]


class SnapshotSettings(Strict):
    """The snapshot scheduler's limits (streams/snapshot_scheduler.py)."""
    max_concurrent: int = Field(default=64, ge=1, le=4096)  # grabs (connections) at once, all cameras
    timeout_s: float = Field(default=5.0, gt=0, le=600)  # an HTTP snapshot's answer, an RTSP handshake
    # The GOP limit: an RTSP grab with no keyframe within this long is a missed grab.
    keyframe_timeout_s: float = Field(default=6.0, gt=0, le=600)
    backoff_max_s: float = Field(default=300.0, gt=0, le=DAY)  # the longest wait after repeated misses
    # A grab costs a connection (handshake + up to a GOP of waiting): below this interval an
    # rtsp_snapshot camera keeps its session and is read as a stream, keyframes only.
    keep_session_below_s: float = Field(default=10.0, ge=0, le=DAY)


class HttpSettings(Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=9108, ge=0, le=65535)  # 0: any free port


class OutboxSettings(Strict):
    path: Path = Path("var/outbox")  # SQLite file and evidence folder (relative to the config file)
    max_mb: float = Field(default=500, gt=0)  # evidence beyond this: oldest images dropped first


# A mask is a bare polygon or a mapping with one: told apart by shape, so an error in a
# mapping is reported as that (a bad issue type), not as "should be a valid list".
MaskEntry = Annotated[Union[Annotated[list[Point], Tag("polygon")], Annotated[Mask, Tag("mask")]],
                      Discriminator(lambda v: "mask" if isinstance(v, (dict, Mask)) else "polygon")]


class CameraConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", max_length=100)
    url: str | None = None  # the RTSP URL (stream, rtsp_snapshot)
    snapshot_url: str | None = None  # a JPEG over HTTP(S) (http_snapshot): ONVIF GetSnapshotUri, ISAPI, CGI
    mode: SamplingMode | None = None  # overrides the global value
    rtsp_transport: RtspTransport | None = None  # overrides the global value
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    grid_id: Text | None = Field(default=None, max_length=100)  # the wire contract's limits (CameraRef)
    enabled: bool = True
    sample_interval_s: float | None = Field(default=None, gt=0, le=DAY)
    zones: dict[str, Zone] = Field(default_factory=dict)
    masks: list[MaskEntry] = Field(default_factory=list)
    decode: DecodeMode | None = None  # overrides the global value
    rtsp_client: RtspClient | None = None  # overrides the global value
    privacy_blur: bool | None = None  # overrides the global value
    change_threshold: float | None = Field(default=None, ge=0)  # overrides the global value

    @field_validator("url")
    @classmethod
    def _rtsp(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v.startswith(("rtsp://", "rtsps://", "file://", "/")):
            raise ValueError("must be an rtsp:// URL (or a file path for testing)")
        if v.startswith(("rtsp://", "rtsps://")):
            _host_and_port(v)
        return v

    @field_validator("snapshot_url")
    @classmethod
    def _http(cls, v: str | None) -> str | None:
        if v is not None:
            if not v.startswith(("http://", "https://")):
                raise ValueError("must be an http:// or https:// URL (the camera's JPEG snapshot)")
            _host_and_port(v)
        return v

    @model_validator(mode="after")
    def _whole_position(self) -> "CameraConfig":
        both_or_neither(self)
        return self

    @field_validator("masks")
    @classmethod
    def _polygons(cls, v: list) -> list[Mask]:
        masks = [m if isinstance(m, Mask) else Mask(polygon=m) if len(m) >= 3 else None for m in v]
        if any(m is None for m in masks):
            raise ValueError("each mask needs at least 3 points")
        return masks


class EdgeConfig(Strict):
    api: ApiTarget = Field(default_factory=ApiTarget)
    model: Path = Path("models/streetwatch-v5")  # the deployed model
    # onnxruntime (default: the fastest here), openvino (f32), or ultralytics (PyTorch .pt)
    detector: Literal["onnxruntime", "openvino", "ultralytics"] = "onnxruntime"
    # Inference threads. One by default: an edge box's cores are busy reading cameras, and a
    # second intra-op thread cut the wall time of a batch by a third but cost 15-45 % more CPU
    # per frame (benchmarks/README.md). None: the backend's choice (up to 4).
    detector_threads: int | None = Field(default=1, ge=1, le=64)
    # Inference workers, each with its own copy of the model and `detector_threads` threads,
    # taking batches from one queue (as Frigate users list several detectors). With one, above
    # ~50 cameras frames queued behind it while the box still had CPU to spare (it also tracks
    # every batch, and waits for a core like every thread); two kept up (benchmarks/README.md).
    inference_workers: int = Field(default=2, ge=1, le=8)
    max_batch: int = Field(default=8, ge=1, le=64)  # frames per inference call
    # Wait this long for a batch to fill: a batch of 8 cost ~25 % less CPU per frame than 8
    # single calls on 2026-11-24 (within the noise on 2026-12-01), and 50 ms is nothing next
    # to a 2 s sampling interval.
    batch_wait_ms: float = Field(default=50, ge=0, le=1000)
    sample_interval_s: float = Field(default=1.0, gt=0, le=DAY)
    decode: DecodeMode = "auto"  # what to decode: see streams/decode_plan.py
    # Who receives RTSP: Streetwatch's own client (H.264 over TCP; ~0.6 of FFmpeg's CPU to
    # receive a camera, streams/rtsp_session.py) or FFmpeg. Cameras the own client cannot
    # read (H.265, rtsps://) fall back to FFmpeg by themselves.
    rtsp_client: RtspClient = "native"
    rtsp_transport: RtspTransport = "auto"
    # How cameras are sampled unless a camera says otherwise; a box may mix modes.
    mode: SamplingMode = "stream"
    snapshot: SnapshotSettings = Field(default_factory=SnapshotSettings)
    # Reuse a camera's last detections when its frame barely changed (mean absolute difference
    # of small grey thumbnails, 0-255); None: always run the model.
    change_threshold: float | None = Field(default=None, ge=0)
    open_timeout_s: float = Field(default=5.0, gt=0, le=DAY)
    read_timeout_s: float = Field(default=5.0, gt=0, le=DAY)
    stall_timeout_s: float = Field(default=10.0, gt=0, le=DAY)
    backoff_initial_s: float = Field(default=1.0, gt=0, le=DAY)
    backoff_max_s: float = Field(default=6.0, gt=0, le=DAY)  # small: a camera that returns is read again within seconds
    privacy_blur: bool = True  # blur faces and plates in evidence before it leaves the box
    # A model with a person class looks for people again at this size in each image it sends
    # (rare: events, fixes, snapshots): at 320 px it misses the small, far people a 640 px pass
    # finds (benchmarks/privacy_coverage.py). 0: only the detections of the analysis pass.
    privacy_imgsz: int = Field(default=640, ge=0, le=1920)
    timezone: str | None = None  # IANA name for zone hours; None: the box's local time
    http: HttpSettings | None = Field(default_factory=HttpSettings)  # /healthz and /metrics; null: off
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    # Watch resolved orders' regions and tell the API whether the fix held (streams/verifier.py).
    verify_fixes: bool = True
    verify_poll_s: float = Field(default=30.0, gt=0, le=DAY)
    issues: dict[IssueType, IssueSettings] = Field(default_factory=dict)
    cameras: list[CameraConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "EdgeConfig":
        names = [c.name for c in self.cameras]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"camera names must be unique; repeated: {', '.join(dupes)}")
        if self.backoff_initial_s > self.backoff_max_s:
            raise ValueError("backoff_initial_s must not exceed backoff_max_s")
        for i, cam in enumerate(self.cameras):
            mode = cam.mode or self.mode
            if mode == "http_snapshot" and cam.snapshot_url is None:
                raise ValueError(f"cameras.{i} ({cam.name}): mode http_snapshot needs snapshot_url")
            if mode != "http_snapshot" and cam.url is None:
                raise ValueError(f"cameras.{i} ({cam.name}): mode {mode} needs url (the camera's rtsp:// URL)")
            if mode == "rtsp_snapshot" and not cam.url.startswith(("rtsp://", "rtsps://")):
                raise ValueError(f"cameras.{i} ({cam.name}): mode rtsp_snapshot needs an rtsp:// url")
        return self

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"unknown time zone {v!r} (an IANA name like Asia/Shanghai)") from None
        return v

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


class _RepeatedKey(ValueError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML keeps the last of two equal keys without a word: a camera block pasted twice
    with one edit would quietly run with only one of them."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        first_line: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                continue  # a list as a key: SafeLoader's own error says so below
            if key in first_line:
                raise _RepeatedKey(f"line {line}: {key!r} is given twice (first on line {first_line[key]})")
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def load_config(path: Path | str) -> EdgeConfig:
    path = Path(path)
    try:
        raw = read_yaml(path, ConfigError, _UniqueKeyLoader)
    except _RepeatedKey as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        config = EdgeConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {first_error(exc)}") from exc
    if not config.model.is_absolute():
        # Relative model paths are relative to the config file, like Frigate's.
        config.model = (path.parent / config.model).resolve()
    if not config.outbox.path.is_absolute():
        config.outbox.path = (path.parent / config.outbox.path).resolve()
    return config
