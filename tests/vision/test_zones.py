import numpy as np

from vision.detections import Detections, box_iou
from vision.zones import filter_zones

ROAD = [(0, 300), (960, 300), (960, 540), (0, 540)]


def two() -> Detections:
    # one box standing on the road (bottom at y=400), one up on a facade (bottom at y=200)
    return Detections(np.array([[100, 300, 200, 400], [500, 100, 600, 200]]), np.array([0.9, 0.9]), np.array([0, 1]))


def test_zone_keeps_only_anchored_inside_for_its_types():
    kept = filter_zones(two(), ["flooding", "clutter"], [(ROAD, ["flooding"])], [])
    assert kept.xyxy.tolist() == [[100, 300, 200, 400]]
    # a zone for another type excludes the road box too
    assert len(filter_zones(two(), ["flooding", "clutter"], [(ROAD, ["clutter"])], [])) == 0
    # an empty type list means every type
    assert len(filter_zones(two(), ["flooding", "clutter"], [(ROAD, [])], [])) == 1


def test_mask_drops_detections_anchored_inside():
    kept = filter_zones(two(), ["clutter", "clutter"], [], [[(450, 150), (650, 150), (650, 250), (450, 250)]])
    assert kept.xyxy.tolist() == [[100, 300, 200, 400]]


def test_no_zones_no_masks_keeps_everything():
    assert len(filter_zones(two(), ["clutter", "clutter"], [], [])) == 2


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]]))
    assert np.allclose(iou, [[1.0, 1 / 3, 0.0]])
