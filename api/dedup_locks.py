"""Which sightings must wait for each other while dedup decides: the locks of one sighting.

Two sightings of one issue type posted at once must not both open an order when, one after
the other, the second would have joined the first's. That happens only if (a) they come from
the same camera (the box rule), or (b) they lie within the type's dedup radius R of each other
(the distance rule). So on PostgreSQL a sighting takes advisory locks (held until commit and
shared by every API process) on:

* its camera, for (a);
* the three latitude bands of height R around its position (its own and both neighbours),
  for (b): two points within R metres are at most R apart in latitude, so they fall in the
  same or adjacent bands, and each holds the other's band;
* the issue type as a whole, in *shared* mode, which costs nothing among those sightings.

One case escapes the bands: a camera with ground points (api/location.py) places each box
on the map, so a sighting can join or reopen an order of its own camera whose recorded
position lies further than R from its own. Those sightings take the issue-type lock in
*exclusive* mode, waiting for (and holding off) every other sighting of the type, which is
what every sighting did before this module. Every transaction takes the type lock first and
then the others in sorted order, so two of them never wait for each other in a cycle.

SQLite has one writer at a time (BEGIN IMMEDIATE), so there is nothing to add there.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache

from sqlalchemy import text
from sqlmodel import Session

from api.db import is_sqlite
from api.dedup import METRES_PER_DEGREE_LAT, Sighting
from api.driver_pipeline import Step
from api.driver_sql import DriverStatement
from api.settings import Settings


def lock_key(*parts: object) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock, from the parts that name the lock."""
    digest = hashlib.sha256("\n".join(["streetwatch-dedup", *map(str, parts)]).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def sighting_locks(settings: Settings, s: Sighting) -> tuple[int, bool, list[int]]:
    """(issue-type key, whether it is taken exclusively, the other keys in sorted order)."""
    kind = s.issue_type.value
    exclusive = s.camera is not None and bool(s.camera.ground_points)
    keys = set()
    if s.camera is not None:
        keys.add(lock_key(kind, "camera", s.camera.id))
    if s.lat is not None and not exclusive:
        band_m = max(1.0, settings.policy(s.issue_type).dedup_radius_m)
        band = math.floor(s.lat * METRES_PER_DEGREE_LAT / band_m)
        keys.update(lock_key(kind, "band", band + d) for d in (-1, 0, 1))
    return lock_key(kind), exclusive, sorted(keys)


def lock_step(session: Session, settings: Settings, s: Sighting) -> Step | None:
    """The statement that takes the sighting's dedup locks in the current write transaction,
    for the caller to send before its dedup query (api/dedup.py `find`, in the same round
    trip: api/driver_pipeline.py); None on SQLite, where the transaction began with BEGIN
    IMMEDIATE and is the only writer."""
    if is_sqlite(session):
        return None
    type_key, exclusive, keys = sighting_locks(settings, s)
    return _lock_statement(exclusive, len(keys)), {"t": type_key, **{f"k{i}": k for i, k in enumerate(keys)}}


@cache
def _lock_statement(exclusive: bool, n: int) -> DriverStatement:
    # All of them in one statement: PostgreSQL evaluates a select list left to right.
    first = "pg_advisory_xact_lock(:t)" if exclusive else "pg_advisory_xact_lock_shared(:t)"
    return DriverStatement(text("SELECT " + ", ".join([first, *(f"pg_advisory_xact_lock(:k{i})" for i in range(n))])))
