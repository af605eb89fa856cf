"""Where a built dataset goes: a new folder, or one holding a previous build, nothing else.

A build is written beside its destination and then swapped in, which replaces the old folder
whole. That is right for last week's build of the same recipe and a disaster for `.`, `..`
or a folder of someone's photos, so anything that is not a previous build is refused before
any work starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# What the builders write (datasets/build.py, datasets/synth/generate.py); ultralytics adds
# its label caches inside labels/.
BUILD_ENTRIES = {"data.yaml", "images", "labels", "recipe.yaml", "sources.csv", "sources.sha256"}


class OutputInUse(ValueError):
    """str() is one line naming the folder and what it holds."""


def check_replaceable(out: Path) -> None:
    """Raise OutputInUse unless `out` is missing, empty, or a previous build."""
    out = Path(out)
    if not out.exists():
        return
    if not out.is_dir():
        raise OutputInUse(f"{out}: exists and is not a folder")
    entries = {p.name for p in out.iterdir()}
    if entries and ("data.yaml" not in entries or entries - BUILD_ENTRIES):
        strange = sorted(entries - BUILD_ENTRIES) or ["no data.yaml"]
        raise OutputInUse(f"{out}: not empty and not a dataset built here ({', '.join(strange[:3])}); "
                          "give a new folder or remove it yourself")


def swap_in(built: Path, out: Path) -> None:
    """Put the finished build at `out`, replacing a previous build there."""
    check_replaceable(out)  # again: the folder may have been filled while we built
    if out.exists():
        shutil.rmtree(out)
    os.replace(built, out)
