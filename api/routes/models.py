"""Model rollout: an admin pushes a model version and assigns it; boxes learn theirs from their
config (GET /api/v1/boxes/{id}/config) and fetch its files through time-limited links."""

from __future__ import annotations

import hashlib
import re
import tempfile
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import Principal, require
from api.deps import SessionDep, SettingsDep, StoreDep
from api.fleet_schemas import NAME_PATTERN
from api.model_listing import list_models
from api.model_registry import assign, assignments, links, push, unassign, upload
from api.model_schemas import (AssignmentIn, AssignmentPublic, ModelFilePublic, ModelLinks, ModelPushed, ModelPushIn,
                               ModelVersionPublic, path_problem)
from api.model_tables import ModelFileRow, ModelVersion
from api.models import Role
from api.problems import InvalidField

router = APIRouter(prefix="/api/v1", tags=["fleet"])
Admin = Annotated[Principal, Depends(require())]
Reviewer = Annotated[Principal, Depends(require(Role.reviewer))]
Edge = Annotated[Principal, Depends(require(Role.edge))]
NamePath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]


MODEL_FILE_PATH = re.compile(r"/api/v1/models/[^/]+/[^/]+/files/.+")  # its own body cap (api/main.py)
SPOOL_BYTES = 8 * 1024 * 1024  # a model file beyond this waits for the store in a temporary file


def _pushed(row: ModelVersion, files: list[ModelFileRow]) -> ModelPushed:
    return ModelPushed(name=row.name, version=row.version, status=row.status,  # type: ignore[arg-type]
                       files=[ModelFilePublic(path=f.path, sha256=f.sha256, size=f.size, stored=f.stored_at is not None)
                              for f in files],
                       missing=[f.path for f in files if f.stored_at is None])


@router.post("/models", status_code=201, responses={
    200: {"description": "This version was pushed before with the same files: what is still missing"},
    409: {"description": "This version was pushed with other files"},
    422: {"description": "No manifest, a manifest naming a file not pushed, a class whose issue type the API does "
                         "not know, a file too large; `loc` names it. Nothing is stored"}})
def post_model(body: ModelPushIn, session: SessionDep, store: StoreDep, settings: SettingsDep, who: Admin,
               response: Response) -> ModelPushed:
    """Declare a model version (`streetwatch model push models/X` does this, then uploads each
    file with PUT …/files/{path}): the manifest's text and each file's size and sha256."""
    row, files, created = push(session, store, who, body, settings.max_model_file_bytes)
    if not created:
        response.status_code = 200
    return _pushed(row, files)


@router.put("/models/{name}/{version}/files/{path:path}", responses={
    404: {"description": "No such version, or it declares no such file"},
    413: {"description": "Larger than the API takes"},
    422: {"description": "The size or sha256 of what arrived is not the declared one; nothing stored"}},
    openapi_extra={"requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                       "format": "binary"}}},
                                   "required": True}})
async def put_model_file(name: NamePath, version: NamePath, path: str, request: Request, session: SessionDep,
                         store: StoreDep, settings: SettingsDep, _: Admin) -> ModelPushed:
    """One declared file's raw bytes (application/octet-stream); the version is ready, and can
    be assigned, once every file it declared has arrived whole."""
    problem = path_problem(path)
    if problem:
        raise InvalidField(("path", "path"), problem)
    limit = settings.max_model_file_bytes
    digest, size = hashlib.sha256(), 0
    with tempfile.SpooledTemporaryFile(SPOOL_BYTES) as spool:
        async for chunk in request.stream():
            digest.update(chunk)
            size += len(chunk)
            if size > limit:
                raise InvalidField(("body",), f"{path}: larger than {limit} bytes; nothing stored")
            spool.write(chunk)
        row, files = await run_in_threadpool(upload, session, store, name, version, path, spool, size,
                                             digest.hexdigest())
    return _pushed(row, files)


@router.get("/models")
def get_models(session: SessionDep, _: Reviewer) -> list[ModelVersionPublic]:
    """Every pushed version with its files, where it is assigned, the boxes that run it (their
    last heartbeat) and the boxes told to run it that say why they do not."""
    return list_models(session)


@router.put("/models/assignment", responses={
    404: {"description": "No such version"}, 409: {"description": "The version's files have not all arrived"},
    422: {"description": "An unknown box; `loc` names it"}})
def put_assignment(body: AssignmentIn, session: SessionDep, who: Admin) -> AssignmentPublic:
    """Assign a ready version to every box (`boxes` omitted; per-box assignments end) or to the
    named boxes first (a canary). Each box picks it up at its next config poll."""
    return assign(session, who, body)


@router.delete("/models/assignment", responses={404: {"description": "No model is assigned to every box"}})
def delete_assignment(session: SessionDep, _: Admin) -> AssignmentPublic:
    """Withdraw the every-box assignment: boxes without their own run their YAML's model again
    (from their next config poll). Per-box assignments stay; the answer is what remains."""
    return unassign(session, None)


@router.delete("/models/assignment/{box_id}", responses={
    404: {"description": "The box has no assignment of its own"}})
def delete_box_assignment(box_id: NamePath, session: SessionDep, _: Admin) -> AssignmentPublic:
    """Withdraw a box's own assignment (a canary): it runs the every-box assignment again, else
    its YAML's model, from its next config poll. The answer is what remains."""
    return unassign(session, box_id)


@router.get("/models/assignment")
def get_assignment(session: SessionDep, _: Reviewer) -> AssignmentPublic:
    return assignments(session)


@router.get("/models/{name}/{version}/links", responses={404: {"description": "No such version"},
                                                         409: {"description": "Not all its files have arrived"}})
def get_model_links(name: NamePath, version: NamePath, session: SessionDep, store: StoreDep, settings: SettingsDep,
                    _: Edge) -> ModelLinks:
    """Time-limited download links of a ready version's files, for boxes (edge keys may fetch
    models, and no other objects, this way)."""
    return links(session, store, name, version, settings.presign_expiry_seconds)
