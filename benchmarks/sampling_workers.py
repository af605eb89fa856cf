"""One side of `streetwatch bench edge --mode rtsp_snapshot|http_snapshot`, run in its own child
process (`python -m benchmarks.sampling_workers SPEC.json`) so that its CPU and RSS are its own:
the edge pipeline in one sampling mode, its test cameras in processes of their own, ramped step
by step. Prints one `RESULT {json}` line per step (benchmarks/sampling_bench.py reads them)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

from benchmarks.sampling_bench import BENCH_DIR, ramp, sustained, window_stats
from benchmarks.worker_common import DiscardUploader, cpu_seconds, emit, measure_window, rss_mb, wait_for

MOUNTS = 8  # looping clip phases one camera server plays; every camera is still its own session


# -- the cameras: cheap, and their CPU counted apart ---------------------------------------------
class StreamCameras:
    """Streaming cameras from the light RTSP server (benchmarks/light_rtsp_server.py) in a
    process of its own: 8 mounts of the clip 0.37 s apart, each packetised once and written to
    every camera playing it. Every camera is still its own RTSP session and TCP connection to
    the box. (gst-rtsp-server spent ~0.7 % of a core per streaming camera, as much as the box
    spends reading one at 30 s: the cameras, not the box, would have set the stream side's limit.)"""

    field = "url"

    def __init__(self, clip: str, most: int):
        cmd = [sys.executable, "-m", "benchmarks.light_rtsp_server", "--clip", clip, "--mounts", str(MOUNTS)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = _ready_port(self.proc, "the light RTSP server")

    def grow(self, n: int) -> list[str]:
        return [f"rtsp://127.0.0.1:{self.port}/p{i % MOUNTS}" for i in range(n)]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        _close(self.proc)


class RtspSnapshotCameras:
    """One gst-rtsp-server, a media per client (grabs come and go; a shared media being torn
    down would answer a new grab 503), 8 mounts 0.37 s apart in the clip so keyframes are not in
    step: a grab costs the server about 4 ms of CPU, a fifth of what it costs the box."""

    field = "url"

    def __init__(self, clip: str, most: int):
        from streams.camera_server import RtspCameraServer

        self.server = RtspCameraServer({f"p{j}": clip for j in range(MOUNTS)}, shared=False, stagger_s=0.37,
                                       start_timeout_s=120).start()

    def grow(self, n: int) -> list[str]:
        return [self.server.url(f"p{i % MOUNTS}") for i in range(n)]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.server.proc.pid)

    def stop(self) -> None:
        self.server.stop()


class HttpSnapshotCameras:
    """The light snapshot server (streams/snapshot_server.py) in a process of its own, serving
    the clip's frames as JPEGs encoded once, a new connection per grab."""

    field = "snapshot_url"

    def __init__(self, clip: str, most: int):
        jpegs = _clip_jpegs(clip)
        cmd = [sys.executable, "-m", "streams.snapshot_server", "--cameras", str(most), "--close"]
        for path in jpegs:
            cmd += ["--jpeg", str(path)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.port = _ready_port(self.proc, "the snapshot server")

    def grow(self, n: int) -> list[str]:
        return [f"http://127.0.0.1:{self.port}/c{i}/snapshot.jpg" for i in range(n)]

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        _close(self.proc)


def _ready_port(proc: subprocess.Popen, what: str) -> int:
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        raise RuntimeError(f"{what} did not start: {line!r}")
    return int(line.split()[1])


def _close(proc: subprocess.Popen) -> None:
    proc.stdin.close()  # a camera server exits when its stdin closes
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _clip_jpegs(clip: str) -> list[Path]:
    """The clip's frames, one per second, as JPEG files (encoded once and kept)."""
    folder = BENCH_DIR / f"{Path(clip).stem}-jpegs"
    if not folder.is_dir() or not any(folder.glob("*.jpg")):
        from streams.snapshot_server import jpegs_of_clip

        folder.mkdir(parents=True, exist_ok=True)
        for i, jpeg in enumerate(jpegs_of_clip(clip, every_s=1.0)):
            (folder / f"{i:03d}.jpg").write_bytes(jpeg)
    return sorted(folder.glob("*.jpg"))


SIDES = {"stream": StreamCameras, "rtsp_snapshot": RtspSnapshotCameras, "http_snapshot": HttpSnapshotCameras}


def edge_config(spec: dict, field: str, urls: list[str]) -> dict:
    """The box under test: the named mode at the interval, no event ever confirmed (the clip's
    issues would otherwise confirm ~3 events per new camera, each blurred and rendered: a burst
    at a camera's start, not the steady cost measured here), so both sides do the same work
    per analysed frame: detection, zones, region memory."""
    from api.schemas import IssueType
    from streams.config import DAY

    return {"model": spec["model"], "detector": spec.get("detector", "onnxruntime"), "mode": spec["mode"],
            "sample_interval_s": spec["interval"], "http": None, "verify_fixes": False,
            "open_timeout_s": 5, "read_timeout_s": 3, "stall_timeout_s": 6,
            "backoff_initial_s": 0.5, "backoff_max_s": 4,
            # the mode named is the mode measured, also at the short intervals of a smoke run
            "snapshot": {"keep_session_below_s": 0},
            "issues": {t.value: {"confirm_seconds": DAY} for t in IssueType},
            "cameras": [{"name": f"cam{i:04d}", field: url} for i, url in enumerate(urls)]}


def run_worker(spec: dict) -> None:
    from streams.config import CameraConfig, EdgeConfig
    from streams.pipeline import EdgePipeline

    mode, interval, steps = spec["mode"], spec["interval"], spec["steps"]
    cams = SIDES[mode](spec["clip"], max(steps))
    edge = None
    try:
        config = EdgeConfig.model_validate(edge_config(spec, cams.field, cams.grow(steps[0])))
        edge = EdgePipeline(config, uploader=DiscardUploader())
        edge.start()
        added_at = dict.fromkeys(edge.cameras, time.monotonic())
        # a snapshot camera's first grab lies within its first interval; a stream camera's first
        # analysed frame waits for its connection and a keyframe
        first_wait = interval + 30 if mode != "stream" else 60 + interval

        def measure(n: int) -> dict:
            urls = cams.grow(n)
            for i in range(len(edge.cameras), n):
                edge.add_camera(CameraConfig(name=f"cam{i:04d}", **{cams.field: urls[i]}))
                added_at[f"cam{i:04d}"] = time.monotonic()
            wait_for(lambda: all(s.analysed_at for s in edge.cameras.values()), first_wait, poll_s=0.2)
            time.sleep(spec["warmup"])
            sched = edge.snapshots.scheduler if edge.snapshots is not None else None
            if sched is not None:  # the window's own peak, holds and failures, not the ramp's so far
                sched.most_in_flight, held0, failed0 = 0, sched.held_for_queue, _grab_failures(edge)
            window = measure_window(spec["seconds"], cams.cpu_seconds)
            times = {name: list(s.analysed_at) for name, s in edge.cameras.items()}
            stats = window_stats(times, added_at, window.start, window.end, interval)
            result = {"event": "step", "mode": mode, "cameras": n, "interval_s": interval,
                      "interval_p50_s": stats["p50"], "interval_p95_s": stats["p95"], "intervals": stats["intervals"],
                      "worst_camera_p95_s": stats["worst_camera_p95"], "starved_cameras": len(stats["starved"]),
                      "starved": stats["starved"][:20], "cpu_percent": round(window.cpu_percent, 1),
                      "camera_side_cpu_percent": round(window.cameras_cpu_percent, 1), "rss_mb": round(rss_mb(), 1),
                      "sustained": sustained(stats, interval)}
            if sched is not None:
                result["grab_failures"] = _grab_failures(edge) - failed0
                result["most_in_flight"] = sched.most_in_flight
                result["held_for_queue"] = sched.held_for_queue - held0  # dispatch rounds held by a full queue
            emit(result)
            return result

        results = ramp(steps, measure, spec["step_seconds"], spec.get("deadline"))
        if results and results[-1].get("event") == "budget":
            emit(results[-1])
    except Exception:  # the parent sees the steps so far; the reason goes to stderr
        traceback.print_exc()
    finally:
        logging.getLogger("streetwatch").setLevel(logging.CRITICAL)  # the cameras go before the box: no news
        cams.stop()
        os._exit(0)  # the camera threads are daemons; no need to wait for each to wind down


def _grab_failures(edge) -> int:
    return sum(sum(c.get("grab_failures", {}).values()) for c in edge.health()["cameras"].values())


if __name__ == "__main__":  # python -m benchmarks.sampling_workers SPEC.json
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_worker(json.loads(Path(sys.argv[1]).read_text()))
