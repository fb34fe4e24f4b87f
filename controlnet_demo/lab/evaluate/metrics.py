"""The evaluation's metrics: each maps (generated uint8 RGB, map) to [0, 1]; a matched render of the world scores
about 1, an unrelated, blank or noise image low (see docs/evaluation.md for what each measures and why)."""

from __future__ import annotations

import cv2
import numpy as np

from ...conditions.check import distance_to, f1, line_f1
from .. import world

CANNY_TOLERANCE, SCRIBBLE_TOLERANCE = 2.0, 3.0  # px; scribbles wobble and are misplaced by about a pixel
METRIC_NAMES = {
    "canny": f"edge F1, {CANNY_TOLERANCE:g} px",
    "scribble": f"edge F1, {SCRIBBLE_TOLERANCE:g} px",
    "depth": "layer IoU",
    "pose": "figure F1",
    "lineart": f"edge F1, {CANNY_TOLERANCE:g} px",
}
_PALETTE = np.array(list(world.COLOURS.values()), np.float32)


def _lines(image: np.ndarray, threshold: int) -> np.ndarray:
    """Bright pixels of a map (any channel): (H, W) bool."""
    image = np.asarray(image)
    return (image.max(-1) if image.ndim == 3 else image) > threshold


def _check(generated: np.ndarray, condition_map: np.ndarray) -> np.ndarray:
    generated = np.asarray(generated)
    if generated.dtype != np.uint8 or generated.ndim != 3 or generated.shape[:2] != np.shape(condition_map)[:2]:
        raise ValueError(
            f"Expected a uint8 RGB image the size of its map; got {generated.dtype} {generated.shape} "
            f"for a map of {np.shape(condition_map)}."
        )
    return np.ascontiguousarray(generated)


def edge_f1(
    generated: np.ndarray, edge_map: np.ndarray, tolerance_px: float = CANNY_TOLERANCE, thin: bool = False
) -> float:
    """F1 of the output's canny edges (the app's thresholds) against the map's white lines.

    Precision: share of output edge pixels with a map line pixel within tolerance_px, in about the same direction;
    recall the other way round. Direction matters because at 64 px a 2 px band around a scene's outlines covers a
    fifth of the picture: position alone gives another scene's edges F1 0.32, direction cuts that to 0.12.
    thin: reduce the map's lines to 1 px centre lines first (scribble strokes are up to 3 px wide)."""
    generated = _check(generated, edge_map)
    reference = _lines(edge_map, 127)
    if thin:
        from skimage.morphology import skeletonize  # scikit-image comes with controlnet-aux

        reference = skeletonize(reference)
    return line_f1(world.canny_map(generated)[..., 0] > 0, reference, tolerance_px)


def scribble_f1(generated: np.ndarray, scribble_map: np.ndarray, tolerance_px: float = SCRIBBLE_TOLERANCE) -> float:
    """edge_f1 against the scribble's centre lines, with the scribble's wider tolerance."""
    return edge_f1(generated, scribble_map, tolerance_px, thin=True)


def depth_agreement(generated: np.ndarray, depth_map: np.ndarray, min_share: float = 0.005) -> float:
    """How well the output's flat colour regions reproduce the map's object layers, in [0, 1] (nan: no objects).

    A flat-shape picture has no measurable depth, but it has layering: what occludes what shows in which colour
    each pixel takes. Each object layer of the world's depth map (pixels of one value >= the farthest object's) is
    matched to the output colour most of its pixels take (nearest named colour), scored by the IoU of that colour's
    pixels with the layer, and the IoUs are averaged weighted by layer area. Pixels at depth steps (blended by
    anti-aliasing, and where a 1 px misplacement lands) count for neither side."""
    generated = _check(generated, depth_map)
    depth = np.asarray(depth_map)
    depth = depth[..., 0] if depth.ndim == 3 else depth
    kernel = np.ones((3, 3), np.uint8)
    steps = cv2.dilate(depth, kernel).astype(int) - cv2.erode(depth, kernel) > 3  # the ground ramp changes ~1/px
    values, counts = np.unique(depth[(depth >= world.DEFAULT.depth_objects[0]) & ~steps], return_counts=True)
    layers = values[counts >= min_share * depth.size]  # not the odd blended pixel that happens to be flat
    if not len(layers):
        return float("nan")
    colour = ((generated[..., None, :].astype(np.float32) - _PALETTE) ** 2).sum(-1).argmin(-1)
    colour[steps] = -1
    ious, areas = [], []
    for value in layers:
        layer = (depth == value) & ~steps
        same = colour == np.bincount(colour[layer], minlength=len(_PALETTE)).argmax()
        ious.append((layer & same).sum() / (layer | same).sum())
        areas.append(layer.sum())
    return float(np.average(ious, weights=areas))


def pose_overlap(generated: np.ndarray, pose_map: np.ndarray, colour: str, zone: float = 0.05) -> float:
    """F1 of the figure against the skeleton, in [0, 1] (nan: the map shows no skeleton).

    The figure is the output's pixels of the person's named colour (the prompt's "a person in <colour>"), so shapes
    and background don't count. Recall: share of the skeleton's pixels (limbs and joints) the figure covers.
    Precision: share of the figure within `zone` x image width of the skeleton (the body's half-width and a margin)."""
    generated = _check(generated, pose_map)
    skeleton = _lines(pose_map, 40)  # limbs are drawn at 0.6 of OpenPose's colours, the dimmest channel max 153
    if not skeleton.any():
        return float("nan")
    figure = world.colour_index(generated) == list(world.COLOURS).index(colour)
    if not figure.any():
        return 0.0
    near = distance_to(skeleton) <= zone * skeleton.shape[1]
    return f1(float(near[figure].mean()), float(figure[skeleton].mean()))


def score(condition: str, generated: np.ndarray, condition_map: np.ndarray, scene: world.Scene) -> float:
    """The condition's metric for an output against a map; `scene` is the output's own scene (its prompt)."""
    if condition == "canny":
        return edge_f1(generated, condition_map)
    if condition == "scribble":
        return scribble_f1(generated, condition_map)
    if condition == "depth":
        return depth_agreement(generated, condition_map)
    if condition == "pose":
        return pose_overlap(generated, condition_map, scene.person.colour)
    if condition == "lineart":  # exact outlines, thinner than canny's on the picture
        return edge_f1(generated, condition_map, CANNY_TOLERANCE, thin=True)
    raise ValueError(f"No metric for the condition {condition!r}; known: {', '.join(METRIC_NAMES)}.")
