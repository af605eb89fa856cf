"""One sweep per interval across every API process and host: a lease row in the database.

Each process's sweeper wakes every interval and tries to take the lease with a conditional
UPDATE (`expires_at <= now`); the one that wins sweeps and holds the lease for the interval,
the others go back to sleep. It works on SQLite and PostgreSQL alike and needs no connection
held open (an advisory lock would: one per process, for good). The hosts' clocks must agree
to well under the interval (NTP does). A process that dies holding the lease delays the next
sweep by at most one interval.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from api.fleet_models import SweepLease
from api.models import utcnow

HOLDER = f"{socket.gethostname()}:{os.getpid()}"


def take_lease(session: Session, name: str, interval_s: float, now: datetime | None = None,
               holder: str = HOLDER) -> bool:
    """True if this process won this round: it sweeps now, and nobody else until the interval
    has passed. (Slightly less than the interval: sleepers that wake a little early must not
    skip a whole round.)"""
    now = now or utcnow()
    until = now + timedelta(seconds=interval_s * 0.9)
    won = session.execute(update(SweepLease).where(col(SweepLease.name) == name, col(SweepLease.expires_at) <= now)
                          .values(holder=holder, expires_at=until, rounds=SweepLease.rounds + 1)).rowcount
    if won:
        session.commit()
        return True
    session.rollback()
    if session.get(SweepLease, name) is not None:
        session.rollback()
        return False
    session.add(SweepLease(name=name, holder=holder, expires_at=until, rounds=1))
    try:
        session.commit()
        return True
    except IntegrityError:  # another process made the row first: its round
        session.rollback()
        return False
