"""Model rollout, the API's side: a push declares a version's files, each upload is checked
against its declared size and sha256 before it is stored, and a complete version can be
assigned to every box or to named boxes first.

Objects live in the evidence store under `models/{name}/{version}/{path}`. Nothing is stored
for a refused push or a refused file: a version whose files have not all arrived whole stays
`uploading`, cannot be assigned, and so never reaches a box.
"""

from __future__ import annotations

import hashlib
from typing import BinaryIO

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from api.auth import Principal
from api.db import begin_write
from api.evidence_store import EvidenceStore
from api.fleet_models import EdgeBox
from api.model_schemas import (MANIFEST, AssignedModel, AssignmentIn, AssignmentPublic, ModelFile, ModelLink,
                               ModelLinks, ModelPushIn, ModelRef, read_manifest)
from api.model_tables import ALL_BOXES, ModelAssignment, ModelFileRow, ModelVersion
from api.models import utcnow
from api.problems import Conflict, InvalidField, NotFound


def object_key(name: str, version: str, path: str) -> str:
    return f"models/{name}/{version}/{path}"


def _version(session: Session, name: str, version: str) -> ModelVersion:
    row = session.exec(select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)).first()
    if row is None:
        raise NotFound(f"no model {name} v{version} was pushed")
    return row


def _files(session: Session, version_id: int) -> list[ModelFileRow]:
    return list(session.exec(select(ModelFileRow).where(ModelFileRow.version_id == version_id)
                             .order_by(col(ModelFileRow.path))).all())


def push(session: Session, store: EvidenceStore, who: Principal, body: ModelPushIn,
         max_file_bytes: int) -> tuple[ModelVersion, list[ModelFileRow], bool]:
    """Declare a version: (its row, its files, created). The manifest is checked and stored
    here; the other files follow with upload(). A version pushed again with the same files is
    answered as it is (a retried push); with other files it is a conflict."""
    paths = {f.path for f in body.files}
    facts, where, why = read_manifest(body.manifest, paths)
    if facts is None:
        raise InvalidField(("body", "manifest", *where), why)
    for i, f in enumerate(body.files):
        if f.size > max_file_bytes:
            raise InvalidField(("body", "files", str(i), "size"),
                               f"{f.path} is {f.size} bytes; this API takes model files of at most {max_file_bytes} "
                               f"bytes (STREETWATCH_MAX_MODEL_FILE_BYTES)")
    manifest_bytes = body.manifest.encode()
    declared = {f.path: (f.sha256, f.size) for f in body.files}
    declared[MANIFEST] = (hashlib.sha256(manifest_bytes).hexdigest(), len(manifest_bytes))
    begin_write(session)
    row = session.exec(select(ModelVersion).where(ModelVersion.name == facts.name,
                                                  ModelVersion.version == facts.version).with_for_update()).first()
    created = row is None
    if row is not None:
        files = _files(session, row.id)  # type: ignore[arg-type]
        if {f.path: (f.sha256, f.size) for f in files} == declared:
            session.rollback()
            return row, files, False
        if row.status == "ready":
            raise Conflict(f"{facts.name} v{facts.version} was pushed with other files; a changed model needs a new "
                           "version in its manifest")
        # An unfinished push pushed again with other files: its declaration is replaced.
        session.execute(delete(ModelFileRow).where(col(ModelFileRow.version_id) == row.id))
        row.manifest, row.weights, row.classes = body.manifest, facts.weights, facts.model_dump()["classes"]
        row.pushed_at, row.pushed_by = utcnow(), who.name[:100]
    else:
        row = ModelVersion(name=facts.name, version=facts.version, weights=facts.weights, manifest=body.manifest,
                           classes=facts.model_dump()["classes"], pushed_by=who.name[:100])
    session.add(row)
    session.flush()
    store.put(object_key(facts.name, facts.version, MANIFEST), manifest_bytes, "application/yaml")
    now = utcnow()
    for path, (sha, size) in declared.items():
        session.add(ModelFileRow(version_id=row.id, path=path, sha256=sha, size=size,  # type: ignore[arg-type]
                                 stored_at=now if path == MANIFEST else None))
    try:
        session.commit()
    except IntegrityError:  # PostgreSQL: the same version pushed at the same moment elsewhere
        session.rollback()
        raise Conflict(f"{facts.name} v{facts.version} is being pushed by another request; push again") from None
    session.refresh(row)
    return row, _files(session, row.id), created  # type: ignore[arg-type]


def upload(session: Session, store: EvidenceStore, name: str, version: str, path: str, data: BinaryIO, size: int,
           sha256: str) -> tuple[ModelVersion, list[ModelFileRow]]:
    """Store one declared file if it is whole: the size and sha256 the push declared. The
    version becomes ready with its last file."""
    version_id = _version(session, name, version).id
    declared = session.exec(select(ModelFileRow.size, ModelFileRow.sha256, ModelFileRow.stored_at)
                            .where(ModelFileRow.version_id == version_id, ModelFileRow.path == path)).first()
    session.rollback()  # end the read (plain tuples): the write below begins on its own terms (SQLite)
    if declared is None:
        raise NotFound(f"{name} v{version} declares no file {path!r}; push the model again to declare it")
    if size != declared.size:
        raise InvalidField(("body",), f"{path}: {size} bytes arrived, the push declared {declared.size}; "
                                      "nothing stored")
    if sha256 != declared.sha256:
        raise InvalidField(("body",), f"{path}: the sha256 of what arrived ({sha256}) is not the declared one "
                                      f"({declared.sha256}); nothing stored")
    if declared.stored_at is None:
        store.put_file(object_key(name, version, path), data, size, "application/octet-stream")
    begin_write(session)
    row = session.exec(select(ModelVersion).where(ModelVersion.id == version_id).with_for_update()).one()
    files = _files(session, row.id)  # type: ignore[arg-type]
    now = utcnow()
    for f in files:
        if f.path == path and f.stored_at is None:
            f.stored_at = now
            session.add(f)
    if row.status != "ready" and all(f.stored_at is not None for f in files):
        row.status, row.ready_at = "ready", now
        session.add(row)
    session.commit()
    session.refresh(row)
    return row, _files(session, row.id)  # type: ignore[arg-type]


def assign(session: Session, who: Principal, body: AssignmentIn) -> AssignmentPublic:
    """Every box (per-box assignments end), or the named boxes first (a canary)."""
    begin_write(session)
    row = _version(session, body.name, body.version)
    if row.status != "ready":
        missing = [f.path for f in _files(session, row.id) if f.stored_at is None]  # type: ignore[arg-type]
        raise Conflict(f"{body.name} v{body.version} is not complete: {', '.join(missing)} missing; "
                       f"push it again (streetwatch model push)")
    now, by = utcnow(), who.name[:100]
    if body.boxes is None:
        session.execute(delete(ModelAssignment))
        session.add(ModelAssignment(target=ALL_BOXES, version_id=row.id, assigned_at=now,  # type: ignore[arg-type]
                                    assigned_by=by))
    else:
        known = set(session.exec(select(EdgeBox.id).where(col(EdgeBox.id).in_(body.boxes))).all())
        for i, box in enumerate(body.boxes):
            if box not in known:
                raise InvalidField(("body", "boxes", str(i)), f"unknown box {box!r}: no heartbeat from it yet")
        session.execute(delete(ModelAssignment).where(col(ModelAssignment.target).in_(body.boxes)))
        for box in body.boxes:
            session.add(ModelAssignment(target=box, version_id=row.id, assigned_at=now,  # type: ignore[arg-type]
                                        assigned_by=by))
    session.commit()
    return assignments(session)


def unassign(session: Session, box_id: str | None) -> AssignmentPublic:
    """Withdraw a box's own assignment (a canary), or with None the every-box one. The box then
    runs the every-box assignment, else its YAML's model, from its next config poll."""
    target = ALL_BOXES if box_id is None else box_id
    begin_write(session)
    row = session.get(ModelAssignment, target)
    if row is None:
        session.rollback()
        raise NotFound(f"box {box_id!r} has no model assignment of its own" if box_id is not None
                       else "no model is assigned to every box")
    session.delete(row)
    session.commit()
    return assignments(session)


def assignments(session: Session) -> AssignmentPublic:
    rows = session.exec(select(ModelAssignment.target, ModelVersion.name, ModelVersion.version)
                        .join(ModelVersion, col(ModelVersion.id) == col(ModelAssignment.version_id))).all()
    refs = {target: ModelRef(name=n, version=v) for target, n, v in rows}
    return AssignmentPublic(all=refs.pop(ALL_BOXES, None), boxes=dict(sorted(refs.items())))


def assigned_model(session: Session, box_id: str) -> AssignedModel | None:
    """The model a box is to run (its own assignment, else every box's), for its config."""
    rows = session.exec(select(ModelAssignment.target, ModelVersion)
                        .join(ModelVersion, col(ModelVersion.id) == col(ModelAssignment.version_id))
                        .where(col(ModelAssignment.target).in_([box_id, ALL_BOXES]))).all()
    chosen = dict(rows).get(box_id) or dict(rows).get(ALL_BOXES)
    if chosen is None:
        return None
    files = _files(session, chosen.id)  # type: ignore[arg-type]
    weights = next(f.sha256 for f in files if f.path == chosen.weights)
    return AssignedModel(name=chosen.name, version=chosen.version, weights=chosen.weights, weights_sha256=weights,
                         files=[ModelFile(path=f.path, sha256=f.sha256, size=f.size) for f in files])


def links(session: Session, store: EvidenceStore, name: str, version: str, expires_seconds: int) -> ModelLinks:
    """Time-limited download links of a ready version's files (for boxes: no other objects)."""
    row = _version(session, name, version)
    if row.status != "ready":
        raise Conflict(f"{name} v{version} is not complete yet")
    files = _files(session, row.id)  # type: ignore[arg-type]
    return ModelLinks(name=name, version=version, expires_seconds=expires_seconds, files=[
        ModelLink(path=f.path, sha256=f.sha256, size=f.size,
                  url=store.presigned_url(object_key(name, version, f.path), expires_seconds)) for f in files])
