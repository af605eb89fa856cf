"""`streetwatch bench api|edge`: the benchmark commands, registered by streetwatch_cli.

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


def _bench_api(args: argparse.Namespace) -> int:
    from benchmarks.api_bench import run

    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    run(backends, workers=args.workers, clients=args.clients, seconds=args.seconds, warmup=args.warmup,
        json_out=Path(args.json) if args.json else None)
    return 0


def _bench_edge(args: argparse.Namespace) -> int:
    from benchmarks.edge_bench import bench_edge

    report = bench_edge(cameras=args.cameras, seconds=args.seconds, warmup=args.warmup, naive=not args.no_naive,
                        faults=not args.no_faults, detector=args.detector,
                        model=Path(args.model) if args.model else None)
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
    s.add_argument("--json", help="also write the figures here")
    s.set_defaults(func=_bench_api)
    s = bench.add_parser("edge", help="cameras sustained at one frame per 2 s: the edge vs the plain ultralytics loop")
    s.add_argument("--cameras", type=at_least_one, default=64, help="the most cameras to ramp up to")
    s.add_argument("--seconds", type=_measured, default=20, help="measured seconds per ramp step")
    s.add_argument("--warmup", type=_warmup, default=30,
                   help="seconds after every new camera is analysed before measuring (its first events pass)")
    s.add_argument("--detector", default="onnxruntime", choices=["onnxruntime", "openvino", "ultralytics"])
    s.add_argument("--model", help="model folder to run (default models/streetwatch-demo, the figures' reference); "
                                   "its manifest's imgsz is the input size")
    s.add_argument("--no-naive", action="store_true", help="skip the ultralytics baseline")
    s.add_argument("--no-faults", action="store_true", help="skip the kill/freeze drill")
    s.set_defaults(func=_bench_edge)
