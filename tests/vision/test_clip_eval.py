"""Events against a clip's timeline: each issue is credited once, in order, and only while it
is on screen; two issues of one type are two entries."""

from __future__ import annotations

from vision.clip_eval import match_event


def test_events_are_credited_to_the_issue_on_screen():
    expected = {"clutter": {"issue_type": "clutter", "appear_s": 2.0, "disappear_s": 6.0},
                "clutter#2": {"issue_type": "clutter", "appear_s": 10.0, "disappear_s": 20.0},
                "flooding": {"issue_type": "flooding", "appear_s": 5.0, "disappear_s": 20.0}}
    found = {k: None for k in expected}
    false: list[str] = []
    for kind, t in [("flooding", 1.0),  # before the water appeared: false, not a -4 s "find"
                    ("clutter", 4.0), ("clutter", 5.0),  # the second event of the first pile: false
                    ("clutter", 8.0),  # between the piles, after the slack: false
                    ("clutter", 12.0), ("flooding", 9.0)]:
        match_event(expected, found, false, kind, t, slack_s=1.0)
    assert found == {"clutter": 2.0, "clutter#2": 2.0, "flooding": 4.0}
    assert false == ["flooding@1s", "clutter@5s", "clutter@8s"]
