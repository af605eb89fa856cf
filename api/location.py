"""Where an issue is on the ground: distances, a camera's pixel → lat/lon mapping, grids.

Pure functions on numbers (numpy only), so dedup and dispatch can be tested without a database.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
Box = tuple[float, float, float, float]


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bounding_box(lat: float, lon: float, radius_m: float) -> tuple[float, float, float, float]:
    """(lat_lo, lat_hi, lon_lo, lon_hi) holding every point within `radius_m` of (lat, lon) by
    `distance_m`, with a margin: a cheap filter in SQL before the exact distance in Python."""
    r = radius_m * 1.01 + 1.0
    dlat = math.degrees(r / EARTH_RADIUS_M)
    # A degree of longitude is shortest at the edge nearest the pole, so that edge sets the width.
    cos_edge = math.cos(math.radians(min(90.0, abs(lat) + dlat)))
    dlon = math.degrees(r / (EARTH_RADIUS_M * cos_edge)) if cos_edge > 0.01 else 360.0
    return lat - dlat, lat + dlat, lon - dlon, lon + dlon


def check_ground_points(points: Sequence[Sequence[float]]) -> None:
    """Raise ValueError unless `points` are ≥ 4 [px, py, lat, lon] rows that fix a mapping."""
    if len(points) < 4:
        raise ValueError("ground_points needs at least 4 [px, py, lat, lon] points on the road")
    for i, row in enumerate(points):
        if len(row) != 4:
            raise ValueError(f"ground_points[{i}] must be [px, py, lat, lon], got {list(row)}")
        if not (-90 <= row[2] <= 90 and -180 <= row[3] <= 180):
            raise ValueError(f"ground_points[{i}]: lat/lon out of range")
    if np.linalg.matrix_rank(_design(points)) < 8:
        raise ValueError("ground_points are degenerate (three or more on one line?); pick corners of a "
                         "large quadrilateral on the road")


def _design(points: Sequence[Sequence[float]]) -> np.ndarray:
    rows = []
    for px, py, lat, lon in points:
        rows.append([px, py, 1, 0, 0, 0, -lon * px, -lon * py, -lon])
        rows.append([0, 0, 0, px, py, 1, -lat * px, -lat * py, -lat])
    return np.asarray(rows, dtype=np.float64)


def pixel_to_latlon(points: Sequence[Sequence[float]], x: float, y: float) -> tuple[float, float] | None:
    """Map a pixel on the road plane to lat/lon with the homography through the ground points;
    None for a pixel at or beyond the road's horizon, which no point of the road maps to.

    Over a camera's field of view (a few hundred metres) lat/lon is a plane to well under a
    metre, so a projective map fitted by least squares (DLT) is all a street needs."""
    _, _, vt = np.linalg.svd(_design(points))
    h = vt[-1].reshape(3, 3)
    # The homogeneous scale w has one sign over the whole road (the ground points show which)
    # and passes through 0 at the horizon: there lat/lon run off to infinity, and beyond it
    # they come back mirrored, plausible-looking but behind the camera.
    road_w = np.array([h[2] @ (px, py, 1.0) for px, py, _, _ in points])
    lon, lat, w = h @ np.array([x, y, 1.0])
    if w * np.sign(road_w.mean()) <= 1e-6 * np.abs(road_w).max():
        return None
    lat, lon = float(lat / w), float(lon / w)
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def box_ground_point(box: Box) -> tuple[float, float]:
    """The pixel where an issue touches the road: the bottom centre of its box."""
    x1, _, x2, y2 = box
    return (x1 + x2) / 2, y2


def point_in_polygon(lat: float, lon: float, polygon: Sequence[Sequence[float]]) -> bool:
    """Even-odd rule on [[lat, lon], ...]; fine for city grids far from the poles and the date line."""
    inside = False
    n = len(polygon)
    for i in range(n):
        (lat1, lon1), (lat2, lon2) = polygon[i], polygon[(i + 1) % n]
        if (lat1 > lat) != (lat2 > lat):
            cross = lon1 + (lat - lat1) * (lon2 - lon1) / (lat2 - lat1)
            if lon < cross:
                inside = not inside
    return inside
