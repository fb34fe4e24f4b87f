"""OpenPose JSON in, the pose ControlNet's colour map out: the layout the A1111 OpenPose editor and sd-webui-controlnet
write (`people[].pose_keypoints_2d` as x, y, confidence triples of OpenPose's 18 body keypoints, in pixels of
`canvas_width` x `canvas_height`, or normalised to 0..1 when every value is within [-1, 1], the same rule the
A1111 editor applies when it opens a file; confidence 0 is a hidden joint; hands, face and `animals` are not read),
so a pose can come from a program or another editor. Drawn with controlnet-aux's own OpenPose drawing, the colours the ControlNet was trained on."""

from __future__ import annotations

import json
import math

import numpy as np

from ..errors import UserInputError, quoted

KEYPOINTS = 18  # OpenPose's COCO body: nose, neck, right shoulder ... left ear
MAX_PEOPLE = 20
MAX_JSON_CHARS = 1_000_000
MAX_CANVAS = 4096
STANDING = [
    (0.50, 0.16),
    (0.50, 0.28),
    (0.40, 0.29),
    (0.37, 0.42),
    (0.35, 0.55),
    (0.60, 0.29),
    (0.63, 0.42),
    (0.65, 0.55),
    (0.44, 0.56),
    (0.43, 0.74),
    (0.42, 0.92),
    (0.56, 0.56),
    (0.57, 0.74),
    (0.58, 0.92),
    (0.48, 0.14),
    (0.52, 0.14),
    (0.46, 0.15),
    (0.54, 0.15),
]  # the editor's default figure (0..1), facing the viewer: its right side on the left


def is_pose_json(value) -> bool:
    """Whether an image input holds OpenPose JSON text instead of a picture (no file path starts with "{")."""
    return isinstance(value, str) and value.lstrip().startswith("{")


def parse_pose(text: str) -> tuple[int, int, list[list[tuple[float, float] | None]]]:
    """(canvas width, canvas height, people): each person 18 (x, y) pixel positions or None for a hidden joint.
    Anything else is refused in words that say what to fix."""
    if not isinstance(text, str):
        raise UserInputError("The pose must be OpenPose JSON text.")
    if len(text) > MAX_JSON_CHARS:
        raise UserInputError(
            "The pose JSON is {n} characters; the limit is {limit}.", n=f"{len(text):,}", limit=f"{MAX_JSON_CHARS:,}"
        )
    try:
        data = json.loads(text, parse_constant=lambda name: float("nan"))
    except ValueError as exc:
        raise UserInputError("The pose is not valid JSON ({why}).", why=str(exc)) from None
    except RecursionError:  # nested deeper than Python's stack: no pose is
        raise UserInputError("The pose JSON is nested too deeply; OpenPose JSON is a few levels deep.") from None
    if not isinstance(data, dict) or not isinstance(data.get("people"), list):
        raise UserInputError('The pose JSON needs a "people" list (OpenPose\'s layout: people[].pose_keypoints_2d).')
    width, height = (_canvas_side(data, key) for key in ("canvas_width", "canvas_height"))
    people = data["people"]
    if len(people) > MAX_PEOPLE:
        raise UserInputError(
            "The pose JSON has {n} people; at most {limit} are drawn.", n=f"{len(people):,}", limit=MAX_PEOPLE
        )
    people = [_person(p, k + 1, width, height) for k, p in enumerate(people)]
    return width, height, [p for p in people if any(j is not None for j in p)]  # as the editor: no empty figures


def _canvas_side(data: dict, key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UserInputError(
            'The pose JSON needs "{key}": the canvas size in pixels that the keypoints are in.', key=key
        )
    if not 1 <= value <= MAX_CANVAS or value != int(value):
        raise UserInputError(
            '"{key}" must be a whole number of pixels from 1 to {limit}; got {value}.',
            key=key,
            limit=MAX_CANVAS,
            value=quoted(value),
        )
    return int(value)


def _person(person, k: int, width: int, height: int) -> list[tuple[float, float] | None]:
    values = person.get("pose_keypoints_2d") if isinstance(person, dict) else None
    if not isinstance(values, list) or len(values) != 3 * KEYPOINTS:
        got = len(values) if isinstance(values, list) else "none"
        raise UserInputError(
            "Person {k}: pose_keypoints_2d must hold {n} keypoints as x, y, confidence ({numbers} numbers); got {got}.",
            k=k,
            n=KEYPOINTS,
            numbers=3 * KEYPOINTS,
            got=got,
        )
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
        raise UserInputError("Person {k}: every keypoint value must be a finite number (no NaN, text or null).", k=k)
    scale = (width, height) if all(abs(v) <= 1 for v in values) else (1, 1)  # normalised, as A1111 reads it
    joints = []
    for j in range(KEYPOINTS):
        x, y, confidence = values[3 * j : 3 * j + 3]
        x, y = x * scale[0], y * scale[1]
        if confidence <= 0:
            joints.append(None)
            continue
        if not (-width <= x <= 2 * width and -height <= y <= 2 * height):
            raise UserInputError(
                "Person {k}, keypoint {j}: ({x}, {y}) is far outside the {width}x{height} canvas.",
                k=k,
                j=j,
                x=f"{x:g}",
                y=f"{y:g}",
                width=width,
                height=height,
            )
        joints.append((float(x), float(y)))
    return joints


def render_pose(text: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """The pose's colour map (H, W, 3) uint8 on black, at `size` (width, height; default the JSON's canvas)."""
    from controlnet_aux.open_pose.body import Keypoint
    from controlnet_aux.open_pose.util import draw_bodypose

    width, height, people = parse_pose(text)
    out_w, out_h = size or (width, height)
    canvas = np.zeros((out_h, out_w, 3), np.uint8)
    for person in people:  # controlnet-aux draws normalised positions
        canvas = draw_bodypose(canvas, [None if p is None else Keypoint(p[0] / width, p[1] / height) for p in person])
    return canvas


def pose_json(people: list[list[tuple[float, float] | None]], width: int, height: int) -> str:
    """The JSON for people's keypoints (pixels; None = hidden), in the layout parse_pose reads."""
    rows = [[v for p in person for v in ((0, 0, 0) if p is None else (p[0], p[1], 1))] for person in people]
    return json.dumps(dict(people=[dict(pose_keypoints_2d=r) for r in rows], canvas_width=width, canvas_height=height))


def detected_json(poses, width: int, height: int) -> str:
    """controlnet-aux's detected poses (`OpenposeDetector.detect_poses`: 0..1 positions) as the JSON, in pixels of
    a `width` x `height` canvas."""
    people = [
        [None if k is None else (k.x * width, k.y * height) for k in pose.body.keypoints] for pose in poses[:MAX_PEOPLE]
    ]
    return pose_json(people, width, height)
