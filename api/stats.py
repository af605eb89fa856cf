"""The figures a city dashboard wants: orders by type and state, time to dispatch and to
resolve, SLA compliance, false alarms per camera and per model version, recurrences.

Computed in Python over the orders of the period: a city makes thousands of orders a month,
which one query and one pass handle in milliseconds, and the rules stay readable here
instead of spread over dialect-specific SQL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from statistics import mean

from pydantic import BaseModel, Field
from sqlmodel import Session, col, func, select

from api.dispatch import UNRESOLVED, is_overdue
from api.fleet_models import CameraStatus
from api.fleet_stats import OnlineRate, online_rates
from api.models import Camera, Order, OrderState, as_utc, is_false_alarm, utcnow
from api.schemas import IssueType
from api.verdicts import confirmed_by_people

WORKED_ON = {OrderState.in_progress, OrderState.resolved, OrderState.closed}


class RateRow(BaseModel):
    key: str = Field(description="camera name or model version")
    orders: int
    rejected: int
    false_alarms: int = Field(description="rejected as not an issue, the wrong type or other (not duplicates, "
                                          "permitted or outside the jurisdiction: those were seen right)")
    false_alarm_rate: float | None = Field(description="false alarms / orders a person judged (rejected, or moved "
                                                       "on as real; automatic dispatch is no judgement)")
    confirmed_rate: float | None = Field(description="judged and not a false alarm / orders a person judged")


class Stats(BaseModel):
    orders: int
    by_type_and_state: dict[str, dict[str, int]]
    mean_time_to_dispatch_s: float | None
    mean_time_to_resolve_s: float | None
    sla_met: int = Field(description="resolved by their SLA deadline")
    sla_missed: int = Field(description="resolved after the deadline, or still open past it")
    sla_compliance: float | None
    overdue_now: int = Field(description="open orders past their deadline now, whenever they were reported")
    recurrences: int
    citizen_reported: int
    per_camera: list[RateRow]
    per_model_version: list[RateRow]
    per_box_model_version: list[RateRow] = Field(description="per box and model version ('box-07/streetwatch-v2:3'), "
                                                              "the box holding the order's camera now: a rollout's "
                                                              "effect box by box")
    camera_online_rate: list[OnlineRate] = Field(description="time-weighted camera online rate per grid and UTC day, "
                                                             "over the period (default: the last 7 days)")


def compute_stats(session: Session, since: datetime | None = None, until: datetime | None = None,
                  grid_id: str | None = None, issue_type: IssueType | None = None,
                  now: datetime | None = None) -> Stats:
    def of_scope(query):
        if grid_id is not None:
            query = query.where(Order.grid_id == grid_id)
        return query.where(Order.issue_type == issue_type) if issue_type is not None else query

    # Overdue now is about today, not the period: an order reported before it and still late counts.
    late = select(func.count()).select_from(Order).where(col(Order.state).in_(UNRESOLVED),
                                                         col(Order.sla_due_at) < (now or utcnow()))
    overdue_now = session.exec(of_scope(late)).one()
    query = of_scope(select(Order, Camera.name, CameraStatus.box_id)
                     .join(Camera, col(Camera.id) == col(Order.camera_id), isouter=True)
                     .join(CameraStatus, col(CameraStatus.camera_id) == col(Order.camera_id), isouter=True))
    if since is not None:
        query = query.where(col(Order.created_at) >= since)
    if until is not None:
        query = query.where(col(Order.created_at) < until)
    rows = session.exec(query).all()
    judged_real = confirmed_by_people(session, [order.id for order, *_ in rows if order.id is not None])

    by_type: dict[str, dict[str, int]] = {t.value: {s.value: 0 for s in OrderState} for t in IssueType}
    to_dispatch, to_resolve = [], []
    met = missed = 0
    cameras: dict[str, list[Order]] = defaultdict(list)
    versions: dict[str, list[Order]] = defaultdict(list)
    box_versions: dict[str, list[Order]] = defaultdict(list)
    for order, camera, box in rows:
        by_type[order.issue_type.value][order.state.value] += 1
        created = as_utc(order.created_at)
        if order.dispatched_at is not None:
            to_dispatch.append((as_utc(order.dispatched_at) - created).total_seconds())
        if order.resolved_at is not None:
            to_resolve.append((as_utc(order.resolved_at) - created).total_seconds())
            if order.sla_due_at is not None:
                met, missed = (met + 1, missed) if as_utc(order.resolved_at) <= as_utc(order.sla_due_at) \
                    else (met, missed + 1)
        elif is_overdue(order, now):
            missed += 1
        if camera is not None:
            cameras[camera].append(order)
        if order.model_name is not None:
            versions[f"{order.model_name}:{order.model_version}"].append(order)
            if box is not None:
                box_versions[f"{box}/{order.model_name}:{order.model_version}"].append(order)
    return Stats(
        orders=len(rows), by_type_and_state=by_type,
        mean_time_to_dispatch_s=mean(to_dispatch) if to_dispatch else None,
        mean_time_to_resolve_s=mean(to_resolve) if to_resolve else None,
        sla_met=met, sla_missed=missed, sla_compliance=met / (met + missed) if met + missed else None,
        overdue_now=overdue_now, recurrences=sum(1 for o, *_ in rows if o.recurrence_of is not None),
        citizen_reported=sum(1 for o, *_ in rows if o.camera_id is None),
        per_camera=[_rates(k, v, judged_real) for k, v in sorted(cameras.items())],
        per_model_version=[_rates(k, v, judged_real) for k, v in sorted(versions.items())],
        per_box_model_version=[_rates(k, v, judged_real) for k, v in sorted(box_versions.items())],
        camera_online_rate=online_rates(session, since, until, grid_id, now),
    )


def _rates(key: str, orders: list[Order], judged_real: set[int]) -> RateRow:
    states = Counter(o.state for o in orders)
    rejected = states[OrderState.rejected]
    # A worker's start or fix is a person's word too; a dispatched order may be the system's doing.
    acted = rejected + sum(1 for o in orders if o.state in WORKED_ON or (o.state != OrderState.rejected
                                                                         and o.id in judged_real))
    false = sum(1 for o in orders if is_false_alarm(o.state, o.reject_reason))
    return RateRow(key=key, orders=len(orders), rejected=rejected, false_alarms=false,
                   false_alarm_rate=false / acted if acted else None,
                   confirmed_rate=(acted - false) / acted if acted else None)
