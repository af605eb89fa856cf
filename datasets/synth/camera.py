"""A pole-mounted street camera as a pinhole model over a flat ground plane.

World axes: X to the right across the street, Y up, Z along the street away from the
camera. The street runs along Z; the road spans |X - road_center| < road_width / 2,
sidewalks lie beyond the kerbs, facades stand at the sidewalks' outer edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class StreetCamera:
    width: int
    height: int
    cam_x: float  # lateral position of the pole (0 = road centre)
    cam_h: float  # mounting height, metres
    pitch_deg: float  # downward tilt
    yaw_deg: float  # turn right (+) or left (-) from looking along the street
    hfov_deg: float
    road_width: float
    sidewalk_width: float
    building_height_left: float
    building_height_right: float

    @property
    def focal(self) -> float:
        return (self.width / 2) / math.tan(math.radians(self.hfov_deg) / 2)

    @property
    def kerb_x(self) -> tuple[float, float]:
        return -self.road_width / 2, self.road_width / 2

    @property
    def facade_x(self) -> tuple[float, float]:
        return -self.road_width / 2 - self.sidewalk_width, self.road_width / 2 + self.sidewalk_width

    def rotation(self) -> np.ndarray:
        """Camera-to-world rotation (columns: camera right, up, forward in world)."""
        p, y = math.radians(self.pitch_deg), math.radians(self.yaw_deg)
        # Looking along +Z, tilted down by pitch, turned by yaw about the vertical.
        forward = np.array([math.sin(y) * math.cos(p), -math.sin(p), math.cos(y) * math.cos(p)])
        right = np.array([math.cos(y), 0.0, -math.sin(y)])
        up = np.cross(forward, right)
        return np.stack([right, up, forward], axis=1)

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (N,3) → pixel coordinates (N,2) and depth along the view axis (N,)."""
        rel = points - np.array([self.cam_x, self.cam_h, 0.0])
        cam = rel @ self.rotation()  # rows: (right, up, forward) components
        depth = cam[:, 2]
        safe = np.where(depth > 1e-3, depth, 1e-3)
        u = self.width / 2 + self.focal * cam[:, 0] / safe
        v = self.height / 2 - self.focal * cam[:, 1] / safe
        return np.stack([u, v], axis=1), depth

    def rays(self) -> np.ndarray:
        """Unit ray direction in world coordinates for every pixel, shape (H, W, 3)."""
        us = (np.arange(self.width) + 0.5 - self.width / 2) / self.focal
        vs = -(np.arange(self.height) + 0.5 - self.height / 2) / self.focal
        uu, vv = np.meshgrid(us, vs)
        cam = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
        world = cam @ self.rotation().T
        return world / np.linalg.norm(world, axis=-1, keepdims=True)

    def ground_point_visible(self, x: float, z: float) -> bool:
        (uv,), (depth,) = self.project(np.array([[x, 0.0, z]]))
        return depth > 1.0 and 0 <= uv[0] < self.width and 0 <= uv[1] < self.height


def random_camera(rng: np.random.Generator, width: int, height: int) -> StreetCamera:
    road = float(rng.uniform(7.0, 14.0))
    side = float(rng.uniform(3.0, 6.0))
    # Poles stand on a sidewalk or the kerb, looking along the street.
    cam_x = float(rng.choice([-1, 1]) * rng.uniform(road / 2 - 1.0, road / 2 + side - 0.5))
    return StreetCamera(
        width=width,
        height=height,
        cam_x=cam_x,
        cam_h=float(rng.uniform(4.0, 9.0)),
        pitch_deg=float(rng.uniform(12.0, 30.0)),
        yaw_deg=float(-np.sign(cam_x) * rng.uniform(0.0, 18.0)),
        hfov_deg=float(rng.uniform(55.0, 85.0)),
        road_width=road,
        sidewalk_width=side,
        building_height_left=float(rng.uniform(8.0, 30.0)),
        building_height_right=float(rng.uniform(8.0, 30.0)),
    )
