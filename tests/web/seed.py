"""Street-like evidence images and orders made the way the edge, citizens and workers make
them: through the real API of a running server."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image, ImageDraw

from tests.api.factories import event_json

W, H = 640, 480
BOX = (250, 200, 410, 330)
COLORS = {"street_vending": (214, 84, 48), "clutter": (139, 111, 71), "flooding": (70, 120, 190)}


def _encode(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=82)
    return buf.getvalue()


def scene(issue_type: str | None, seed: int = 0) -> Image.Image:
    """A road with a sidewalk, buildings and the issue inside BOX (or a clear street)."""
    img = Image.new("RGB", (W, H), (96, 98, 104))
    d = ImageDraw.Draw(img)
    d.rectangle((0, 0, W, 150), fill=(165, 190, 215))
    for i in range(5):
        x = i * 135 + (seed * 17) % 40
        d.rectangle((x, 40 + (i * 23 + seed * 11) % 50, x + 110, 170), fill=(190 - i * 12, 170, 150 + i * 9))
    d.rectangle((0, 170, W, 210), fill=(180, 176, 168))  # sidewalk
    for x in range(0, W, 80):
        d.rectangle((x + 10, 390, x + 50, 398), fill=(235, 235, 220))  # lane marks
    x1, y1, x2, y2 = BOX
    if issue_type == "street_vending":
        d.rectangle((x1 + 10, y1 + 40, x2 - 10, y2), fill=COLORS[issue_type])
        d.polygon([(x1, y1 + 40), (x2, y1 + 40), ((x1 + x2) // 2, y1)], fill=(240, 200, 60))
    elif issue_type == "clutter":
        for i in range(6):
            cx, cy = x1 + 20 + i * 22, y2 - 20 - (i % 3) * 25
            d.ellipse((cx - 18, cy - 16, cx + 18, cy + 16), fill=(60 + i * 20, 60, 50 + i * 10))
    elif issue_type == "flooding":
        d.ellipse((x1 - 40, y1 + 30, x2 + 40, y2 + 20), fill=COLORS[issue_type])
    return img


def evidence(issue_type: str, seed: int = 0) -> dict[str, bytes]:
    """frame, annotated (box and label drawn) and crop, as the edge sends them."""
    frame = scene(issue_type, seed)
    annotated = frame.copy()
    d = ImageDraw.Draw(annotated)
    d.rectangle(BOX, outline=(255, 40, 40), width=4)
    d.rectangle((BOX[0], BOX[1] - 22, BOX[0] + 170, BOX[1]), fill=(255, 40, 40))
    d.text((BOX[0] + 6, BOX[1] - 18), f"{issue_type} 0.87", fill=(255, 255, 255))
    crop = frame.crop((BOX[0] - 30, BOX[1] - 30, BOX[2] + 30, BOX[3] + 30))
    return {"frame": _encode(frame), "annotated": _encode(annotated), "crop": _encode(crop)}


def jpeg(issue_type: str | None, seed: int = 0) -> bytes:
    return _encode(scene(issue_type, seed))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Api:
    """httpx clients of a running server, one per role."""

    url: str
    admin: httpx.Client
    reviewer: httpx.Client
    edge: httpx.Client

    def order(self, order_id: int) -> dict[str, Any]:
        resp = self.reviewer.get(f"/api/v1/orders/{order_id}")
        resp.raise_for_status()
        return resp.json()

    def orders(self, **params: Any) -> dict[str, Any]:
        resp = self.reviewer.get("/api/v1/orders", params={"limit": 500, **params})
        resp.raise_for_status()
        return resp.json()

    def stats(self) -> dict[str, Any]:
        resp = self.reviewer.get("/api/v1/stats")
        resp.raise_for_status()
        return resp.json()

    def sight(self, camera: str, issue_type: str, seed: int = 0) -> int:
        """The edge posts a confirmed issue; returns the order it joined or opened."""
        parts = evidence(issue_type, seed)
        event = event_json(bbox=BOX, issue_type=issue_type, camera=camera, frame_width=W, frame_height=H,
                           model={"name": "streetwatch-demo", "version": "v1"})
        files = {kind: (f"{kind}.jpg", data, "image/jpeg") for kind, data in parts.items()}
        resp = self.edge.post("/api/v1/events", data={"event": json.dumps(event)}, files=files)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()["order_id"]

    def worker(self, name: str, grid_ids: list[str], on_duty: bool = False) -> int:
        resp = self.admin.post("/api/v1/workers", json={"name": name, "grid_ids": grid_ids, "on_duty": on_duty,
                                                        "lat": 31.23, "lon": 121.47})
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def set_on_duty(self, worker_id: int, on_duty: bool) -> None:
        resp = self.admin.patch(f"/api/v1/workers/{worker_id}", json={"on_duty": on_duty})
        assert resp.status_code == 200, resp.text

    def key(self, role: str, name: str, worker_id: int | None = None) -> tuple[int, str]:
        resp = self.admin.post("/api/v1/keys", json={"name": name, "role": role, "worker_id": worker_id})
        assert resp.status_code == 201, resp.text
        return resp.json()["id"], resp.json()["key"]


def full_story(api: Api, camera: str, worker_id: int, worker_key: str) -> int:
    """One order through the whole loop, so its page has every kind of evidence: the edge's
    images, a citizen's photo, the worker's resolution photo and the camera's before/after."""
    order_id = api.sight(camera, "street_vending", seed=3)
    order = api.order(order_id)
    report = httpx.post(f"{api.url}/api/v1/reports", timeout=30,  # citizens need no key
                        data={"issue_type": "street_vending", "lat": str(order["lat"]), "lon": str(order["lon"]),
                              "text": "路口有人摆摊，占了半条人行道"},
                        files={"photo": ("photo.jpg", jpeg("street_vending", seed=5), "image/jpeg")})
    assert report.status_code == 201, report.text
    assert len(api.order(order_id)["reports"]) == 1, "the citizen report should join the camera's order"
    resp = api.reviewer.post(f"/api/v1/orders/{order_id}/dispatch", json={"worker_id": worker_id})
    assert resp.status_code == 200, resp.text
    worker = httpx.Client(base_url=api.url, headers=bearer(worker_key), timeout=30)
    with worker:
        assert worker.post(f"/api/v1/orders/{order_id}/start", json={}).status_code == 200
        resp = worker.post(f"/api/v1/orders/{order_id}/resolve", data={"note": "摊位已劝离，路面已清扫"},
                           files={"photo": ("fixed.jpg", jpeg(None, seed=3), "image/jpeg")})
        assert resp.status_code == 200, resp.text
    resp = api.edge.post(f"/api/v1/verifications/{order_id}", data={"result": "absent"},
                         files={"frame": ("after.jpg", jpeg(None, seed=3), "image/jpeg")})
    assert resp.status_code == 200, resp.text
    resp = api.reviewer.post(f"/api/v1/orders/{order_id}/comments", json={"text": "复核通过，摄像头确认已清除。"})
    assert resp.status_code == 201, resp.text
    return order_id
