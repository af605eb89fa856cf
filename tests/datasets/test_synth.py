import numpy as np

from datasets.synth.generate import yolo_line
from datasets.synth.scene import CLASSES, random_scene, render_scene


def test_same_seed_same_image_and_labels():
    a_img, a_labels = render_scene(random_scene(123, 320, 180))
    b_img, b_labels = render_scene(random_scene(123, 320, 180))
    assert np.array_equal(a_img, b_img)
    assert [(lb.class_id, lb.box) for lb in a_labels] == [(lb.class_id, lb.box) for lb in b_labels]


def test_different_seeds_differ():
    a_img, _ = render_scene(random_scene(1, 320, 180))
    b_img, _ = render_scene(random_scene(2, 320, 180))
    assert not np.array_equal(a_img, b_img)


def test_forced_issues_are_labelled_inside_the_frame():
    found = set()
    for seed in range(6):
        img, labels = render_scene(random_scene(seed, 320, 180, issues={"vending": 1.0, "clutter": 1.0, "flooding": 1.0}))
        assert img.shape == (180, 320, 3)
        for lb in labels:
            x1, y1, x2, y2 = lb.box
            assert 0 <= x1 < x2 <= 320 and 0 <= y1 < y2 <= 180
            line = yolo_line(lb, 320, 180).split()
            assert all(0 <= float(v) <= 1 for v in line[1:])
            found.add(CLASSES[lb.class_id])
    assert {"vending", "clutter", "flooding"} <= found


def test_labels_are_of_what_shows_not_of_what_nearer_objects_hide():
    """Objects are painted far to near: a pile behind a parked car kept its whole box (or a
    box at all, when the car hid it), teaching the model to see rubbish in cars."""
    from datasets.synth.background import random_look
    from datasets.synth.clip import demo_camera
    from datasets.synth.scene import Placed, Scene, render_layers

    cam, look = demo_camera(640, 360), random_look(np.random.default_rng(7), "day")
    car = Placed("car", 3.8, 8.0, 11)

    def label(*objects: Placed):
        boxes = [lb.box for lb in render_layers(Scene(cam, look, list(objects)))[1] if CLASSES[lb.class_id] == "clutter"]
        return boxes[0] if boxes else None

    behind, beside = Placed("clutter", 3.8, 10.0, 5), Placed("clutter", 2.5, 10.0, 5)
    assert label(behind) is not None and label(behind, car) is None  # wholly hidden: no label
    alone, half = label(beside), label(beside, car)
    assert half is not None and half[0] == alone[0] and half[2] < alone[2] - 20  # its right part is behind the car
    assert label(Placed("clutter", 1.0, 10.0, 5), car) == label(Placed("clutter", 1.0, 10.0, 5))  # clear of it


def test_a_clip_with_two_issues_of_one_kind_draws_and_times_each_on_its_own(tmp_path):
    import json

    import av

    from datasets.synth.clip import TimelineIssue, render_clip

    issues = (TimelineIssue("clutter", 1.0, 2.5, x=-5.6, z=14.0, seed=4),
              TimelineIssue("clutter", 3.0, 40.0, x=6.2, z=13.0, seed=5))
    clip = render_clip(tmp_path / "two.mp4", seconds=5, fps=5, width=320, height=180, issues=issues,
                       negatives=False)
    timeline = json.loads(clip.with_suffix(".json").read_text())["issues"]
    assert [(e["class_name"], e["appear_s"], e["disappear_s"]) for e in timeline] == \
        [("clutter", 1.0, 2.5), ("clutter", 3.0, 5.0)]  # one entry each; the end within the clip
    first, second = (tuple(int(v) for v in e["box"]) for e in timeline)
    assert first[2] < second[0]  # left pile, right pile

    with av.open(str(clip)) as container:
        frames = {round(float(f.time), 1): f.to_ndarray(format="bgr24").astype(int) for f in container.decode(video=0)}

    def change(t: float, box) -> float:  # how much the box's pixels differ from the empty street
        x1, y1, x2, y2 = box
        return float(np.abs(frames[t][y1:y2, x1:x2] - frames[0.4][y1:y2, x1:x2]).mean())

    assert change(1.6, first) > 10 and change(1.6, second) < 4  # only the first pile
    assert change(4.0, first) < 4 and change(4.0, second) > 10  # only the second


def test_objects_are_never_placed_inside_each_other():
    """A stall or a pile used to stand where a car was parked (2 % of objects), drawn into it."""
    from datasets.synth.scene import _overlaps

    for seed in range(150):
        objects = random_scene(seed, 320, 180).objects
        assert not any(_overlaps(a, b) for i, a in enumerate(objects) for b in objects[i + 1:]), seed
