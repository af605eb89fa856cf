"""`streetwatch bench edge --mode rtsp_snapshot|http_snapshot --interval 30`: how many cameras one
box analyses once per interval in a snapshot mode, against `stream` mode at the same interval,
in the same run on the same machine (`--mode http_snapshot,rtsp_snapshot`: both modes against
one stream side).

Each side runs in its own child process (benchmarks/sampling_workers.py, so CPU and RSS are its
own): first `stream` (every camera's RTSP stream held open, keyframes decoded), then each
snapshot mode. Each ramps its cameras step by step. At a step, once every camera has been
analysed once (and a short warm-up), every analysed frame is recorded for `seconds`. The step
is **sustained** while the p95 of the intervals between a camera's analysed frames, pooled
over cameras, is at most 1.2 × the interval and no camera starves (nothing analysed for 2 ×
the interval). The ramp stops at the first step that is not, at its largest step, or when
the time budget would end inside the next step.

The test cameras must not dominate the measurement, so they are cheap and run in processes of
their own whose CPU is reported apart: `http_snapshot` cameras are one light HTTP server of
pre-encoded JPEGs (streams/snapshot_server.py, a new connection per grab as from a box polling
a thousand different cameras); `rtsp_snapshot` cameras share the 8 looping mounts of one
gst-rtsp-server with a media per client (about 4 ms of the server's CPU per grab); `stream`
cameras are 8 mounts of the light RTSP server (benchmarks/light_rtsp_server.py), each
packetised once and written to every camera playing it.

Figures are printed as ratios against the stream side and saved under var/bench/; the pure
arithmetic here (window statistics, the stop rule, the conclusion) is unit-tested.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path("var/bench")
P95_FACTOR = 1.2  # a step is sustained while the pooled p95 interval is at most this × the interval
STARVED_FACTOR = 2.0  # a camera with nothing analysed for this × the interval has starved
SNAPSHOT_STEPS = (50, 100, 200, 400, 700, 1000, 1400, 2000, 2800, 4000)
STREAM_STEPS = (8, 16, 32, 64, 96, 128, 192, 256, 384, 512)
# The targets at one analysed frame per 30 s on the 2-core box, with the 320 px model.
TARGET_INTERVAL_S = 30.0
TARGET_CAMERAS = {"http_snapshot": 1000, "rtsp_snapshot": 500}
TARGET_MB_PER_CAMERA = 1.0


def ramp_steps(defaults: Iterable[int], most: int) -> list[int]:
    """The default steps up to `most`, ending at `most` itself."""
    steps = [n for n in defaults if n < most]
    return steps + [most]


def window_stats(times: dict[str, list[float]], added_at: dict[str, float], start: float, end: float,
                 interval: float) -> dict:
    """The intervals between each camera's analysed frames that end inside [start, end] (the
    one that began before the window counts: a window of one interval still sees one per
    camera), plus the gap still open at `end` when it is already over the limit (a camera
    that is late now would otherwise hide). A camera never analysed counts from when it was
    added. A camera with nothing analysed in the last STARVED_FACTOR intervals has starved."""
    limit = P95_FACTOR * interval
    pooled: list[float] = []
    per_camera: dict[str, dict] = {}
    starved = []
    for name, stamps in times.items():
        seen = sorted(t for t in stamps if t <= end)
        gaps = [b - a for a, b in zip(seen, seen[1:]) if b >= start]
        last = seen[-1] if seen else added_at.get(name, start)
        if end - last > limit:
            gaps.append(end - last)
        if not seen or end - last >= STARVED_FACTOR * interval:
            starved.append(name)
        per_camera[name] = {"n": sum(1 for t in seen if t >= start),
                            "p95": float(np.percentile(gaps, 95)) if gaps else None}
        pooled += gaps
    return {"p50": float(np.median(pooled)) if pooled else None,
            "p95": float(np.percentile(pooled, 95)) if pooled else None,
            "intervals": len(pooled), "starved": sorted(starved),
            "worst_camera_p95": max((c["p95"] for c in per_camera.values() if c["p95"] is not None), default=None),
            "per_camera": per_camera}


def sustained(stats: dict, interval: float) -> bool:
    """The stop rule: sustained while p95 ≤ 1.2 × interval and no camera starved."""
    return stats["p95"] is not None and stats["p95"] <= P95_FACTOR * interval + 1e-9 and not stats["starved"]


def ramp(steps: list[int], measure: Callable[[int], dict], step_seconds: float, deadline: float | None = None,
         clock: Callable[[], float] = time.time) -> list[dict]:
    """Measure each step in turn until one is not sustained, or until the next would end past
    `deadline` (then a `budget` entry says where the ramp stopped; the first step always runs).
    `measure(n)` runs the step with n cameras and returns its result (with `sustained`)."""
    results: list[dict] = []
    for n in steps:
        if results and deadline is not None and clock() + step_seconds > deadline:
            results.append({"event": "budget", "cameras_next": n})
            break
        result = measure(n)
        results.append(result)
        if not result["sustained"]:
            break
    return results


def step_seconds(mode: str, interval: float, warmup: float, seconds: float) -> float:
    """About how long one step takes: the new cameras' first frames (a snapshot camera's first
    grab lies somewhere in its first interval; a stream camera waits for its first keyframe
    and sample), the warm-up and the window."""
    first = interval + 10 if mode != "stream" else min(interval, 10) + 15
    return first + warmup + seconds


# -- the conclusion ------------------------------------------------------------------------------
def _largest(results: list[dict]) -> dict | None:
    ok = [r for r in results if r.get("event") == "step" and r["sustained"]]
    return max(ok, key=lambda r: r["cameras"]) if ok else None


def side_summary(results: list[dict]) -> dict:
    """One side's figures: cameras sustained, why the ramp ended, CPU per camera (the box's and
    the cameras' own), and RSS per added camera: the slope from the first step to the largest
    sustained one, within the side's one process (it also holds what grows with the load rather
    than with the cameras: grab threads, their allocator arenas, the model's larger batches), and
    the marginal slope between the two largest sustained steps."""
    steps = [r for r in results if r.get("event") == "step"]
    top = _largest(results)
    out: dict = {"sustained": top["cameras"] if top else 0, "steps": len(steps)}
    failed = [r for r in steps if not r["sustained"]]
    if failed:
        out["ended"], out["not_sustained"] = "limit", failed[0]["cameras"]
    elif any(r.get("event") == "budget" for r in results):
        out["ended"] = "budget"
    else:
        out["ended"] = "largest step"
    if top:
        n = top["cameras"]
        out["cpu_percent"] = top["cpu_percent"]
        out["cpu_percent_per_camera"] = top["cpu_percent"] / n
        out["camera_side_cpu_percent"] = top["camera_side_cpu_percent"]
        out["camera_side_cpu_percent_per_camera"] = top["camera_side_cpu_percent"] / n
        out["rss_mb"] = top["rss_mb"]
        first = steps[0]
        if n > first["cameras"]:
            out["rss_mb_per_added_camera"] = (top["rss_mb"] - first["rss_mb"]) / (n - first["cameras"])
        below = [r for r in steps if r["sustained"] and r["cameras"] < n]
        if len(below) >= 2:  # (with only the first below, the marginal slope is the one above)
            prev = max(below, key=lambda r: r["cameras"])
            out["rss_mb_per_added_camera_marginal"] = (top["rss_mb"] - prev["rss_mb"]) / (n - prev["cameras"])
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0 or (isinstance(a, float) and math.isnan(a)):
        return None
    return a / b


def conclude(report: dict) -> list[str]:
    """The headline figures of each snapshot mode, every one a ratio against the stream side of
    the same run; stored in `report` (summary, ratios, ratio_bound) and returned as lines."""
    report["summary"] = {"stream": side_summary(report.get("stream", []))}
    report["ratios"], report["ratio_bound"] = {}, {}
    lines: list[str] = []
    for i, mode in enumerate(report["modes"]):
        lines += _conclude_mode(report, mode, with_stream=i == 0)
    return lines


def _conclude_mode(report: dict, mode: str, with_stream: bool = True) -> list[str]:
    interval, stream = report["interval_s"], report["summary"]["stream"]
    snap = report["summary"][mode] = side_summary(report.get(mode, []))
    ratios = {
        "cameras": _ratio(snap["sustained"], stream["sustained"]),
        "cpu_per_camera": _ratio(snap.get("cpu_percent_per_camera"), stream.get("cpu_percent_per_camera")),
        "camera_side_cpu_per_camera": _ratio(snap.get("camera_side_cpu_percent_per_camera"),
                                             stream.get("camera_side_cpu_percent_per_camera")),
        "rss_per_added_camera": _ratio(snap.get("rss_mb_per_added_camera"), stream.get("rss_mb_per_added_camera")),
    }
    report["ratios"][mode] = ratios

    def at_least(side: dict) -> str:
        how = {"limit": f"{side.get('not_sustained')} not", "budget": "the time budget ended the ramp",
               "largest step": "the largest step: more may be sustained"}[side["ended"]]
        return f"{'' if side['ended'] == 'limit' else '≥ '}{side['sustained']} ({how})"

    lines = [f"at one analysed frame per {interval:g} s: stream {at_least(stream)}, {mode} {at_least(snap)}"]
    # The ratio is exact only where both ramps found their limit; a ramp that ran out of steps
    # or time only gives a bound on its side.
    bound = {(True, True): "", (False, True): "≥ ", (True, False): "≤ "}.get(
        (snap["ended"] == "limit", stream["ended"] == "limit"))
    report["ratio_bound"][mode] = bound
    if snap["sustained"] == 0:
        first = next((r["cameras"] for r in report.get(mode, []) if r.get("event") == "step"), None)
        lines.append(f"ratio: none: {mode} sustained not even its first step"
                     + (f" ({first} cameras): give smaller steps" if first else " (no step was measured)"))
    elif ratios["cameras"] is not None and bound is None:
        lines.append(f"ratio: neither ramp found its limit ({mode} {snap['sustained']}, stream {stream['sustained']} "
                     "sustained): give larger steps")
    elif ratios["cameras"] is not None:
        lines.append(f"ratio: {mode} sustains {bound}{ratios['cameras']:.1f}× the cameras of stream mode")
    elif snap["sustained"]:
        lines.append(f"ratio: stream mode sustained no step; {mode} {snap['sustained']}")
    if ratios["cpu_per_camera"]:
        # The cameras share the box's cores here (a stream camera's server costs about as much as
        # the box reading it): by the box's own CPU per camera alone, the ratio of cameras is this.
        ratios["cameras_by_box_cpu"] = 1 / ratios["cpu_per_camera"]
        lines.append(f"by the box's own CPU per camera (the cameras' CPU left out): {mode} fits "
                     f"{ratios['cameras_by_box_cpu']:.1f}× the cameras of stream mode")
    for label, key in (("box CPU per camera", "cpu_per_camera"), ("camera side CPU per camera",
                                                                  "camera_side_cpu_per_camera")):
        if ratios[key] is not None:
            lines.append(f"{label}: {ratios[key]:.2f}× stream mode's")
    for name, side in ((("stream", stream),) if with_stream else ()) + ((mode, snap),):
        if "cpu_percent" in side:
            per = side.get("rss_mb_per_added_camera")
            lines.append(f"  {name}: at {side['sustained']} cameras the box used {side['cpu_percent']:.0f} % of a core "
                         f"({side['cpu_percent_per_camera']:.2f} % per camera), the cameras "
                         f"{side['camera_side_cpu_percent']:.0f} % apart; RSS {side['rss_mb']:.0f} MB"
                         + (f", {per:.2f} MB per added camera" if per is not None else ""))
    per = snap.get("rss_mb_per_added_camera")
    if per is not None:
        marginal = snap.get("rss_mb_per_added_camera_marginal")
        lines.append(f"memory per added camera: {per:.2f} MB in {mode} (target < {TARGET_MB_PER_CAMERA:g} MB: "
                     f"{'met' if per < TARGET_MB_PER_CAMERA else 'NOT met'})"
                     + (f", {ratios['rss_per_added_camera']:.2f}× stream mode's" if ratios["rss_per_added_camera"]
                        is not None else "")
                     + (f"; {marginal:.2f} MB between its two largest sustained steps" if marginal is not None
                        else ""))
    target = TARGET_CAMERAS.get(mode)
    if target is not None:
        if interval == TARGET_INTERVAL_S:
            lines.append(f"target ≥ {target} cameras at {TARGET_INTERVAL_S:g} s: "
                         f"{'met' if snap['sustained'] >= target else 'NOT met'} ({snap['sustained']})")
        else:
            lines.append(f"(the target, ≥ {target} cameras, is for {TARGET_INTERVAL_S:g} s; this run used {interval:g} s)")
    return lines


# -- the parent ----------------------------------------------------------------------------------
STREAM_WEIGHT = 0.7  # of the time budget, against 1 per snapshot mode


def side_deadlines(started: float, max_minutes: float | None, modes: list[str]) -> dict[str, float | None]:
    """When each side's ramp must end: the budget shared by weight, the stream side first (its
    steps are shorter: no first grabs spread over an interval to wait for); a side that ends
    early leaves its time to the next, whose deadline is counted from the start."""
    weights = [("stream", STREAM_WEIGHT)] + [(mode, 1.0) for mode in modes]
    total, done, out = sum(w for _, w in weights), 0.0, {}
    for side, weight in weights:
        done += weight
        out[side] = started + max_minutes * 60 * done / total if max_minutes else None
    return out


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} s"


def _summary_line(r: dict) -> str:
    return (f"{r['mode']:13s} {r['cameras']:5d} cameras: interval p50 {_s(r['interval_p50_s'])} "
            f"p95 {_s(r['interval_p95_s'])} ({r['intervals']} intervals, worst camera {_s(r['worst_camera_p95_s'])}, "
            f"{r['starved_cameras']} starved), CPU {r['cpu_percent']:.0f} % (cameras {r['camera_side_cpu_percent']:.0f} %), "
            f"RSS {r['rss_mb']:.0f} MB"
            + (f", {r['grab_failures']} failed grabs, at most {r['most_in_flight']} at once"
               if r.get("grab_failures") is not None else "")
            + (f", grabs held back {r['held_for_queue']} times by a full inference queue"
               if r.get("held_for_queue") else "")
            + f" → {'sustained' if r['sustained'] else 'NOT sustained'}")


def _run_child(spec: dict, timeout: float) -> list[dict]:
    spec_path = BENCH_DIR / f"spec-sampling-{spec['mode']}.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "benchmarks.sampling_workers", str(spec_path)]
    results: list[dict] = []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    # a child that hangs prints nothing: the timer ends it, and with it the loop below
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
                results.append(result)
                if result.get("event") == "step":
                    print("  " + _summary_line(result), flush=True)
                elif result.get("event") == "budget":
                    print(f"  {spec['mode']}: the time budget ends before a step of {result['cameras_next']} "
                          "cameras would", flush=True)
    finally:
        killer.cancel()
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
    return results


def bench_sampling(modes: list[str], interval: float, cameras: int, stream_cameras: int, seconds: float, warmup: float,
                   detector: str = "onnxruntime", model: Path | None = None, steps: list[int] | None = None,
                   stream_steps: list[int] | None = None, max_minutes: float | None = None,
                   out: Path | None = None) -> dict:
    from benchmarks.edge_bench import _machine, prepare_clip
    from vision.manifest import load_manifest

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    clip = prepare_clip()
    manifest = load_manifest(model or ROOT / "models" / "streetwatch-demo")
    snap_steps = steps or ramp_steps(SNAPSHOT_STEPS, cameras)
    base_steps = stream_steps or ramp_steps(STREAM_STEPS, stream_cameras)
    report: dict = {"modes": modes, "interval_s": interval, "seconds": seconds, "warmup": warmup,
                    "machine": _machine(), "detector": detector,
                    "model": f"{manifest.name} v{manifest.version} at {manifest.imgsz} px",
                    "steps": {"stream": base_steps, **dict.fromkeys(modes, snap_steps)}, "max_minutes": max_minutes}
    print(f"bench edge: {' and '.join(modes)} against stream, one analysed frame per {interval:g} s; sustained = p95 interval "
          f"≤ {P95_FACTOR:g} × {interval:g} s and no camera starved (nothing for {STARVED_FACTOR:g} intervals); "
          f"{seconds:g} s measured per step; {report['model']}", flush=True)
    started = time.time()
    common = {"interval": interval, "seconds": seconds, "warmup": warmup, "clip": str(clip.resolve()),
              "model": str(manifest.path), "detector": detector}
    deadlines = side_deadlines(started, max_minutes, modes)
    for side, side_steps in [("stream", base_steps)] + [(mode, snap_steps) for mode in modes]:
        deadline = deadlines[side]
        per_step = step_seconds(side, interval, warmup, seconds)
        # a step that began in time may overrun its estimate; a minute's grace, then the child goes
        timeout = (deadline - time.time() + 60) if deadline else len(side_steps) * (per_step + 120) + 300
        report[side] = _run_child({**common, "mode": side, "steps": side_steps, "deadline": deadline,
                                   "step_seconds": per_step}, timeout)
    lines = conclude(report)
    print("\n".join(lines), flush=True)
    report["conclusion"] = lines
    path = out or BENCH_DIR / f"edge-{'+'.join(modes)}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return report
