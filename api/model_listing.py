"""`GET /api/v1/models`: every pushed version, which boxes are told to run it, which run it
(their last heartbeat), and which report why they do not. A version boxes run that was never
pushed (the one in their YAML) is listed too, as `not_pushed`."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, col, select

from api.fleet_models import EdgeBox
from api.model_registry import assignments
from api.model_schemas import ModelFilePublic, ModelVersionPublic
from api.model_tables import ModelFileRow, ModelVersion
from api.models import as_utc


def list_models(session: Session) -> list[ModelVersionPublic]:
    versions = session.exec(select(ModelVersion).order_by(col(ModelVersion.name), col(ModelVersion.pushed_at))).all()
    files: dict[int, list[ModelFileRow]] = defaultdict(list)
    for f in session.exec(select(ModelFileRow).order_by(col(ModelFileRow.path))).all():
        files[f.version_id].append(f)
    boxes = session.exec(select(EdgeBox.id, EdgeBox.model_name, EdgeBox.model_version, EdgeBox.model_error)
                         .order_by(col(EdgeBox.id))).all()
    plan = assignments(session)
    told: dict[str, tuple[str, str]] = {}  # box → the (name, version) it is to run
    for box_id, *_ in boxes:
        ref = plan.boxes.get(box_id) or plan.all
        if ref is not None:
            told[box_id] = (ref.name, ref.version)
    running: dict[tuple[str, str], list[str]] = defaultdict(list)
    for box_id, name, version, _ in boxes:
        if name:
            running[(name, version or "?")].append(box_id)
    out = []
    for v in versions:
        key = (v.name, v.version)
        own = files[v.id]  # type: ignore[index]
        out.append(ModelVersionPublic(
            name=v.name, version=v.version, status=v.status,  # type: ignore[arg-type]
            weights_sha256=next((f.sha256 for f in own if f.path == v.weights), None), size=sum(f.size for f in own),
            files=[ModelFilePublic(path=f.path, sha256=f.sha256, size=f.size, stored=f.stored_at is not None)
                   for f in own],
            classes=v.classes, pushed_at=as_utc(v.pushed_at), pushed_by=v.pushed_by,
            assigned_to_all=plan.all is not None and (plan.all.name, plan.all.version) == key,
            assigned_boxes=sorted(b for b, r in plan.boxes.items() if (r.name, r.version) == key),
            running_on=running.pop(key, []),
            failing_on={b: err for b, _, _, err in boxes if err and told.get(b) == key}))
    for (name, version), box_ids in sorted(running.items()):
        out.append(ModelVersionPublic(name=name, version=version, status="not_pushed", weights_sha256=None, size=0,
                                      files=[], classes={}, pushed_at=None, pushed_by=None, assigned_to_all=False,
                                      assigned_boxes=[], running_on=box_ids, failing_on={}))
    return out
