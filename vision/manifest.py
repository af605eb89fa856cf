"""Model manifests: `models/<name>/manifest.yaml` says what a model detects and how to run it.

Light on purpose (pydantic + yaml) so configs can be validated without loading torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from api.schemas import IssueType
from vision.yaml_file import read_yaml


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and the field."""


class ModelClass(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    issue_type: IssueType | None = None  # None: a context class (e.g. a closed bin), never an issue
    threshold: float = Field(default=0.4, ge=0.0, le=1.0)


class ModelManifest(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str
    version: str
    task: Literal["detect", "segment"] = "detect"
    weights: str  # path relative to the manifest's folder (.pt or .onnx)
    # Other formats of the same weights, relative too (written by `streetwatch model export`):
    # {"onnx": "x.onnx", "openvino": "x_openvino/x.xml"}; backends pick theirs from here.
    exports: dict[Literal["onnx", "openvino"], str] = Field(default_factory=dict)
    imgsz: int = Field(default=640, ge=32, le=4096)
    classes: dict[int, ModelClass]
    description: str = ""
    # the dataset recipe the weights were trained on, relative to the manifest's folder:
    # retraining starts from the same data plus the reviewed frames
    recipe: str | None = None
    path: Path | None = Field(default=None, exclude=True)  # folder the manifest was loaded from

    @model_validator(mode="after")
    def _has_issue_classes(self) -> "ModelManifest":
        if not any(c.issue_type for c in self.classes.values()):
            raise ValueError("no class maps to an issue type")
        return self

    @property
    def recipe_path(self) -> Path | None:
        return (self.path or Path(".")) / self.recipe if self.recipe else None

    @property
    def weights_path(self) -> Path:
        base = self.path or Path(".")
        return (base / self.weights).resolve()

    def export_path(self, fmt: str) -> Path | None:
        """The file of an exported format, or None when the manifest names none."""
        if fmt in self.exports:
            return ((self.path or Path(".")) / self.exports[fmt]).resolve()
        if fmt == "onnx" and self.weights.endswith(".onnx"):
            return self.weights_path
        return None

    def issue_type_of(self, class_id: int) -> IssueType | None:
        cls = self.classes.get(int(class_id))
        return cls.issue_type if cls else None

    def threshold_of(self, class_id: int) -> float:
        cls = self.classes.get(int(class_id))
        return cls.threshold if cls else 1.0


def load_manifest(path: Path | str, weights_required: bool = True) -> ModelManifest:
    """Load `models/<name>/manifest.yaml` (or the folder holding it). `weights_required=False`
    checks a manifest whose weights are yet to be written (a first `model publish`)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.yaml"
    if not path.is_file():
        raise ManifestError(f"model manifest not found: {path}")
    raw = read_yaml(path, ManifestError)
    try:
        manifest = ModelManifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise ManifestError(f"{path}: {where}: {err['msg']}") from exc
    manifest.path = path.parent.resolve()
    if weights_required and not manifest.weights_path.is_file():
        raise ManifestError(f"{path}: weights file not found: {manifest.weights_path}")
    return manifest
