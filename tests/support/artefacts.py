"""Read-only test artefacts that are expensive to make (a rendered street clip is ~15 s of CPU)
made once per test run and shared by every module that asks for the same one, also across
pytest-xdist workers: each worker has its own basetemp, but they are siblings under one run
folder, and a file lock there lets the first worker make the artefact while the others wait.
Only for artefacts no test writes to: a test that changes its input must copy it first."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.getbasetemp()
    # Under xdist basetemp is <run>/popen-gw<N>; the run folder is the one all workers share.
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def shared_artefact(tmp_path_factory: pytest.TempPathFactory, key: str, make: Callable[[Path], Path]) -> Path:
    """The artefact named `key`, made by `make(folder)` in an empty folder of its own the first
    time any test of this run asks for it. `make` returns the artefact's path in that folder."""
    folder = _run_root(tmp_path_factory) / "shared-artefacts" / key
    done = folder.with_suffix(".done")  # holds the artefact's path once `make` has returned
    folder.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder.with_suffix(".lock"))):
        if not done.exists():
            folder.mkdir(exist_ok=True)
            made = make(folder)
            done.write_text(str(made))
    return Path(done.read_text())
