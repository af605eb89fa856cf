"""What receiving a camera costs: FFmpeg's RTSP demuxer against Streetwatch's own client.

    python -m benchmarks.rtsp_receive --cameras 8 --seconds 20

Both readers run as the edge runs them: `planned_frames` with a one-frame-per-2-s plan, so
each decodes one keyframe per 2 s and skips the rest; then receiving alone (FFmpeg's demuxer
against the own session and depacketizer), to show what the client itself costs. N cameras (the benchmark
clip, 720p25, 2 Mbit/s) are read by N threads of this process, first with one reader, then
with the other, against the same gst-rtsp-server; the figure is this process's CPU per
camera, which is receiving + keyframe decoding + the plan. The servers' CPU is printed apart.
"""

from __future__ import annotations

import argparse
import os
import threading
import time
from typing import Iterator

import psutil
from tqdm import tqdm

from benchmarks.edge_bench import prepare_clip
from benchmarks.edge_workers import Cameras
from streams.decode_plan import DecodePlan
from streams.h264_rtp import H264Depacketizer
from streams.rtsp import RtspReader, StreamError
from streams.rtsp_native import NativeRtspReader
from streams.rtsp_session import RtspSession


KINDS = ("ffmpeg", "native", "ffmpeg-receive", "native-receive")


def _units(kind: str, url: str, stop: threading.Event) -> Iterator[object]:
    """What one camera yields: analysed frames, or (receive-only) access units."""
    if kind == "native-receive":
        session = RtspSession(url, 10, 5)
        try:
            depacketizer = H264Depacketizer(session.open().parameter_sets)
            while not stop.is_set():
                for packet in session.read_packets():
                    yield from depacketizer.push(packet)
        finally:
            session.close()
    elif kind == "ffmpeg-receive":
        with RtspReader(url, open_timeout_s=10, read_timeout_s=5, single_thread=True) as reader:
            yield from reader._container.demux(reader._stream)
    else:
        reader = NativeRtspReader(url, 10, 5) if kind == "native" else RtspReader(url, 10, 5, single_thread=True)
        with reader:
            yield from reader.planned_frames(DecodePlan(2.0))


def measure(kind: str, urls: list[str], seconds: float, warmup: float, servers: list[psutil.Process]) -> dict:
    stop, frames, errors = threading.Event(), [0] * len(urls), []

    def run(i: int) -> None:
        try:
            for _ in _units(kind, urls[i], stop):
                frames[i] += 1
                if stop.is_set():
                    break
        except StreamError as exc:
            errors.append(str(exc))

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
            "server_cpu_percent": 100 * (srv1 - srv0) / wall, "per_camera_per_s": (got1 - got0) / wall / len(urls),
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
                   for _ in range(args.rounds) for kind in KINDS]
    finally:
        cams.shrink(0)
    print(f"{args.cameras} cameras, {args.seconds:g} s each, {os.cpu_count()} cores; CPU % of one core per camera")
    print("  (ffmpeg/native: planned reading as the edge does it, one decoded keyframe per 2 s;")
    print("   *-receive: receiving only, access units counted and dropped)")
    for r in results:
        what = "units" if r["reader"].endswith("receive") else "frames"
        print(f"  {r['reader']:>14}: {r['cpu_percent_per_camera']:.2f} % ({r['per_camera_per_s']:.2f} {what}/s each, "
              f"servers {r['server_cpu_percent']:.0f} %, errors {r['errors']})")
    mean = {k: sum(r["cpu_percent_per_camera"] for r in results if r["reader"] == k) / args.rounds for k in KINDS}
    print(f"  FFmpeg / own client, CPU per camera: reading {mean['ffmpeg'] / mean['native']:.2f}x, "
          f"receiving only {mean['ffmpeg-receive'] / mean['native-receive']:.2f}x")

if __name__ == "__main__":
    main()
