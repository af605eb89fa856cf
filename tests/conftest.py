"""Suite-wide: under pytest-xdist (`make test` runs two workers, each given whole files), the
slowest modules start first, so that neither worker is left with a 2-minute module at the end
while the other has finished. A plain `pytest` run keeps the collection order."""

from __future__ import annotations

import pytest

# The longest modules (seconds of a serial run on the 2-core CI machine, var/logs), longest
# first. A module not listed keeps its place after these; a name here that no longer exists
# is harmless.
SLOW_FIRST = (
    "tests/test_retraining.py",  # ~125 s: five notebooks, two fine-tunes
    "tests/streams/test_outbox_api.py",  # ~90 s: an edge process killed and restarted twice
    "tests/streams/test_fleet_processes.py",  # ~90 s: API, S3 and two edge processes
    "tests/test_end_to_end.py",  # ~70 s: the clip once around, with evidence in S3
    "tests/test_end_to_end_snapshot.py",  # ~65 s
    "tests/streams/test_snapshot_rtsp.py",  # ~60 s: a 20 s GOP camera
    "tests/streams/test_fleet_rollout.py",  # ~35 s
    "tests/benchmarks/test_api_bench.py",  # ~35 s
    "tests/benchmarks/test_fleet_bench.py",  # ~30 s
    "tests/streams/test_fleet_edge.py",  # ~27 s
    "tests/streams/test_camera_snapshots.py",  # ~23 s
    "tests/api/test_schemathesis.py",  # ~16 s
    "tests/api/test_sweep_lease.py",  # ~16 s
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if getattr(config.option, "dist", "no") == "no":
        return
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    # sorted() is stable: within a module, and among the unlisted modules, the order stays.
    items[:] = sorted(items, key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
