"""`streetwatch bench edge`: how many 720p cameras one box analyses every 2 s, against the
plain ultralytics loop (one `YOLO.predict(source=rtsp, stream=True, vid_stride=k)` per camera).

Both sides run in their own child process (benchmarks/edge_workers.py, so CPU and RSS are
theirs alone) against looping 720p H.264 cameras served by gst-rtsp-server on 127.0.0.1, and
ramp the number of cameras step by step. At each step, after a warm-up, they record every
analysed frame for `seconds`; a step is sustained when the p95 of all analysis intervals
(pooled over cameras) stays under 2.5 s and no camera is starved. The ramp stops at the first
step that is not; then the gap between the largest sustained step and that one is bisected,
each probe a fresh child with that many cameras, down to 4 cameras for the edge and 1 for
the naive loop (the ramp's steps alone put ±8 on the ratio's numerator). Then the edge alone goes through a fault drill: one extra camera killed,
one frozen with its connection open, both brought back, while 48 cameras keep running.

Figures are printed and saved as JSON under var/bench/; benchmarks/README.md has a run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path("var/bench")
TARGET_INTERVAL_S = 2.0
SUSTAINED_P95_S = 2.5
EDGE_STEPS = (16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 192, 224, 256)
NAIVE_STEPS = (2, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96)
# The bisection stops once the sustained and the failed counts are this close.
EDGE_RESOLUTION, NAIVE_RESOLUTION = 4, 1
# A street camera's usual stream: 25 fps, an I-frame every 50 frames (2 s), no B-frames.
CLIP_FPS, CLIP_GOP_S = 25, 2
FIRST_FRAME_WAIT_S = 60  # a camera not analysed once by then counts as not served


def prepare_clip(folder: Path = BENCH_DIR) -> Path:
    """A 20 s 1280×720 street clip at 25 fps, a keyframe every 2 s, no B-frames (like an IP
    camera's stream), ~2 Mbit/s; rendered once and kept."""
    out = folder / f"street-720p-{CLIP_FPS}fps.mp4"
    if out.exists():
        return out
    from datasets.synth.clip import render_clip

    folder.mkdir(parents=True, exist_ok=True)
    raw = render_clip(folder / f"street-720p-{CLIP_FPS}fps-raw.mp4", seconds=20, fps=CLIP_FPS, width=1280, height=720)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(raw), "-c:v", "libx264", "-preset", "veryfast",
           "-profile:v", "main", "-bf", "0", "-g", str(CLIP_FPS * CLIP_GOP_S), "-b:v", "2M", "-maxrate", "2M",
           "-bufsize", "4M", "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(out)]
    subprocess.run(cmd, check=True)
    return out


def interval_stats(times_per_camera: dict[str, list[float]], start: float, end: float) -> dict:
    """Analysis intervals inside [start, end] for each camera; a camera analysed fewer than
    twice counts as one interval as long as the window (it was not served)."""
    per_camera, pooled = {}, []
    for name, times in times_per_camera.items():
        inside = [t for t in times if start <= t <= end]
        gaps = list(np.diff(inside)) if len(inside) > 1 else [end - start]
        if inside and inside[0] - start > TARGET_INTERVAL_S:
            gaps.append(inside[0] - start)  # a camera left waiting at the window's start counts too
        per_camera[name] = {"median": float(np.median(gaps)), "p95": float(np.percentile(gaps, 95)), "n": len(inside)}
        pooled += gaps
    return {
        "starved": sorted(n for n, c in per_camera.items() if c["median"] >= SUSTAINED_P95_S),
        "p50": float(np.median(pooled)) if pooled else None,
        "p95": float(np.percentile(pooled, 95)) if pooled else None,
        "worst_camera_p95": max((c["p95"] for c in per_camera.values()), default=None),
        "per_camera": per_camera,
    }


def _summary(kind: str, r: dict) -> str:
    lat = f", latency p50 {r['latency_p50_s'] * 1000:.0f} ms p95 {r['latency_p95_s'] * 1000:.0f} ms" \
        if r.get("latency_p50_s") is not None else ""
    return (f"{kind:6s} {r['cameras']:4d} cameras: interval p50 {r['interval_p50_s']:.2f} s p95 {r['interval_p95_s']:.2f} s "
            f"(worst camera {r['worst_camera_p95_s']:.2f} s, {r['starved_cameras']} starved){lat}, "
            f"CPU {r['cpu_percent']:.0f} % (camera server {r.get('camera_server_cpu_percent', 0):.0f} %), "
            f"RSS {r['rss_mb']:.0f} MB "
            + (f"({r['evidence_backlog_at_start']} events still to render at the start) "
               if r.get("evidence_backlog_at_start") else "")
            + f"→ {'sustained' if r['sustained'] else 'NOT sustained'}")


# -- parent -------------------------------------------------------------------------------------------
def _run_child(kind: str, spec: dict, timeout: float) -> list[dict]:
    spec_path = BENCH_DIR / f"spec-{kind}.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "benchmarks.edge_workers", kind, str(spec_path)]
    results: list[dict] = []
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=sys.stderr, text=True)
    deadline = time.monotonic() + timeout
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
            results.append(result)
            if result.get("event") == "step":
                result["probe"] = bool(spec.get("probe"))
                print(("  probe " if result["probe"] else "  ") + _summary(kind, result), flush=True)
            elif result.get("event") == "faults":
                print(f"  faults: {json.dumps({k: v for k, v in result.items() if k not in ('kind', 'event')})}",
                      flush=True)
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(30)
    return results


def bench_edge(cameras: int = 64, seconds: float = 20, warmup: float = 8, naive: bool = True, faults: bool = True,
               detector: str = "onnxruntime", out: Path | None = None, model: Path | None = None) -> dict:
    from vision.manifest import load_manifest

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    clip = prepare_clip()
    manifest = load_manifest(model or ROOT / "models" / "streetwatch-demo")
    report: dict = {"cameras_max": cameras, "seconds": seconds, "warmup": warmup,
                    "clip": f"1280x720 H.264 Main, {CLIP_FPS} fps, keyframe every {CLIP_GOP_S} s, no B-frames, 2 Mbit/s",
                    "machine": _machine(), "detector": detector, "target_interval_s": TARGET_INTERVAL_S,
                    "model": f"{manifest.name} v{manifest.version} at {manifest.imgsz} px"}
    print(f"bench edge: up to {cameras} looping 720p cameras on 127.0.0.1, {seconds:g} s per step, "
          f"sustained = p95 analysis interval < {SUSTAINED_P95_S} s and no camera starved, "
          f"one frame per {TARGET_INTERVAL_S:g} s", flush=True)
    common = {"max_cameras": cameras, "seconds": seconds, "clip": str(clip.resolve())}
    per_step = seconds + warmup + FIRST_FRAME_WAIT_S + 10
    budget = (len(EDGE_STEPS) + 4) * per_step + 1200
    edge_spec = {**common, "warmup": warmup, "model": str(manifest.path), "detector": detector,
                 "steps": EDGE_STEPS, "faults": faults, "fault_seconds": 10}
    report["edge"] = _run_child("edge", edge_spec, budget)
    # (a probe may wait 150 s + 8 s per camera for its evidence burst: edge_workers.py)
    _bisect("edge", edge_spec, report["edge"], EDGE_RESOLUTION, 5 * per_step + 800)
    if naive:
        # no events to wait out on this side: a short settle after every loop has produced is enough
        naive_spec = {**common, "warmup": min(warmup, 8), "weights": str(manifest.weights_path),
                      "imgsz": manifest.imgsz, "steps": NAIVE_STEPS}
        report["naive"] = _run_child("naive", naive_spec, budget)
        _bisect("naive", naive_spec, report["naive"], NAIVE_RESOLUTION, 5 * per_step + 120)
    _conclude(report)
    path = out or BENCH_DIR / f"edge-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1))
    print(f"wrote {path}")
    return report


def _bisect(kind: str, spec: dict, results: list[dict], resolution: int, budget: float) -> None:
    """Narrow the gap between the ramp's largest sustained step and the first failed one.
    Each probe is a fresh child that starts with its cameras at once (no fault drill); its
    results are appended to `results`, marked `probe`."""
    steps = [r for r in results if r.get("event") == "step"]
    ok = max((r["cameras"] for r in steps if r["sustained"]), default=None)
    failed = min((r["cameras"] for r in steps if not r["sustained"] and (ok is None or r["cameras"] > ok)), default=None)
    while ok is not None and failed is not None and failed - ok > resolution:
        probe = (ok + failed) // 2
        print(f"bench edge: {kind} sustained {ok}, not {failed}: probing {probe} cameras", flush=True)
        found = _run_child(kind, {**spec, "steps": [probe], "faults": False, "probe": True}, budget)
        results += found
        step = next((r for r in found if r.get("event") == "step"), None)
        if step is not None and step["sustained"]:
            ok = probe
        else:
            failed = probe  # a probe that did not even report counts as not sustained


def _largest(steps: list[dict]) -> dict | None:
    ok = [r for r in steps if r.get("event") == "step" and r["sustained"]]
    return max(ok, key=lambda r: r["cameras"]) if ok else None


def _conclude(report: dict) -> None:
    edge, naive = _largest(report.get("edge", [])), _largest(report.get("naive", []))
    steps = [r for r in report.get("edge", []) if r.get("event") == "step"]
    ramp = [r for r in steps if not r.get("probe")]
    lines = []
    if edge:
        report["edge_sustained"] = edge["cameras"]
        lines.append(f"edge: {edge['cameras']} cameras sustained (CPU {edge['cpu_percent']:.0f} % of one core, "
                     f"camera server {edge.get('camera_server_cpu_percent', 0):.0f} %)")
        # RSS growth per added camera: the slope from the ramp's first step to its largest
        # sustained one, within one process (a probe is a fresh process)
        first, top = ramp[0], _largest(ramp)
        if top and top["cameras"] > first["cameras"]:
            per_cam = (top["rss_mb"] - first["rss_mb"]) / (top["cameras"] - first["cameras"])
            report["edge_rss_mb_per_added_camera"] = round(per_cam, 1)
            lines.append(f"edge: RSS {first['rss_mb']:.0f} MB at {first['cameras']} cameras → {top['rss_mb']:.0f} MB at "
                         f"{top['cameras']}, {per_cam:.1f} MB per added camera")
    else:
        lines.append("edge: not even the first step was sustained")
    failed = [r for r in steps if not r["sustained"] and (not edge or r["cameras"] > edge["cameras"])]
    if failed:
        worst = min(failed, key=lambda r: r["cameras"])
        lines.append(f"edge: {worst['cameras']} cameras not sustained (p95 {worst['interval_p95_s']:.2f} s)")
    elif steps:
        lines.append(f"edge: every step sustained; the ramp stopped at the {steps[-1]['cameras']} cameras served")
    if "naive" in report:
        report["naive_sustained"] = naive["cameras"] if naive else 0
        lines.append(f"naive ultralytics loop: {report['naive_sustained']} cameras sustained")
        if edge and naive:
            report["ratio"] = round(edge["cameras"] / naive["cameras"], 2)
            lines.append(f"ratio: {report['ratio']:.1f}× the cameras of the naive loop (target ≥ 4×)")
    print("\n".join(lines), flush=True)


def _machine() -> dict:
    import platform

    import psutil

    model = ""
    try:
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
            "load_at_start": [round(v, 2) for v in os.getloadavg()]}


