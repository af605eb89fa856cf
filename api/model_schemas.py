"""Model rollout's wire contract: a pushed model, its files, the listing, an assignment, and
what a box is told to run. Pydantic and PyYAML only: the edge (streams/model_rollout.py) and
the push client (vision/model_push.py) import it too.

A model version is what `streetwatch model push` sends: its manifest (as text, stored as
`manifest.yaml`) and the files the manifest names (weights, ONNX, OpenVINO), each with its
size and sha256. The manifest is checked here with the API's own rules, not vision/'s:
what matters to the API is that every class maps to an issue type it knows.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.fleet_schemas import NAME_PATTERN
from api.schemas import IssueType

MANIFEST = "manifest.yaml"
MAX_FILES = 50
_PATH = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
Sha256 = str


def path_problem(path: str) -> str | None:
    """Why a file's path cannot be a model file's (relative, plain names, no '..'), or None."""
    if len(path) > 200 or not _PATH.match(path) or any(p in (".", "..") for p in path.split("/")):
        return "must be a relative path of letters, digits, '_', '.', '-' and '/', without '..' (200 characters)"
    return None


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=200, description="relative to the model folder")
    sha256: Sha256 = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, description="bytes")

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        problem = path_problem(v)
        if problem:
            raise ValueError(problem)
        return v


class ModelFileIn(ModelFile):
    @field_validator("path")
    @classmethod
    def _not_manifest(cls, v: str) -> str:
        if v == MANIFEST:
            raise ValueError(f"{MANIFEST} is sent as the manifest field, not as a file")
        return v


class ModelPushIn(BaseModel):
    """`POST /api/v1/models`: the manifest's text and the files it names."""

    model_config = ConfigDict(extra="forbid")

    manifest: str = Field(min_length=1, max_length=200_000, description="manifest.yaml as text")
    files: list[ModelFileIn] = Field(min_length=1, max_length=MAX_FILES)

    @field_validator("files")
    @classmethod
    def _unique(cls, v: list[ModelFileIn]) -> list[ModelFileIn]:
        paths = [f.path for f in v]
        repeated = sorted({p for p in paths if paths.count(p) > 1})
        if repeated:
            raise ValueError(f"each file once; repeated: {', '.join(repeated)}")
        return v


class ManifestFacts(BaseModel):
    """What the API reads from a pushed manifest."""

    name: str
    version: str
    weights: str
    exports: dict[str, str]
    classes: dict[int, dict[str, Any]]


def read_manifest(text: str, files: set[str]) -> tuple[ManifestFacts | None, tuple[str, ...], str]:
    """The manifest's facts, or (None, where, why) for the first thing wrong with it."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, (), f"is not YAML: {str(exc).splitlines()[0]}"
    if not isinstance(raw, dict):
        return None, (), "must be a YAML mapping (name, version, weights, classes)"
    for key in ("name", "version", "weights", "classes"):
        if raw.get(key) in (None, "", {}):
            return None, (key,), "is missing"
    name, version = str(raw["name"]), str(raw["version"])
    for key, value in (("name", name), ("version", version)):
        if not re.fullmatch(NAME_PATTERN, value) or len(value) > 100:
            return None, (key,), f"{value!r}: 1-100 letters, digits, '_', '.' or '-'"
    exports = raw.get("exports") or {}
    if not isinstance(exports, dict) or not all(isinstance(v, str) for v in exports.values()):
        return None, ("exports",), "must map a format to a file"
    named = {"weights": str(raw["weights"]), **{f"exports.{k}": v for k, v in exports.items()}}
    for key, path in named.items():
        if path not in files:
            return None, tuple(key.split(".")), f"names {path!r}, which is not among the files pushed"
        if key == "exports.openvino" and path.endswith(".xml") and path[:-4] + ".bin" not in files:
            return None, ("exports", "openvino"), f"{path[:-4] + '.bin'} (beside {path}) is not among the files pushed"
    classes = raw["classes"]
    if not isinstance(classes, dict):
        return None, ("classes",), "must map class ids to {name, issue_type, threshold}"
    known = sorted(t.value for t in IssueType)
    out: dict[int, dict[str, Any]] = {}
    for cid, cls in classes.items():
        if not isinstance(cid, int) or not isinstance(cls, dict) or not cls.get("name"):
            return None, ("classes", str(cid)), "must be an integer id with a name"
        issue = cls.get("issue_type")
        if issue is not None and issue not in known:
            return None, ("classes", str(cid), "issue_type"), \
                f"{issue!r} is not an issue type this API knows ({', '.join(known)}; null for a context class)"
        out[cid] = {"name": str(cls["name"]), "issue_type": issue, "threshold": cls.get("threshold")}
    if not any(c["issue_type"] for c in out.values()):
        return None, ("classes",), "no class maps to an issue type"
    return ManifestFacts(name=name, version=version, weights=named["weights"], exports=exports, classes=out), (), ""


class ModelFilePublic(ModelFile):
    stored: bool = Field(description="arrived with the declared size and sha256")


class ModelVersionPublic(BaseModel):
    name: str
    version: str
    status: Literal["uploading", "ready", "not_pushed"] = Field(
        description="uploading: files still missing; ready: assignable; not_pushed: only seen on boxes")
    weights_sha256: str | None
    size: int = Field(description="bytes, all files")
    files: list[ModelFilePublic]
    classes: dict[int, dict[str, Any]]
    pushed_at: datetime | None
    pushed_by: str | None
    assigned_to_all: bool
    assigned_boxes: list[str] = Field(description="boxes that run this version by a per-box assignment (canary)")
    running_on: list[str] = Field(description="boxes whose last heartbeat said they run this version")
    failing_on: dict[str, str] = Field(description="boxes told to run it that report why they do not")


class AssignmentIn(BaseModel):
    """Which version boxes run: every box (boxes omitted), or the named boxes first (a canary)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    version: str = Field(min_length=1, max_length=100, pattern=NAME_PATTERN)
    boxes: list[str] | None = Field(default=None, min_length=1, max_length=1000,
                                    description="omitted: all boxes (and per-box assignments end)")

    @field_validator("boxes")
    @classmethod
    def _boxes(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for box in v:
            if not re.fullmatch(NAME_PATTERN, box) or len(box) > 100:
                raise ValueError(f"box id {box[:100]!r}: 1-100 letters, digits, '_', '.' or '-'")
        if len(set(v)) != len(v):
            raise ValueError("each box once")
        return v


class ModelRef(BaseModel):
    name: str
    version: str


class AssignmentPublic(BaseModel):
    all: ModelRef | None = Field(description="what every box without its own assignment runs")
    boxes: dict[str, ModelRef] = Field(description="per-box assignments (a canary)")


class AssignedModel(BaseModel):
    """In a box's config (GET /api/v1/boxes/{id}/config): the model it is to run."""

    name: str
    version: str
    weights: str
    weights_sha256: str
    files: list[ModelFile]  # manifest.yaml among them, with the sha256 the API computed


class ModelLink(ModelFile):
    url: str = Field(description="time-limited; relative to the API when the store is the API's local folder")


class ModelLinks(BaseModel):
    name: str
    version: str
    expires_seconds: int
    files: list[ModelLink]


class ModelPushed(BaseModel):
    """The answer to a push and to each file's upload."""

    name: str
    version: str
    status: Literal["uploading", "ready"]
    files: list[ModelFilePublic]
    missing: list[str] = Field(description="declared files still to upload (PUT …/files/{path})")
