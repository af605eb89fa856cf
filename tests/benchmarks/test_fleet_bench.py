"""`streetwatch bench fleet`'s pieces: heartbeats spread evenly over the interval, outages
planned on distinct cameras and seen as state changes, the rows counted per table on both
backends; and a short run end to end against the real API (its figures are for
benchmarks/README.md, not for assertions)."""

from __future__ import annotations

import contextlib
import json
import random
from collections import Counter
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from api.db import get_engine, upgrade_database
from api.fleet_schemas import HeartbeatIn
from benchmarks.fleet_bench import heartbeat_body, run
from benchmarks.fleet_plan import FleetStates, Outage, changed, plan_outages, send_times
from benchmarks.fleet_rows import install_counters, split, written
from tests.support.postgres import ThrowawayPostgres


def test_heartbeats_are_spread_evenly_and_each_box_beats_once_per_interval():
    times = send_times(500, 30.0, 0.0, 60.0)
    assert len(times) == 1000 and [t for t, _ in times] == sorted(t for t, _ in times)
    gaps = {round(b[0] - a[0], 9) for a, b in zip(times, times[1:])}
    assert gaps == {0.06}  # one every 60 ms: 16.7 a second, never a burst
    per_box: dict[int, list[float]] = {}
    for at, box in times:
        per_box.setdefault(box, []).append(at)
    assert all(len(v) == 2 and v[1] - v[0] == pytest.approx(30.0) for v in per_box.values())
    assert per_box[0][0] == 0.0 and per_box[499][0] == pytest.approx(29.94)
    assert send_times(3, 10.0, 5.0, 12.0) == [(5.0, 0), (5.0 + 10 / 3, 1), (5.0 + 20 / 3, 2)]
    with pytest.raises(ValueError):
        send_times(0, 30.0, 0.0, 60.0)


def test_outages_fall_on_distinct_cameras_and_make_two_state_changes_each():
    outages = plan_outages(random.Random(1), boxes=50, cameras=40, per_minute=10, outage_s=90, seconds=120)
    assert len(outages) == 35 and len({(o.box, o.camera) for o in outages}) == 35  # 10 a minute over 210 s
    assert all(-90 <= o.start < 120 and o.end == o.start + 90 for o in outages)
    assert min(o.start for o in outages) < 0 < max(o.end for o in outages) < 210  # begun before, ending within
    with pytest.raises(ValueError, match="its own camera"):
        plan_outages(random.Random(1), boxes=1, cameras=2, per_minute=60, outage_s=5, seconds=60)

    states = FleetStates([Outage(box=3, camera=7, start=10, end=40, state="stalled"),
                          Outage(box=3, camera=1, start=35, end=50, state="failed")])
    seen = [states.down(3, t) for t in (0, 10, 36, 45, 50)]
    assert seen == [{}, {7: "stalled"}, {7: "stalled", 1: "failed"}, {1: "failed"}, {}]
    assert states.down(4, 36) == {}
    sent = sum(changed(a, b) for a, b in zip(seen, seen[1:]))
    assert sent == 4  # two outages: each went down once and came back once
    assert changed({7: "stalled"}, {7: "reconnecting"}) == 1 and changed({}, {}) == 0


def test_a_planned_heartbeat_is_one_the_api_accepts():
    body = heartbeat_body(["c-0", "c-1"], {1: "stalled"}, datetime(2026, 12, 6, 12, tzinfo=timezone.utc), 30.0, "g-01")
    beat = HeartbeatIn.model_validate_json(body)
    assert [(c.name, c.state, c.grid_id) for c in beat.cameras] == [("c-0", "streaming", "g-01"),
                                                                    ("c-1", "stalled", "g-01")]


def _count_writes(engine: sa.Engine) -> Counter:
    def flushed(conn: sa.Connection) -> None:
        if engine.dialect.name == "postgresql":  # this backend's counts reach pg_stat at its next idle
            conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")

    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO edge_box (id, created_at, outbox_depth, live) "
                             "VALUES ('b1', '2026-12-06', 0, '{}'), ('b2', '2026-12-06', 0, '{}')")
        flushed(conn)
    before = written(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE edge_box SET outbox_depth = 1")
        conn.exec_driver_sql("DELETE FROM edge_box WHERE id = 'b2'")
        flushed(conn)
    return written(engine) - before


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_rows_are_counted_per_table_and_operation(backend, tmp_path):
    cluster = ThrowawayPostgres() if backend == "postgres" else contextlib.nullcontext(f"sqlite:///{tmp_path}/r.db")
    with cluster as url:
        upgrade_database(url)
        engine = get_engine(url)
        install_counters(engine)
        install_counters(engine)  # twice: no second trigger, no double count
        delta = _count_writes(engine)
        engine.dispose()
    assert delta == Counter({("edge_box", "update"): 2, ("edge_box", "delete"): 1})
    assert split(delta) == {"state_change": 0, "heartbeat": 3, "other": 0}
    assert split(Counter({("camera_status", "update"): 2, ("camera_state_change", "insert"): 2,
                          ("sweep_lease", "update"): 1})) == {"state_change": 4, "heartbeat": 0, "other": 1}


def test_bench_fleet_short_run_on_sqlite(tmp_path):
    result = run("sqlite", boxes=8, cameras=5, interval_s=2.0, seconds=6.0, changes_per_minute=60.0, outage_s=3.0,
                 workers=1, json_out=tmp_path / "r.json")
    assert result.errors == 0, result.error_samples
    assert result.heartbeats == 24 and result.p50_ms <= result.p95_ms <= result.p99_ms
    assert result.changes_sent > 0 and result.changes_recorded == result.changes_sent
    # The box's row once per heartbeat; a camera's two rows once per change of its state.
    assert result.rows["heartbeat"] == result.heartbeats
    assert result.rows["state_change"] == 2 * result.changes_recorded
    assert result.cpu_s["api"] > 0 and result.register_s >= 0
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["heartbeats"] == 24
    # The host's baseline, measured in the same run, is kept with the figures.
    assert saved["host_cold_pages"]["after_pause_us"] > 0 and saved["host_cold_pages"]["warm_us"] > 0
    # Each box keeps its connection, registration to the end (a rare one closed by the rotation).
    assert 8 <= result.connections <= 12


def test_bench_fleet_can_open_a_connection_per_heartbeat(tmp_path):
    result = run("sqlite", boxes=4, cameras=2, interval_s=2.0, seconds=4.0, changes_per_minute=0.0, outage_s=3.0,
                 workers=1, keep_connections=False)
    assert result.errors == 0 and result.heartbeats == 8
    assert result.connections == 4 + 8  # registration's and the window's


def test_bad_bench_fleet_flags_are_refused_by_the_parser(capsys):
    import streetwatch_cli

    for flags in (["--boxes", "0"], ["--cameras", "-1"], ["--interval", "0"], ["--seconds", "nan"],
                  ["--changes-per-minute", "-1"], ["--outage", "inf"], ["--backend", "mysql"]):
        with pytest.raises(SystemExit) as exit_:
            streetwatch_cli.main(["bench", "fleet", *flags])
        assert exit_.value.code == 2, flags
        assert "error: argument" in capsys.readouterr().err


def test_the_cold_page_probe_times_pages_touched_after_a_pause():
    from benchmarks.cold_pages import measure

    found = measure(pause_s=0.02, rounds=3)
    assert 0 < found.warm_us and 0 < found.after_pause_us
    assert found.rounds == 3 and "µs after 20 ms asleep" in str(found)
