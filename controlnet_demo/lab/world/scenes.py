"""A synthetic "small world" to train a small SD-architecture model and its ControlNets on, and to measure them.

A seeded generator samples scenes (flat-coloured shapes, sometimes a stick-figure person, on a flat or sky/ground
background), renders them at any size, captions them with a small fixed vocabulary, and derives the four control
maps (canny, scribble, depth, pose) in the ControlNet 1.1 layout — from the scene geometry, so they are exact.
`analyse` reads colours and shapes back from any image, to score how well a generated picture follows its prompt.
Coordinates are normalised to [0, 1] (x right, y down) so one scene renders at 64, 96 or 128 px alike. This module
samples scenes; `render` draws them and their maps, `analysis` reads pictures back, `datasets` writes and reads them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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
KEYPOINTS = (
    "nose",
    "neck",
    "r_shoulder",
    "r_elbow",
    "r_wrist",
    "l_shoulder",
    "l_elbow",
    "l_wrist",
    "r_hip",
    "r_knee",
    "r_ankle",
    "l_hip",
    "l_knee",
    "l_ankle",
    "r_eye",
    "l_eye",
    "r_ear",
    "l_ear",
)
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
BODY = dict(
    shoulder=0.1,
    hip=0.06,
    torso=0.32,
    upper_arm=0.17,
    forearm=0.16,
    thigh=0.24,
    shin=0.24,
    head_y=-0.12,
    head_r=0.085,
    limb=0.055,
    trunk=0.1,
)
# Capsules drawn for a body (keypoint pairs); the trunk (neck → mid-hip) and the head are drawn apart.
LIMBS = (
    ("neck", "r_shoulder"),
    ("r_shoulder", "r_elbow"),
    ("r_elbow", "r_wrist"),
    ("neck", "l_shoulder"),
    ("l_shoulder", "l_elbow"),
    ("l_elbow", "l_wrist"),
    ("r_hip", "l_hip"),
    ("r_hip", "r_knee"),
    ("r_knee", "r_ankle"),
    ("l_hip", "l_knee"),
    ("l_knee", "l_ankle"),
)

_FIXED = 16  # cv2 fixed-point factor (shift=4): sub-pixel coordinates on the supersampled canvas


def px(points: np.ndarray, n: int) -> np.ndarray:
    return np.round(np.asarray(points) * n * _FIXED).astype(np.int32)


def _pt(point: np.ndarray, n: int) -> tuple[int, int]:
    return tuple(px(point, n).tolist())


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
        cv2.fillPoly(canvas, [px(p, n) for p in self.contours()], value, cv2.LINE_8, shift=4)  # even-odd: holes

    def strokes(self) -> list[tuple[np.ndarray, bool]]:
        """What a person scribbling it would trace: its outlines, closed."""
        return [(p, True) for p in self.contours()]

    def cores(self) -> tuple[np.ndarray, float]:
        """Points and a radius that stand for the shape's bulk when keeping objects apart."""
        grown = np.sqrt(abs(np.linalg.det(_warp_parts(self.warp)[0]))) if self.warp else 1.0
        return np.array([[self.x, self.y]]), self.size * grown

    @property
    def phrase(self) -> str:
        return f"{article(self.colour)} {self.colour} {self.kind}"


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
        return [
            (arms, False),
            (np.stack([p[K["neck"]], hip]), False),
            (legs, False),
            (head + r * np.stack([np.cos(a), np.sin(a)], 1), True),
        ]

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


def article(word: str) -> str:
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
    scale, stretch, shear = (
        np.exp(rng.uniform(np.log(0.8), np.log(2.2))),
        np.exp(rng.uniform(-0.5, 0.5)),
        rng.uniform(-0.3, 0.3),
    )
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
            shape = Shape(
                kind,
                colour,
                *rng.uniform(r, 1 - r, 2).round(5).tolist(),
                size,
                float(rng.uniform(0, 2 * np.pi)),
                float(near),
                warp,
            )
            if _apart(shape, placed, cfg):
                placed.append(shape)
                break
    return Scene(background, horizon, tuple(sorted(placed, key=lambda o: o.near)))
