"""Write the bundled example images under assets/examples (deterministic; run from the repo root).

Run as `python -m tools.make_assets`. Photos come from scikit-image's bundled data; the pose skeleton, the scribbles
and the room's straight lines are the project's own drawings, made here in code.
"""

from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from skimage import data

OUT = Path("assets/examples")


def save(name: str, rgb: np.ndarray, quality: int | None = None) -> None:
    path = OUT / name
    Image.fromarray(rgb).save(path, **({"quality": quality} if quality else {}))
    print(path, rgb.shape, path.stat().st_size)


# x, y in [0, 1]: nose, neck, r-shoulder, r-elbow, r-wrist, l-shoulder, l-elbow, l-wrist, r-hip, r-knee,
# r-ankle, l-hip, l-knee, l-ankle, r-eye, l-eye, r-ear, l-ear
WAVING = [
    (0.50, 0.16),
    (0.50, 0.28),
    (0.40, 0.29),
    (0.33, 0.42),
    (0.30, 0.56),
    (0.60, 0.29),
    (0.70, 0.20),
    (0.74, 0.08),
    (0.44, 0.56),
    (0.43, 0.74),
    (0.42, 0.92),
    (0.56, 0.56),
    (0.58, 0.74),
    (0.60, 0.92),
    (0.48, 0.14),
    (0.52, 0.14),
    (0.46, 0.15),
    (0.54, 0.15),
]  # the waving figure of pose_waving.png


def pose_skeleton() -> np.ndarray:
    """An OpenPose-format skeleton (18 keypoints, OpenPose colours) of a person waving, drawn with controlnet-aux."""
    from controlnet_aux.open_pose.body import Keypoint
    from controlnet_aux.open_pose.util import draw_bodypose

    canvas = np.zeros((512, 512, 3), np.uint8)
    return draw_bodypose(canvas, [Keypoint(x, y) for x, y in WAVING])


def drawing(strokes, seed: int = 0, side: int = 512) -> np.ndarray:
    """Black 5 px strokes (lists of (x, y) px) on white, with a pen that wobbles a little as a hand does."""
    rng = np.random.default_rng(seed)
    canvas = np.full((side, side, 3), 255, np.uint8)
    for points in strokes:
        pts = np.array(points, np.float32)
        dense = np.concatenate([np.linspace(a, b, 24) for a, b in zip(pts[:-1], pts[1:])])
        dense += rng.normal(0, 1.2, dense.shape).cumsum(0) * 0.15
        cv2.polylines(canvas, [dense.astype(np.int32)], False, (0, 0, 0), 5, cv2.LINE_AA)
    return canvas


def scribble_house() -> np.ndarray:
    """A house, a sun and a tree, drawn with the wobbling pen."""
    sun = [(430 + 35 * np.cos(a), 80 + 35 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 16)]
    tree = [(60 + 40 * np.cos(a), 290 + 45 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, 16)]
    return drawing(
        [
            [(120, 430), (120, 260), (260, 150), (400, 260), (400, 430), (120, 430)],
            [(220, 430), (220, 340), (290, 340), (290, 430)],
            [(320, 300), (370, 300), (370, 350), (320, 350), (320, 300)],
            sun,
            [(60, 430), (60, 330)],
            tree,
        ]
    )


def room_lines() -> np.ndarray:
    """A room in one-point perspective as M-LSD draws one: straight white 2 px lines on black (the back wall, the
    corners, a window, a door, a table)."""
    canvas = np.zeros((512, 512, 3), np.uint8)
    back = [(176, 150), (336, 150), (336, 330), (176, 330)]  # the back wall
    segments = list(zip(back, back[1:] + back[:1]))
    segments += [((0, 0), back[0]), ((511, 0), back[1]), ((511, 511), back[2]), ((0, 511), back[3])]  # the corners
    segments += [((206, 180), (306, 180)), ((306, 180), (306, 270)), ((306, 270), (206, 270)), ((206, 270), (206, 180))]
    segments += [((256, 180), (256, 270)), ((206, 225), (306, 225))]  # the window's bars
    segments += [((60, 430), (60, 150)), ((60, 150), (130, 170)), ((130, 170), (130, 390))]  # a door, left wall
    segments += [((300, 420), (450, 420)), ((300, 420), (330, 390)), ((450, 420), (420, 390)), ((330, 390), (420, 390))]
    segments += [((300, 420), (300, 470)), ((450, 420), (450, 470))]  # a table's top and legs
    for a, b in segments:
        cv2.line(canvas, a, b, (255, 255, 255), 2, cv2.LINE_AA)
    return canvas


def depth_motorcycle() -> np.ndarray:
    """The Middlebury motorcycle's ground-truth disparity as a depth map: near = bright, unknown = black."""
    _, _, disparity = data.stereo_motorcycle()
    valid = np.isfinite(disparity)
    lo, hi = np.percentile(disparity[valid], [1, 99])
    depth = np.zeros_like(disparity)
    depth[valid] = np.clip((disparity[valid] - lo) / (hi - lo), 0, 1)
    return np.repeat((depth * 255).astype(np.uint8)[..., None], 3, axis=2)


def world_examples() -> None:
    """Held-out scenes of the synthetic world (seeds the training stream never uses), for the offline model's tabs:
    a picture (for canny), and exact depth, pose, scribble and line-art maps, at the model's native 64 px."""
    from controlnet_demo.lab import world

    for i in range(200):  # the first held-out scene with a person, for the pose example
        ex = world.example(np.random.default_rng([20_000, i]), 64)
        if ex.scene.person is not None:
            break
    save("world_picture.png", ex.image)
    for condition in ("depth", "pose", "scribble", "lineart"):
        save(f"world_{condition}.png", ex.maps[condition])
    print("world example prompt:", ex.prompt)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    save("astronaut.jpg", data.astronaut(), quality=90)
    save("coffee.jpg", data.coffee(), quality=90)
    save("cat.jpg", data.chelsea(), quality=90)
    save("motorcycle.jpg", data.stereo_motorcycle()[0], quality=90)
    save("motorcycle_depth.png", depth_motorcycle())
    save("pose_waving.png", pose_skeleton())
    save("scribble_house.png", scribble_house())
    save("room_lines.png", room_lines())
    world_examples()


if __name__ == "__main__":
    main()
