"""Street objects built from shaded 3-D boxes, cones and ellipsoids, drawn in perspective.

Each `draw_*` function paints onto a BGR float image and returns the pixel box of what
it drew (x1, y1, x2, y2), or None when nothing landed in the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from datasets.synth.camera import StreetCamera

Box = tuple[float, float, float, float]


class Painter:
    """Accumulates the pixel extent of everything drawn for one object."""

    def __init__(self, img: np.ndarray, cam: StreetCamera, light: float):
        self.img, self.cam, self.light = img, cam, light
        self.x1, self.y1, self.x2, self.y2 = np.inf, np.inf, -np.inf, -np.inf

    def _extend(self, pts: np.ndarray) -> None:
        self.x1, self.y1 = min(self.x1, pts[:, 0].min()), min(self.y1, pts[:, 1].min())
        self.x2, self.y2 = max(self.x2, pts[:, 0].max()), max(self.y2, pts[:, 1].max())

    def poly(self, world: np.ndarray, color, shade: float = 1.0) -> None:
        uv, depth = self.cam.project(world)
        if (depth < 0.5).any():
            return
        pts = np.round(uv).astype(np.int32)
        cv2.fillPoly(self.img, [pts], tuple(float(c) * shade * self.light for c in color), cv2.LINE_AA)
        self._extend(uv)

    def box(self, x0, x1, y0, y1, z0, z1, color) -> None:
        """An axis-aligned box; faces drawn back to front with simple directional shading."""
        cx, ch = self.cam.cam_x, self.cam.cam_h
        faces = []
        if ch > y1:
            faces.append((np.array([[x0, y1, z0], [x1, y1, z0], [x1, y1, z1], [x0, y1, z1]]), 1.15))
        if cx < x0:
            faces.append((np.array([[x0, y0, z0], [x0, y0, z1], [x0, y1, z1], [x0, y1, z0]]), 0.75))
        elif cx > x1:
            faces.append((np.array([[x1, y0, z0], [x1, y0, z1], [x1, y1, z1], [x1, y1, z0]]), 0.75))
        faces.append((np.array([[x0, y0, z0], [x1, y0, z0], [x1, y1, z0], [x0, y1, z0]]), 0.95))
        for quad, shade in faces:
            self.poly(quad, color, shade)

    def ellipsoid(self, x, y, z, rx, ry, color) -> None:
        (uv,), (depth,) = self.cam.project(np.array([[x, y, z]]))
        if depth < 0.5:
            return
        s = self.cam.focal / depth
        axes = (max(1, int(rx * s)), max(1, int(ry * s)))
        center = (int(uv[0]), int(uv[1]))
        col = tuple(float(c) * self.light for c in color)
        cv2.ellipse(self.img, center, axes, 0, 0, 360, col, -1, cv2.LINE_AA)
        hi = tuple(min(255.0, c * 1.25) for c in col)
        cv2.ellipse(self.img, (center[0] - axes[0] // 4, center[1] - axes[1] // 3), (axes[0] // 2, axes[1] // 3), 0, 0, 360, hi, -1, cv2.LINE_AA)
        self._extend(np.array([[uv[0] - axes[0], uv[1] - axes[1]], [uv[0] + axes[0], uv[1] + axes[1]]]))

    def canopy(self, x, z, radius, height, color, sides: int = 10) -> None:
        ring = [[x + radius * np.cos(a), height - 0.35, z + radius * np.sin(a)] for a in np.linspace(0, 2 * np.pi, sides, endpoint=False)]
        world = np.array(ring + [[x, height, z]])
        uv, depth = self.cam.project(world)
        if (depth < 0.5).any():
            return
        hull = cv2.convexHull(np.round(uv).astype(np.int32))
        cv2.fillPoly(self.img, [hull], tuple(float(c) * self.light for c in color), cv2.LINE_AA)
        self._extend(uv)

    def result(self) -> Box | None:
        h, w = self.img.shape[:2]
        x1, y1 = max(0.0, self.x1), max(0.0, self.y1)
        x2, y2 = min(float(w), self.x2), min(float(h), self.y2)
        if not np.isfinite([x1, y1, x2, y2]).all() or x2 - x1 < 6 or y2 - y1 < 6:
            return None
        return float(x1), float(y1), float(x2), float(y2)


BRIGHT = np.array([[40, 40, 220], [40, 160, 240], [200, 120, 40], [60, 180, 60], [200, 60, 160], [230, 230, 230], [30, 200, 220]], dtype=float)


def draw_person(p: Painter, rng: np.random.Generator, x: float, z: float) -> None:
    shirt = rng.uniform(30, 220, size=3)
    p.box(x - 0.18, x + 0.18, 0.0, 0.85, z - 0.1, z + 0.1, rng.uniform(20, 90, size=3))
    p.box(x - 0.22, x + 0.22, 0.85, 1.45, z - 0.12, z + 0.12, shirt)
    p.ellipsoid(x, 1.6, z, 0.12, 0.14, np.array([120, 150, 190]) * rng.uniform(0.6, 1.1))


def draw_vending(p: Painter, rng: np.random.Generator, x: float, z: float) -> None:
    """A stall: table or cart with goods, often an umbrella, and a vendor beside it."""
    w, d = rng.uniform(1.2, 2.4), rng.uniform(0.7, 1.2)
    cart = rng.random() < 0.35
    body = rng.uniform(60, 200, size=3)
    if cart:
        p.box(x - w / 2, x + w / 2, 0.25, 1.0, z, z + d, body)
        for wx in (x - w / 2 + 0.15, x + w / 2 - 0.15):
            p.ellipsoid(wx, 0.22, z, 0.2, 0.2, (25, 25, 25))
    else:
        p.box(x - w / 2, x + w / 2, 0.0, 0.8, z, z + d, body * 0.8)
        p.box(x - w / 2 - 0.05, x + w / 2 + 0.05, 0.8, 0.88, z - 0.05, z + d + 0.05, (230, 230, 230))
    for _ in range(int(rng.integers(4, 12))):  # goods on top
        gx = x + rng.uniform(-w / 2 + 0.1, w / 2 - 0.2)
        gz = z + rng.uniform(0.05, d - 0.15)
        gh = rng.uniform(0.08, 0.3)
        p.box(gx, gx + rng.uniform(0.1, 0.3), 0.88, 0.88 + gh, gz, gz + 0.12, BRIGHT[rng.integers(len(BRIGHT))] * rng.uniform(0.6, 1.0))
    if rng.random() < 0.75:
        p.box(x - 0.03, x + 0.03, 0.88, 2.3, z + d / 2, z + d / 2 + 0.05, (60, 60, 60))
        p.canopy(x, z + d / 2, rng.uniform(1.0, 1.6), rng.uniform(2.4, 2.8), BRIGHT[rng.integers(len(BRIGHT))])
    for _ in range(int(rng.integers(1, 3))):
        draw_person(p, rng, x + rng.choice([-1, 1]) * (w / 2 + rng.uniform(0.2, 0.5)), z + rng.uniform(0, d))


def draw_clutter(p: Painter, rng: np.random.Generator, x: float, z: float) -> None:
    """Dumped waste: cardboard, bags, a mattress or furniture, debris."""
    spread = rng.uniform(0.8, 2.2)
    items = []
    for _ in range(int(rng.integers(4, 11))):
        items.append((z + rng.uniform(0, spread), rng.random(), x + rng.uniform(-spread / 2, spread / 2)))
    for iz, kind, ix in sorted(items, key=lambda t: -t[0]):
        if kind < 0.35:  # cardboard box
            s = rng.uniform(0.3, 0.7)
            h = rng.uniform(0.2, 0.6)
            base = rng.uniform(0, 0.4)
            p.box(ix, ix + s, base, base + h, iz, iz + s * 0.8, np.array([70, 130, 170]) * rng.uniform(0.7, 1.15))
        elif kind < 0.75:  # rubbish bag
            col = rng.choice([[25, 25, 25], [200, 200, 200], [40, 40, 160], [60, 110, 60]]) * rng.uniform(0.7, 1.1)
            r = rng.uniform(0.22, 0.42)
            p.ellipsoid(ix, r * 0.8, iz, r, r * 0.8, col)
        elif kind < 0.87:  # mattress or board leaning
            p.box(ix, ix + rng.uniform(0.9, 1.6), 0.0, rng.uniform(0.15, 1.2), iz, iz + 0.2, np.array([200, 205, 215]) * rng.uniform(0.6, 1.0))
        else:  # chair / cabinet
            c = rng.uniform(40, 160, size=3)
            p.box(ix, ix + 0.5, 0.0, 0.45, iz, iz + 0.5, c)
            p.box(ix, ix + 0.5, 0.45, 0.95, iz + 0.4, iz + 0.5, c * 0.9)


def draw_bin(p: Painter, rng: np.random.Generator, x: float, z: float, overflowing: bool = False) -> None:
    col = rng.choice([[60, 120, 40], [150, 90, 30], [40, 40, 40], [30, 30, 160], [120, 120, 120]]).astype(float)
    w = rng.uniform(0.5, 1.2)
    p.box(x, x + w, 0.0, 1.0, z, z + 0.7, col)
    p.box(x - 0.03, x + w + 0.03, 1.0, 1.08, z - 0.03, z + 0.73, col * 0.8)
    if overflowing:
        for _ in range(int(rng.integers(3, 7))):
            p.ellipsoid(x + rng.uniform(0, w), 1.1 + rng.uniform(0, 0.3), z + rng.uniform(0, 0.7), 0.22, 0.18, rng.uniform(20, 200, size=3))
        draw_clutter(p, rng, x + w / 2, z - 0.6)


def draw_car(p: Painter, rng: np.random.Generator, x: float, z: float) -> None:
    col = rng.choice([[200, 200, 200], [30, 30, 30], [40, 40, 150], [150, 90, 40], [160, 160, 170]]).astype(float)
    p.box(x - 0.9, x + 0.9, 0.3, 1.0, z, z + 4.2, col)
    p.box(x - 0.8, x + 0.8, 1.0, 1.5, z + 1.0, z + 3.2, np.array([60, 50, 40]))
    for wz in (z + 0.6, z + 3.5):
        for wx in (x - 0.95, x + 0.95):
            p.ellipsoid(wx, 0.32, wz, 0.1, 0.32, (20, 20, 20))
