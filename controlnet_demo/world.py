"""A synthetic "small world" to train a small SD-architecture model and its ControlNets on, and to measure them.

A seeded generator samples scenes (flat-coloured shapes, sometimes a stick-figure person, on a flat or sky/ground
background), renders them at any size, captions them with a small fixed vocabulary, and derives the four control
maps (canny, scribble, depth, pose) in the ControlNet 1.1 layout — from the scene geometry, so they are exact.
`analyse` reads colours and shapes back from any image, to score how well a generated picture follows its prompt.
Coordinates are normalised to [0, 1] (x right, y down) so one scene renders at 64, 96 or 128 px alike.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class WorldConfig:
    supersample: int = 4  # draw at this multiple, then INTER_AREA down: anti-aliased edges, sub-pixel geometry
    max_shapes: int = 3
    person_chance: float = 0.4
    sky_chance: float = 0.5  # otherwise a flat background
    shape_size: tuple[float, float] = (0.12, 0.2)  # area-equivalent radius, farthest → nearest (0.12 ≈ 4.5 % area)
    person_height: tuple[float, float] = (0.55, 0.85)  # head to feet, farthest → nearest
    spacing: float = 0.9  # centres at least spacing × (sum of radii) apart: overlaps stay partial
    canny: tuple[int, int] = (100, 200)  # the app's canny defaults, so training maps match what users get
    scribble_width: tuple[float, float] = (1.0, 3.0)  # line width in px at 64 px (scales with the size)
    scribble_wobble: float = 0.012  # rms hand wobble along a stroke, in image widths
    scribble_offset: float = 0.012  # rms misplacement of a whole outline
    warp: float = 0.0  # share of shapes drawn irregular (stretched, sheared, bumpy): outlines beyond the five kinds
    depth_objects: tuple[int, int] = (110, 255)  # farthest → nearest object; near = bright as in MiDaS maps
    depth_ground: tuple[int, int] = (20, 100)  # horizon → bottom edge; sky and flat backgrounds are 0
    colour_distance: float = 80.0  # RGB distance within which a pixel counts as a named colour
    min_area: float = 0.03  # a colour is "present" above this share of the pixels


DEFAULT = WorldConfig()

# Named colours: six object colours, well apart in RGB, plus three that only backgrounds use.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 35),
    "green": (40, 160, 60),
    "blue": (35, 75, 210),
    "yellow": (245, 210, 30),
    "purple": (140, 55, 170),
    "orange": (245, 135, 25),
    "white": (245, 245, 240),
    "black": (25, 25, 25),
    "gray": (128, 128, 128),
}
OBJECT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange")
FLAT_BACKGROUNDS = tuple(COLOURS)
SKIES = ("white", "gray", "blue", "black")
GROUNDS = ("green", "yellow", "gray", "orange")

# Shapes as polygons around a unit circumradius: (vertices, radii pattern repeated round the polygon, hole radius).
# Circles are 48-gons: at 4x supersampling the facets are under a tenth of a pixel.
SHAPE_POLYGONS: dict[str, tuple[int, tuple[float, ...], float]] = {
    "circle": (48, (1.0,), 0.0),
    "square": (4, (1.0,), 0.0),
    "triangle": (3, (1.0,), 0.0),
    "star": (10, (1.0, 0.5), 0.0),
    "ring": (48, (1.0,), 0.55),
}
SHAPES = tuple(SHAPE_POLYGONS)


def _unit_polygon(kind: str) -> list[np.ndarray]:
    n, radii, hole = SHAPE_POLYGONS[kind]
    a = -np.pi / 2 + 2 * np.pi * np.arange(n) / n  # first vertex up: triangles and stars stand on their base
    r = np.resize(np.array(radii), n)
    rings = [np.stack([r * np.cos(a), r * np.sin(a)], 1)]
    return rings + ([hole * rings[0]] if hole else [])


def _area(poly: np.ndarray) -> float:
    x, y = poly.T
    return 0.5 * abs(x @ np.roll(y, 1) - y @ np.roll(x, 1))


# Circumradius per unit "area-equivalent radius" s, so every kind at size s covers pi s^2: a far triangle is as
# visible as a far circle, and one size range keeps every shape above analyse's min_area.
_UNIT = {k: _unit_polygon(k) for k in SHAPES}
CIRCUMRADIUS = {k: float(np.sqrt(np.pi / (_area(p[0]) - sum(_area(h) for h in p[1:])))) for k, p in _UNIT.items()}

# OpenPose's 18 body keypoints, in its order.
KEYPOINTS = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist", "r_hip",
             "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")
K = {name: i for i, name in enumerate(KEYPOINTS)}

# Poses: limb angles in degrees from hanging straight down, positive = away from the body's midline (180 = up).
# Order: right upper arm, right forearm, left upper arm, left forearm, right thigh, right shin, left thigh, left shin.
# Asymmetric poses are mirrored half the time, so "waving" uses either hand.
_STAND_LEGS = ((3, 10), (0, 8), (3, 10), (0, 8))
POSES: dict[str, tuple[tuple[int, int], ...]] = {
    "standing": ((8, 25), (5, 30), (8, 25), (5, 30)) + _STAND_LEGS,
    "waving": ((95, 135), (150, 185), (8, 25), (5, 30)) + _STAND_LEGS,
    "with arms up": ((135, 170), (150, 185), (135, 170), (150, 185)) + _STAND_LEGS,
    "with arms out": ((80, 100), (75, 110), (80, 100), (75, 110), (5, 15), (3, 15), (5, 15), (3, 15)),
    "walking": ((20, 40), (35, 70), (-25, -10), (-35, -10), (18, 30), (5, 20), (12, 22), (25, 45)),
}
_MIRRORED = {"waving", "walking"}

# Body proportions in units of the person's height h (head top to feet), origin at the neck, y down.
BODY = dict(shoulder=0.1, hip=0.06, torso=0.32, upper_arm=0.17, forearm=0.16, thigh=0.24, shin=0.24,
            head_y=-0.12, head_r=0.085, limb=0.055, trunk=0.1)
# Capsules drawn for a body (keypoint pairs); the trunk (neck → mid-hip) and the head are drawn apart.
LIMBS = (("neck", "r_shoulder"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"), ("neck", "l_shoulder"),
         ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"), ("r_hip", "l_hip"), ("r_hip", "r_knee"),
         ("r_knee", "r_ankle"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"))

_FIXED = 16  # cv2 fixed-point factor (shift=4): sub-pixel coordinates on the supersampled canvas


def _px(points: np.ndarray, n: int) -> np.ndarray:
    return np.round(np.asarray(points) * n * _FIXED).astype(np.int32)


def _pt(point: np.ndarray, n: int) -> tuple[int, int]:
    return tuple(_px(point, n).tolist())


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: str
    x: float
    y: float
    size: float  # area-equivalent radius
    angle: float  # radians
    near: float  # 0 = farthest, 1 = nearest
    warp: tuple[float, ...] = ()  # irregular: a 2x2 matrix (row-major), then one radius factor per vertex

    @property
    def radius(self) -> float:
        return self.size * CIRCUMRADIUS[self.kind]

    def contours(self) -> list[np.ndarray]:
        """Outer polygon (and the hole of a ring) in image coordinates, each (N, 2)."""
        c, s = np.cos(self.angle), np.sin(self.angle)
        rot = np.array([[c, s], [-s, c]]) * self.radius
        rings = _UNIT[self.kind]
        if self.warp:
            matrix, bumps = _warp_parts(self.warp)
            rings = [p * bumps[:, None] @ matrix for p in rings]
        return [p @ rot + (self.x, self.y) for p in rings]

    def draw(self, canvas: np.ndarray, value) -> None:
        n = canvas.shape[0]
        cv2.fillPoly(canvas, [_px(p, n) for p in self.contours()], value, cv2.LINE_8, shift=4)  # even-odd: holes

    def strokes(self) -> list[tuple[np.ndarray, bool]]:
        """What a person scribbling it would trace: its outlines, closed."""
        return [(p, True) for p in self.contours()]

    def cores(self) -> tuple[np.ndarray, float]:
        """Points and a radius that stand for the shape's bulk when keeping objects apart."""
        grown = np.sqrt(abs(np.linalg.det(_warp_parts(self.warp)[0]))) if self.warp else 1.0
        return np.array([[self.x, self.y]]), self.size * grown

    @property
    def phrase(self) -> str:
        return f"{_article(self.colour)} {self.colour} {self.kind}"


@dataclass(frozen=True)
class Person:
    colour: str
    pose: str
    keypoints: tuple[tuple[float, float], ...]  # 18 (x, y) in OpenPose order
    height: float
    near: float
    kind: str = field(default="person", init=False)

    @property
    def points(self) -> np.ndarray:
        return np.array(self.keypoints)  # (18, 2)

    def _head(self) -> tuple[np.ndarray, float]:
        p = self.points
        return p[K["neck"]] + (0, BODY["head_y"] * self.height), BODY["head_r"] * self.height

    def draw(self, canvas: np.ndarray, value) -> None:
        n, p = canvas.shape[0], self.points
        width = max(1, round(BODY["limb"] * self.height * n))
        head, r = self._head()
        neck, hip = _pt(p[K["neck"]], n), _pt((p[K["r_hip"]] + p[K["l_hip"]]) / 2, n)
        cv2.line(canvas, neck, hip, value, max(1, round(BODY["trunk"] * self.height * n)), cv2.LINE_8, 4)
        cv2.line(canvas, neck, _pt(head, n), value, width, cv2.LINE_8, 4)
        for a, b in LIMBS:  # thick cv2 lines have round ends: capsules
            cv2.line(canvas, _pt(p[K[a]], n), _pt(p[K[b]], n), value, width, cv2.LINE_8, 4)
        cv2.circle(canvas, _pt(head, n), round(r * n * _FIXED), value, -1, cv2.LINE_8, 4)

    def strokes(self) -> list[tuple[np.ndarray, bool]]:
        """A stick figure, the way people scribble a person: arms, spine, legs (open) and the head (closed)."""
        p = self.points
        hip = (p[K["r_hip"]] + p[K["l_hip"]]) / 2
        head, r = self._head()
        arms = p[[K[k] for k in ("r_wrist", "r_elbow", "r_shoulder", "neck", "l_shoulder", "l_elbow", "l_wrist")]]
        legs = p[[K[k] for k in ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle")]]
        a = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        return [(arms, False), (np.stack([p[K["neck"]], hip]), False), (legs, False),
                (head + r * np.stack([np.cos(a), np.sin(a)], 1), True)]

    def cores(self) -> tuple[np.ndarray, float]:
        p = self.points
        hip = (p[K["r_hip"]] + p[K["l_hip"]]) / 2
        return np.stack([p[K["neck"]], (p[K["neck"]] + hip) / 2, hip, self._head()[0]]), BODY["trunk"] * self.height

    @property
    def phrase(self) -> str:
        return f"a person in {self.colour} {self.pose}"


@dataclass(frozen=True)
class Scene:
    background: tuple[str, ...]  # (colour,) for a flat background, (sky, ground) for a two-tone one
    horizon: float | None  # y of the sky/ground split
    objects: tuple[Shape | Person, ...]  # farthest first: the drawing order

    @property
    def person(self) -> Person | None:
        return next((o for o in self.objects if isinstance(o, Person)), None)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


# --- sampling ---------------------------------------------------------------------------------------------------


def _direction(side: int, degrees: float) -> np.ndarray:
    t = np.radians(degrees)
    return np.array([side * np.sin(t), np.cos(t)])


def _body(pose: str, rng: np.random.Generator) -> np.ndarray:
    """The 18 keypoints of a person of height 1 with the neck at the origin, facing the viewer. (18, 2)"""
    angles = [rng.uniform(lo, hi) for lo, hi in POSES[pose]]
    if pose in _MIRRORED and rng.random() < 0.5:
        angles = angles[2:4] + angles[0:2] + angles[6:8] + angles[4:6]
    ru, rf, lu, lf, rt, rs, lt, ls = angles
    b, p = BODY, np.zeros((18, 2))
    # The person's right is the viewer's left (side -1), as OpenPose draws a person facing the camera.
    for side, prefix, (upper, fore), (thigh, shin) in ((-1, "r_", (ru, rf), (rt, rs)), (1, "l_", (lu, lf), (lt, ls))):
        p[K[prefix + "shoulder"]] = (side * b["shoulder"], 0.01)
        p[K[prefix + "elbow"]] = p[K[prefix + "shoulder"]] + b["upper_arm"] * _direction(side, upper)
        p[K[prefix + "wrist"]] = p[K[prefix + "elbow"]] + b["forearm"] * _direction(side, fore)
        p[K[prefix + "hip"]] = (side * b["hip"], b["torso"])
        p[K[prefix + "knee"]] = p[K[prefix + "hip"]] + b["thigh"] * _direction(side, thigh)
        p[K[prefix + "ankle"]] = p[K[prefix + "knee"]] + b["shin"] * _direction(side, shin)
        p[K[prefix + "eye"]] = (side * 0.03, b["head_y"] - 0.01)
        p[K[prefix + "ear"]] = (side * 0.065, b["head_y"])
    p[K["nose"]] = (0, b["head_y"] + 0.015)
    return p


def _sample_person(rng: np.random.Generator, colour: str, near: float, horizon: float | None, cfg: WorldConfig):
    pose = list(POSES)[rng.integers(len(POSES))]
    body = _body(pose, rng)
    lo_h, hi_h = cfg.person_height
    height = lo_h + (hi_h - lo_h) * near
    # Bounding box with the head and the limb width, so the whole person stays in the frame.
    margin = BODY["limb"]
    top = min(body[:, 1].min(), BODY["head_y"] - BODY["head_r"]) - margin
    lo, hi = body.min(0) - margin, body.max(0) + margin
    lo[1] = top
    height = min(height, 0.95 / (hi - lo).max())  # 0.95 < 0.96: some room, never an empty range
    x = rng.uniform(0.02 - lo[0] * height, 0.98 - hi[0] * height)
    y_lo, y_hi = 0.02 - lo[1] * height, 0.98 - hi[1] * height
    if horizon is not None:  # feet on the ground where the frame allows it
        y_lo = min(max(y_lo, horizon + 0.05 - body[:, 1].max() * height), y_hi)
    y = rng.uniform(y_lo, y_hi)
    points = body * height + (x, y)
    return Person(colour, pose, tuple(map(tuple, points.round(5).tolist())), height, near)


def _warp(kind: str, rng: np.random.Generator) -> tuple[float, ...]:
    """A random irregular version of a kind: a scale up to 2.2x (drawings fill more of the picture than the world's
    shapes), a stretch and a shear, and per-vertex radius factors (smooth low-frequency bumps on the 48-gons, so
    circles become ellipses and blobs, not stars)."""
    scale, stretch, shear = np.exp(rng.uniform(np.log(0.8), np.log(2.2))), np.exp(rng.uniform(-0.5, 0.5)), \
        rng.uniform(-0.3, 0.3)
    matrix = scale * np.array([[stretch, 0.0], [shear, 1 / stretch]])
    n = SHAPE_POLYGONS[kind][0]
    if n > 12:
        a = 2 * np.pi * np.arange(n) / n
        bumps = 1 + sum(rng.uniform(0, 0.12) * np.cos(k * a + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4))
    else:
        bumps = rng.uniform(0.7, 1.25, n)
    return tuple(np.concatenate([matrix.ravel(), bumps]).round(4).tolist())


def _warp_parts(warp: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """A Shape's warp as (2x2 matrix, per-vertex radius factors)."""
    return np.reshape(warp[:4], (2, 2)), np.array(warp[4:])


def _apart(obj, placed: list, cfg: WorldConfig) -> bool:
    pts, r = obj.cores()
    for other in placed:
        qts, q = other.cores()
        if np.linalg.norm(pts[:, None] - qts[None], axis=-1).min() < cfg.spacing * (r + q):
            return False
    return True


def sample_scene(rng: np.random.Generator, config: WorldConfig = DEFAULT) -> Scene:
    """A random scene; the same generator state always gives the same scene."""
    cfg = config
    if rng.random() < cfg.sky_chance:
        sky = SKIES[rng.integers(len(SKIES))]
        ground = rng.choice([g for g in GROUNDS if g != sky])
        background, horizon = (str(sky), str(ground)), float(rng.uniform(0.35, 0.65))
    else:
        background, horizon = (str(FLAT_BACKGROUNDS[rng.integers(len(FLAT_BACKGROUNDS))]),), None
    # Every object gets its own colour, none of the background's: each colour then names one thing in the picture.
    free = [c for c in OBJECT_COLOURS if c not in background]
    n_shapes = int(rng.integers(1, cfg.max_shapes + 1))
    has_person = rng.random() < cfg.person_chance
    colours = [str(c) for c in rng.permutation(free)[: n_shapes + has_person]]
    nears = rng.random(n_shapes + has_person)

    placed: list = []
    if has_person:  # placed first: it is the largest and the hardest to fit
        placed.append(_sample_person(rng, colours.pop(), float(nears[-1]), horizon, cfg))
    lo_s, hi_s = cfg.shape_size
    for colour, near in zip(colours, nears):
        kind, size = SHAPES[rng.integers(len(SHAPES))], lo_s + (hi_s - lo_s) * float(near)
        # Only a warping world draws more random numbers: the default world's scenes stay exactly as they were.
        warp = _warp(kind, rng) if cfg.warp and rng.random() < cfg.warp else ()
        matrix, bumps = _warp_parts(warp) if warp else (np.eye(2), np.ones(1))
        r = min(size * CIRCUMRADIUS[kind] * bumps.max() * np.linalg.norm(matrix, 2) + 0.01, 0.45)
        for _ in range(30):  # rejection sampling for a spot that keeps overlaps partial
            shape = Shape(kind, colour, *rng.uniform(r, 1 - r, 2).round(5).tolist(), size,
                          float(rng.uniform(0, 2 * np.pi)), float(near), warp)
            if _apart(shape, placed, cfg):
                placed.append(shape)
                break
    return Scene(background, horizon, tuple(sorted(placed, key=lambda o: o.near)))


# --- rendering and control maps ----------------------------------------------------------------------------------


def _paint(scene: Scene, size: int, background: np.ndarray, value_of, cfg: WorldConfig) -> np.ndarray:
    """Painter's algorithm on the supersampled canvas `background`, then area-averaged down to size."""
    for obj in scene.objects:
        obj.draw(background, value_of(obj))
    return cv2.resize(background, (size, size), interpolation=cv2.INTER_AREA)


def _rows(scene: Scene, n: int, sky, ground_of_y) -> np.ndarray:
    """A background canvas (n, n, ...) from a per-row rule: sky above the horizon, ground_of_y(y) below."""
    y = (np.arange(n) + 0.5) / n
    rows = np.array([sky if scene.horizon is None or v < scene.horizon else ground_of_y(v) for v in y])
    return np.ascontiguousarray(np.broadcast_to(rows[:, None], (n, n, *rows.shape[1:])).astype(np.uint8))


def render(scene: Scene, size: int = 64, config: WorldConfig = DEFAULT) -> np.ndarray:
    """The picture: uint8 RGB (size, size, 3)."""
    n = size * config.supersample
    sky, ground = COLOURS[scene.background[0]], COLOURS[scene.background[-1]]
    canvas = _rows(scene, n, sky, lambda y: ground)
    return _paint(scene, size, canvas, lambda o: COLOURS[o.colour], config)


def depth_map(scene: Scene, size: int = 64, config: WorldConfig = DEFAULT) -> np.ndarray:
    """Near = bright (like MiDaS inverse depth): objects by their depth, the ground a gradient, the rest 0. (S, S, 3)"""
    cfg, n = config, size * config.supersample
    g0, g1 = cfg.depth_ground
    # Inverse depth of a ground plane grows linearly from the horizon down: a linear ramp is the exact map.
    ground = lambda y: g0 + (g1 - g0) * (y - scene.horizon) / (1 - scene.horizon)  # noqa: E731
    o0, o1 = cfg.depth_objects
    depth = _paint(scene, size, _rows(scene, n, 0, ground), lambda o: int(round(o0 + (o1 - o0) * o.near)), cfg)
    return np.repeat(depth[..., None], 3, axis=2)


def labels(scene: Scene, size: int = 64, config: WorldConfig = DEFAULT) -> np.ndarray:
    """Which object each pixel shows: 0 background, i + 1 for scene.objects[i]. (S, S) uint8, no anti-aliasing."""
    ss = config.supersample
    canvas = np.zeros((size * ss, size * ss), np.uint8)
    for i, obj in enumerate(scene.objects):
        obj.draw(canvas, i + 1)
    return canvas[ss // 2 :: ss, ss // 2 :: ss].copy()  # the sample at each pixel's centre


def canny_map(image: np.ndarray, config: WorldConfig = DEFAULT) -> np.ndarray:
    """cv2.Canny on the rendered RGB image, as the app computes it: white edges on black. (H, W, 3)"""
    return np.repeat(cv2.Canny(image, *config.canny)[..., None], 3, axis=2)


def _wobble(path: np.ndarray, closed: bool, rng: np.random.Generator, cfg: WorldConfig) -> np.ndarray:
    """A hand's version of a path: misplaced a little as a whole, wobbling along, and not quite closed."""
    pts = np.concatenate([path, path[:1]]) if closed else path
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    t = np.concatenate([[0], np.cumsum(seg)])
    # Resample every 0.01 image widths so the wobble depends on length, not on the polygon's vertex count.
    s = np.linspace(0, t[-1], max(4, int(t[-1] / 0.01)))
    if closed:  # start anywhere, stop a bit short or overshoot
        s = (s * rng.uniform(0.85, 1.08) + rng.uniform(0, t[-1])) % t[-1]
    dense = np.stack([np.interp(s, t, pts[:, 0]), np.interp(s, t, pts[:, 1])], 1)
    walk = rng.normal(0, 1, dense.shape).cumsum(0)  # a random walk: slow drift, like an unsteady hand
    walk -= walk.mean(0)
    walk *= cfg.scribble_wobble / (np.sqrt((walk**2).mean()) + 1e-9)
    c = dense.mean(0)
    angle, scale = rng.normal(0, 0.06), rng.normal(1, 0.05)
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]) * scale
    return (dense - c) @ rot + c + rng.normal(0, cfg.scribble_offset, 2) + walk


def scribble_map(scene: Scene, size: int = 64, rng: np.random.Generator | None = None,
                 config: WorldConfig = DEFAULT) -> np.ndarray:
    """Rough hand-drawn outlines of what is visible: white lines on black, binary. (S, S, 3)"""
    cfg, rng = config, rng if rng is not None else np.random.default_rng(0)
    n = size * cfg.supersample
    canvas = np.zeros((n, n), np.uint8)
    width = max(1, round(rng.uniform(*cfg.scribble_width) * size / 64 * cfg.supersample))
    if scene.horizon is not None:
        line = _wobble(np.array([[0.0, scene.horizon], [1.0, scene.horizon]]), False, rng, cfg)
        cv2.polylines(canvas, [_px(line, n)], False, 255, width, cv2.LINE_8, 4)
    for obj in scene.objects:
        obj.draw(canvas, 0)  # a nearer object hides the lines behind it: only visible outlines get drawn
        for path, closed in obj.strokes():
            cv2.polylines(canvas, [_px(_wobble(path, closed, rng, cfg), n)], False, 255, width, cv2.LINE_8, 4)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return np.repeat(np.where(small > 80, 255, 0).astype(np.uint8)[..., None], 3, axis=2)  # binary, as ControlNet's


def pose_map(scene: Scene, size: int = 64, config: WorldConfig = DEFAULT) -> np.ndarray:
    """The person's 18 keypoints in OpenPose's colours, drawn by controlnet-aux; all black without a person."""
    n = size * config.supersample
    person = scene.person
    if person is None:
        return np.zeros((size, size, 3), np.uint8)
    from controlnet_aux.open_pose.body import Keypoint  # slow import: only when there is a pose to draw
    from controlnet_aux.open_pose.util import draw_bodypose

    # draw_bodypose's line widths are fixed in pixels: drawing at supersample x keeps the skeleton ~2 px at 64 px.
    canvas = draw_bodypose(np.zeros((n, n, 3), np.uint8), [Keypoint(x, y) for x, y in person.keypoints])
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def caption(scene: Scene) -> str:
    """E.g. "a red circle and a person in blue waving in front of a green star on a yellow background"."""
    *front, back = [o.phrase for o in reversed(scene.objects)]  # nearest first, the farthest stands behind
    listed = f"{', '.join(front[:-1])} and {front[-1]}" if len(front) > 1 else "".join(front)
    text = f"{listed} in front of {back}" if front else back
    if scene.horizon is None:
        c = scene.background[0]
        return f"{text} on {_article(c)} {c} background"
    sky, ground = scene.background
    return f"{text} on {ground} ground under {_article(sky)} {sky} sky"


CONDITIONS = ("canny", "scribble", "depth", "pose")


@dataclass
class Example:
    scene: Scene
    image: np.ndarray  # (S, S, 3) uint8 RGB
    maps: dict[str, np.ndarray]  # condition name → (S, S, 3) uint8
    prompt: str


def example(rng: np.random.Generator, size: int = 64, config: WorldConfig = DEFAULT,
            maps: tuple[str, ...] = CONDITIONS) -> Example:
    """One training example: a scene, its picture, the named maps (all four by default) and its caption. The
    scribble consumes rng too, after the rest: leaving maps out changes none of the others."""
    scene = sample_scene(rng, config)
    image = render(scene, size, config)
    makers = dict(canny=lambda: canny_map(image, config), scribble=lambda: scribble_map(scene, size, rng, config),
                  depth=lambda: depth_map(scene, size, config), pose=lambda: pose_map(scene, size, config))
    return Example(scene, image, {name: make() for name, make in makers.items() if name in maps}, caption(scene))


# --- analysis -------------------------------------------------------------------------------------------------------

_PALETTE = np.array(list(COLOURS.values()), np.float32)  # (C, 3)
_NAMES = tuple(COLOURS)


@dataclass
class Analysis:
    colours: dict[str, float]  # named colours above min_area → their share of the pixels, largest first
    shapes: dict[str, str]  # object colour → shape guess for its largest blob
    expected: list[tuple[str, str]] | None = None  # (colour, kind) named by the scene or caption
    found: list[bool] | None = None  # per expected object: colour present and (shapes only) shape right

    @property
    def score(self) -> float | None:
        return None if self.found is None else float(np.mean(self.found)) if self.found else 1.0


def colour_index(image: np.ndarray, config: WorldConfig = DEFAULT) -> np.ndarray:
    """Index into COLOURS of the nearest named colour per pixel, -1 where none is within colour_distance. (H, W)"""
    d = ((image[..., None, :].astype(np.float32) - _PALETTE) ** 2).sum(-1)  # (H, W, C)
    idx = d.argmin(-1)
    return np.where(np.take_along_axis(d, idx[..., None], -1)[..., 0] <= config.colour_distance**2, idx, -1)


def shape_features(mask: np.ndarray) -> dict[str, float] | None:
    """Contour geometry of the largest blob of a binary mask (None if there is no blob of a few pixels).

    Every feature is a ratio, so it holds at any size, and most survive a bite taken by a nearer object:
    hole: largest hole / blob area; thin: inscribed / enclosing radius (ring band 0.22, star 0.4, square 0.7,
    circle 1); notches: convexity defects deeper than 0.2 enclosing radii (a star has five); round: share of the
    outline on its enclosing circle (circle 1, polygons only near their corners); square / triangle: hull area
    over the smallest enclosing rectangle / triangle.
    """
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    outers = [i for i in range(len(contours)) if hierarchy[0][i][3] < 0]
    if not outers:
        return None
    i = max(outers, key=lambda j: cv2.contourArea(contours[j]))
    outer, area = contours[i], cv2.contourArea(contours[i])
    if area < 4:
        return None
    holes = [cv2.contourArea(c) for c, h in zip(contours, hierarchy[0]) if h[3] == i]
    blob = np.zeros((mask.shape[0] + 2, mask.shape[1] + 2), np.uint8)  # padded: the frame edge is not a boundary
    cv2.drawContours(blob, [outer + 1], -1, 1, -1)
    (cx, cy), r = cv2.minEnclosingCircle(outer)
    # Sorted hull indices: pixel contours can touch themselves, and convexityDefects rejects unsorted ones.
    defects = cv2.convexityDefects(outer, np.sort(cv2.convexHull(outer, returnPoints=False), axis=0))
    depths = np.zeros(0) if defects is None else defects.reshape(-1, 4)[:, 3] / 256
    hull = cv2.convexHull(outer)
    h = cv2.contourArea(hull) + 1e-9
    (_, (width, length), _) = cv2.minAreaRect(hull)
    return dict(
        hole=max(holes, default=0) / area,
        thin=cv2.distanceTransform(blob, cv2.DIST_L2, 5).max() / r,
        notches=float((depths > 0.2 * r).sum()),
        round=float((np.hypot(*(outer[:, 0] - (cx, cy)).T) > 0.9 * r - 0.5).mean()),
        square=h / (width * length + 1e-9),
        triangle=h / (cv2.minEnclosingTriangle(hull.astype(np.float32))[0] + 1e-9),
    )


def shape_of(mask: np.ndarray) -> str | None:
    """circle / square / triangle / star / ring for the largest blob of a binary mask, from shape_features."""
    f = shape_features(mask)
    if f is None:
        return None
    if f["hole"] > 0.08 or (f["thin"] < 0.3 and f["notches"] < 3):  # a ring, closed or cut open by an occluder
        return "ring"
    if f["notches"] >= 3:  # an occluder's bite makes one or two notches, a star five
        return "star"
    if f["round"] > 0.5:
        return "circle"
    return max(("square", "triangle"), key=f.get)


_WORDS = "|".join(COLOURS)
_OBJECT_RE = re.compile(rf"\b(?:a|an) ({_WORDS}) ({'|'.join(SHAPES)})\b|\bperson in ({_WORDS})\b")


def expected_objects(subject: Scene | str) -> list[tuple[str, str]]:
    """(colour, kind) of every object a scene holds or a caption names, nearest first for scenes."""
    if isinstance(subject, Scene):
        return [(o.colour, o.kind) for o in reversed(subject.objects)]
    return [(m[1], m[2]) if m[1] else (m[3], "person") for m in _OBJECT_RE.finditer(subject.lower())]


def analyse(image: np.ndarray, subject: Scene | str | None = None, config: WorldConfig = DEFAULT) -> Analysis:
    """Which named colours an image shows and what shape each object colour's largest blob has; with a scene or a
    caption, also which of the objects it names were found (right colour present; for shapes, the right shape)."""
    idx = colour_index(image, config)
    share = np.bincount(idx[idx >= 0], minlength=len(_NAMES)) / idx.size
    order = np.argsort(-share, kind="stable")
    colours = {_NAMES[i]: float(share[i]) for i in order if share[i] > config.min_area}
    shapes = {c: s for c in colours if c in OBJECT_COLOURS and (s := shape_of(idx == _NAMES.index(c)))}
    result = Analysis(colours, shapes)
    if subject is not None:
        result.expected = expected_objects(subject)
        result.found = [c in colours and (k == "person" or shapes.get(c) == k) for c, k in result.expected]
    return result


# --- datasets -------------------------------------------------------------------------------------------------------


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"Cannot encode {path.name} as PNG.")
    path.write_bytes(buf.tobytes())


def write_dataset(folder: str | Path, n: int, seed: int = 0, size: int = 64, config: WorldConfig = DEFAULT) -> Path:
    """n examples as folder/images/{i:06d}.png, folder/conditions/{canny,scribble,depth,pose}/{i:06d}.png and
    folder/prompts.jsonl. Example i depends only on (seed, i): same seed, byte-identical files. Returns the jsonl."""
    root = Path(folder)
    for sub in ("images", *(f"conditions/{c}" for c in CONDITIONS)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        ex = example(np.random.default_rng([seed, i]), size, config)
        name = f"{i:06d}.png"
        _write_png(root / "images" / name, ex.image)
        for c in CONDITIONS:
            _write_png(root / "conditions" / c / name, ex.maps[c])
        lines.append(json.dumps({"image": f"images/{name}", "prompt": ex.prompt,
                                 "conditions": {c: f"conditions/{c}/{name}" for c in CONDITIONS}}))
    path = root / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"Cannot read the image {path}.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class DatasetFolder:
    """(image, condition image, prompt) triples, uint8 RGB, from a folder written by write_dataset (prompts.jsonl,
    pick the condition) or in the fill50k tutorial layout (prompt.json lines {"source", "target", "prompt"}: the
    source is the condition, whatever its kind)."""

    def __init__(self, folder: str | Path, condition: str = "canny"):
        self.root = Path(folder)
        if (self.root / "prompts.jsonl").exists():
            rows = [json.loads(line) for line in (self.root / "prompts.jsonl").read_text().splitlines() if line]
            self.conditions = tuple(rows[0]["conditions"]) if rows else ()
            if rows and condition not in self.conditions:
                raise KeyError(f"{self.root} has no {condition!r} maps; it has {', '.join(self.conditions)}.")
            self.items = [(r["image"], r["conditions"][condition], r["prompt"]) for r in rows]
        elif (self.root / "prompt.json").exists():
            rows = [json.loads(line) for line in (self.root / "prompt.json").read_text().splitlines() if line]
            self.conditions = (condition,)
            self.items = [(r["target"], r["source"], r["prompt"]) for r in rows]
        else:
            raise FileNotFoundError(f"{self.root} has neither prompts.jsonl nor a fill50k-style prompt.json.")
        self.condition = condition

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        image, cond, prompt = self.items[i]
        return _read_rgb(self.root / image), _read_rgb(self.root / cond), prompt


def contact_sheet(examples: list[Example], scale: int = 2) -> np.ndarray:
    """One row per example: picture, canny, scribble, depth, pose; enlarged with nearest-neighbour. (H, W, 3)"""
    rows = [np.concatenate([e.image, *(e.maps[c] for c in CONDITIONS)], axis=1) for e in examples]
    sheet = np.concatenate([np.pad(r, ((0, 2), (0, 0), (0, 0)), constant_values=255) for r in rows])
    return cv2.resize(sheet, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a synthetic small-world ControlNet training set.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=1000, help="number of examples (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="same seed, byte-identical dataset (default 0)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    args = parser.parse_args(argv)
    print(write_dataset(args.folder, args.n, args.seed, args.size))


if __name__ == "__main__":
    main()
