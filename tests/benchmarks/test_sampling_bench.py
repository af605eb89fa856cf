"""`streetwatch bench edge --mode rtsp_snapshot|http_snapshot`: its options, the ramp's stop rule
and the report's arithmetic (pure; the benchmark itself is run by hand, its figures are in
benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import pytest

import streetwatch_cli
from benchmarks import sampling_bench
from benchmarks.cli import edge_options
from benchmarks.sampling_bench import conclude, ramp, ramp_steps, side_summary, sustained, window_stats


def _args(*argv: str):
    return streetwatch_cli.build_parser().parse_args(["bench", "edge", *argv])


# -- options --------------------------------------------------------------------------------------
def test_a_snapshot_mode_gets_its_own_defaults_and_the_stream_bench_keeps_its_own():
    options, problem = edge_options(_args("--mode", "http_snapshot", "--interval", "30"))
    assert problem is None
    assert options == {"modes": ["http_snapshot"], "interval": 30.0, "cameras": 2000, "stream_cameras": 512,
                       "seconds": 60.0, "warmup": 5.0, "steps": None, "stream_steps": None, "max_minutes": None}
    options, _ = edge_options(_args("--mode", "rtsp_snapshot", "--steps", "250,500", "--stream-steps", "32",
                                    "--seconds", "30", "--warmup", "0", "--max-minutes", "10"))
    assert options["interval"] == 30.0 and options["steps"] == [250, 500] and options["stream_steps"] == [32]
    assert (options["seconds"], options["warmup"], options["max_minutes"]) == (30.0, 0.0, 10.0)
    both = edge_options(_args("--mode", "http_snapshot,rtsp_snapshot"))[0]
    assert both["modes"] == ["http_snapshot", "rtsp_snapshot"]  # against one stream side
    # no --mode: the stream bench against the naive loop, as before
    assert edge_options(_args()) == ({"cameras": 64, "seconds": 20.0, "warmup": 30.0}, None)
    assert edge_options(_args("--cameras", "8", "--warmup", "0", "--interval", "2"))[0] == \
        {"cameras": 8, "seconds": 20.0, "warmup": 0.0}


@pytest.mark.parametrize("argv, names", [
    (["--interval", "30"], ["--interval"]),
    (["--mode", "stream", "--steps", "4", "--max-minutes", "3"], ["--steps", "--max-minutes"]),
    (["--mode", "http_snapshot", "--no-naive"], ["--no-naive"]),
    (["--mode", "rtsp_snapshot", "--no-faults", "--no-naive"], ["--no-naive", "--no-faults"]),
    # the run of 2026-12-06 13:05: 100 stream cameras connected together, analysed once, and a
    # 15 s window held none of their second frames (0 intervals: the stream side had no figure)
    (["--mode", "http_snapshot", "--interval", "30", "--seconds", "15"], ["--seconds 15"]),
])
def test_options_of_the_other_kind_of_bench_are_refused_naming_them(argv, names, capsys):
    options, problem = edge_options(_args(*argv))
    assert options is None and all(name in problem for name in names)
    assert streetwatch_cli.main(["bench", "edge", *argv]) == 2  # refused before anything starts
    err = capsys.readouterr().err
    assert err.startswith("streetwatch: bench edge: ") and names[0] in err


@pytest.mark.parametrize("argv", [["--mode", "rtsp"], ["--mode", "stream,http_snapshot"],
                                  ["--mode", "http_snapshot,http_snapshot"], ["--mode", ""], ["--interval", "0"], ["--interval", "nan"],
                                  ["--steps", "4,0"], ["--stream-steps", "x"], ["--max-minutes", "-1"],
                                  ["--stream-cameras", "0"]])
def test_bad_values_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        streetwatch_cli.main(["bench", "edge", *argv])
    assert exit_.value.code == 2 and "error: argument" in capsys.readouterr().err


def test_each_mode_runs_its_own_bench(monkeypatch):
    import benchmarks.edge_bench

    calls = []
    monkeypatch.setattr(sampling_bench, "bench_sampling",
                        lambda **kw: calls.append(("sampling", kw)) or {"summary": {m: {"sustained": 0}
                                                                                  for m in kw["modes"]}})
    monkeypatch.setattr(benchmarks.edge_bench, "bench_edge",
                        lambda **kw: calls.append(("edge", kw)) or {"edge_sustained": 16})
    # nothing sustained is a failed run (exit 1); the stream bench still gets its old options
    assert streetwatch_cli.main(["bench", "edge", "--mode", "http_snapshot", "--interval", "2", "--steps", "2,4"]) == 1
    assert streetwatch_cli.main(["bench", "edge", "--no-naive", "--model", "models/x"]) == 0
    (kind, kw), (kind2, kw2) = calls
    assert kind == "sampling" and kw["interval"] == 2.0 and kw["steps"] == [2, 4] and kw["model"] is None
    assert kind2 == "edge" and kw2["naive"] is False and kw2["faults"] is True and str(kw2["model"]) == "models/x"


def test_the_default_ramp_ends_at_the_most_cameras():
    assert ramp_steps((50, 100, 200, 400), 300) == [50, 100, 200, 300]
    assert ramp_steps((50, 100, 200), 200) == [50, 100, 200]
    assert ramp_steps((50, 100), 5) == [5]


# -- a step's verdict --------------------------------------------------------------------------------
def test_regular_cameras_give_their_interval_and_the_interval_that_began_before_the_window_counts():
    times = {"a": [0.0, 30.0, 60.0, 90.0], "b": [10.0, 40.0, 70.0, 100.0]}
    stats = window_stats(times, {}, 65.0, 101.0, 30.0)
    # a: 60→90; b: 40→70 and 70→100 (both end inside [65, 101])
    assert stats["intervals"] == 3 and stats["p95"] == pytest.approx(30.0) and stats["starved"] == []
    assert stats["per_camera"]["a"]["n"] == 1 and sustained(stats, 30.0)


def test_a_late_camera_counts_the_gap_still_open_at_the_end():
    # its last frame 40 s before the end: over 1.2 × 30 s, so the open gap counts
    stats = window_stats({"late": [0.0, 30.0, 60.0]}, {}, 60.0, 100.0, 30.0)
    assert stats["intervals"] == 2 and stats["worst_camera_p95"] > 36
    # ... but one merely between two frames does not
    assert window_stats({"ok": [0.0, 30.0, 60.0]}, {}, 60.0, 80.0, 30.0)["intervals"] == 1


def test_the_stop_rule_is_p95_above_1_2_intervals_or_one_camera_starved():
    good = {f"c{i}": [0.0, 30.0, 60.0] for i in range(40)}
    assert sustained(window_stats(good, {}, 31.0, 61.0, 30.0), 30.0)
    exactly = {f"c{i}": [0.0, 36.0] for i in range(40)}
    assert sustained(window_stats(exactly, {}, 31.0, 37.0, 30.0), 30.0)  # at 1.2 × the interval: still sustained
    over = {f"c{i}": [0.0, 36.5] for i in range(40)}
    assert not sustained(window_stats(over, {}, 31.0, 37.0, 30.0), 30.0)
    # 40 punctual cameras hide a dead one in the pooled p95; the starved camera fails the step
    dead = good | {"dead": [0.0]}
    stats = window_stats(dead, {}, 31.0, 61.0, 30.0)
    assert stats["p95"] == pytest.approx(30.0) and stats["starved"] == ["dead"] and not sustained(stats, 30.0)
    # a camera never analysed counts from when it was added
    never = window_stats(good | {"new": []}, {"new": 1.0}, 31.0, 61.0, 30.0)
    assert never["starved"] == ["new"] and never["per_camera"]["new"]["p95"] == pytest.approx(60.0)


def test_no_interval_at_all_is_not_sustained_and_still_printed():
    from benchmarks.sampling_bench import _summary_line

    stats = window_stats({}, {}, 0.0, 10.0, 2.0)
    assert not sustained(stats, 2.0)
    line = _summary_line({"mode": "http_snapshot", "cameras": 0, "interval_p50_s": stats["p50"],
                          "interval_p95_s": stats["p95"], "intervals": 0, "worst_camera_p95_s": None,
                          "starved_cameras": 0, "cpu_percent": 1.0, "camera_side_cpu_percent": 0.0, "rss_mb": 700.0,
                          "sustained": False})
    assert "p95 – (0 intervals" in line and line.endswith("NOT sustained")


# -- the ramp --------------------------------------------------------------------------------------
def _step(n: int, ok: bool, cpu: float = 50.0, rss: float = 600.0, side: float = 10.0, mode: str = "m") -> dict:
    return {"event": "step", "mode": mode, "cameras": n, "sustained": ok, "cpu_percent": cpu, "rss_mb": rss,
            "camera_side_cpu_percent": side, "interval_p95_s": 30.0 if ok else 40.0}


def test_the_ramp_stops_at_the_first_step_not_sustained():
    measured = []

    def measure(n):
        measured.append(n)
        return _step(n, n < 400)

    results = ramp([100, 200, 400, 800], measure, step_seconds=60)
    assert measured == [100, 200, 400] and [r["sustained"] for r in results] == [True, True, False]


def test_the_ramp_stops_before_a_step_that_would_end_past_the_budget():
    now = [0.0]

    def measure(n):
        now[0] += 60
        return _step(n, True)

    results = ramp([100, 200, 400, 800], measure, step_seconds=60, deadline=150, clock=lambda: now[0])
    assert [r.get("cameras") for r in results[:-1]] == [100, 200]
    assert results[-1] == {"event": "budget", "cameras_next": 400}
    assert side_summary(results)["ended"] == "budget" and side_summary(results)["sustained"] == 200
    # a budget shorter than one step still measures the first
    assert [r.get("cameras") for r in ramp([100, 200], measure, 60, deadline=10, clock=lambda: now[0])] == [100, None]


def test_a_child_that_hangs_is_ended_by_its_timeout(monkeypatch, tmp_path):
    """It printed nothing, so a deadline checked between lines was never checked."""
    import subprocess
    import sys
    import time

    from benchmarks import sampling_bench

    real_popen = subprocess.Popen

    def hanging(cmd, **kw):
        return real_popen([sys.executable, "-c", "print('RESULT {\"event\": \"started\"}', flush=True); "
                                                 "import time; time.sleep(60)"], **kw)

    monkeypatch.setattr(sampling_bench, "BENCH_DIR", tmp_path)
    monkeypatch.setattr(sampling_bench.subprocess, "Popen", hanging)
    started = time.monotonic()
    assert sampling_bench._run_child({"mode": "http_snapshot"}, timeout=1.5) == [{"event": "started"}]
    assert time.monotonic() - started < 10


def test_the_time_budget_is_shared_by_weight_and_counted_from_the_start():
    from benchmarks.sampling_bench import side_deadlines

    one = side_deadlines(1000.0, 10, ["http_snapshot"])
    assert one["stream"] == pytest.approx(1000 + 600 * 0.7 / 1.7) and one["http_snapshot"] == pytest.approx(1600)
    two = side_deadlines(0.0, 10, ["http_snapshot", "rtsp_snapshot"])
    assert two["stream"] < two["http_snapshot"] < two["rtsp_snapshot"] == pytest.approx(600)
    assert two["http_snapshot"] == pytest.approx(600 * 1.7 / 2.7)
    assert side_deadlines(0.0, None, ["rtsp_snapshot"]) == {"stream": None, "rtsp_snapshot": None}


# -- the report ------------------------------------------------------------------------------------
def _report(mode: str, stream: list[dict], snap: list[dict], interval: float = 30.0) -> dict:
    return {"modes": [mode], "interval_s": interval, "stream": stream, mode: snap}


def test_the_report_gives_ratios_against_stream_mode_in_the_same_run():
    stream = [_step(32, True, cpu=40, rss=800, side=20), _step(64, True, cpu=80, rss=1440, side=40),
              _step(128, False)]
    snap = [_step(250, True, cpu=25, rss=700, side=5), _step(500, True, cpu=50, rss=900, side=10),
            _step(1000, True, cpu=100, rss=1000, side=20), _step(1400, False)]
    report = _report("http_snapshot", stream, snap)
    lines = conclude(report)
    s, h = report["summary"]["stream"], report["summary"]["http_snapshot"]
    assert (s["sustained"], s["not_sustained"], h["sustained"], h["not_sustained"]) == (64, 128, 1000, 1400)
    assert s["rss_mb_per_added_camera"] == pytest.approx(20.0)  # (1440 - 800) / (64 - 32)
    assert h["rss_mb_per_added_camera"] == pytest.approx(0.4)  # (1000 - 700) / (1000 - 250)
    assert h["rss_mb_per_added_camera_marginal"] == pytest.approx(0.2)  # (1000 - 900) / (1000 - 500)
    assert "rss_mb_per_added_camera_marginal" not in s  # only the first step below the largest
    r = report["ratios"]["http_snapshot"]
    assert r["cameras"] == pytest.approx(1000 / 64) and report["ratio_bound"]["http_snapshot"] == ""
    assert r["cpu_per_camera"] == pytest.approx((100 / 1000) / (80 / 64))
    assert r["cameras_by_box_cpu"] == pytest.approx(12.5)  # 1.25 % per stream camera / 0.1 % per snapshot one
    assert r["camera_side_cpu_per_camera"] == pytest.approx((20 / 1000) / (40 / 64))
    assert r["rss_per_added_camera"] == pytest.approx(0.4 / 20)
    text = "\n".join(lines)
    assert "15.6× the cameras of stream mode" in text and "fits 12.5× the cameras of stream mode" in text
    assert "0.40 MB in http_snapshot (target < 1 MB: met)" in text and "target ≥ 1000 cameras at 30 s: met" in text
    assert "0.20 MB between its two largest sustained steps" in text


def test_a_ramp_that_ran_out_of_steps_only_bounds_the_ratio():
    stream = [_step(32, True), _step(64, False)]
    snap = [_step(250, True, rss=700), _step(500, True, rss=1400)]  # every step sustained
    report = _report("rtsp_snapshot", stream, snap)
    text = "\n".join(conclude(report))
    assert report["ratio_bound"]["rtsp_snapshot"] == "≥ " and "sustains ≥ 15.6×" in text and "≥ 500 (the largest step" in text
    assert "2.80 MB in rtsp_snapshot (target < 1 MB: NOT met)" in text and "target ≥ 500 cameras at 30 s: met" in text
    both_open = _report("rtsp_snapshot", [_step(32, True)], snap)
    assert "neither ramp found its limit" in "\n".join(conclude(both_open))


def test_both_snapshot_modes_are_judged_against_one_stream_side():
    stream = [_step(32, True, cpu=40), _step(64, False)]
    report = {"modes": ["http_snapshot", "rtsp_snapshot"], "interval_s": 30.0, "stream": stream,
              "http_snapshot": [_step(1000, True, cpu=100), _step(2000, False)],
              "rtsp_snapshot": [_step(500, True, cpu=100), _step(1000, False)]}
    text = "\n".join(conclude(report))
    assert report["ratios"]["http_snapshot"]["cameras"] == pytest.approx(1000 / 32)
    assert report["ratios"]["rtsp_snapshot"]["cameras"] == pytest.approx(500 / 32)
    assert "target ≥ 1000 cameras at 30 s: met (1000)" in text and "target ≥ 500 cameras at 30 s: met (500)" in text
    assert set(report["summary"]) == {"stream", "http_snapshot", "rtsp_snapshot"}


def test_the_target_is_only_judged_at_its_interval_and_a_stream_side_with_nothing_sustained_has_no_ratio():
    report = _report("http_snapshot", [_step(2, False)], [_step(4, True), _step(8, False)], interval=2.0)
    text = "\n".join(conclude(report))
    assert report["ratios"]["http_snapshot"]["cameras"] is None
    assert "stream mode sustained no step; http_snapshot 4" in text
    assert "is for 30 s; this run used 2 s" in text and "met" not in text
    failed_at_once = _report("rtsp_snapshot", [_step(32, True)], [_step(500, False)])
    assert "rtsp_snapshot sustained not even its first step (500 cameras)" in "\n".join(conclude(failed_at_once))


# -- the light snapshot server the HTTP side uses ---------------------------------------------------
def test_the_snapshot_server_can_close_every_connection_like_a_thousand_separate_cameras():
    """A box polls each of its cameras every 30 s on a connection of its own; one port serving
    every camera would otherwise let them all share the client's few pooled connections."""
    import httpx

    from streams.snapshot_server import SnapshotServer

    jpeg = b"\xff\xd8" + b"x" * 100 + b"\xff\xd9"
    for keep_alive, header in ((True, None), (False, "close")):
        with SnapshotServer({"c0": [jpeg], "c1": [jpeg]}, keep_alive=keep_alive) as cams, httpx.Client() as client:
            answers = [client.get(cams.url(name)) for name in ("c0", "c1")]
            assert [a.content for a in answers] == [jpeg, jpeg]
            assert [a.headers.get("connection") for a in answers] == [header, header]


def _listen_backlog(port: int) -> int:
    """The accept queue's limit of the socket listening on `port` (`ss` shows it as Send-Q)."""
    import subprocess

    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return int(out.split()[2])


@pytest.mark.integration
def test_the_test_cameras_take_a_burst_of_connections_at_once(tmp_path):
    """Cameras sharing a phase connect together; with the default backlog of 5 the kernel
    dropped SYNs past it and the grabs waited a second for their retry."""
    from streams.camera_server import RtspCameraServer, make_test_clip
    from streams.snapshot_server import SnapshotServer

    with SnapshotServer({"c0": [b"\xff\xd8\xff\xd9"]}) as cams:
        assert _listen_backlog(cams.port) >= 64
    with RtspCameraServer({"cam": make_test_clip(tmp_path / "clip.mp4", seconds=1)}, shared=False) as srv:
        assert _listen_backlog(srv.port) >= 64


@pytest.mark.parametrize("mode, field", [("stream", "url"), ("rtsp_snapshot", "url"), ("http_snapshot", "snapshot_url")])
def test_the_box_under_test_runs_the_mode_named_and_confirms_nothing(mode, field):
    from api.schemas import IssueType
    from benchmarks.sampling_workers import SIDES, edge_config
    from streams.config import DAY, EdgeConfig
    from streams.sampling import camera_interval, camera_mode

    urls = [f"http://127.0.0.1:9/c{i}/snapshot.jpg" if field == "snapshot_url" else f"rtsp://127.0.0.1:9/p{i}"
            for i in range(3)]
    assert SIDES[mode].field == field
    cfg = EdgeConfig.model_validate(edge_config({"model": "models/streetwatch-demo", "mode": mode, "interval": 2.0},
                                                field, urls))
    # at 2 s (a smoke run) an rtsp_snapshot camera would otherwise keep its session: a stream
    assert [camera_mode(cfg, c) for c in cfg.cameras] == [mode] * 3
    assert {camera_interval(cfg, c) for c in cfg.cameras} == {2.0} and cfg.http is None and not cfg.verify_fixes
    assert all(cfg.issue(t).confirm_seconds == DAY for t in IssueType)  # no evidence bursts at a camera's start
