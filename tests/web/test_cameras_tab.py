"""The review page's Cameras tab in Chromium against the real server: boxes and cameras by grid,
coloured by state, with their snapshots and zones; an admin draws a zone over a snapshot and
the API has it; a polygon the API refuses shows the API's reason; Chinese and English."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlmodel import Session

from api.auth import create_key
from api.db import get_engine
from api.models import Role
from tests.web.conftest import World, screenshot
from tests.web.seed import H, W, bearer, jpeg


@dataclass
class Fleet:
    admin_key: str


def _camera(name: str, state: str, grid: str) -> dict:
    return {"name": name, "state": state, "grid_id": grid, "fps": 0.5,
            "last_frame_at": datetime.now(timezone.utc).isoformat()}


@pytest.fixture(scope="module")
def fleet(world: World) -> Fleet:
    """Two boxes: box-w1 (kerb-1 streaming with a snapshot, kerb-2 stalled, in grid g-1) and
    box-w2 (far-1 failed, with a snapshot, in grid g-9), as their heartbeats declare them."""
    with Session(get_engine(world.database_url)) as s:
        keys = {b: create_key(s, f"web-{b}", Role.edge, box_id=b) for b in ("box-w1", "box-w2")}
        admin_key = create_key(s, "web-zone-admin", Role.admin)
    beats = {"box-w1": [_camera("kerb-1", "streaming", "g-1"), _camera("kerb-2", "stalled", "g-1")],
             "box-w2": [_camera("far-1", "failed", "g-9")]}
    for box, cameras in beats.items():
        body = {"software_version": "0.1.0", "interval_s": 30, "outbox_depth": 0, "cameras": cameras,
                "model": {"name": "streetwatch-v2", "version": "2" if box == "box-w1" else "3"}}
        resp = httpx.post(f"{world.url}/api/v1/boxes/{box}/heartbeat", json=body, headers=bearer(keys[box]))
        assert resp.status_code == 200, resp.text
    for box, camera in (("box-w1", "kerb-1"), ("box-w2", "far-1")):
        resp = httpx.put(f"{world.url}/api/v1/cameras/{camera}/snapshot", content=jpeg("clutter", seed=4),
                         headers={**bearer(keys[box]), "Content-Type": "image/jpeg"})
        assert resp.status_code == 200, resp.text
    return Fleet(admin_key)


def login(page: Page, key: str) -> None:
    page.goto("/review/")
    page.fill("#login-key", key)
    page.click("#login-submit")
    expect(page.locator("#cards[data-loaded=true]")).to_be_visible()


def open_cameras(page: Page) -> None:
    page.click("#nav-cameras")
    expect(page.locator("#cameras-page[data-loaded=true]")).to_be_visible()


def test_the_tab_lists_boxes_and_cameras_by_grid_coloured_by_state_with_snapshots(page: Page, world: World,
                                                                                  fleet: Fleet) -> None:
    login(page, world.reviewer_key)
    expect(page.locator("#nav-cameras")).to_have_text("摄像头")
    open_cameras(page)
    kerb1 = page.locator('.grid-group[data-grid="g-1"] .box-group[data-box="box-w1"] .cam-card[data-camera="kerb-1"]')
    kerb2 = page.locator('.grid-group[data-grid="g-1"] .box-group[data-box="box-w1"] .cam-card[data-camera="kerb-2"]')
    far1 = page.locator('.grid-group[data-grid="g-9"] .box-group[data-box="box-w2"] .cam-card[data-camera="far-1"]')
    expect(kerb1).to_have_class("cam-card cam-state-streaming")
    expect(kerb2).to_have_class("cam-card cam-state-stalled")
    expect(far1).to_have_class("cam-card cam-state-failed")
    expect(kerb1.locator(".cam-state")).to_have_text("在线")
    expect(kerb2.locator(".cam-state")).to_have_text("画面停滞")
    # coloured: the state's colour on the card's edge and its badge
    assert kerb1.evaluate("c => getComputedStyle(c).borderLeftColor") == "rgb(30, 132, 73)"
    assert far1.locator(".cam-state").evaluate("b => getComputedStyle(b).backgroundColor") == "rgb(192, 57, 43)"
    # the boxes: online, last heartbeat, the model version each runs
    row1, row2 = page.locator('#boxes-table tr[data-box="box-w1"]'), page.locator('#boxes-table tr[data-box="box-w2"]')
    expect(row1.locator(".box-state")).to_have_text("在线")
    expect(row1.locator(".box-model")).to_have_text("streetwatch-v2 v2")
    expect(row2.locator(".box-model")).to_have_text("streetwatch-v2 v3")
    expect(row1).to_contain_text("1 / 2")
    # the snapshot, fetched with the key, drawn at the frame's size
    snap = page.locator('.cam-snap[data-camera="kerb-1"]')
    expect(snap).to_have_attribute("data-loaded", "snapshot")
    assert snap.locator("svg").get_attribute("data-frame") == f"{W}x{H}"
    assert snap.locator("image").get_attribute("href").startswith("data:image/jpeg;base64,")
    expect(page.locator('.cam-snap[data-camera="kerb-2"]')).to_have_text("尚无快照")
    screenshot(page, "cameras", doc=True)
    # no camera URL (nor its password) ever reaches the page: the API never has them
    assert "rtsp" not in page.content().lower()

    page.click("#lang-switch")
    expect(page.locator("#nav-cameras")).to_have_text("Cameras")
    expect(kerb1.locator(".cam-state")).to_have_text("Streaming")
    expect(kerb2.locator(".cam-state")).to_have_text("Stalled")
    expect(page.locator('.cam-snap[data-camera="kerb-2"]')).to_have_text("No snapshot yet")
    keys = page.evaluate("Object.fromEntries(Object.entries(I18N).map(([k, d]) => [k, Object.keys(d).sort()]))")
    assert keys["zh-CN"] == keys["en"]
    assert page.evaluate("[...window.__i18nMissing]") == []
    for asset in ("cameras.js", "zone_editor.js", "cameras_i18n.js", "cameras.css"):
        body = httpx.get(f"{world.url}/review/{asset}")
        assert body.status_code == 200 and "https://" not in body.text, asset
        assert "http://" not in body.text.replace("http://www.w3.org/2000/svg", ""), asset


def _click_corners(page: Page, corners: list[tuple[float, float]]) -> list[list[int]]:
    """Click at fractions of the drawn snapshot; returns the frame pixels they stand for."""
    stage = page.locator("#zone-svg")
    box = stage.bounding_box()
    assert box is not None
    out = []
    for fx, fy in corners:
        stage.click(position={"x": fx * box["width"], "y": fy * box["height"]})
        out.append([round(fx * W), round(fy * H)])
    return out


def test_an_admin_draws_a_zone_over_the_snapshot_and_the_api_has_it(page: Page, world: World, fleet: Fleet) -> None:
    admin = httpx.Client(base_url=world.url, headers=bearer(fleet.admin_key))
    login(page, fleet.admin_key)
    open_cameras(page)
    page.locator('.cam-card[data-camera="kerb-1"] .cam-zones').click()
    expect(page.locator("#camera-detail[data-loaded=true]")).to_be_visible()
    expect(page.locator("#zone-source")).to_have_text("无中心配置：以边缘盒 YAML 为准")
    page.click("#zone-new")
    page.fill("#zone-name", "kerb")
    page.check('input.zone-type[value="clutter"]')
    corners = _click_corners(page, [(0.1, 0.5), (0.6, 0.45), (0.7, 0.9), (0.05, 0.95)])
    expect(page.locator("#zone-points")).to_have_text("4 个顶点")
    page.click("#zone-close")
    expect(page.locator('#zone-list li[data-name="kerb"]')).to_be_visible()
    screenshot(page, "cameras-editor", doc=True)
    page.click("#zone-save")
    expect(page.locator("#camera-detail")).to_have_attribute("data-saved", "1")
    expect(page.locator("#zone-source")).to_contain_text("web-zone-admin")

    stored = admin.get("/api/v1/cameras/kerb-1/zones").json()
    assert (stored["frame_width"], stored["frame_height"]) == (W, H)
    assert list(stored["zones"]) == ["kerb"] and stored["zones"]["kerb"]["issue_types"] == ["clutter"]
    got = stored["zones"]["kerb"]["polygon"]
    assert len(got) == 4 and all(abs(a - b) <= 2 for p, q in zip(got, corners) for a, b in zip(p, q)), (got, corners)

    # The zone is drawn over the camera's snapshot on the list too.
    page.click("#camera-back")
    expect(page.locator('.cam-snap[data-camera="kerb-1"] .area.zone[data-name="kerb"]')).to_have_count(1)
    screenshot(page, "cameras-zones")

    # A mask, then deleting the zone: what is saved is what the list shows.
    page.locator('.cam-card[data-camera="kerb-1"] .cam-zones').click()
    expect(page.locator("#camera-detail[data-loaded=true]")).to_be_visible()
    page.click("#mask-new")
    _click_corners(page, [(0.8, 0.1), (0.95, 0.1), (0.9, 0.3)])
    page.click("#zone-close")
    page.locator('#zone-list li[data-name="kerb"] .zone-remove').click()
    page.click("#zone-save")
    expect(page.locator("#camera-detail")).to_have_attribute("data-saved", "1")
    stored = admin.get("/api/v1/cameras/kerb-1/zones").json()
    assert stored["zones"] == {} and len(stored["masks"]) == 1

    # Delete: the box's YAML decides again.
    page.click("#zone-delete")
    expect(page.locator("#zone-source")).to_have_text("无中心配置：以边缘盒 YAML 为准")
    assert admin.get("/api/v1/cameras/kerb-1/zones").status_code == 404


def test_a_self_intersecting_polygon_shows_the_apis_reason_and_nothing_is_saved(page: Page, world: World,
                                                                                fleet: Fleet) -> None:
    login(page, fleet.admin_key)
    page.goto("/review/#/camera/far-1")
    expect(page.locator("#camera-detail[data-loaded=true]")).to_be_visible()
    page.click("#zone-new")
    _click_corners(page, [(0.1, 0.1), (0.9, 0.9), (0.9, 0.1), (0.1, 0.9)])  # a bow tie
    page.click("#zone-close")
    page.click("#zone-save")
    expect(page.locator("#zone-error")).to_contain_text("未保存：")
    expect(page.locator("#zone-error")).to_contain_text("self-intersects")
    resp = httpx.get(f"{world.url}/api/v1/cameras/far-1/zones", headers=bearer(fleet.admin_key))
    assert resp.status_code == 404  # nothing stored

    # A reviewer may look, not edit: the API's refusal shows the same way.
    page.click("#logout")
    login(page, world.reviewer_key)
    page.goto("/review/#/camera/far-1")
    expect(page.locator("#camera-detail[data-loaded=true]")).to_be_visible()
    page.click("#zone-new")
    _click_corners(page, [(0.1, 0.1), (0.9, 0.1), (0.5, 0.9)])
    page.click("#zone-close")
    page.click("#zone-save")
    expect(page.locator("#zone-error")).to_contain_text("role reviewer may not do this")
