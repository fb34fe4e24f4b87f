"""Did the control take effect? The condition detected again on a result and scored against the map that went in.

The most common complaint about ControlNet UIs is that the ControlNet silently does nothing. Every result gets a
score per condition: edges, scribbles and other line maps by the F1 of the result's lines against the map's within a
few pixels, depth by the rank correlation of the result's detected depth with the map, normals by the cosine of the
result's detected normals with the map's, pose by how much of the map's skeleton the skeleton detected on the result
covers, a picture read as it is by how much of its outline the result keeps, a shuffled picture by the overlap of
the colours. Below the condition's threshold the
result carries a warning in words with the likely cause. A score that needs a detector's weights (depth, pose,
normals, a line map detected from a photo) has none without them, and says so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import cv2
import numpy as np

from ..errors import Message, ModelUnavailableError, message
from . import preprocessors as pre

EDGE_TOLERANCE, SCRIBBLE_TOLERANCE = 2.0, 3.0  # px at the output's size; scribbles wobble by about a pixel


@dataclass(frozen=True)
class Check:
    """How the control check scores a result against a condition's map: a condition's entry in the table carries
    one. Thresholds: below them the result is said to follow its map weakly. Edges and scribbles: measured on the
    offline model's held-out scenes (docs/control-check.md, `python -m benchmarks.control_check`): at full strength
    90 % of results score above 0.52, with the ControlNet off (strength 0) 90 % below 0.35; line art the same way on
    its own ControlNet. Depth, pose, normals and the other ControlNet 1.1 conditions (soft edges, straight lines,
    instruct pix2pix, shuffle): not measured here (no detector weights or ControlNets here); set where the score
    means little."""

    metric: str  # what the score is, in words (a text of the catalogs)
    threshold: float
    # score(image, control, preprocessor, settings, detectors) -> in [0, 1] ([-1, 1] for a correlation); None: the
    # map has nothing to score. image: one result (uint8 RGB); control: the map at its size; preprocessor: the
    # table's Preprocessor that made the map, with its settings
    score: Callable
    lines: bool = False  # the map is white lines on black: a mostly white or an empty map is the likely cause
    detector: str | None = None  # whose weights the score needs (named when they are missing); None: none


@dataclass(frozen=True)
class ControlCheck:
    condition: str
    metric: str
    score: float | None  # mean over the images, in [0, 1] (depth: [-1, 1]); None: no detector here
    threshold: float
    # the likely cause, when the score is below the threshold; or why there is no score. A Message (or a text) the
    # UI shows in the page's language; str() is the English
    warning: Message | str | None

    @property
    def followed(self) -> bool | None:
        return None if self.score is None else self.score >= self.threshold

    def as_dict(self) -> dict:
        """For the result's metadata: the warning in English."""
        return {
            **asdict(self),
            "score": None if self.score is None else round(self.score, 3),
            "warning": None if self.warning is None else str(self.warning),
        }


_BINS = 12  # orientation bins of 15 degrees; a pixel matches its own bin and both neighbours


def distance_to(mask: np.ndarray) -> np.ndarray:
    """Per pixel, the distance in px to the nearest True pixel of mask (large everywhere when there is none)."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)


def orientation_bins(mask: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """Direction of the lines through each pixel of a binary mask, as a bin of 180 / _BINS degrees.

    From the structure tensor of the smoothed mask, so a thin canny edge and a thick scribble stroke along the same
    outline get the same direction, whatever side of the stroke a pixel is on."""
    m = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma)
    gx, gy = cv2.Sobel(m, cv2.CV_32F, 1, 0), cv2.Sobel(m, cv2.CV_32F, 0, 1)
    jxx, jyy, jxy = (cv2.GaussianBlur(a, (0, 0), sigma) for a in (gx * gx, gy * gy, gx * gy))
    angle = (0.5 * np.arctan2(2 * jxy, jxx - jyy)) % np.pi
    return (angle / np.pi * _BINS).astype(int) % _BINS


def matched_share(a: np.ndarray, b: np.ndarray, bins_a: np.ndarray, bins_b: np.ndarray, tolerance: float) -> float:
    """Share of a's pixels with a pixel of b within `tolerance` px running in about the same direction."""
    ok = np.zeros(a.shape, bool)
    for k in range(_BINS):
        here = a & (bins_a == k)
        near = b & np.isin(bins_b, [(k - 1) % _BINS, k, (k + 1) % _BINS])
        if here.any() and near.any():
            ok |= here & (distance_to(near) <= tolerance)
    return float(ok[a].mean())


def f1(precision: float, recall: float) -> float:
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def line_f1(found: np.ndarray, reference: np.ndarray, tolerance: float) -> float:
    """F1 of two (H, W) line masks: precision the share of found pixels within `tolerance` px of a reference pixel
    running in about the same direction, recall the other way round (position alone would let any busy picture
    match: a 2 px band around dense edges covers much of it). Both empty: 1 (nothing to draw, nothing drawn)."""
    if not found.any() or not reference.any():
        return float(found.any() == reference.any())
    bins_found, bins_ref = orientation_bins(found), orientation_bins(reference)
    precision = matched_share(found, reference, bins_found, bins_ref, tolerance)
    recall = matched_share(reference, found, bins_ref, bins_found, tolerance)
    return f1(precision, recall)


def _lines(image: np.ndarray, threshold: int = 127) -> np.ndarray:
    return np.asarray(image).max(-1) > threshold


def _thin(mask: np.ndarray) -> np.ndarray:
    from skimage.morphology import skeletonize  # scikit-image comes with controlnet-aux

    return skeletonize(mask)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation of two grey images at 64 x 64."""
    small = [cv2.resize(np.asarray(x, np.float32), (64, 64), interpolation=cv2.INTER_AREA).ravel() for x in (a, b)]
    ranks = [np.argsort(np.argsort(x)).astype(np.float64) for x in small]
    if min(r.std() for r in ranks) == 0 or min(x.std() for x in small) == 0:
        return 0.0
    return float(np.corrcoef(*ranks)[0, 1])


def score_edges(image, control, preprocessor, settings, detectors) -> float:
    """Canny: the result's Canny edges (the map's own thresholds) against the map's."""
    found = _lines(pre.canny(image, min(control.shape[:2]), detectors, **settings))
    return line_f1(found, _lines(control), EDGE_TOLERANCE)


def score_lines(image, control, preprocessor, settings, detectors) -> float:
    """A map of lines (a scribble, line art, soft edges, straight lines): a map detected from a photo against the same
    detector on the result; a drawn (or ready) one against the result's edges. Both thinned: a stroke's width is
    not what was drawn."""
    h, w = control.shape[:2]
    if preprocessor.from_photo:
        found = preprocessor.run(image, min(h, w), detectors, **settings)
    else:
        found = pre.canny(image, min(h, w), detectors)
    found = _lines(cv2.resize(found, (w, h), interpolation=cv2.INTER_NEAREST))
    return line_f1(_thin(found), _thin(_lines(control)), SCRIBBLE_TOLERANCE)


def score_structure(image, control, preprocessor, settings, detectors) -> float:
    """A picture read as it is (instruct pix2pix): how much of its structure the result keeps, the F1 of the two
    pictures' Canny edges (an edit changes colours and textures, not the outlines)."""
    h, w = control.shape[:2]
    edges = [_lines(pre.canny(x, min(h, w), detectors)) for x in (image, control)]
    return line_f1(*edges, SCRIBBLE_TOLERANCE)


def score_colours(image, control, preprocessor, settings, detectors) -> float:
    """A global control (shuffle): the overlap of the result's colour histogram with the map's (8 bins a channel,
    512 colours): the layout is free, the palette is what it passes on."""
    hists = []
    for x in (image, control):
        h = cv2.calcHist([np.ascontiguousarray(x[..., :3])], [0, 1, 2], None, [8, 8, 8], [0, 256] * 3).ravel()
        hists.append(h / max(h.sum(), 1))
    return float(np.minimum(*hists).sum())


def score_normals(image, control, preprocessor, settings, detectors) -> float:
    """A normal map: the mean cosine between the result's NormalBae normals and the map's (colours x 2 - 1)."""
    h, w = control.shape[:2]
    found = cv2.resize(pre.aux("normalbae")(image, min(h, w), detectors), (w, h), interpolation=cv2.INTER_AREA)
    a, b = (np.asarray(x, np.float32)[..., :3] / 127.5 - 1 for x in (found, control))
    cosine = (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-6)
    return float(cosine.mean())


def score_depth(image, control, preprocessor, settings, detectors) -> float:
    """Depth: the rank correlation of the result's MiDaS depth with the map."""
    h, w = control.shape[:2]
    depth = cv2.resize(pre.aux("midas")(image, min(h, w), detectors), (w, h), interpolation=cv2.INTER_AREA)
    return _rank_correlation(depth.mean(-1), np.asarray(control, np.float32).mean(-1))


def score_pose(image, control, preprocessor, settings, detectors) -> float | None:
    """A pose: the share of the map's skeleton that the skeleton OpenPose finds on the result lies on."""
    h, w = control.shape[:2]
    found = pre.aux("openpose", include_hand=False, include_face=False)(image, min(h, w), detectors)
    found = _lines(cv2.resize(found, (w, h), interpolation=cv2.INTER_NEAREST), 40)
    skeleton = _lines(control, 40)  # limbs are drawn at 0.6 of OpenPose's colours
    if not skeleton.any():
        return None
    near = distance_to(found) <= 0.03 * max(h, w)
    return float(near[skeleton].mean())


def _cause(check: Check, control: np.ndarray, strength: float, start: float, end: float) -> Message | str:
    """The likeliest reason a result does not follow its map, in words a user can act on."""
    if strength == 0:
        return "The control strength is 0: the ControlNet did not run. Raise it (1 is the usual)."
    if end - start < 0.3:
        return message(
            "The ControlNet ran for only {pct} % of the steps (start {start}, end {end}): the layout is settled in "
            "the first steps. Start at 0 and end at 0.6 or later.",
            pct=round(100 * (end - start)),
            start=f"{start:g}",
            end=f"{end:g}",
        )
    if check.lines:
        share = float(_lines(control).mean())
        if share > 0.5:
            return (
                "The map is mostly white: edge and line maps are white lines on black. Invert it (a drawing in "
                "either polarity can go through the Scribble tab's 'sketch' preprocessor)."
            )
        if share < 0.005:
            return "The map is nearly empty: there is almost nothing for the ControlNet to follow."
    elif float(np.asarray(control).std()) < 4:
        return "The map is nearly flat: there is almost nothing for the ControlNet to follow."
    if strength < 0.5:
        return message("The control strength is low ({strength}); raise it towards 1.", strength=f"{strength:g}")
    return (
        "Try a higher control strength or the mode 'ControlNet is more important'; if it never follows, the "
        "ControlNet may be made for another model family than the base."
    )


LATER = "not checked yet: a live frame is checked when the drawing pauses"


def not_yet_checked(unit) -> ControlCheck:
    """A unit's check left for later (a live frame of the page, checked when the drawing pauses): no score."""
    from .table import CONDITIONS  # (the table is made from this module's scorers)

    check = CONDITIONS[unit.condition].check
    return ControlCheck(unit.condition, check.metric, None, check.threshold, LATER)


def check_control(
    condition,
    images: np.ndarray,
    control: np.ndarray,
    preprocessor: str,
    settings: dict,
    detectors,
    strength: float = 1.0,
    start: float = 0.0,
    end: float = 1.0,
) -> ControlCheck:
    """Score how well `images` (B, H, W, 3 floats in [0, 1] or uint8) follow `control` (uint8 RGB at their size), by
    the `condition`'s (the table's Condition) check; `preprocessor`: the name of the one that made the map."""
    images = np.asarray(images)
    if images.dtype != np.uint8:
        images = (np.clip(images, 0, 1) * 255).round().astype(np.uint8)
    check, proc = condition.check, condition.preprocessor(preprocessor)

    def checked(score, warning):
        return ControlCheck(condition.name, check.metric, score, check.threshold, warning)

    try:
        scores = [check.score(np.ascontiguousarray(im), control, proc, settings, detectors) for im in images]
    except ModelUnavailableError:
        detector = check.detector or proc.weights or proc.name
        return checked(None, message("not checked: no {detector} weights here", detector=detector))
    scores = [s for s in scores if s is not None]
    if not scores:
        return checked(None, "not checked: the map shows no figure")
    score = float(np.mean(scores))
    return checked(score, None if score >= check.threshold else _cause(check, control, strength, start, end))
