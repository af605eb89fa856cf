"""What receiving a camera costs: FFmpeg's RTSP demuxer against Streetwatch's own client.

    python -m benchmarks.rtsp_receive --cameras 8 --seconds 20

Both readers run exactly as the edge runs them: `planned_frames` with a one-frame-per-2-s
plan, so each decodes one keyframe per 2 s and skips the rest. N cameras (the benchmark
clip, 720p25, 2 Mbit/s) are read by N threads of this process, first with one reader, then
with the other, against the same gst-rtsp-server; the figure is this process's CPU per
camera, which is receiving + keyframe decoding + the plan. The servers' CPU is printed apart.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import psutil
from tqdm import tqdm

from benchmarks.edge_bench import prepare_clip
from benchmarks.edge_workers import Cameras
from streams.decode_plan import DecodePlan
from streams.rtsp import RtspReader, StreamError
from streams.rtsp_native import NativeRtspReader


def _reader(kind: str, url: str) -> RtspReader | NativeRtspReader:
    if kind == "native":
        return NativeRtspReader(url, open_timeout_s=10, read_timeout_s=5)
    return RtspReader(url, open_timeout_s=10, read_timeout_s=5, single_thread=True)


def measure(kind: str, urls: list[str], seconds: float, warmup: float, servers: list[psutil.Process]) -> dict:
    stop, frames, errors = threading.Event(), [0] * len(urls), []

    def run(i: int) -> None:
        reader = _reader(kind, urls[i])
        try:
            for _ in reader.planned_frames(DecodePlan(2.0)):
                frames[i] += 1
                if stop.is_set():
                    break
        except StreamError as exc:
            errors.append(str(exc))
        finally:
            reader.close()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(urls))]
    for t in threads:
        t.start()
    time.sleep(warmup)
    me = psutil.Process()
    cpu0, srv0, got0, t0 = sum(me.cpu_times()[:2]), sum(sum(s.cpu_times()[:2]) for s in servers), sum(frames), time.monotonic()
    for _ in tqdm(range(int(seconds)), desc=f"{kind:>6} x{len(urls)}", unit="s", leave=False):
        time.sleep(1)
    cpu1, srv1, got1, t1 = sum(me.cpu_times()[:2]), sum(sum(s.cpu_times()[:2]) for s in servers), sum(frames), time.monotonic()
    stop.set()
    for t in threads:
        t.join(timeout=10)
    wall = t1 - t0
    return {"reader": kind, "cameras": len(urls), "cpu_percent_per_camera": 100 * (cpu1 - cpu0) / wall / len(urls),
            "server_cpu_percent": 100 * (srv1 - srv0) / wall, "frames_per_camera_per_s": (got1 - got0) / wall / len(urls),
            "errors": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cameras", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=8)
    ap.add_argument("--rounds", type=int, default=2, help="alternate the readers this many times each")
    args = ap.parse_args()
    cams = Cameras(str(prepare_clip()))
    urls = cams.grow(args.cameras)
    servers = [psutil.Process(s.proc.pid) for s, _ in cams.servers]
    try:
        results = [measure(kind, urls, args.seconds, args.warmup, servers)
                   for _ in range(args.rounds) for kind in ("ffmpeg", "native")]
    finally:
        cams.shrink(0)
    print(f"{args.cameras} cameras, {args.seconds:g} s each, {os.cpu_count()} cores; CPU % of one core")
    for r in results:
        print(f"  {r['reader']:>6}: {r['cpu_percent_per_camera']:.2f} % per camera "
              f"({r['frames_per_camera_per_s']:.2f} frames/s each, servers {r['server_cpu_percent']:.0f} %, "
              f"errors {r['errors']})")
    per = {k: [r["cpu_percent_per_camera"] for r in results if r["reader"] == k] for k in ("ffmpeg", "native")}
    ratio = (sum(per["ffmpeg"]) / len(per["ffmpeg"])) / (sum(per["native"]) / len(per["native"]))
    print(f"  FFmpeg / own client, CPU per camera: {ratio:.2f}x")


if __name__ == "__main__":
    main()
