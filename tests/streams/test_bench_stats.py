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
