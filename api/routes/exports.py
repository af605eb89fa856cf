"""Admin: start the review export (the same job as `streetwatch dataset export-reviews`) on
the API server and follow it. Jobs live in this API process; the folder is what lasts."""

from __future__ import annotations

import threading
import uuid
from contextlib import ExitStack
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field
from sqlmodel import Session

from api.schemas import UtcDateTime
from api.auth import Principal, require
from api.deps import SettingsDep
from api.problems import Conflict, NotFound
from api.review_export import ExportBusy, export_lock, export_reviews

router = APIRouter(prefix="/api/v1/exports", tags=["exports"])
Admin = Annotated[Principal, Depends(require())]


class ExportIn(BaseModel):
    # A letter or digit first: "." and ".." would name the export root or its parent.
    name: str = Field("reviews", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=100,
                      description="folder under STREETWATCH_EXPORT_DIR; exporting to it again adds what is new")
    since: UtcDateTime | None = Field(None, description="orders changed at or after (ISO 8601)")


class ExportJob(BaseModel):
    job_id: str
    state: Literal["running", "done", "failed"]
    folder: str
    summary: dict | None = None
    error: str | None = None


@router.post("", status_code=202, responses={409: {"description": "An export into that folder is running"}})
def start_export(body: ExportIn, request: Request, settings: SettingsDep, _: Admin) -> ExportJob:
    jobs: dict[str, ExportJob] = request.app.state.export_jobs
    folder = settings.export_dir / body.name
    job = ExportJob(job_id=uuid.uuid4().hex, state="running", folder=str(folder))
    held = ExitStack()
    try:  # taken here, so a second export of the folder is a 409 now, not a job that fails later
        held.enter_context(export_lock(folder))
    except ExportBusy as exc:
        raise Conflict(str(exc)) from None
    except OSError as exc:  # the folder cannot be made: the job says so, as when writing fails
        job.state, job.error = "failed", f"{exc.__class__.__name__}: {exc}"
        jobs[job.job_id] = job
        return job
    jobs[job.job_id] = job
    engine, store = request.app.state.engine, request.app.state.store

    def run() -> None:
        with held:
            try:
                with Session(engine) as session:
                    job.summary = asdict(export_reviews(session, store, folder, body.since, progress=False,
                                                        locked=True))
                job.state = "done"
            except Exception as exc:  # reported on the job, not lost in a thread
                job.state, job.error = "failed", f"{exc.__class__.__name__}: {exc}"

    try:
        threading.Thread(target=run, name=f"export-{job.job_id[:8]}", daemon=True).start()
    except BaseException:
        held.close()
        raise
    return job


@router.get("/{job_id}", responses={404: {"description": "No such job in this API process"}})
def read_export(job_id: Annotated[str, Path(max_length=64)], request: Request, _: Admin) -> ExportJob:
    job = request.app.state.export_jobs.get(job_id)
    if job is None:
        raise NotFound(f"no export job {job_id} in this API process")
    return job
