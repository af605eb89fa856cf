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
