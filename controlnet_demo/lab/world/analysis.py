"""Colours and shapes read back from any picture, to score how well a generated image follows its prompt."""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

from .scenes import COLOURS, DEFAULT, OBJECT_COLOURS, SHAPES, Scene, WorldConfig

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
