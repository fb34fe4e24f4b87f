"""OpenPose JSON (the A1111 editor's layout) to the pose ControlNet's colour map, and what is refused in words."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from controlnet_demo.conditions.openpose_json import MAX_PEOPLE, parse_pose, pose_json, render_pose
from controlnet_demo.errors import UserInputError
from tools.make_assets import WAVING, pose_skeleton

PIXELS = [(x * 512, y * 512) for x, y in WAVING]  # the waving figure of pose_waving.png on a 512 x 512 canvas
R_WRIST = 4


def test_a_json_pose_draws_exactly_controlnet_aux_s_openpose_map():
    np.testing.assert_array_equal(render_pose(pose_json([PIXELS], 512, 512)), pose_skeleton())


def test_moving_the_right_wrist_changes_the_map_there_and_only_there():
    moved = list(PIXELS)
    moved[R_WRIST] = (PIXELS[R_WRIST][0] + 40, PIXELS[R_WRIST][1])
    before, after = render_pose(pose_json([PIXELS], 512, 512)), render_pose(pose_json([moved], 512, 512))
    ys, xs = np.nonzero((before != after).any(axis=2))
    assert len(xs) > 100
    elbow, old, new = PIXELS[3], PIXELS[R_WRIST], moved[R_WRIST]
    box = (min(elbow[0], old[0], new[0]) - 8, max(elbow[0], old[0], new[0]) + 8)  # the forearm's old and new place
    assert box[0] <= xs.min() and xs.max() <= box[1]
    assert min(elbow[1], old[1]) - 8 <= ys.min() and ys.max() <= max(elbow[1], old[1]) + 8


def test_a_hidden_joint_drops_its_limbs_and_two_people_draw_two_figures_at_any_size():
    hidden = list(PIXELS)
    hidden[R_WRIST] = None
    assert parse_pose(pose_json([hidden], 512, 512))[2][0][R_WRIST] is None
    assert (render_pose(pose_json([hidden], 512, 512)) != pose_skeleton()).any()
    left = [(x * 0.5, y) for x, y in PIXELS]
    two = render_pose(pose_json([left, [(x + 256, y) for x, y in left]], 512, 512), size=(256, 128))
    assert two.shape == (128, 256, 3)
    assert two[:, :128].any() and two[:, 128:].any()


def bad(**changes) -> str:
    data = json.loads(pose_json([PIXELS], 512, 512))
    data.update(changes)
    return json.dumps(data)


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", ["not valid json"]),
        ("[]", ['"people" list']),
        (bad(canvas_width=None), ['"canvas_width"', "canvas size"]),
        (bad(canvas_height=0), ['"canvas_height"', "1 to 4096"]),
        (bad(people=[{"pose_keypoints_2d": [1, 2, 3]}]), ["person 1", "18 keypoints", "54 numbers", "got 3"]),
        (bad(people=[{"pose_keypoints_2d": [float("nan")] * 54}]), ["person 1", "finite", "nan"]),
        (bad(people=[{"pose_keypoints_2d": ["1"] * 54}]), ["person 1", "finite number"]),
        (bad(people=[{}]), ["person 1", "got none"]),
        (bad(people=[{"pose_keypoints_2d": [1e9, 5, 1] + [0] * 51}]), ["keypoint 0", "far outside", "512x512"]),
        (bad(people=[{}] * 1_000_000), ["characters", "limit is 1,000,000"]),  # a million people cannot fit
        (bad(people=json.loads(pose_json([PIXELS] * 21, 512, 512))["people"]), ["21 people", "at most 20"]),
        ("x" * 1_000_001, ["1,000,001 characters", "limit"]),
    ],
    ids=[
        "not-json",
        "no-people",
        "no-width",
        "zero-height",
        "short",
        "nan",
        "text",
        "no-keypoints",
        "far",
        "million",
        "21-people",
        "huge",
    ],
)
def test_a_malformed_pose_is_refused_in_words_at_once(text, words):
    started = time.monotonic()
    with pytest.raises(UserInputError) as info:
        render_pose(text)
    assert time.monotonic() - started < 2
    for word in words:
        assert word.lower() in str(info.value).lower(), str(info.value)


def test_at_most_max_people_are_accepted():
    assert len(parse_pose(pose_json([PIXELS] * MAX_PEOPLE, 512, 512))[2]) == MAX_PEOPLE
