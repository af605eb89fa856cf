"""`streetwatch bench api`: events per second and latency of POST /api/v1/events.

Starts everything itself on loopback: the S3 server (SeaweedFS, signatures checked), the
database (a SQLite file, and a throwaway PostgreSQL cluster), and the API as a real server
(`streetwatch api serve --workers N`). Concurrent clients then post events the way edge boxes
do (multipart: the event JSON plus a ~100 KB JPEG frame), spread over many cameras so that
some events open orders and most join them. Prints events/s and p50/p95/p99 latency per
backend; any answer other than 2xx counts as an error and is shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import numpy as np
import psutil
from PIL import Image, ImageFilter
from tqdm import tqdm

from benchmarks.http_load import Poster

TARGET_EVENTS_PER_S, TARGET_P95_MS = 200.0, 100.0
TYPES = ("street_vending", "clutter", "flooding")


@dataclass
class Result:
    backend: str
    workers: int
    clients: int
    seconds: float
    batch: int = 1  # events per request (POST /api/v1/events/batch when more than 1)
    events: int = 0  # accepted in the measured window
    requests: int = 0  # answered 2xx in the measured window (p50/p95/p99 are per request)
    posted: int = 0  # accepted in all, warm-up included: what the orders came from
    errors: int = 0
    orders: int = 0
    events_per_s: float = 0.0
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    error_samples: list[str] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per process kind, measured window


def street_jpeg(target_bytes: int = 102_400, seed: int = 0) -> bytes:
    """A 1280×720 street-like frame (sky, facades, road, sensor noise) just under `target_bytes`
    (the issue's 100 KB JPEG per event)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((720, 1280, 3), np.float32)
    img[:250] = (150, 180, 215)
    img[250:420] = rng.uniform(60, 160, (1, 1280 // 40, 3)).repeat(40, axis=1)[:, :1280]
    img[420:] = (85, 85, 90)
    img += rng.normal(0, 12, img.shape)
    pil = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.2))
    best = b""
    for quality in range(95, 20, -1):  # the highest quality under the target size
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=quality)
        best = buf.getvalue()
        if len(best) <= target_bytes:
            break
    return best


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _event(camera: int, rng: random.Random) -> dict:
    now = datetime.now(timezone.utc)
    x, y = rng.choice((100, 400, 700)), rng.choice((300, 450))  # a few fixed issues per camera
    return {"event_id": str(uuid.uuid4()),
            "camera": {"name": f"bench-{camera:03d}", "lat": 31.2 + camera * 0.01, "lon": 121.4},
            "issue_type": TYPES[(x // 300 + camera) % 3], "class_name": "x", "confidence": 0.8,
            "bbox": [x + rng.uniform(-5, 5), y, x + 200, y + 150], "frame_width": 1280, "frame_height": 720,
            "first_seen": (now - timedelta(seconds=10)).isoformat(), "confirmed_at": now.isoformat(),
            "track_id": 1, "model": {"name": "bench", "version": "1"}}


def _batch_outcome(status: int, answer: bytes) -> tuple[int, list[str]]:
    """(events accepted, error texts) of one batch answer: each event's own status counts."""
    if status != 200:
        return 0, [f"{status}: {answer[:200].decode(errors='replace')}"]
    try:
        results = json.loads(answer)["results"]
    except (ValueError, KeyError) as exc:
        return 0, [f"200 without results: {exc}"]
    errors = [f"{r['status']} (in a batch): {str(r.get('detail'))[:200]}" for r in results
              if not 200 <= r["status"] < 300]
    return len(results) - len(errors), errors


async def _load(base: str, api_pid: int, key: str, frame: bytes, clients: int, seconds: float, warmup: float,
                result: Result) -> list[float]:
    latencies: list[float] = []
    deadline_warm = time.monotonic() + warmup
    deadline = deadline_warm + seconds
    url = httpx.URL(base)
    batch = result.batch

    async def client(n: int) -> None:
        rng = random.Random(n)
        poster = Poster(url.host, url.port or 80, "/api/v1/events" if batch == 1 else "/api/v1/events/batch", key)
        try:
            while (now := time.monotonic()) < deadline:
                events = [_event(rng.randrange(50), rng) for _ in range(batch)]
                start = time.perf_counter()
                try:
                    if batch == 1:
                        status, answer = await poster.post(json.dumps(events[0]).encode(), frame)
                        accepted, errors = (1, []) if 200 <= status < 300 else (0, [
                            f"{status}: {answer[:200].decode(errors='replace')}"])
                    else:
                        status, answer = await poster.post_batch(json.dumps(events).encode(), frame, batch)
                        accepted, errors = _batch_outcome(status, answer)
                except (OSError, ValueError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
                    status, accepted, errors = 0, 0, [f"0: {repr(exc)[:200]}"] * batch
                elapsed = time.perf_counter() - start
                result.posted += accepted
                if now >= deadline_warm:  # warm-up requests are not counted
                    result.events += accepted
                    result.errors += len(errors)
                    if 200 <= status < 300:
                        latencies.append(elapsed)
                    for text in errors[:5 - len(result.error_samples)]:
                        result.error_samples.append(text)
        finally:
            await poster.close()

    async def ticker() -> None:
        with tqdm(total=int(warmup + seconds), desc=f"{result.backend} ({clients} clients)", unit="s") as bar:
            while time.monotonic() < deadline:
                await asyncio.sleep(1)
                bar.update(1)

    async def measure_cpu() -> None:
        # CPU of each process kind over the measured window only: where an event's cost goes.
        await asyncio.sleep(max(0.0, deadline_warm - time.monotonic()))
        before = _cpu_by_kind(api_pid)
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
        after = _cpu_by_kind(api_pid)
        result.cpu_s = {k: round(after[k] - before[k], 2) for k in after}

    await asyncio.gather(ticker(), measure_cpu(), *(client(n) for n in range(clients)))
    return latencies


def _cpu_by_kind(api_pid: int) -> dict[str, float]:
    """CPU seconds used so far by the API (the server and its worker processes), the
    database, the S3 server and this load generator; everything else as `other`."""
    me = os.getpid()
    try:
        api = {api_pid, *(p.pid for p in psutil.Process(api_pid).children(recursive=True))}
    except psutil.NoSuchProcess:
        api = set()
    totals = dict.fromkeys(("api", "database", "s3", "load generator", "other"), 0.0)
    for proc in psutil.process_iter(["pid", "name"]):
        try:
            times = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        kind = ("load generator" if proc.info["pid"] == me else
                "database" if (proc.info["name"] or "").startswith("postgres") else
                "s3" if "weed" in (proc.info["name"] or "") else
                "api" if proc.info["pid"] in api else "other")
        totals[kind] += times.user + times.system
    return totals


def _wait_until_idle(api_pid: int, deadline: float, busy_below: float = 0.05) -> None:
    """Until the API (server and workers) uses less than `busy_below` of a core for 0.5 s."""
    before = _cpu_by_kind(api_pid)["api"]
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _cpu_by_kind(api_pid)["api"]
        if now - before < busy_below * 0.5:
            return
        before = now


@contextlib.contextmanager
def _api_server(env: dict[str, str], workers: int):
    cli = [sys.executable, "-m", "streetwatch_cli"]
    subprocess.run([*cli, "api", "migrate"], env=env, check=True, capture_output=True)
    port = _free_port()
    # The server's log goes to a file: a pipe nobody reads fills after ~500 event lines and
    # then blocks every request that logs (it did, and the run timed out).
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([*cli, "api", "serve", "--port", str(port), "--workers", str(workers), "--no-access-log"],
                            env=env, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def log_tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-800:]

    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"API exited: {log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"API did not start within 60 s: {log_tail()}")
            time.sleep(0.3)
        # The first worker up answers /healthz while the others may still be importing: clients
        # connecting then would all keep their connections on that one worker (it happened: 16
        # of 16, 79 events/s). Wait until every worker has started, i.e. the server idles.
        _wait_until_idle(proc.pid, deadline)
        yield base, proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def run_backend(backend: str, database_url: str, s3, workers: int, clients: int, seconds: float, warmup: float,
                frame: bytes, batch: int = 1) -> Result:
    from sqlmodel import Session, func, select

    from api.auth import create_key
    from api.db import get_engine, upgrade_database
    from api.models import Order, Role

    upgrade_database(database_url)
    with Session(get_engine(database_url)) as session:
        key = create_key(session, "bench-edge", Role.edge)
    env = {**os.environ, "STREETWATCH_DATABASE_URL": database_url, "STREETWATCH_S3_ENDPOINT": s3.endpoint,
           "STREETWATCH_S3_ACCESS_KEY": s3.access_key, "STREETWATCH_S3_SECRET_KEY": s3.secret_key,
           "STREETWATCH_S3_BUCKET": f"bench-{backend}-{uuid.uuid4().hex[:6]}", "STREETWATCH_SWEEP_INTERVAL_SECONDS": "0"}
    result = Result(backend, workers, clients, seconds, batch)
    with _api_server(env, workers) as (base, api_pid):
        latencies = asyncio.run(_load(base, api_pid, key, frame, clients, seconds, warmup, result))
    with Session(get_engine(database_url)) as session:
        result.orders = session.exec(select(func.count()).select_from(Order)).one()
    if latencies:
        ms = np.array(latencies) * 1000
        result.requests = len(latencies)
        result.events_per_s = result.events / seconds
        result.p50_ms, result.p95_ms, result.p99_ms = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    return result


def run(backends: list[str], workers: int = 2, clients: int | list[int] = 16, seconds: float = 20.0,
        warmup: float = 3.0, json_out: Path | None = None, batch: int = 1) -> list[Result]:
    """One result per backend and client count; the counts run in turn against the same
    database (later ones find the orders earlier ones opened, as a city's would)."""
    from api.local_postgres import ThrowawayPostgres
    from api.local_s3 import LocalS3Server

    counts = [clients] if isinstance(clients, int) else list(clients)
    if json_out is not None:  # now, not after minutes of measuring
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.touch()
    frame = street_jpeg()
    print(f"frame: {len(frame) / 1000:.0f} KB JPEG, 1280×720; {', '.join(map(str, counts))} clients, "
          f"{'one event' if batch == 1 else f'{batch} events'} per request, "
          f"{workers} API worker(s), {seconds:.0f} s after {warmup:.0f} s warm-up; {os.cpu_count()} CPU(s)")
    results = []
    with LocalS3Server() as s3, tempfile.TemporaryDirectory(prefix="streetwatch-bench-") as tmp:
        for backend in backends:
            with contextlib.ExitStack() as stack:
                url = (f"sqlite:///{Path(tmp) / 'bench.db'}" if backend == "sqlite"
                       else stack.enter_context(ThrowawayPostgres()))
                for n in counts:
                    results.append(run_backend(backend, url, s3, workers, n, seconds, warmup, frame, batch))
    print(_table(results))
    if json_out is not None:
        json_out.write_text(json.dumps([asdict(r) for r in results], indent=1))
    return results


def _table(results: list[Result]) -> str:
    lines = ["", "| backend | clients | events per request | events/s | p50 ms | p95 ms | p99 ms | errors | orders |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.backend} | {r.clients} | {r.batch} | {r.events_per_s:.0f} | {r.p50_ms:.0f} | "
                     f"{r.p95_ms:.0f} | {r.p99_ms:.0f} | {r.errors} | {r.orders} |")
    for r in results:
        for sample in r.error_samples:
            lines.append(f"error ({r.backend}): {sample}")
        ok = r.events_per_s >= TARGET_EVENTS_PER_S and r.p95_ms < TARGET_P95_MS
        if r.cpu_s and r.events:
            per_event = ", ".join(f"{kind} {1000 * sec / r.events:.1f}" for kind, sec in r.cpu_s.items())
            lines.append(f"{r.backend}, {r.clients} clients: CPU ms per event: {per_event} (machine: {os.cpu_count()} cores, "
                         f"{100 * sum(r.cpu_s.values()) / r.seconds / (os.cpu_count() or 1):.0f} % busy)")
        lines.append(f"{r.backend}, {r.clients} clients: target ≥ {TARGET_EVENTS_PER_S:.0f} events/s with p95 < {TARGET_P95_MS:.0f} ms: "
                     f"{'met' if ok else 'not met'} ({r.events_per_s:.0f} events/s, p95 {r.p95_ms:.0f} ms)")
    return "\n".join(lines)
