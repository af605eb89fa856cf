"""The benchmark's verdict on a step: analysis intervals pooled over cameras, a starved camera
fails the step (pure arithmetic; the benchmark itself is run by `streetwatch bench edge`)."""

from __future__ import annotations

import pytest

from benchmarks.edge_bench import interval_stats


def test_regular_cameras_give_their_interval():
    times = {"a": [0.0, 2.0, 4.0, 6.0, 8.0, 10.0], "b": [1.0, 3.0, 5.0, 7.0, 9.0]}
    stats = interval_stats(times, 0.0, 10.0)
    assert stats["p50"] == pytest.approx(2.0) and stats["p95"] == pytest.approx(2.0)
    assert stats["starved"] == [] and stats["per_camera"]["b"]["n"] == 5


def test_a_camera_never_analysed_is_starved_even_if_the_pool_looks_fine():
    times = {f"c{i}": [float(t) for t in range(0, 21, 2)] for i in range(30)} | {"dead": []}
    stats = interval_stats(times, 0.0, 20.0)
    assert stats["p95"] == pytest.approx(2.0)  # 300 good intervals hide one dead camera ...
    assert stats["starved"] == ["dead"]  # ... which is why a starved camera fails the step
    assert stats["worst_camera_p95"] == pytest.approx(20.0)


def test_a_camera_that_starts_late_in_the_window_counts_its_wait():
    stats = interval_stats({"late": [15.0, 17.0, 19.0]}, 0.0, 20.0)
    assert stats["per_camera"]["late"]["p95"] > 10


def _step(n: int, ok: bool, **extra) -> dict:
    return {"event": "step", "cameras": n, "sustained": ok, "rss_mb": 100.0 + 10 * n, "cpu_percent": 50.0,
            "interval_p95_s": 2.1 if ok else 3.0, **extra}


def test_the_gap_after_the_ramp_is_bisected_by_fresh_probes(monkeypatch):
    from benchmarks import edge_bench

    limit, probed = 41, []

    def fake_child(kind, spec, timeout):
        (n,) = spec["steps"]
        probed.append(n)
        assert spec["probe"] and not spec["faults"]  # a probe is a plain step, no fault drill
        return [{"event": "started"}, _step(n, n <= limit, probe=True)]

    monkeypatch.setattr(edge_bench, "_run_child", fake_child)
    results = [_step(16, True), _step(32, True), _step(48, False)]
    edge_bench._bisect("edge", {"steps": [16, 32, 48]}, results, resolution=4, budget=60)
    assert probed == [40, 44]  # 32..48 → 40 sustained → 40..48 → 44 not → within 4: stop
    report = {"edge": results, "naive": [_step(8, True), _step(10, True), _step(12, False)]}
    edge_bench._conclude(report)
    assert report["edge_sustained"] == 40 and report["ratio"] == 4.0
    # RSS per added camera comes from the ramp's own process (16 → 32), not from a probe
    assert report["edge_rss_mb_per_added_camera"] == 10.0


def test_no_probe_when_the_first_step_already_failed_or_the_gap_is_small(monkeypatch):
    from benchmarks import edge_bench

    monkeypatch.setattr(edge_bench, "_run_child", lambda *a: pytest.fail("no probe expected"))
    edge_bench._bisect("naive", {}, [_step(2, False)], resolution=1, budget=60)
    edge_bench._bisect("naive", {}, [_step(2, True), _step(3, False)], resolution=1, budget=60)
