"""`streetwatch bench api|edge|fleet`: the benchmark commands, registered by streetwatch_cli.

The benchmark modules (and what they import) load only when a bench runs."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable


def _client_counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or a list such as 4,8,16") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: client counts must be at least 1")
    return counts


def _seconds(zero_ok: bool) -> Callable[[str], float]:
    """An argparse type: a finite number of seconds, above 0 (or 0 too, if `zero_ok`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
            raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds, "
                                             f"{'0 or more' if zero_ok else 'above 0'}")
        return value
    return parse


_measured, _warmup = _seconds(zero_ok=False), _seconds(zero_ok=True)
SNAPSHOT_MODES = ("rtsp_snapshot", "http_snapshot")


def _modes(text: str) -> str:
    """`stream`, a snapshot mode, or both snapshot modes (comma-separated) against one stream side."""
    modes = text.split(",")
    if modes == ["stream"] or (modes and len(set(modes)) == len(modes) and set(modes) <= set(SNAPSHOT_MODES)):
        return text
    raise argparse.ArgumentTypeError(f"{text!r}: expected stream, rtsp_snapshot, http_snapshot or "
                                     "http_snapshot,rtsp_snapshot")


def _bench_api(args: argparse.Namespace) -> int:
    from benchmarks.api_bench import run

    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    run(backends, workers=args.workers, clients=args.clients, seconds=args.seconds, warmup=args.warmup,
        json_out=Path(args.json) if args.json else None, batch=args.batch)
    return 0


def _bench_fleet(args: argparse.Namespace) -> int:
    from benchmarks.fleet_bench import TARGET_CPU_MS, TARGET_P95_MS, run

    result = run(args.backend, boxes=args.boxes, cameras=args.cameras, interval_s=args.interval,
                 seconds=args.seconds, changes_per_minute=args.changes_per_minute, outage_s=args.outage,
                 workers=args.workers, json_out=Path(args.json) if args.json else None,
                 keep_connections=not args.new_connections)
    met = result.heartbeats and not result.errors and result.api_cpu_ms < TARGET_CPU_MS and \
        result.p95_ms < TARGET_P95_MS
    return 0 if met else 1


_STREAM_ONLY = ("no_naive", "no_faults")
_SNAPSHOT_ONLY = ("stream_cameras", "steps", "stream_steps", "max_minutes")


def edge_options(args: argparse.Namespace) -> tuple[dict | None, str | None]:
    """The bench's options with each mode's defaults filled in, or what is wrong with them.
    `--mode stream` is the stream bench against the plain ultralytics loop at 2 s; a snapshot
    mode ramps that mode against `stream` at `--interval`."""
    flag = lambda name: "--" + name.replace("_", "-")  # noqa: E731
    if args.mode == "stream":
        given = [flag(n) for n in _SNAPSHOT_ONLY if getattr(args, n) is not None]
        if args.interval is not None and args.interval != 2:
            given.insert(0, "--interval")
        if given:
            return None, (f"{', '.join(given)}: only with --mode rtsp_snapshot or http_snapshot (the stream bench "
                          "runs at one frame per 2 s against the plain ultralytics loop)")
        return {"cameras": args.cameras or 64, "seconds": args.seconds or 20.0,
                "warmup": 30.0 if args.warmup is None else args.warmup}, None
    given = [flag(n) for n in _STREAM_ONLY if getattr(args, n)]
    if given:
        return None, f"{', '.join(given)}: only with --mode stream"
    interval = args.interval or 30.0
    if args.seconds is not None and args.seconds < interval:
        # Cameras added together (stream cameras connect at once) are analysed in phase: a window
        # shorter than the interval can hold none of their second frames, so no interval at all.
        return None, (f"--seconds {args.seconds:g}: the measured window must last at least the interval "
                      f"({interval:g} s), or cameras analysed in phase give no interval in it")
    return {"modes": args.mode.split(","), "interval": interval, "cameras": args.cameras or 2000,
            "stream_cameras": args.stream_cameras or 512, "seconds": args.seconds or 2 * interval,
            "warmup": 5.0 if args.warmup is None else args.warmup, "steps": args.steps,
            "stream_steps": args.stream_steps, "max_minutes": args.max_minutes}, None


def _bench_edge(args: argparse.Namespace) -> int:
    import sys

    options, problem = edge_options(args)
    if problem:
        print(f"streetwatch: bench edge: {problem}", file=sys.stderr)
        return 2
    model = Path(args.model) if args.model else None
    if args.mode != "stream":
        from benchmarks.sampling_bench import bench_sampling

        report = bench_sampling(**options, detector=args.detector, model=model)
        return 0 if all(report["summary"][m]["sustained"] for m in options["modes"]) else 1
    from benchmarks.edge_bench import bench_edge

    report = bench_edge(**options, naive=not args.no_naive, faults=not args.no_faults, detector=args.detector,
                        model=model)
    return 0 if report.get("edge_sustained") else 1


def add_bench_commands(sub: argparse._SubParsersAction, whole_number: Callable[..., Callable[[str], int]]) -> None:
    """`whole_number(low, high, message)`: the CLI's argparse type for counts."""
    at_least_one = whole_number(1, None, "expected a whole number of at least 1")
    bench = sub.add_parser("bench", help="benchmarks").add_subparsers(dest="bench_command", required=True)
    s = bench.add_parser("api", help="events/s and latency of POST /api/v1/events (SQLite and PostgreSQL, S3 on loopback)")
    s.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    s.add_argument("--clients", type=_client_counts, default=[16],
                   help="concurrent posting clients; a list such as 4,8,16 runs each in turn")
    s.add_argument("--workers", type=at_least_one, default=2, help="API server processes")
    s.add_argument("--seconds", type=_measured, default=20.0, help="measured time per backend")
    s.add_argument("--warmup", type=_warmup, default=3.0)
    s.add_argument("--batch", type=whole_number(1, 1000, "expected a whole number from 1 to 1000"), default=1,
                   help="events per request: more than 1 posts them to POST /api/v1/events/batch (an outbox backlog)")
    s.add_argument("--json", help="also write the figures here")
    s.set_defaults(func=_bench_api)
    s = bench.add_parser("edge", help="cameras sustained at one frame per 2 s: the edge vs the plain ultralytics loop; "
                                      "with --mode rtsp_snapshot|http_snapshot: that mode vs stream at --interval")
    s.add_argument("--mode", type=_modes, default="stream",
                   help="stream (default): the edge against the naive loop at 2 s; rtsp_snapshot or http_snapshot: "
                        "ramped against stream mode at --interval in the same run (both, comma-separated: against "
                        "one stream side)")
    s.add_argument("--interval", type=_measured, help="seconds between a camera's analysed frames (snapshot modes; "
                                                      "default 30)")
    s.add_argument("--cameras", type=at_least_one,
                   help="the most cameras to ramp up to (default 64; 2000 in a snapshot mode)")
    s.add_argument("--seconds", type=_measured, help="measured seconds per ramp step (default 20; twice the "
                                                     "interval in a snapshot mode)")
    s.add_argument("--warmup", type=_warmup,
                   help="seconds after every new camera is analysed before measuring (default 30: its first events "
                        "pass; 5 in a snapshot mode, where no event is confirmed)")
    s.add_argument("--detector", default="onnxruntime", choices=["onnxruntime", "openvino", "ultralytics"])
    s.add_argument("--model", help="model folder to run (default models/streetwatch-demo, the figures' reference); "
                                   "its manifest's imgsz is the input size")
    s.add_argument("--no-naive", action="store_true", help="skip the ultralytics baseline")
    s.add_argument("--no-faults", action="store_true", help="skip the kill/freeze drill")
    s.add_argument("--stream-cameras", type=at_least_one,
                   help="snapshot modes: the most cameras of the stream side's ramp (default 512)")
    s.add_argument("--steps", type=_client_counts, help="snapshot modes: the snapshot side's ramp, e.g. 250,500,1000")
    s.add_argument("--stream-steps", type=_client_counts, help="snapshot modes: the stream side's ramp, e.g. 32,64,128")
    s.add_argument("--max-minutes", type=_measured,
                   help="snapshot modes: the whole run's time budget (the stream side may take 40 %%); a ramp "
                        "stops before a step that would end past it")
    s.set_defaults(func=_bench_edge)
    s = bench.add_parser("fleet", help="edge boxes heartbeating against the real API: API CPU per heartbeat, latency, "
                                       "database rows written a minute")
    s.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    s.add_argument("--boxes", type=at_least_one, default=500)
    s.add_argument("--cameras", type=at_least_one, default=40, help="per box")
    s.add_argument("--interval", type=_measured, default=30.0,
                   help="seconds between a box's heartbeats (phases spread evenly; shorter: a quick, denser run)")
    s.add_argument("--seconds", type=_measured, default=120.0, help="measured time (the sweep runs every 60 s)")
    s.add_argument("--changes-per-minute", type=_warmup, default=20.0,
                   help="camera state changes a minute over the fleet (outages: down, then back)")
    s.add_argument("--outage", type=_measured, default=90.0, help="seconds a camera stays down")
    s.add_argument("--workers", type=at_least_one, default=2, help="API server processes")
    s.add_argument("--new-connections", action="store_true",
                   help="a new connection per heartbeat instead of one kept per box (as before the API's keep-alive "
                        "outlived the heartbeat interval)")
    s.add_argument("--json", help="also write the figures here")
    s.set_defaults(func=_bench_fleet)
