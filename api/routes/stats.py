from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.auth import Principal, require
from api.deps import SessionDep
from api.models import Role
from api.schemas import IssueType, UtcDateTime
from api.stats import Stats, compute_stats

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


@router.get("")
def read_stats(
    session: SessionDep, _: Annotated[Principal, Depends(require(Role.reviewer))],
    since: Annotated[UtcDateTime | None, Query(description="orders created at or after (ISO 8601)")] = None,
    until: Annotated[UtcDateTime | None, Query(description="orders created before (ISO 8601)")] = None,
    grid_id: Annotated[str | None, Query(max_length=100)] = None,
    issue_type: Annotated[IssueType | None, Query()] = None,
) -> Stats:
    """The dashboard's figures, for city dashboards to pull: orders by type and state, mean time
    to dispatch and to resolve, SLA compliance, false-alarm and confirmed rates per camera and
    per model version, recurrences."""
    return compute_stats(session, since, until, grid_id, issue_type)
