"""`streetwatch bench fleet`: a city's edge boxes heartbeating against the real API and database.

Starts the API as a real server (`streetwatch api serve --workers N`) on a SQLite file or a
throwaway PostgreSQL cluster, makes one edge key per box (bound to it), registers every box
with its cameras (each box's first heartbeat), then heartbeats every box once per interval,
phases spread evenly (500 boxes at 30 s: ≈17/s), with a few cameras going down and coming
back each minute (benchmarks/fleet_plan.py). Each box keeps its connection from one heartbeat
to the next, as the edge's client does (`--new-connections`: one per heartbeat). Reports the
API's CPU time per heartbeat (its processes' user+system time over the measured window, not
wall time), latency percentiles, and the rows the database wrote per minute, split into rows
that follow state changes and rows that follow heartbeats (benchmarks/fleet_rows.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import psutil
from tqdm import tqdm

from benchmarks import cold_pages
from benchmarks.api_bench import _api_server
from benchmarks.fleet_plan import FleetStates, changed, plan_outages, send_times
from benchmarks.fleet_rows import PG_STATS_FLUSH_S, Writes, install_counters, split, written

TARGET_CPU_MS, TARGET_P95_MS = 2.0, 50.0
REGISTER_CONCURRENCY = 4


@dataclass
class FleetResult:
    backend: str
    boxes: int
    cameras: int  # per box
    interval_s: float
    seconds: float
    workers: int
    keep_connections: bool = True  # each box keeps its connection across heartbeats (False: one per heartbeat)
    connections: int = 0  # connections the boxes opened, registration included
    register_s: float = 0.0  # every box's first heartbeat (its cameras created)
    heartbeats: int = 0  # answered 2xx in the measured window
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    changes_sent: int = 0  # camera state changes the heartbeats carried
    changes_recorded: int = 0  # the API's count of them (its answers' `changes`)
    p50_ms: float = 0.0
    p95_ms: float = 0.0
    p99_ms: float = 0.0
    late_p95_ms: float = 0.0  # how late heartbeats left against their schedule (the load generator keeping up)
    cpu_s: dict[str, float] = field(default_factory=dict)  # per process kind, measured window
    rows: dict[str, int] = field(default_factory=dict)  # state_change / heartbeat / other, measured window
    rows_by_table: dict[str, int] = field(default_factory=dict)
    # This host's cost of touching memory again after a pause, measured before the run
    # (benchmarks/cold_pages.py): most of a heartbeat's CPU here, and it varies by day.
    host_cold_pages: cold_pages.ColdPages | None = None

    @property
    def api_cpu_ms(self) -> float:
        return 1000 * self.cpu_s.get("api", 0.0) / max(self.heartbeats, 1)


def _camera_names(box: int, cameras: int) -> list[str]:
    return [f"fb{box:04d}-c{c:03d}" for c in range(cameras)]


def heartbeat_body(names: list[str], down: dict[int, str], now: datetime, interval_s: float, grid: str) -> bytes:
    """A box's heartbeat as streams/heartbeat.py sends it: every camera, `down` ones not streaming."""
    fresh, stale = now.isoformat(), (now - timedelta(seconds=20)).isoformat()
    cams = [{"name": name, "state": down.get(i, "streaming"), "last_frame_at": stale if i in down else fresh,
             "fps": 0.0 if i in down else 0.5, "damaged_packets": 3, "grid_id": grid} for i, name in enumerate(names)]
    return json.dumps({"software_version": "bench", "interval_s": interval_s, "outbox_depth": 0,
                       "model": {"name": "streetwatch-v2", "version": "2", "sha256": "ab" * 32},
                       "cameras": cams}).encode()


def cpu_seconds(api_pid: int, db_pid: int | None) -> dict[str, float]:
    """CPU seconds (user + system) used so far by the API (server and workers), this bench's
    database (PostgreSQL: its postmaster and backends; SQLite runs inside the API), this load
    generator, and the whole machine (other engineers' work and the training included)."""
    def tree(pid: int | None) -> float:
        if pid is None:
            return 0.0
        total = 0.0
        try:
            procs = [psutil.Process(pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            return 0.0
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    machine = psutil.cpu_times()
    me = psutil.Process().cpu_times()
    return {"api": tree(api_pid), "database": tree(db_pid), "load generator": me.user + me.system,
            "machine": machine.user + machine.nice + machine.system + getattr(machine, "irq", 0.0) +
            getattr(machine, "softirq", 0.0)}


class BoxLink:
    """A box's connection to the API, kept from one heartbeat to the next as the edge's client
    keeps it (streams/heartbeat.py; the server keeps idle connections longer than the
    interval), reopened when the server closed it (`Connection: close` from the rotation in
    api/keepalive.py). `keep=False`: a new connection per heartbeat, as before both sides'
    keep-alive outlived the interval."""

    def __init__(self, host: str, port: int, keep: bool = True):
        self.host, self.port, self.keep = host, port, keep
        self.stream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.busy = False
        self.opened = 0  # connections this box opened

    async def post(self, path: str, key: str, body: bytes, timeout: float = 30.0) -> tuple[int, bytes]:
        if self.busy:  # the box's previous heartbeat is still out (a starved server): a connection of its own
            self.opened += 1
            return await BoxLink(self.host, self.port, keep=False).post(path, key, body, timeout)
        self.busy = True
        try:
            for attempt in range(2):
                reused = self.stream is not None
                try:
                    if self.stream is None:
                        self.stream = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), timeout)
                        self.opened += 1
                    status, answer, close = await asyncio.wait_for(self._exchange(path, key, body), timeout)
                except (ConnectionError, asyncio.IncompleteReadError, IndexError, ValueError):
                    await self.close()
                    if reused and not attempt:
                        continue  # the server had closed it while idle: once more on a new one
                    raise
                if close or not self.keep:
                    await self.close()
                return status, answer
            raise AssertionError("unreachable")
        except BaseException:
            await self.close()
            raise
        finally:
            self.busy = False

    async def _exchange(self, path: str, key: str, body: bytes) -> tuple[int, bytes, bool]:
        assert self.stream is not None
        reader, writer = self.stream
        writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer {key}\r\n"
                     f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        await writer.drain()
        status = int((await reader.readline()).split(b" ", 2)[1])
        length, close = 0, False
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
        return status, await reader.readexactly(length) if length else b"", close

    async def close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            stream[1].close()
            with contextlib.suppress(ConnectionError, OSError):
                await stream[1].wait_closed()


class Fleet:
    """The simulated boxes: their keys, cameras, and what each last reported."""

    def __init__(self, base: str, keys: list[str], cameras: int, interval_s: float, keep_connections: bool = True):
        host, port = base.removeprefix("http://").split(":")
        self.host, self.port, self.keys, self.interval_s = host, int(port), keys, interval_s
        self.links = [BoxLink(self.host, self.port, keep_connections) for _ in keys]
        self.names = [_camera_names(b, cameras) for b in range(len(keys))]
        self.last: list[dict[int, str]] = [{} for _ in keys]

    async def beat(self, box: int, down: dict[int, str], interval_s: float | None = None) -> tuple[int, bytes, float]:
        body = heartbeat_body(self.names[box], down, datetime.now(timezone.utc), interval_s or self.interval_s,
                              f"g-{box % 20:02d}")
        start = time.perf_counter()
        try:
            status, answer = await self.links[box].post(f"/api/v1/boxes/fleet-{box:04d}/heartbeat", self.keys[box],
                                                        body)
        except (OSError, ValueError, IndexError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            status, answer = 0, repr(exc).encode()
        return status, answer, time.perf_counter() - start


async def register(fleet: Fleet, result: FleetResult) -> None:
    """Every box's first heartbeat, a few at a time. It declares an hour's interval: a slow
    registration must not make the sweep find the first boxes silent before the window."""
    queue = list(range(len(fleet.keys)))
    with tqdm(total=len(queue), desc=f"{result.backend}: registering boxes", unit="box", mininterval=1.0) as bar:
        async def worker() -> None:
            while queue:
                box = queue.pop()
                status, answer, _ = await fleet.beat(box, {}, interval_s=3600)
                if status != 200:
                    raise RuntimeError(f"registering box {box}: {status} {answer[:300]!r}")
                bar.update(1)
        await asyncio.gather(*(worker() for _ in range(REGISTER_CONCURRENCY)))


async def measure(fleet: Fleet, states: FleetStates, api_pid: int, db_pid: int | None,
                  result: FleetResult) -> list[float]:
    """The measured window: every scheduled heartbeat, sent on time, each on its own task."""
    schedule = send_times(len(fleet.keys), fleet.interval_s, 0.0, result.seconds)
    latencies: list[float] = []
    late: list[float] = []
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    cpu_before = cpu_seconds(api_pid, db_pid)
    t0 = loop.time()

    async def one(box: int, at: float) -> None:
        down = states.down(box, at)
        result.changes_sent += changed(fleet.last[box], down)
        fleet.last[box] = down
        late.append(loop.time() - t0 - at)
        status, answer, elapsed = await fleet.beat(box, down)
        if status == 200:
            latencies.append(elapsed)
            result.changes_recorded += json.loads(answer)["changes"]
        else:
            result.errors += 1
            if len(result.error_samples) < 5:
                result.error_samples.append(f"{status}: {answer[:200].decode(errors='replace')}")

    with tqdm(total=len(schedule), desc=f"{result.backend}: heartbeats", unit="hb", mininterval=1.0) as bar:
        for at, box in schedule:
            await asyncio.sleep(max(0.0, t0 + at - loop.time()))
            task = asyncio.create_task(one(box, at))
            tasks.add(task)
            task.add_done_callback(lambda t: (tasks.discard(t), bar.update(1)))
        await asyncio.sleep(max(0.0, t0 + result.seconds - loop.time()))
        if tasks:
            await asyncio.gather(*tasks)
    cpu_after = cpu_seconds(api_pid, db_pid)
    result.cpu_s = {k: round(cpu_after[k] - cpu_before[k], 2) for k in cpu_after}
    result.seconds = round(loop.time() - t0, 2)  # the CPU's window, the last answers included
    if late:
        result.late_p95_ms = float(np.percentile(np.array(late) * 1000, 95))
    return latencies


def run_backend(backend: str, database_url: str, db_pid: int | None, tmp: Path, boxes: int, cameras: int,
                interval_s: float, seconds: float, changes_per_minute: float, outage_s: float, workers: int,
                seed: int, keep_connections: bool = True) -> FleetResult:
    from sqlmodel import Session

    from api.auth import create_key
    from api.db import get_engine, upgrade_database
    from api.models import Role

    upgrade_database(database_url)
    engine = get_engine(database_url)
    install_counters(engine)
    with Session(engine) as session:
        keys = [create_key(session, f"fleet-{b:04d}", Role.edge, box_id=f"fleet-{b:04d}") for b in range(boxes)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREETWATCH_")}
    env.update(STREETWATCH_DATABASE_URL=database_url, STREETWATCH_EVIDENCE_DIR=str(tmp / "evidence"),
               STREETWATCH_SECRET_KEY_FILE=str(tmp / "secret_key"), STREETWATCH_EXPORT_DIR=str(tmp / "exports"))
    result = FleetResult(backend, boxes, cameras, interval_s, seconds, workers, keep_connections=keep_connections)
    # Two changes per outage (down, back): outages at half the rate of changes asked for.
    outages = plan_outages(random.Random(seed), boxes, cameras, changes_per_minute / 2, outage_s, seconds)
    with _api_server(env, workers) as (base, api_pid):
        fleet = Fleet(base, keys, cameras, interval_s, keep_connections)

        async def register_then_measure() -> tuple[Writes, list[float]]:
            # One event loop for both: the boxes' connections from registration go on into the window.
            start = time.monotonic()
            await register(fleet, result)
            result.register_s = round(time.monotonic() - start, 1)
            await asyncio.sleep(PG_STATS_FLUSH_S if backend == "postgres" else 1.0)  # registration's counts are in
            before = written(engine)
            try:
                return before, await measure(fleet, FleetStates(outages), api_pid, db_pid, result)
            finally:
                await asyncio.gather(*(link.close() for link in fleet.links))
                result.connections = sum(link.opened for link in fleet.links)

        before, latencies = asyncio.run(register_then_measure())
        if backend == "postgres":
            time.sleep(PG_STATS_FLUSH_S)
        delta = written(engine) - before
    engine.dispose()
    result.rows = split(delta)
    result.rows_by_table = {f"{t}.{op}": n for (t, op), n in sorted(delta.items())}
    if latencies:
        ms = np.array(latencies) * 1000
        result.heartbeats = len(latencies)
        result.p50_ms, result.p95_ms, result.p99_ms = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    return result


def run(backend: str = "sqlite", boxes: int = 500, cameras: int = 40, interval_s: float = 30.0,
        seconds: float = 120.0, changes_per_minute: float = 20.0, outage_s: float = 90.0, workers: int = 2,
        seed: int = 0, json_out: Path | None = None, keep_connections: bool = True) -> FleetResult:
    from api.local_postgres import ThrowawayPostgres

    print(f"{boxes} boxes × {cameras} cameras, a heartbeat each per {interval_s:g} s "
          f"({boxes / interval_s:.1f}/s), ~{changes_per_minute:g} camera state changes a minute "
          f"(outages of {outage_s:g} s); {seconds:g} s measured; {workers} API worker(s) on {backend}; "
          f"{'a connection per box, kept' if keep_connections else 'a new connection per heartbeat'}; "
          f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} before the start")
    with tempfile.TemporaryDirectory(prefix="streetwatch-fleet-") as tmp, contextlib.ExitStack() as stack:
        url, db_pid = f"sqlite:///{Path(tmp) / 'fleet.db'}", None
        if backend == "postgres":
            cluster = ThrowawayPostgres()
            url = stack.enter_context(cluster)
            db_pid = int((cluster.dir / "data" / "postmaster.pid").read_text().split()[0])
        cold = cold_pages.measure()  # before the cluster's and the API's own work: a quiet host
        print(cold)
        result = run_backend(backend, url, db_pid, Path(tmp), boxes, cameras, interval_s, seconds,
                             changes_per_minute, outage_s, workers, seed, keep_connections)
        result.host_cold_pages = cold
    print(report(result))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({**asdict(result), "api_cpu_ms_per_heartbeat": result.api_cpu_ms}, indent=1))
    return result


def report(r: FleetResult) -> str:
    minutes = r.seconds / 60
    per_min = {k: v / minutes for k, v in r.rows.items()}
    cores = os.cpu_count() or 1
    lines = ["", "| backend | boxes × cameras | heartbeats/s | API CPU ms/heartbeat | p50 ms | p95 ms | p99 ms "
                 "| errors |",
             "|---|---|---:|---:|---:|---:|---:|---:|",
             f"| {r.backend} | {r.boxes} × {r.cameras} | {r.heartbeats / r.seconds:.1f} | {r.api_cpu_ms:.2f} | "
             f"{r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.p99_ms:.1f} | {r.errors} |", ""]
    if r.heartbeats:
        ours = {k: v for k, v in r.cpu_s.items() if k != "machine" and (k != "database" or r.backend != "sqlite")}
        others = r.cpu_s.get("machine", 0.0) - sum(ours.values())
        lines.append("CPU ms per heartbeat: " + ", ".join(f"{k} {1000 * v / r.heartbeats:.2f}" for k, v in ours.items())
                     + (" (SQLite runs inside the API)" if r.backend == "sqlite" else "") +
                     f"; the machine was {100 * r.cpu_s.get('machine', 0.0) / r.seconds / cores:.0f} % busy over its "
                     f"{cores} cores, {100 * others / r.seconds / cores:.0f} % of it with other work")
    lines.append(f"registration (every box's first heartbeat, {r.boxes * r.cameras} cameras created): {r.register_s} s")
    lines.append(f"connections opened, registration included: {r.connections} "
                 f"({'kept per box' if r.keep_connections else 'one per heartbeat'})")
    lines.append(f"camera state changes: {r.changes_sent} sent, {r.changes_recorded} recorded by the API "
                 f"({r.changes_sent / minutes:.0f} a minute)")
    lines.append(f"rows written a minute: {per_min['state_change']:.0f} following state changes "
                 f"({r.rows['state_change'] / max(r.changes_recorded, 1):.1f} per change), "
                 f"{per_min['heartbeat']:.0f} following heartbeats (the box's own row: "
                 f"{r.rows['heartbeat'] / max(r.heartbeats, 1):.2f} per heartbeat), {per_min['other']:.0f} other; "
                 f"a row per camera and heartbeat would be {r.heartbeats * r.cameras / minutes:.0f}")
    lines.append("rows by table: " + ", ".join(f"{k} {v}" for k, v in r.rows_by_table.items()))
    lines.append(f"heartbeats left their schedule late by {r.late_p95_ms:.1f} ms at p95")
    if r.host_cold_pages is not None:
        cold = r.host_cold_pages
        lines.append(f"host, before the run: {cold.after_pause_us:.2f} µs to touch a resident 4 KiB page again "
                     f"after {1000 * cold.pause_s:.0f} ms asleep ({cold.warm_us:.3f} back to back); API CPU per "
                     f"heartbeat / that: {r.api_cpu_ms * 1000 / max(cold.after_pause_us, 1e-9):.0f} pages' worth")
    for sample in r.error_samples:
        lines.append(f"error: {sample}")
    ok = r.api_cpu_ms < TARGET_CPU_MS and r.p95_ms < TARGET_P95_MS and r.heartbeats and not r.errors
    lines.append(f"target < {TARGET_CPU_MS:g} ms API CPU per heartbeat and p95 < {TARGET_P95_MS:g} ms: "
                 f"{'met' if ok else 'not met'}")
    return "\n".join(lines)
