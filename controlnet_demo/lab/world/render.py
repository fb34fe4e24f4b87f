"""A scene drawn: its picture, its control maps in the ControlNet 1.1 layout (exact, from the geometry), its
caption, and the training example that bundles them."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .scenes import COLOURS, DEFAULT, Scene, WorldConfig, article, px, sample_scene


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


def scribble_map(
    scene: Scene, size: int = 64, rng: np.random.Generator | None = None, config: WorldConfig = DEFAULT
) -> np.ndarray:
    """Rough hand-drawn outlines of what is visible: white lines on black, binary. (S, S, 3)"""
    cfg, rng = config, rng if rng is not None else np.random.default_rng(0)
    n = size * cfg.supersample
    canvas = np.zeros((n, n), np.uint8)
    width = max(1, round(rng.uniform(*cfg.scribble_width) * size / 64 * cfg.supersample))
    if scene.horizon is not None:
        line = _wobble(np.array([[0.0, scene.horizon], [1.0, scene.horizon]]), False, rng, cfg)
        cv2.polylines(canvas, [px(line, n)], False, 255, width, cv2.LINE_8, 4)
    for obj in scene.objects:
        obj.draw(canvas, 0)  # a nearer object hides the lines behind it: only visible outlines get drawn
        for path, closed in obj.strokes():
            cv2.polylines(canvas, [px(_wobble(path, closed, rng, cfg), n)], False, 255, width, cv2.LINE_8, 4)
    small = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    return np.repeat(np.where(small > 80, 255, 0).astype(np.uint8)[..., None], 3, axis=2)  # binary, as ControlNet's


def lineart_map(scene: Scene, size: int = 64, config: WorldConfig = DEFAULT) -> np.ndarray:
    """Line art: the outline of every visible region (each object as the picture shows it, the horizon), thin white
    lines on black, found where the supersampled label map changes, one output pixel wide. (S, S, 3)"""
    ss = config.supersample
    canvas = np.zeros((size * ss, size * ss), np.uint8)
    if scene.horizon is not None:
        canvas[int(round(scene.horizon * size * ss)) :] = 255  # the ground: a region of its own
    for i, obj in enumerate(scene.objects):
        obj.draw(canvas, i + 1)
    edges = np.zeros(canvas.shape, np.uint8)
    edges[1:] |= canvas[1:] != canvas[:-1]
    edges[:, 1:] |= canvas[:, 1:] != canvas[:, :-1]
    edges = cv2.dilate(edges * 255, np.ones((ss, ss), np.uint8))
    small = cv2.resize(edges, (size, size), interpolation=cv2.INTER_AREA)
    return np.repeat(small[..., None], 3, axis=2)


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
        return f"{text} on {article(c)} {c} background"
    sky, ground = scene.background
    return f"{text} on {ground} ground under {article(sky)} {sky} sky"


MAPS = ("canny", "scribble", "depth", "pose", "lineart")  # the control maps every example has


@dataclass
class Example:
    scene: Scene
    image: np.ndarray  # (S, S, 3) uint8 RGB
    maps: dict[str, np.ndarray]  # condition name → (S, S, 3) uint8
    prompt: str


def example(
    rng: np.random.Generator, size: int = 64, config: WorldConfig = DEFAULT, maps: tuple[str, ...] = MAPS
) -> Example:
    """One training example: a scene, its picture, the named maps (all of MAPS by default) and its caption. The
    scribble consumes rng too, after the rest: leaving maps out changes none of the others."""
    scene = sample_scene(rng, config)
    image = render(scene, size, config)
    makers = dict(
        canny=lambda: canny_map(image, config),
        scribble=lambda: scribble_map(scene, size, rng, config),
        depth=lambda: depth_map(scene, size, config),
        pose=lambda: pose_map(scene, size, config),
        lineart=lambda: lineart_map(scene, size, config),
    )
    return Example(scene, image, {name: make() for name, make in makers.items() if name in maps}, caption(scene))
