"""The periodic SLA / clearing sweep, run in a background thread of each API process.

Several processes sweeping at once is fine: `api.dispatch.sweep` sets each flag with a
conditional UPDATE, so each escalation happens once."""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from typing import AsyncIterator

from fastapi import FastAPI
from sqlmodel import Session

from api.dispatch import sweep

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
        try:
            with Session(app.state.engine) as session:
                sweep(session, app.state.settings)
        except Exception:  # a database hiccup must not kill the sweeper; the next round retries
            log.exception("SLA sweep failed; retrying in %.0f s", interval)
