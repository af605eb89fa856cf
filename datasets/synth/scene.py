"""One synthetic CCTV scene: a street camera, its look, the objects in view, and the labels.

`random_scene(seed)` draws a scene; `render_scene(scene)` turns it into a BGR image and
YOLO-style labels. Everything is deterministic from the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from datasets.synth import objects
from datasets.synth.background import Look, WaterPatch, random_look, random_water, render_background
from datasets.synth.camera import StreetCamera, random_camera
from datasets.synth.crops import CropBank, draw_crop

# Classes of the synthetic data; the model manifest maps them to issue types.
CLASSES = ("vending", "clutter", "flooding", "garbage_bin")
CLASS_ID = {name: i for i, name in enumerate(CLASSES)}

# Object kinds, the class they are labelled as (None: an unlabelled hard negative).
KIND_CLASS = {
    "vending": "vending",
    "clutter": "clutter",
    "garbage_crop": "clutter",  # a real garbage photo crop pasted in (datasets/synth/crops.py)
    "overflowing_bin": "clutter",
    "bin": "garbage_bin",
    "car": None,
    "person": None,
}


@dataclass
class Placed:
    kind: str
    x: float
    z: float
    seed: int


@dataclass
class Scene:
    camera: StreetCamera
    look: Look
    objects: list[Placed] = field(default_factory=list)
    water: WaterPatch | None = None
    effects_seed: int = 0
    rain: bool = False
    blur: bool = False
    noise: float = 3.0
    jpeg_quality: int = 85


@dataclass
class Label:
    class_id: int
    box: tuple[float, float, float, float]  # pixels x1, y1, x2, y2
    source: int | None = None  # the index in Scene.objects of the object labelled (None: the water)


MIN_VISIBLE = 0.2  # an object hidden behind nearer ones beyond this share of its pixels gets no label


def visible_z_range(cam: StreetCamera) -> tuple[float, float]:
    """Ground distances that are in view and where a 1 m object is at least ~14 px tall."""
    zs = np.linspace(1, 80, 160)
    ok = [z for z in zs if cam.ground_point_visible(cam.cam_x * 0.5, z)]
    near = ok[0] if ok else 5.0
    far = min(ok[-1] if ok else 30.0, cam.focal / 14.0)
    return float(near), float(max(far, near + 3))


# Half the ground footprint (across, along the street) of each kind, in metres: two objects
# whose footprints overlap would be drawn inside each other.
FOOTPRINT = {"car": (0.95, 2.3), "vending": (1.1, 1.1), "clutter": (0.9, 0.9), "garbage_crop": (0.9, 0.9),
             "overflowing_bin": (0.4, 0.4), "bin": (0.4, 0.4), "person": (0.3, 0.3)}


def _overlaps(a: Placed, b: Placed) -> bool:
    (ax, az), (bx, bz) = FOOTPRINT[a.kind], FOOTPRINT[b.kind]
    return abs(a.x - b.x) < ax + bx and abs(a.z - b.z) < az + bz


def place(rng: np.random.Generator, cam: StreetCamera, kind: str, z_range: tuple[float, float],
          taken: list[Placed] = (), tries: int = 8) -> Placed | None:
    """A spot for one object of `kind` clear of those `taken`; None if `tries` draws found none."""
    kl, kr = cam.kerb_x
    fl, fr = cam.facade_x
    for _ in range(tries):
        side = rng.choice([-1, 1])
        if kind == "car":
            x = (kl + 1.2) if side < 0 else (kr - 1.2)
        elif kind in ("vending", "clutter", "garbage_crop"):
            # On the sidewalk or spilling onto the road edge: both block someone's way.
            x = float(rng.uniform(kl - 2.5, kl + 0.8) if side < 0 else rng.uniform(kr - 0.8, kr + 2.5))
        else:
            x = float(rng.uniform(fl + 0.5, kl - 0.5) if side < 0 else rng.uniform(kr + 0.5, fr - 0.5))
        spot = Placed(kind, float(x), float(rng.uniform(*z_range)), int(rng.integers(1 << 31)))
        if not any(_overlaps(spot, other) for other in taken):
            return spot
    return None


def random_scene(seed: int, width: int = 640, height: int = 360, issues: dict[str, float] | None = None,
                 crop_share: float = 0.0) -> Scene:
    """A random street scene. `issues` gives the chance that each issue type appears;
    `crop_share` the chance that a clutter pile is a real garbage crop instead of a drawn one."""
    rng = np.random.default_rng(seed)
    chances = issues or {"vending": 0.5, "clutter": 0.5, "flooding": 0.35}
    cam = random_camera(rng, width, height)
    look = random_look(rng)
    zr = visible_z_range(cam)
    placed: list[Placed] = []

    def add(kind: str) -> None:
        spot = place(rng, cam, kind, zr, placed)
        if spot is not None:
            placed.append(spot)

    for kind in ("vending", "clutter"):
        for _ in range(int(rng.random() < chances[kind]) * int(rng.integers(1, 3))):
            add(kind)
    if rng.random() < 0.15:
        add("overflowing_bin")
    for kind, mean in (("bin", 0.8), ("car", 1.0), ("person", 1.5)):
        for _ in range(rng.poisson(mean)):
            add(kind)
    water = random_water(rng, cam, float(rng.uniform(*zr))) if rng.random() < chances["flooding"] else None
    if crop_share > 0:
        # a stream of its own, so scenes without crops stay what the same seed always gave
        pick = np.random.default_rng([seed, 1])
        placed = [replace(o, kind="garbage_crop") if o.kind == "clutter" and pick.random() < crop_share else o
                  for o in placed]
    return Scene(
        camera=cam,
        look=look,
        objects=placed,
        water=water,
        effects_seed=int(rng.integers(1 << 31)),
        rain=bool(rng.random() < (0.5 if water is not None else 0.15)),
        blur=bool(rng.random() < 0.15),
        noise=float(rng.uniform(1, 4) * (2.5 if look.time_of_day == "night" else 1)),
        jpeg_quality=int(rng.integers(40, 92)),
    )


DRAW = {
    "vending": objects.draw_vending,
    "clutter": objects.draw_clutter,
    "bin": objects.draw_bin,
    "overflowing_bin": lambda p, rng, x, z: objects.draw_bin(p, rng, x, z, overflowing=True),
    "car": objects.draw_car,
    "person": objects.draw_person,
}


def render_layers(scene: Scene, background: tuple[np.ndarray, np.ndarray] | None = None,
                  crops: CropBank | None = None) -> tuple[np.ndarray, list[Label]]:
    """The clean float image with objects and labels, before camera effects. Scenes with
    real garbage crops need the `crops` bank they are cut from."""
    img, water_mask = background if background is not None else render_background(scene.camera, scene.look, scene.water)
    img = img.copy()
    labels: list[Label] = []
    if water_mask.sum() > 150:
        ys, xs = np.nonzero(water_mask)
        labels.append(Label(CLASS_ID["flooding"], (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))))
    # Which object is on top of each pixel: objects are painted far to near, so a nearer one
    # (a parked car) may hide part or all of one labelled before it.
    owner = np.full(img.shape[:2], -1, np.int32)
    painted: dict[int, int] = {}
    drawn: list[Label] = []
    for index in sorted(range(len(scene.objects)), key=lambda i: -scene.objects[i].z):  # far to near
        obj = scene.objects[index]
        painter = objects.Painter(img, scene.camera, scene.look.ambient if scene.look.time_of_day == "day" else scene.look.ambient * 1.6)
        rng = np.random.default_rng(obj.seed)
        before = img.copy()
        if obj.kind == "garbage_crop":
            if crops is None:
                raise ValueError("this scene pastes real garbage crops: render it with a CropBank")
            draw_crop(painter, rng, obj.x, obj.z, crops)
        else:
            DRAW[obj.kind](painter, rng, obj.x, obj.z)
        changed = (img != before).any(axis=2)
        owner[changed], painted[index] = index, int(changed.sum())
        box = painter.result()
        cls = KIND_CLASS[obj.kind]
        if box is not None and cls is not None:
            drawn.append(Label(CLASS_ID[cls], box, index))
    for label in drawn:
        if (shown := _visible_part(label, owner, painted[label.source])) is not None:
            labels.append(shown)
    return img, labels


def _visible_part(label: Label, owner: np.ndarray, painted: int) -> Label | None:
    """The label of what shows of its object: as drawn if nothing hides it, the box of its
    visible pixels if something nearer hides part of it, none if that leaves too little."""
    visible = owner == label.source
    shown = int(visible.sum())
    if painted == 0 or shown < MIN_VISIBLE * painted:
        return None
    if shown == painted:
        return label
    ys, xs = np.nonzero(visible)
    x1, y1, x2, y2 = label.box
    box = (max(x1, float(xs.min())), max(y1, float(ys.min())), min(x2, float(xs.max() + 1)), min(y2, float(ys.max() + 1)))
    if box[2] - box[0] < 6 or box[3] - box[1] < 6:
        return None
    return Label(label.class_id, box, label.source)


def apply_camera_effects(img: np.ndarray, scene: Scene, frame_index: int = 0) -> np.ndarray:
    """Rain, motion blur, sensor noise and JPEG artefacts; returns uint8 BGR."""
    rng = np.random.default_rng(scene.effects_seed + 7919 * frame_index)
    out = img.copy()
    if scene.rain:
        streaks = np.zeros_like(out)
        h, w = out.shape[:2]
        for _ in range(int(w * h / 900)):
            x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
            cv2.line(streaks, (x, y), (x + int(rng.integers(-3, 3)), y + int(rng.integers(8, 20))), (200, 200, 200), 1)
        out = out * 0.85 + streaks * 0.25 + 10
    if scene.blur:
        k = np.zeros((7, 7), np.float32)
        k[3, :] = 1 / 7
        out = cv2.filter2D(out, -1, k)
    out = out + rng.normal(0, scene.noise, size=out.shape)
    out8 = np.clip(out, 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", out8, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out8


def render_scene(scene: Scene, crops: CropBank | None = None) -> tuple[np.ndarray, list[Label]]:
    img, labels = render_layers(scene, crops=crops)
    return apply_camera_effects(img, scene), labels


def with_objects(scene: Scene, objects_: list[Placed], water: WaterPatch | None) -> Scene:
    return replace(scene, objects=objects_, water=water)
