"""The camera online rate (设备在线率) per grid and day, weighted by time.

From the history of state changes alone (api/heartbeats.py writes a row per change): each
camera is in one state from one change to the next, so the time it streamed and the time it
was watched add up per day without a row per heartbeat. `disabled` (switched off on purpose)
is not counted either way; `offline` (its box silent) counts as not streaming. Days are UTC.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta, timezone

from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from api.fleet_models import CameraStateChange
from api.fleet_schemas import CameraHealthState as S
from api.models import Camera, as_utc, utcnow

DEFAULT_DAYS = 7


class OnlineRate(BaseModel):
    grid_id: str | None
    day: date
    online_rate: float | None = Field(description="time streaming / time watched (not disabled), its cameras together")
    camera_hours: float = Field(description="hours its cameras were watched that day, all of them together")


def online_rates(session: Session, since: datetime | None = None, until: datetime | None = None,
                 grid_id: str | None = None, now: datetime | None = None) -> list[OnlineRate]:
    end = min(until or now or utcnow(), now or utcnow())
    start = since or datetime.combine((end - timedelta(days=DEFAULT_DAYS - 1)).date(), time(), timezone.utc)
    if start >= end:
        return []
    changes: dict[int, list[tuple[datetime, S]]] = defaultdict(list)
    # The state each camera was in when the period began, then its changes within it.
    before = select(func.max(CameraStateChange.id)).where(col(CameraStateChange.at) < start) \
        .group_by(col(CameraStateChange.camera_id))
    query = select(CameraStateChange.camera_id, CameraStateChange.at, CameraStateChange.to_state, Camera.grid_id) \
        .join(Camera, col(Camera.id) == col(CameraStateChange.camera_id)) \
        .where((col(CameraStateChange.id).in_(before))
               | ((col(CameraStateChange.at) >= start) & (col(CameraStateChange.at) < end)))
    if grid_id is not None:
        query = query.where(Camera.grid_id == grid_id)
    grids: dict[int, str | None] = {}
    for camera_id, at, state, grid in session.exec(query.order_by(col(CameraStateChange.at),
                                                                  col(CameraStateChange.id))).all():
        changes[camera_id].append((max(as_utc(at), start), S(state)))
        grids[camera_id] = grid
    watched: dict[tuple[str | None, date], float] = defaultdict(float)
    streaming: dict[tuple[str | None, date], float] = defaultdict(float)
    for camera_id, steps in changes.items():
        for (begin, state), (finish, _) in zip(steps, steps[1:] + [(end, S.offline)]):
            if state == S.disabled:
                continue
            for day, seconds in _per_day(begin, finish):
                watched[(grids[camera_id], day)] += seconds
                if state == S.streaming:
                    streaming[(grids[camera_id], day)] += seconds
    return [OnlineRate(grid_id=grid, day=day, online_rate=streaming[(grid, day)] / total if total else None,
                       camera_hours=round(total / 3600, 3))
            for (grid, day), total in sorted(watched.items(), key=lambda kv: (kv[0][1], kv[0][0] or ""))]


def _per_day(begin: datetime, finish: datetime) -> list[tuple[date, float]]:
    out = []
    while begin < finish:
        midnight = datetime.combine(begin.date() + timedelta(days=1), time(), timezone.utc)
        step = min(finish, midnight)
        out.append((begin.date(), (step - begin).total_seconds()))
        begin = step
    return out
