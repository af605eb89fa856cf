"""Time filters: a time without an offset means UTC, and a time that overflows once converted
to UTC is a 422 naming the parameter (both were 500s: schemathesis only sends offsets)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.api.factories import event_json, post

ROUTES = [("/api/v1/orders", "since", "until"), ("/api/v1/stats", "since", "until"),
          ("/open311/v2/requests.json", "start_date", "end_date")]


def _count(resp) -> int:
    body = resp.json()
    if isinstance(body, list):
        return len(body)
    return body["orders"] if "orders" in body and isinstance(body["orders"], int) else len(body["data"])


@pytest.mark.parametrize("path,start,end", ROUTES)
def test_naive_times_are_utc(client, path, start, end):
    post(client, event_json())
    now = datetime.now(timezone.utc)
    hour_ago, hour_on = (now - timedelta(hours=1)).replace(tzinfo=None), (now + timedelta(hours=1)).replace(tzinfo=None)
    inside = client.get(path, params={start: hour_ago.isoformat(), end: hour_on.isoformat()})
    assert inside.status_code == 200, inside.text
    assert _count(inside) == 1
    # the same instant written with an offset gives the same answer
    shifted = (now - timedelta(hours=1)).astimezone(timezone(timedelta(hours=8))).isoformat()
    assert _count(client.get(path, params={start: shifted})) == 1
    later = client.get(path, params={start: hour_on.isoformat()})
    assert later.status_code == 200 and _count(later) == 0


@pytest.mark.parametrize("path,start,end", ROUTES)
def test_a_time_before_year_one_in_utc_is_422(client, path, start, end):
    resp = client.get(path, params={end: "0001-01-01T01:00:00+05:00"})
    if path.startswith("/open311/"):  # GeoReport's own errors: 400, [{code, description}] naming the field
        assert resp.status_code == 400 and resp.json()[0]["description"].startswith(f"{end}: ")
        return
    assert resp.status_code == 422
    assert end in str(resp.json()["detail"])
