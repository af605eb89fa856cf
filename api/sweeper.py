"""The periodic sweep (SLA escalation, clearing, blind cameras and silent boxes), run in a
background thread of each API process.

It runs once per interval across all processes and hosts: each round goes to the process that
takes the database lease (api/sweep_lease.py). Should two ever sweep at once, each step still
sets its flag with a conditional UPDATE, so each escalation and alert happens once."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from sqlmodel import Session

from api.dispatch import sweep
from api.fleet_alerts import sweep_fleet
from api.orphans import SWEEP_INTERVAL_S as ORPHAN_SWEEP_INTERVAL_S, sweep_orphans
from api.settings import Settings
from api.sweep_lease import take_lease

log = logging.getLogger("streetwatch.api")


@asynccontextmanager
async def sweeper_lifespan(app: FastAPI) -> AsyncIterator[None]:
    interval = app.state.settings.sweep_interval_seconds
    stop = threading.Event()
    thread = None
    if interval > 0:
        thread = threading.Thread(target=_loop, args=(app, interval, stop), name="sla-sweep", daemon=True)
        thread.start()
    try:
        yield
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=10)


def _loop(app: FastAPI, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        won = False
        try:
            with Session(app.state.engine) as session:
                won = take_lease(session, "sweep", interval)
                if won:
                    sweep_all(session, app.state.settings)
        except Exception:  # a database hiccup must not kill the sweeper; the next round retries
            log.exception("SLA sweep failed; retrying in %.0f s", interval)
        if not won:
            # The round's winner also asks for the hourly lease: the others go back to sleep
            # at once (a wake of this thread costs more CPU than its statements, api/serve.py).
            continue
        try:
            with Session(app.state.engine) as session:
                if take_lease(session, "orphans", ORPHAN_SWEEP_INTERVAL_S):  # hourly, one process
                    sweep_orphans(session, app.state.store)
        except Exception:
            log.exception("orphaned evidence sweep failed; retrying in %.0f s", interval)


def sweep_all(session: Session, settings: Settings) -> dict[str, int]:
    """One round: late orders, orders the camera stopped seeing, blind cameras, silent boxes."""
    return {**sweep(session, settings), **sweep_fleet(session, settings)}
