"""Unit tests of the dedup arithmetic."""

from __future__ import annotations

import pytest

from api.geometry import best_match, iou, scale_box


def test_iou():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou((0, 0, 10, 10), (2, 2, 4, 4)) == pytest.approx(4 / 100)  # one inside the other
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0  # touching edges
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert iou((5, 5, 5, 5), (5, 5, 5, 5)) == 0.0  # degenerate, no division by zero
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == iou((5, 0, 15, 10), (0, 0, 10, 10))


def test_best_match_picks_the_highest_overlap_above_threshold():
    orders = [("left", (0.0, 0.0, 100.0, 100.0)), ("right", (120.0, 0.0, 220.0, 100.0))]
    assert best_match((80, 0, 200, 100), orders, 0.3) == "right"
    assert best_match((0, 0, 100, 100), orders, 0.3) == "left"
    assert best_match((0, 0, 100, 25), orders, 0.3) is None  # IoU 0.25
    assert best_match((0, 0, 100, 25), orders, 0.25) == "left"  # the threshold is inclusive
    assert best_match((0, 0, 10, 10), [], 0.3) is None


def test_best_match_ties_go_to_the_first_candidate():
    twins = [("older", (0.0, 0.0, 10.0, 10.0)), ("newer", (0.0, 0.0, 10.0, 10.0))]
    assert best_match((0, 0, 10, 10), twins, 0.3) == "older"


def test_scale_box_maps_a_box_between_frame_sizes():
    assert scale_box((100, 50, 200, 150), (320, 240), (640, 480)) == (200, 100, 400, 300)
    assert scale_box((100, 50, 200, 150), (640, 480), (640, 480)) == (100, 50, 200, 150)
