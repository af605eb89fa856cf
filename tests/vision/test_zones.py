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


def test_anchor_point_is_configurable_per_area():
    from vision.zones import Area

    # a water patch whose bottom edge dips out of the road zone but whose centre is inside
    water = Detections(np.array([[100, 250, 300, 320]]), np.array([0.9]), np.array([2]))
    upper = [(0, 200), (960, 200), (960, 300), (0, 300)]
    assert len(filter_zones(water, ["flooding"], [Area.make(upper, ["flooding"])], [])) == 0  # bottom centre
    assert len(filter_zones(water, ["flooding"], [Area.make(upper, ["flooding"], anchor=(0.5, 0.5))], [])) == 1


def test_mask_with_hours_applies_only_then_and_only_to_its_types():
    from vision.zones import Area

    market = Area.make(ROAD, ["street_vending"], hours=["18:00-23:00"])
    stall = Detections(np.array([[100, 300, 200, 400]]), np.array([0.9]), np.array([0]))
    at = lambda h, m=0: h * 60 + m  # noqa: E731
    assert len(filter_zones(stall, ["street_vending"], [], [market], minute=at(19))) == 0  # permitted market
    assert len(filter_zones(stall, ["street_vending"], [], [market], minute=at(12))) == 1  # street vending
    assert len(filter_zones(stall, ["street_vending"], [], [market], minute=at(23))) == 1  # end is exclusive
    assert len(filter_zones(stall, ["clutter"], [], [market], minute=at(19))) == 1  # other types still count


def test_hours_wrap_past_midnight_and_bad_hours_are_refused():
    import pytest

    from vision.zones import Area, parse_hours

    night = Area.make(ROAD, hours=["22:00-06:00"])
    assert night.active(23 * 60) and night.active(5 * 60 + 59) and not night.active(6 * 60) and not night.active(12 * 60)
    assert parse_hours("00:00-24:00") == (0, 1440)
    for bad in ("25:00-26:00", "18-23", "10:00-10:00", "09:00-24:30"):
        with pytest.raises(ValueError):
            parse_hours(bad)


def test_zone_config_errors_name_the_field(tmp_path):
    import pytest

    from streams.config import ConfigError, load_config

    cfg = tmp_path / "edge.yaml"
    base = "cameras:\n  - name: c1\n    url: rtsp://h/x\n"
    cfg.write_text(base + "    zones:\n      z: {polygon: [[0,0],[1,0],[1,1]], hours: ['18:00-33:00']}\n")
    with pytest.raises(ConfigError, match=r"cameras\.0\.zones\.z\.hours: .*18:00-23:00"):
        load_config(cfg)
    cfg.write_text(base + "    masks:\n      - {polygon: [[0,0],[1,0],[1,1]], anchr: [0.5, 0.5]}\n")
    with pytest.raises(ConfigError, match=r"anchr.*[Ee]xtra"):
        load_config(cfg)
    cfg.write_text(base + "    masks:\n      - [[0,0],[1,0],[1,1]]\n      - {polygon: [[0,0],[1,0],[1,1]], issue_types: [street_vending], hours: ['18:00-23:00']}\n")
    masks = load_config(cfg).cameras[0].masks
    assert masks[0].hours == [] and masks[1].hours == ["18:00-23:00"]
