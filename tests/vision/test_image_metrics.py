"""Threshold-free image-level figures: AP of the ranking and the best recall at a precision."""

import math

import pytest

from vision.image_metrics import average_precision, recall_at_precision, summary


def test_ap_is_the_mean_precision_at_each_positives_rank():
    # ranks: + - + -  → precision 1/1 at the first positive, 2/3 at the second
    assert average_precision([0.9, 0.8, 0.7, 0.1], [True, False, True, False]) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert average_precision([0.1, 0.8, 0.9], [True, True, False]) == pytest.approx((1 / 2 + 2 / 3) / 2)


def test_tied_scores_are_one_step_a_threshold_cannot_split():
    """Every image with no detection scores 0: ranking them by file order would invent AP."""
    tied = average_precision([0.0, 0.0, 0.0, 0.0], [True, False, True, False])
    assert tied == pytest.approx(0.5)  # the base rate, whatever order the files came in
    assert average_precision([0.0, 0.0, 0.0, 0.0], [False, True, False, True]) == pytest.approx(tied)


def test_recall_at_precision_picks_the_lowest_threshold_that_keeps_the_precision():
    scores = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5]
    truths = [True, True, False, True, True, False]
    recall, threshold = recall_at_precision(scores, truths, 0.75)
    assert (recall, threshold) == (1.0, 0.6)  # 4 of 5 above 0.6 are right: 0.8
    recall, threshold = recall_at_precision(scores, truths, 0.85)
    assert (recall, threshold) == (0.5, 0.9)
    assert recall_at_precision([0.9, 0.1], [False, True], 0.85) == (0.0, math.inf)


def test_summary_names_the_base_rate_and_refuses_mismatched_lengths():
    s = summary([0.9, 0.2, 0.1], [True, False, True])
    assert s["images"] == 3 and s["positives"] == 2 and s["base_rate"] == pytest.approx(2 / 3)
    assert math.isnan(summary([0.5], [False])["ap"])
    with pytest.raises(ValueError, match="2 scores for 3 labels"):
        average_precision([0.1, 0.2], [True, False, True])
