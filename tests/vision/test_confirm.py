import numpy as np

from api.schemas import IssueType
from vision.confirm import ConfirmRule, EventConfirmer
from vision.detections import Detections

ISSUE = {0: IssueType.street_vending, 1: IssueType.clutter, 3: None}


def confirmer(**rule) -> EventConfirmer:
    rules = {t: ConfirmRule(**{"confirm_seconds": 5, "min_hits": 3, "clear_seconds": 20, **rule}) for t in IssueType}
    return EventConfirmer(ISSUE.get, lambda c: 0.4, rules)


def dets(*rows) -> Detections:
    """rows of (tracker_id, class_id, confidence, box)"""
    if not rows:
        return Detections.empty()
    return Detections(
        xyxy=np.array([r[3] for r in rows]),
        confidence=np.array([r[2] for r in rows]),
        class_id=np.array([r[1] for r in rows]),
        tracker_id=np.array([r[0] for r in rows]),
    )


BOX = (100, 100, 200, 220)


def test_issue_confirmed_once_after_confirmation_time():
    c = confirmer()
    events = []
    for t in range(0, 30):
        events += c.update(dets((1, 0, 0.8, BOX)), float(t))
    assert len(events) == 1
    ev = events[0]
    assert ev.issue_type == IssueType.street_vending
    assert ev.confirmed_at == 5.0 and ev.first_seen == 0.0
    assert ev.box == tuple(float(v) for v in BOX)


def test_short_lived_detection_is_not_an_event():
    c = confirmer()
    events = []
    for t in range(4):  # gone before 5 s
        events += c.update(dets((1, 0, 0.9, BOX)), float(t))
    for t in range(4, 30):
        events += c.update(dets(), float(t))
    assert events == []


def test_low_scores_and_context_classes_never_confirm():
    c = confirmer()
    events = []
    for t in range(30):
        events += c.update(dets((1, 0, 0.3, BOX), (2, 3, 0.95, (300, 300, 350, 380))), float(t))
    assert events == []


def test_min_hits_required_even_when_time_has_passed():
    c = confirmer(min_hits=3)
    assert c.update(dets((1, 1, 0.9, BOX)), 0.0) == []
    assert c.update(dets((1, 1, 0.9, BOX)), 10.0) == []  # 2 hits only
    assert len(c.update(dets((1, 1, 0.9, BOX)), 11.0)) == 1


def test_new_track_over_reported_region_does_not_report_again():
    c = confirmer()
    events = []
    for t in range(10):
        events += c.update(dets((1, 0, 0.8, BOX)), float(t))
    # the tracker lost the stall and re-created it with a new id, slightly shifted
    for t in range(10, 30):
        events += c.update(dets((7, 0, 0.8, (105, 98, 204, 223))), float(t))
    assert len(events) == 1


def test_issue_gone_past_clear_time_reports_again_on_return():
    c = confirmer(clear_seconds=20)
    events = []
    for t in range(10):
        events += c.update(dets((1, 0, 0.8, BOX)), float(t))
    for t in range(10, 40):
        events += c.update(dets(), float(t))
    for t in range(40, 50):
        events += c.update(dets((9, 0, 0.8, BOX)), float(t))
    assert len(events) == 2


def test_two_issues_of_different_types_give_two_events():
    c = confirmer()
    events = []
    for t in range(10):
        events += c.update(dets((1, 0, 0.8, BOX), (2, 1, 0.8, BOX)), float(t))
    assert sorted(e.issue_type for e in events) == [IssueType.clutter, IssueType.street_vending]


def test_fragment_inside_reported_region_is_the_same_issue():
    c = confirmer()
    big = (100, 100, 400, 300)
    events = []
    for t in range(10):
        events += c.update(dets((1, 1, 0.8, big)), float(t))
    for t in range(10, 30):  # the water now detected as a smaller piece of the same patch
        events += c.update(dets((4, 1, 0.8, (120, 200, 220, 290))), float(t))
    assert len(events) == 1


def test_single_frame_spikes_never_confirm():
    # a weak detection (say, a parked van) with one high score every fourth frame: its median stays low
    c = confirmer(min_hits=2)
    events = []
    for t in range(40):
        events += c.update(dets((1, 0, 0.95 if t % 4 == 0 else 0.2, BOX)), float(t))
    assert events == []


def test_median_over_threshold_confirms_despite_dips():
    c = confirmer(score_window=5)
    events = []
    scores = [0.8, 0.3, 0.7, 0.8, 0.2, 0.9, 0.8, 0.75, 0.3, 0.8]  # mostly strong, with dips
    for t, s in enumerate(scores):
        events += c.update(dets((1, 0, s, BOX)), float(t))
    assert len(events) == 1


def test_window_of_one_is_a_plain_threshold():
    c = confirmer(score_window=1, min_hits=1, confirm_seconds=0)
    assert len(c.update(dets((1, 0, 0.95, BOX)), 0.0)) == 1


def test_the_clock_stepping_back_does_not_delay_confirmation():
    """Frame times are wall-clock; an NTP step back of an hour made an issue wait an hour."""
    c = confirmer()
    events = c.update(dets((1, 0, 0.8, BOX)), 10_000.0) + c.update(dets((1, 0, 0.8, BOX)), 10_001.0)
    for t in range(2, 8):  # the clock now reads an hour earlier; the stall stays
        events += c.update(dets((1, 0, 0.8, BOX)), 10_000.0 - 3600 + t)
    assert len(events) == 1
    assert events[0].confirmed_at - events[0].first_seen == 5.0  # 5 s of presence, as the rule says


def test_nan_scores_never_confirm():
    c = confirmer()
    events = []
    for t in range(10):
        events += c.update(dets((1, 0, float("nan"), BOX)), float(t))
    assert events == []


def test_a_reported_issue_is_recognised_after_the_camera_changes_resolution():
    """Remembered boxes were in the old frame's pixels: 1080p → 720p reported the stall again."""
    c = confirmer()
    events = []
    for t in range(8):
        events += c.update(dets((1, 0, 0.8, (1152, 648, 1536, 972))), float(t))
    c.rescale(1280 / 1920, 720 / 1080)
    for t in range(8, 20):  # the tracker starts over at the new size: a new id
        events += c.update(dets((2, 0, 0.8, (768, 432, 1024, 648))), float(t))
    assert len(events) == 1
