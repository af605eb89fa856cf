"""Ray-cast street backgrounds: road, kerbs, sidewalks, facades, sky, and standing water.

Every pixel's ray is intersected with the ground and the two facade planes; water
pixels shade the mirrored ray, which gives sky and building reflections for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from datasets.synth.camera import StreetCamera

TIMES_OF_DAY = ("day", "dusk", "night")


@dataclass
class Look:
    """Colours and lighting of one scene, drawn once from its seed."""

    time_of_day: str
    asphalt: np.ndarray
    sidewalk: np.ndarray
    kerb: np.ndarray
    facade_palette: np.ndarray  # (K, 3) colours for building segments
    sky_top: np.ndarray
    sky_horizon: np.ndarray
    ambient: float
    fog_distance: float  # metres; inf = clear
    wet_road: bool
    shadow_x: float | None  # ground darker beyond this X (a building's shadow)
    lamp_z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    seed: int = 0


def random_look(rng: np.random.Generator, time_of_day: str | None = None) -> Look:
    tod = time_of_day or str(rng.choice(TIMES_OF_DAY, p=[0.6, 0.2, 0.2]))
    grey = rng.uniform(55, 110)
    sky = {
        "day": ([200, 150, 90], [235, 215, 190]),
        "dusk": ([120, 70, 60], [120, 170, 240]),
        "night": ([40, 20, 15], [70, 50, 45]),
    }[tod]
    return Look(
        time_of_day=tod,
        asphalt=np.array([grey, grey, grey * rng.uniform(0.95, 1.05)]),
        sidewalk=rng.choice([[150, 160, 170], [120, 140, 170], [110, 120, 150], [160, 160, 160]]).astype(float)
        * rng.uniform(0.8, 1.1),
        kerb=np.array([175.0, 175.0, 175.0]) * rng.uniform(0.8, 1.1),
        facade_palette=rng.uniform(60, 220, size=(6, 3)),
        sky_top=np.array(sky[0], dtype=float),
        sky_horizon=np.array(sky[1], dtype=float),
        ambient={"day": 1.0, "dusk": 0.65, "night": 0.3}[tod] * rng.uniform(0.85, 1.1),
        fog_distance=float(rng.choice([np.inf, np.inf, np.inf, rng.uniform(40, 120)])),
        wet_road=bool(rng.random() < 0.2),
        shadow_x=float(rng.uniform(-8, 8)) if tod == "day" and rng.random() < 0.35 else None,
        lamp_z=np.arange(rng.uniform(5, 15), 200, rng.uniform(20, 35)),
        seed=int(rng.integers(1 << 31)),
    )


def _hash_noise(a: np.ndarray, b: np.ndarray, seed: int) -> np.ndarray:
    """Cheap deterministic per-cell noise in [0, 1) from integer cell coordinates."""
    h = (a.astype(np.int64) * 73856093) ^ (b.astype(np.int64) * 19349663) ^ seed
    return ((h * 2654435761) % 4096) / 4096.0


def _shade(cam: StreetCamera, look: Look, origin: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Colour (N,3), hit distance (N,) and ground hit points (N,3; NaN where not ground)."""
    n = d.shape[0]
    color = np.zeros((n, 3))
    t_best = np.full(n, np.inf)
    fl, fr = cam.facade_x
    with np.errstate(divide="ignore", invalid="ignore"):
        t_ground = np.where(d[:, 1] < -1e-6, -origin[:, 1] / d[:, 1], np.inf)
        t_left = np.where(d[:, 0] < -1e-6, (fl - origin[:, 0]) / d[:, 0], np.inf)
        t_right = np.where(d[:, 0] > 1e-6, (fr - origin[:, 0]) / d[:, 0], np.inf)
    for t_plane, height, side in ((t_left, cam.building_height_left, 0), (t_right, cam.building_height_right, 1)):
        y = origin[:, 1] + t_plane * d[:, 1]
        z = origin[:, 2] + t_plane * d[:, 2]
        hit = np.isfinite(t_plane) & (t_plane > 0) & (y >= 0) & (y <= height) & (z > -5) & (t_plane < t_best)
        if hit.any():
            zs, ys = z[hit], y[hit]
            segment = np.floor(zs / 14.0 + side * 0.5).astype(int)
            base = look.facade_palette[(segment + side * 3) % len(look.facade_palette)]
            floor_frac = np.mod(ys, 3.2) / 3.2
            col_frac = np.mod(zs, 2.4) / 2.4
            window = (floor_frac > 0.35) & (floor_frac < 0.85) & (col_frac > 0.2) & (col_frac < 0.8) & (ys > 3.2)
            shop = (ys < 3.0) & (col_frac > 0.1) & (col_frac < 0.9) & (ys > 0.3)
            c = base * (0.93 + 0.12 * _hash_noise(np.floor(zs * 3), np.floor(ys * 3), look.seed)[:, None])
            glass = np.array([90.0, 70.0, 60.0])
            if look.time_of_day != "day":
                lit = _hash_noise(np.floor(zs / 2.4), np.floor(ys / 3.2), look.seed + 1) < 0.4
                glass = np.where(lit[:, None], np.array([120.0, 200.0, 240.0]) / max(look.ambient, 0.3), glass)
            c = np.where(window[:, None], glass, c)
            c = np.where(shop[:, None], np.array([70.0, 80.0, 85.0]) * 1.2, c)
            color[hit] = c
            t_best[hit] = t_plane[hit]
    ground = np.isfinite(t_ground) & (t_ground > 0) & (t_ground < t_best)
    gp = np.full((n, 3), np.nan)
    if ground.any():
        p = origin[ground] + t_ground[ground, None] * d[ground]
        gp[ground] = p
        x, z = p[:, 0], p[:, 2]
        kl, kr = cam.kerb_x
        on_road = (x > kl) & (x < kr)
        near_kerb = (np.abs(x - kl) < 0.25) | (np.abs(x - kr) < 0.25)
        tex = _hash_noise(np.floor(x * 8), np.floor(z * 8), look.seed)[:, None]
        tiles = _hash_noise(np.floor(x / 0.6), np.floor(z / 0.6), look.seed + 2)[:, None]
        c = np.where(on_road[:, None], look.asphalt * (0.9 + 0.2 * tex), look.sidewalk * (0.88 + 0.18 * tiles))
        lane = on_road & (np.abs(x) < 0.08) & (np.mod(z, 9.0) < 4.5)
        edge = on_road & ((np.abs(x - kl) < 0.45) & (np.abs(x - kl) > 0.33) | (np.abs(x - kr) < 0.45) & (np.abs(x - kr) > 0.33))
        c = np.where((lane | edge)[:, None], np.array([215.0, 215.0, 215.0]), c)
        c = np.where(near_kerb[:, None], look.kerb, c)
        if look.shadow_x is not None:
            c = np.where((x > look.shadow_x)[:, None], c * 0.55, c)
        color[ground] = c
        t_best[ground] = t_ground[ground]
    sky = ~np.isfinite(t_best)
    if sky.any():
        up = np.clip(d[sky, 1], 0, 1)[:, None] ** 0.6
        color[sky] = look.sky_horizon * (1 - up) + look.sky_top * up
    return color, t_best, gp


def _light(look: Look, color: np.ndarray, t: np.ndarray, gp: np.ndarray, cam: StreetCamera) -> np.ndarray:
    """Ambient light, street lamps at night, and fog."""
    sky = ~np.isfinite(t)
    lit = color * np.where(sky, 1.0, look.ambient)[:, None]
    if look.time_of_day != "day":
        ground = ~np.isnan(gp[:, 0])
        if ground.any():
            glow = np.zeros(ground.sum())
            for kx in cam.kerb_x:
                for lz in look.lamp_z:
                    glow += np.exp(-((gp[ground, 0] - kx) ** 2 + (gp[ground, 2] - lz) ** 2) / 30.0)
            warm = np.array([0.7, 0.9, 1.2])
            lit[ground] += color[ground] * np.clip(glow, 0, 1.5)[:, None] * warm * 0.9
    if np.isfinite(look.fog_distance):
        fog = 1 - np.exp(-np.where(sky, 1e9, t) / look.fog_distance)
        lit = lit * (1 - fog[:, None]) + np.array([170.0, 170.0, 165.0]) * look.ambient * fog[:, None]
    return lit


def render_background(cam: StreetCamera, look: Look, water: "WaterPatch | None" = None) -> tuple[np.ndarray, np.ndarray]:
    """BGR float image (H,W,3) and a boolean water mask (H,W)."""
    d = cam.rays().reshape(-1, 3)
    origin = np.broadcast_to(np.array([cam.cam_x, cam.cam_h, 0.0]), d.shape).copy()
    color, t, gp = _shade(cam, look, origin, d)
    lit = _light(look, color, t, gp, cam)
    mask = np.zeros(d.shape[0], dtype=bool)
    ground = ~np.isnan(gp[:, 0])
    if look.wet_road or water is not None:
        refl_dir = d * np.array([1.0, -1.0, 1.0])
    if look.wet_road and ground.any():
        rc, rt, rgp = _shade(cam, look, gp[ground], refl_dir[ground])
        lit[ground] = 0.8 * lit[ground] + 0.2 * _light(look, rc, rt, rgp, cam) * 0.6
    if water is not None and ground.any():
        inside = np.zeros(d.shape[0], dtype=bool)
        inside[ground] = water.contains(gp[ground, 0], gp[ground, 2])
        if inside.any():
            p = gp[inside]
            ripple = 0.025 * np.sin(p[:, 0] * 7 + water.phase) * np.cos(p[:, 2] * 5)
            rd = refl_dir[inside] + np.stack([ripple, np.zeros_like(ripple), ripple * 0.5], axis=1)
            rd /= np.linalg.norm(rd, axis=1, keepdims=True)
            start = p + np.array([0.0, 0.01, 0.0])
            rc, rt, rgp = _shade(cam, look, start, rd)
            reflection = _light(look, rc, rt, rgp, cam)
            lit[inside] = water.muddy * 0.3 * look.ambient + reflection * 0.75
            mask = inside
    h, w = cam.height, cam.width
    return lit.reshape(h, w, 3), mask.reshape(h, w)


@dataclass
class WaterPatch:
    """Standing water on the ground plane: a union of ellipses (metres)."""

    centers: np.ndarray  # (K, 2) of x, z
    radii: np.ndarray  # (K, 2) of rx, rz
    muddy: np.ndarray
    phase: float

    def contains(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        inside = np.zeros(x.shape, dtype=bool)
        for (cx, cz), (rx, rz) in zip(self.centers, self.radii):
            inside |= ((x - cx) / rx) ** 2 + ((z - cz) / rz) ** 2 < 1.0
        return inside


def random_water(rng: np.random.Generator, cam: StreetCamera, z_center: float) -> WaterPatch:
    kl, kr = cam.kerb_x
    # Water collects along a kerb and spreads towards the road centre.
    side = kl if rng.random() < 0.5 else kr
    k = int(rng.integers(2, 5))
    cx = side + np.sign(-side) * rng.uniform(0.5, cam.road_width * 0.35, size=k)
    cz = z_center + rng.uniform(-4, 4, size=k)
    return WaterPatch(
        centers=np.stack([cx, cz], axis=1),
        radii=np.stack([rng.uniform(1.5, cam.road_width * 0.4, size=k), rng.uniform(3, 9, size=k)], axis=1),
        muddy=np.array([60.0, 90.0, 110.0]) * rng.uniform(0.7, 1.2),
        phase=float(rng.uniform(0, 6.28)),
    )
