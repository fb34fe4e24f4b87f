"""A condition that ships nowhere: defined here as one entry of the condition table, and nothing else, to show that
one entry is all a new condition needs (tests/test_a_new_condition.py). Its map is the picture's grey, inverted,
with one setting (a gamma); its check scores how the result's own grey, inverted, follows the map.

`python -m tests.new_condition generate ...` is the CLI with it installed (what the test runs in a subprocess).
"""

from __future__ import annotations

import sys

import cv2
import numpy as np

from controlnet_demo.conditions import CONDITIONS, Condition, Param, Preprocessor
from controlnet_demo.conditions.check import Check
from controlnet_demo.conditions.table import NONE

NAME = "negative"


def inverted(image: np.ndarray, resolution: int, detectors, gamma: float = 1.0, **_) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
    h, w = grey.shape
    scale = resolution / min(h, w)
    grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    out = ((1 - grey) ** gamma * 255).round().astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=2)


def follows(image, control, preprocessor, settings, detectors) -> float:
    h, w = control.shape[:2]
    mine = inverted(image, min(h, w), detectors)
    mine = cv2.resize(mine, (w, h), interpolation=cv2.INTER_AREA).mean(-1).ravel()
    theirs = np.asarray(control, np.float32).mean(-1).ravel()
    if mine.std() == 0 or theirs.std() == 0:
        return 0.0
    return float(np.corrcoef(mine, theirs)[0, 1])


ENTRY = Condition(
    name=NAME,
    label="Negative",
    help="Upload a photo: its grey levels, inverted, steer the picture.",
    preprocessors={"invert": Preprocessor("invert", "invert the grey levels", inverted, ("gamma",)), "none": NONE},
    default_preprocessor="invert",
    check=Check("inverted grey correlation", 0.2, follows),
    checkpoints={},  # no model family has one: only the tiny preset's random ControlNets serve it
    params={"gamma": Param("gamma", "Gamma", 0.2, 5.0, 0.1, 1.0)},
    editor="depth",
)


def install() -> None:
    CONDITIONS[NAME] = ENTRY


if __name__ == "__main__":
    install()
    from controlnet_demo.cli import main

    sys.exit(main(sys.argv[1:]))
