"""OpenPose JSON (the A1111 editor's layout) to the pose ControlNet's colour map, and what is refused in words."""

from __future__ import annotations

import json

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


def test_normalised_keypoints_and_the_editor_s_extra_fields_read_as_the_a1111_editor_reads_them():
    """Its files may hold 0..1 positions (it scales them by the canvas when every value is within [-1, 1]), hands,
    a face and animals; the body is what the pose ControlNet reads."""
    data = json.loads(pose_json([WAVING], 768, 512))  # WAVING is normalised
    person = data["people"][0]
    person.update(hand_left_keypoints_2d=[0.5, 0.5, 1.0] * 21, hand_right_keypoints_2d=None, face_keypoints_2d=None)
    data["animals"] = []
    width, height, people = parse_pose(json.dumps(data))
    assert (width, height) == (768, 512)
    assert people[0][R_WRIST] == pytest.approx((WAVING[R_WRIST][0] * 768, WAVING[R_WRIST][1] * 512))
    in_pixels = pose_json([[(x * 768, y * 512) for x, y in WAVING]], 768, 512)
    np.testing.assert_array_equal(render_pose(json.dumps(data)), render_pose(in_pixels))


def test_a_person_with_every_joint_hidden_is_left_out():
    assert parse_pose(pose_json([[None] * 18, PIXELS], 512, 512))[2] == [[tuple(p) for p in PIXELS]]


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
    with pytest.raises(UserInputError) as info:
        render_pose(text)
    for word in words:
        assert word.lower() in str(info.value).lower(), str(info.value)


def test_at_most_max_people_are_accepted():
    assert len(parse_pose(pose_json([PIXELS] * MAX_PEOPLE, 512, 512))[2]) == MAX_PEOPLE


def test_a_detected_pose_becomes_the_editor_s_json_in_pixels_of_its_canvas():
    """controlnet-aux's detector gives 0..1 positions (its PoseResult); the editor gets pixels of its canvas."""
    from controlnet_aux.open_pose import BodyResult, PoseResult
    from controlnet_aux.open_pose.body import Keypoint

    from controlnet_demo.conditions.openpose_json import detected_json

    keypoints = [Keypoint(x, y) for x, y in WAVING]
    keypoints[R_WRIST] = None
    found = [PoseResult(BodyResult(keypoints, 1.0, 17), None, None, None)]
    width, height, people = parse_pose(detected_json(found, 512, 341))
    assert (width, height) == (512, 341)
    assert people[0][R_WRIST] is None
    assert people[0][0] == pytest.approx((WAVING[0][0] * 512, WAVING[0][1] * 341))
