"""The control check: the condition detected again on a result and scored against the map that went in, with the
likely cause in words when a result does not follow."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from controlnet_demo.conditions import CONDITIONS, Detectors, detect
from controlnet_demo.conditions.check import check_control, line_f1


@pytest.fixture(scope="module")
def detectors(tmp_path_factory):
    return Detectors(str(tmp_path_factory.mktemp("no-weights")), online=False)  # an empty folder: no weights


def _canny(image, detectors):
    return detect("canny", image, "canny", min(image.shape[:2]), detectors)


def test_a_result_that_is_the_photo_its_edges_came_from_follows_them_and_another_photo_does_not(
    astronaut, coffee, detectors
):
    astronaut = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    coffee = cv2.resize(coffee, (256, 256), interpolation=cv2.INTER_AREA)
    edges = _canny(astronaut, detectors)
    same = check_control(CONDITIONS["canny"], astronaut[None], edges, "canny", {}, detectors)
    other = check_control(CONDITIONS["canny"], coffee[None], edges, "canny", {}, detectors)
    assert same.score > 0.95 and same.followed and same.warning is None
    assert other.score < CONDITIONS["canny"].check.threshold and not other.followed
    assert "control strength" in str(other.warning)  # the generic advice: nothing in the settings explains it


def test_a_drawing_followed_in_dark_lines_on_light_scores_high_and_noise_low(detectors):
    scribble = np.zeros((128, 128, 3), np.uint8)
    cv2.rectangle(scribble, (30, 30), (100, 90), (255, 255, 255), 3)
    cv2.line(scribble, (30, 30), (65, 10), (255, 255, 255), 3)
    drawn = np.full_like(scribble, 230)
    drawn[scribble[..., 0] > 0] = (40, 60, 200)  # the shapes' outlines in a colour on a light ground
    noise = np.random.default_rng(0).integers(0, 256, scribble.shape, dtype=np.uint8)
    assert check_control(CONDITIONS["scribble"], drawn[None], scribble, "sketch", {}, detectors).score > 0.6
    assert (
        check_control(CONDITIONS["scribble"], noise[None], scribble, "sketch", {}, detectors).score
        < CONDITIONS["scribble"].check.threshold
    )


@pytest.mark.parametrize(
    ("strength", "start", "end", "make_map", "cause"),
    [
        (0.0, 0.0, 1.0, "lines", "strength is 0"),
        (1.0, 0.8, 1.0, "lines", "only 20 % of the steps"),
        (1.0, 0.0, 1.0, "white", "mostly white"),
        (1.0, 0.0, 1.0, "empty", "nearly empty"),
        (0.3, 0.0, 1.0, "lines", "strength is low"),
    ],
)
def test_a_result_that_does_not_follow_names_the_likely_cause(strength, start, end, make_map, cause, detectors):
    control = np.zeros((64, 64, 3), np.uint8)
    if make_map == "lines":
        control[20:44, 30:33] = 255
    elif make_map == "white":
        control[:] = 255
        control[20:44, 30:33] = 0
    elif make_map == "empty":
        control[10, 10] = 255
    flat = np.full((1, 64, 64, 3), 128, np.uint8)  # a result with no edges at all
    check = check_control(CONDITIONS["canny"], flat, control, "canny", {}, detectors, strength, start, end)
    assert not check.followed and cause in str(check.warning)


@pytest.mark.parametrize("condition", [c.name for c in CONDITIONS.values() if c.check.detector])
def test_without_the_detector_weights_depth_and_pose_are_not_scored_and_say_why(condition, detectors):
    control = np.zeros((64, 64, 3), np.uint8)
    control[10:50, 30:34] = 200
    check = check_control(CONDITIONS[condition], np.zeros((1, 64, 64, 3), np.uint8), control, "none", {}, detectors)
    assert check.score is None and check.followed is None and "weights" in str(check.warning)
    assert check.as_dict()["score"] is None


def test_line_f1_of_lines_a_pixel_apart_is_1_and_of_lines_far_apart_0():
    a = np.zeros((32, 32), bool)
    a[5:25, 10] = True
    near, far = np.roll(a, 1, axis=1), np.roll(a, 10, axis=1)
    assert line_f1(near, a, 2.0) == 1.0 and line_f1(far, a, 2.0) == 0.0
    assert line_f1(np.zeros_like(a), np.zeros_like(a), 2.0) == 1.0  # nothing to draw, nothing drawn
