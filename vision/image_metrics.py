"""Threshold-free image-level figures: does the photo show the issue, ranked by the model's best
score for it. A city cares whether a photo becomes an order, not whether a box is tight, and a
ranking figure says whether *any* threshold would work, not only the one in the manifest.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _sorted(scores: Sequence[float], truths: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=float)
    t = np.asarray(truths, dtype=bool)
    if s.shape != t.shape:
        raise ValueError(f"{s.size} scores for {t.size} labels")
    order = np.argsort(-s, kind="stable")
    return s[order], t[order]


def precision_recall(scores: Sequence[float], truths: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each distinct score (ties are one step: a threshold cannot split them)."""
    s, t = _sorted(scores, truths)
    tp = np.cumsum(t)
    fp = np.cumsum(~t)
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    tp, fp = tp[last_of_tie], fp[last_of_tie]
    positives = max(int(t.sum()), 1)
    return tp / np.maximum(tp + fp, 1), tp / positives


def average_precision(scores: Sequence[float], truths: Sequence[bool]) -> float:
    """Area under the step PR curve (as scikit-learn's average_precision_score): the mean precision
    at each positive's rank. The base rate (share of positives) is what a random ranking gets."""
    if not any(truths):
        return float("nan")
    precision, recall = precision_recall(scores, truths)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def recall_at_precision(scores: Sequence[float], truths: Sequence[bool], min_precision: float) -> tuple[float, float]:
    """(best recall with precision ≥ min_precision, the lowest score threshold that gives it);
    (0.0, inf) when no threshold reaches that precision."""
    if not any(truths):
        return float("nan"), float("inf")
    s, _ = _sorted(scores, truths)
    thresholds = s[np.r_[s[1:] != s[:-1], True]]
    precision, recall = precision_recall(scores, truths)
    ok = np.flatnonzero(precision >= min_precision)
    if ok.size == 0:
        return 0.0, float("inf")
    best = ok[np.argmax(recall[ok])]
    return float(recall[best]), float(thresholds[best])


def summary(scores: Sequence[float], truths: Sequence[bool]) -> dict[str, float]:
    """The figures `streetwatch eval` prints for a set with image-level labels."""
    r85, _ = recall_at_precision(scores, truths, 0.85)
    r90, _ = recall_at_precision(scores, truths, 0.90)
    n = len(truths)
    return {"images": n, "positives": int(sum(truths)), "base_rate": sum(truths) / n if n else float("nan"),
            "ap": average_precision(scores, truths), "recall_at_p85": r85, "recall_at_p90": r90}
