"""Event-level evaluation on a rendered clip: which issues of the timeline became events, and when.

Runs the edge's own frame processing (detector → zones → tracker → confirmer) over the
clip's frames at the sampling interval, without RTSP or an API, and compares the events
with the clip's ground-truth timeline (clip.json beside clip.mp4).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import av

from streams.config import EdgeConfig
from streams.pipeline import EdgePipeline
from vision.detector import load_detector
from vision.manifest import load_manifest


@dataclass
class ClipResult:
    # timeline issue → seconds from appearance to event (None: missed); keyed by issue type,
    # "clutter#2" for the second issue of a type
    found: dict[str, float | None]
    false_events: list[str]  # events no visible issue of the timeline accounts for, or repeated ones

    @property
    def ok(self) -> bool:
        return all(v is not None for v in self.found.values()) and not self.false_events


class _Discard:
    def submit(self, item) -> None:
        pass


def evaluate_clip(model_dir: Path, clip: Path, sample_interval_s: float = 1.0, confirm_seconds: float = 5.0) -> ClipResult:
    timeline = json.loads(Path(clip).with_suffix(".json").read_text())
    manifest = load_manifest(model_dir)
    issues = {t: {"confirm_seconds": confirm_seconds, "min_hits": 3} for t in ("street_vending", "clutter", "flooding")}
    config = EdgeConfig.model_validate({"model": str(model_dir), "issues": issues,
                                        "cameras": [{"name": "clip", "url": str(Path(clip).resolve())}]})
    pipeline = EdgePipeline(config, detector=load_detector(manifest), uploader=_Discard())
    expected: dict[str, dict] = {}
    for issue in timeline["issues"]:
        n = sum(1 for e in expected.values() if e["issue_type"] == issue["issue_type"])
        expected[issue["issue_type"] + (f"#{n + 1}" if n else "")] = issue
    found: dict[str, float | None] = {key: None for key in expected}
    false_events: list[str] = []
    with av.open(str(clip)) as container:
        next_t = 0.0
        for frame in container.decode(video=0):
            t = float(frame.time or 0.0)
            if t + 1e-6 < next_t:
                continue
            next_t = t + sample_interval_s
            for item in pipeline.process_frame("clip", frame.to_ndarray(format="bgr24"), t):
                match_event(expected, found, false_events, item.event.issue_type.value, t, sample_interval_s)
    return ClipResult(found, false_events)


def match_event(expected: dict[str, dict], found: dict[str, float | None], false_events: list[str], kind: str,
                t: float, slack_s: float) -> None:
    """Credit an event of `kind` at clip time `t` to the earliest issue of that type that is on
    screen (or left less than `slack_s` ago) and not yet found; else it is a false event, as
    is one before any such issue appeared (it was counted as found, with a negative delay)."""
    key = next((k for k, e in expected.items() if e["issue_type"] == kind and found[k] is None
                and e["appear_s"] <= t < e["disappear_s"] + slack_s), None)
    if key is not None:
        found[key] = round(t - expected[key]["appear_s"], 1)
    else:
        false_events.append(f"{kind}@{t:.0f}s")
