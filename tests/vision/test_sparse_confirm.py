"""Confirmation and clearing from sparse samples (one frame per 30 s), by region, no tracker."""

from __future__ import annotations

import numpy as np

from api.schemas import IssueType
from vision.confirm import ConfirmRule
from vision.detections import Detections
from vision.sparse_confirm import SparseConfirmer

STALL = (100.0, 100.0, 200.0, 220.0)
WATER = (400.0, 300.0, 600.0, 360.0)
KINDS = {0: IssueType.street_vending, 1: IssueType.flooding}


def dets(*found: tuple[tuple[float, float, float, float], float, int]) -> Detections:
    if not found:
        return Detections.empty()
    return Detections(xyxy=np.array([b for b, _, _ in found], dtype=np.float32),
                      confidence=np.array([c for _, c, _ in found], dtype=np.float32),
                      class_id=np.array([k for _, _, k in found]))


def confirmer(**rule) -> SparseConfirmer:
    defaults = dict(confirm_seconds=60, min_hits=3, clear_seconds=120, sample_window=5)
    rules = {t: ConfirmRule(**(defaults | rule)) for t in KINDS.values()}
    return SparseConfirmer(KINDS.get, lambda cls: 0.5, rules)


def run(c: SparseConfirmer, seen: list[bool], box=STALL, every_s: float = 30.0, jitter: float = 0.0, start: float = 0.0):
    """Feed one sample per `every_s`; returns [(time, events)] of the samples that confirmed."""
    out = []
    for i, present in enumerate(seen):
        t = start + i * every_s
        shift = jitter * (i % 3)  # the box moves a little between samples, as detections do
        moved = tuple(v + shift for v in box)
        found = c.update(dets((moved, 0.8, 0)) if present else dets(), t)
        if found:
            out.append((t, found))
    return out


def test_confirmed_when_seen_in_n_of_m_samples_over_the_confirmation_time():
    c = confirmer(confirm_seconds=60, min_hits=3)
    # seen at 0, 30, (missed at 60), 90: 3 of the last 4 samples, 90 s after the first hit
    found = run(c, [True, True, False, True, True], jitter=4)
    assert [t for t, _ in found] == [90.0]
    event = found[0][1][0]
    assert event.issue_type is IssueType.street_vending and event.first_seen == 0.0 and event.confirmed_at == 90.0
    assert event.tracker_id >= 1


def test_not_before_the_confirmation_time_even_with_enough_hits():
    c = confirmer(confirm_seconds=300, min_hits=3)
    found = run(c, [True] * 12)  # hits at 0..330 s
    assert [t for t, _ in found] == [300.0]


def test_a_flicker_below_n_of_m_never_confirms_and_is_given_up():
    c = confirmer(confirm_seconds=30, min_hits=3, sample_window=5)
    assert run(c, [True, False, False, False, False, True, False, False, False, False]) == []
    assert c.regions == 0  # a full window with fewer than 3 hits: forgotten


def test_one_event_while_the_issue_stays_and_a_missed_detection_does_not_clear_it():
    c = confirmer(confirm_seconds=60, min_hits=3, clear_seconds=120)
    seen = [True] * 4 + [False] + [True] * 3 + [False, False] + [True] * 4  # 14 samples, 7 minutes
    found = run(c, seen, jitter=5)
    assert len(found) == 1


def test_cleared_after_the_clear_time_and_enough_misses_then_a_return_is_a_new_event():
    c = confirmer(confirm_seconds=60, min_hits=3, clear_seconds=120, sample_window=5)
    first = run(c, [True] * 4)
    assert len(first) == 1
    # gone for 5 samples (150 s > 120 s and 3 misses in a row): the region is cleared
    assert run(c, [False] * 5, start=120.0) == []
    assert c.regions == 0
    again = run(c, [True] * 4, start=270.0)
    assert len(again) == 1 and again[0][1][0].event_id != first[0][1][0].event_id


def test_two_issues_in_different_places_are_two_events_and_types_do_not_mix():
    c = confirmer(confirm_seconds=30, min_hits=2)
    events = []
    for i in range(3):
        events += c.update(dets((STALL, 0.9, 0), (WATER, 0.9, 1), (STALL, 0.9, 1)), i * 30.0)
    kinds = sorted((e.issue_type.value, e.box) for e in events)
    assert [k for k, _ in kinds] == ["flooding", "flooding", "street_vending"]


def test_scores_below_the_threshold_are_no_hits():
    c = confirmer(confirm_seconds=0, min_hits=1)
    assert c.update(dets((STALL, 0.3, 0)), 0.0) == [] and c.regions == 0
    assert len(c.update(dets((STALL, 0.7, 0)), 30.0)) == 1


def test_a_clock_stepped_back_keeps_the_regions():
    c = confirmer(confirm_seconds=60, min_hits=3)
    run(c, [True, True], start=10_000.0)
    found = run(c, [True, True], start=10_000.0 - 3600.0 + 60.0)  # NTP stepped back an hour
    assert len(found) == 1 and found[0][1][0].confirmed_at - found[0][1][0].first_seen >= 60


def test_rescale_follows_a_resolution_change():
    c = confirmer(confirm_seconds=60, min_hits=3)
    run(c, [True, True])
    c.rescale(2.0, 2.0)
    found = run(c, [True], box=tuple(v * 2 for v in STALL), start=60.0)
    assert len(found) == 1 and found[0][1][0].first_seen == 0.0
