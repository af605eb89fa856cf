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
