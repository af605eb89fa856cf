"""A process's short memory of the cameras its events upserted, so that most events of a
camera skip the camera statement.

Every event used to upsert its camera (insert it, or move its last_seen and the position the
edge reports) and read back what dedup needs: one statement per event, while the row changes
only when a camera is new, moved or placed. For CAMERA_MEMORY_S after a committed upsert, an
event naming the camera exactly as before (name, position, grid) reuses the row read then.
What that costs: the camera's last_seen (`last_event_at` in GET /api/v1/cameras) lags its
newest event by up to CAMERA_MEMORY_S, and a placement (PUT /api/v1/cameras) made through
another API process reaches this one's dedup within it; one made through this process is
forgotten at once (`forget`). A remembered camera whose row is gone (a database emptied or
restored under a running API) fails the event's INSERT, and the event is written again with
the camera upserted (api/events.py).
"""

from __future__ import annotations

import threading
import time

from api.dedup import CameraInfo
from api.schemas import CameraRef

# Well under the 15 min camera-offline threshold and any use of last_event_at; long enough
# that a camera sending an event every few seconds upserts once per several events.
CAMERA_MEMORY_S = 10.0
# Expired entries are dropped when the memory grows past this (a fleet has ~20,000 cameras).
PRUNE_ABOVE = 50_000

_Key = tuple[str, str, float | None, float | None, str | None]
_remembered: dict[_Key, tuple[float, CameraInfo]] = {}
_lock = threading.Lock()


def _key(database: str, ref: CameraRef) -> _Key:
    return database, ref.name, ref.lat, ref.lon, ref.grid_id


def recall(database: str, ref: CameraRef) -> CameraInfo | None:
    """The camera as upserted within CAMERA_MEMORY_S by an event naming it the same way."""
    entry = _remembered.get(_key(database, ref))
    if entry is None or entry[0] <= time.monotonic():
        return None
    return entry[1]


def remember(database: str, ref: CameraRef, camera: CameraInfo) -> None:
    """Call after the transaction that upserted `camera` committed."""
    now = time.monotonic()
    with _lock:
        if len(_remembered) > PRUNE_ABOVE:
            for key in [k for k, (until, _) in _remembered.items() if until <= now]:
                del _remembered[key]
        _remembered[_key(database, ref)] = (now + CAMERA_MEMORY_S, camera)


def forget(name: str | None = None) -> bool:
    """Forget the camera `name` (every database, every way of naming it), or all cameras;
    whether anything was remembered."""
    with _lock:
        keys = [k for k in _remembered if name is None or k[1] == name]
        for key in keys:
            del _remembered[key]
    return bool(keys)
