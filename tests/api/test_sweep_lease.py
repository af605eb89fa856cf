"""The periodic sweep runs once per interval across API processes (a lease in the database)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlmodel import Session

from api.db import get_engine, upgrade_database
from api.fleet_models import SweepLease
from api.sweep_lease import take_lease
from streams.camera_server import free_port
from tests.support.servers import wait_until_answers

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=timezone.utc)


def test_one_holder_per_interval(backend):
    engine = get_engine(backend.database_url)
    with Session(engine) as a, Session(engine) as b:
        assert take_lease(a, "sweep", 60, now=T0, holder="a")
        assert not take_lease(b, "sweep", 60, now=T0, holder="b")
        assert not take_lease(b, "sweep", 60, now=T0 + timedelta(seconds=30), holder="b")
        assert take_lease(b, "sweep", 60, now=T0 + timedelta(seconds=55), holder="b")  # a slept a little long
        assert not take_lease(a, "sweep", 60, now=T0 + timedelta(seconds=60), holder="a")
        assert take_lease(a, "sweep", 60, now=T0 + timedelta(seconds=120), holder="a")
        lease = a.get(SweepLease, "sweep")
        assert lease is not None and (lease.holder, lease.rounds) == ("a", 3)


def _serve(url: str, workdir, port: int) -> subprocess.Popen:
    env = {**os.environ, "STREETWATCH_DATABASE_URL": url, "STREETWATCH_SWEEP_INTERVAL_SECONDS": "1",
           "STREETWATCH_EVIDENCE_DIR": str(workdir / "evidence"), "STREETWATCH_SECRET_KEY": "k" * 40}
    for name in ("STREETWATCH_S3_ENDPOINT", "STREETWATCH_S3_ACCESS_KEY", "STREETWATCH_S3_SECRET_KEY"):
        env.pop(name, None)
    return subprocess.Popen([sys.executable, "-m", "streetwatch_cli", "api", "serve", "--port", str(port),
                             "--no-access-log"], env=env, cwd=workdir, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def _lease(engine) -> tuple[str, int]:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT holder, rounds FROM sweep_lease WHERE name = 'sweep'")).one()
    return row.holder, row.rounds


def test_two_api_processes_sweep_once_per_interval_and_one_takes_over(postgres_url, tmp_path):
    engine = get_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade_database(postgres_url)
    ports = [free_port(), free_port()]
    procs = [_serve(postgres_url, tmp_path, port) for port in ports]
    try:
        for port, proc in zip(ports, procs):
            wait_until_answers(f"http://127.0.0.1:{port}/healthz", proc)
        time.sleep(1.5)
        _, first = _lease(engine)
        started = time.monotonic()
        time.sleep(6)
        holder, last = _lease(engine)
        elapsed = time.monotonic() - started
        # One round per second (0.9 s lease) for both processes together; each alone sweeps
        # once a second, so without the lease there would be two.
        assert elapsed - 2 <= last - first <= elapsed / 0.9 + 1, (first, last, elapsed)
        pids = {str(p.pid) for p in procs}
        assert holder.rsplit(":", 1)[1] in pids

        survivor = next(p for p in procs if str(p.pid) != holder.rsplit(":", 1)[1])
        victim = next(p for p in procs if p is not survivor)
        victim.kill()
        victim.wait(10)
        time.sleep(3)
        holder, after = _lease(engine)
        assert holder.rsplit(":", 1)[1] == str(survivor.pid) and after >= last + 2
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)


class _Rounds:
    """A stop event for the sweeper's loop that lets `n` rounds run, then stops it."""

    def __init__(self, n: int):
        self.left = n

    def wait(self, timeout: float) -> bool:
        self.left -= 1
        return self.left < 0


def test_only_the_round_s_winner_asks_for_the_orphan_lease(monkeypatch, tmp_path):
    """A process that lost the sweep round goes back to sleep: it does not also ask for the
    hourly orphan lease (a wake costs more than the statements, api/serve.py)."""
    from types import SimpleNamespace

    from sqlalchemy import create_engine

    from api import sweeper

    asked: list[str] = []
    wins = iter([False, True])  # this process loses the first round and wins the second
    monkeypatch.setattr(sweeper, "take_lease", lambda session, name, interval: asked.append(name) or
                        (next(wins) if name == "sweep" else False))
    monkeypatch.setattr(sweeper, "sweep_all", lambda session, settings: {})
    app = SimpleNamespace(state=SimpleNamespace(engine=create_engine(f"sqlite:///{tmp_path / 'x.db'}"),
                                                settings=None, store=None))
    sweeper._loop(app, 60.0, _Rounds(2))  # type: ignore[arg-type]
    assert asked == ["sweep", "sweep", "orphans"]
