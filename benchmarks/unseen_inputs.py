"""Does the offline model follow inputs it was never trained on? Two sets, none of it from the world generator:

- drawings: ten hand-made drawings (strokes placed by hand in this file, a wobbling 5 px pen on a 512 px canvas),
  through the scribble tab's sketch preprocessor at 64 px and the scribble ControlNet; scribble F1 (3 px);
- photos: eight of scikit-image's photos, centre-cropped, through the canny preprocessor at 64 px (the app's
  thresholds 100 / 200) and the canny ControlNet; edge F1 (2 px).

Three seeds each; prompts in the world's words, objects in its six object colours. Each output is scored against
its own map ("matched"), against the next input's map ("shuffled": what an output that ignores its input scores)
and, without the ControlNet, the base alone against the map ("no control").

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.unseen_inputs [--model DIR] [--sheet artifacts/unseen.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from controlnet_demo.conditions import preprocessors
from controlnet_demo.engine import ControlUnit, Request
from controlnet_demo.lab import evaluate
from tools.make_assets import drawing  # the pen the app's example scribble is drawn with


def _circle(cx, cy, rx, ry=None, n=20):
    a = np.linspace(0, 2 * np.pi, n)
    return list(zip(cx + rx * np.cos(a), cy + (ry or rx) * np.sin(a)))


# name -> (strokes in px of a 512 canvas, prompt in the world's words)
DRAWINGS = {
    "house": (
        [
            [(120, 430), (120, 260), (260, 150), (400, 260), (400, 430), (120, 430)],
            [(220, 430), (220, 340), (290, 340), (290, 430)],
            _circle(345, 325, 25),
            _circle(440, 80, 35),
            [(60, 430), (60, 330)],
            _circle(60, 290, 40, 45),
        ],
        "a purple square and a red triangle on a white background",
    ),
    "fish": (
        [_circle(230, 256, 150, 95), [(380, 256), (480, 170), (480, 340), (380, 256)], _circle(160, 230, 15)],
        "an orange circle and a red triangle on a blue background",
    ),
    "car": (
        [
            [(60, 360), (60, 280), (150, 270), (200, 190), (340, 190), (390, 270), (460, 280), (460, 360), (60, 360)],
            _circle(150, 370, 45),
            _circle(370, 370, 45),
        ],
        "a red square and a blue circle on a gray background",
    ),
    "flower": (
        [
            _circle(256, 180, 40),
            *(_circle(256 + 85 * np.cos(a), 180 + 85 * np.sin(a), 40) for a in np.linspace(0, 2 * np.pi, 6)[:-1]),
            [(256, 265), (256, 480)],
            [(256, 400), (330, 350)],
        ],
        "a yellow circle and a red star on a green background",
    ),
    "snowman": (
        [_circle(256, 380, 100), _circle(256, 220, 70), _circle(256, 105, 50)],
        "a yellow circle on a blue background",
    ),
    "boat": (
        [
            [(80, 340), (432, 340), (370, 430), (140, 430), (80, 340)],
            [(256, 340), (256, 60)],
            [(256, 80), (400, 300), (256, 300)],
        ],
        "a blue square and a red triangle on a white background",
    ),
    "rocket": (
        [
            [(200, 420), (200, 180), (256, 70), (312, 180), (312, 420), (200, 420)],
            [(200, 350), (140, 440), (200, 420)],
            [(312, 350), (372, 440), (312, 420)],
            _circle(256, 230, 30),
        ],
        "a purple triangle and a red square on a black background",
    ),
    "cat": (
        [
            _circle(256, 290, 150, 130),
            [(140, 210), (150, 60), (230, 165)],
            [(282, 165), (362, 60), (372, 210)],
            _circle(200, 270, 18),
            _circle(312, 270, 18),
        ],
        "an orange circle and a purple triangle on a white background",
    ),
    "sun and hills": (
        [
            _circle(380, 140, 70),
            [(20, 420), (150, 280), (280, 420)],
            [(200, 420), (330, 300), (490, 420)],
            [(10, 420), (500, 420)],
        ],
        "a yellow circle and a green triangle on a blue background",
    ),
    "kite": (
        [
            [(256, 60), (380, 220), (256, 380), (132, 220), (256, 60)],
            [(256, 60), (256, 380)],
            [(132, 220), (380, 220)],
            [(256, 380), (230, 440), (280, 470), (250, 510)],
        ],
        "a red square and a yellow star on a blue background",
    ),
}


# name -> (scikit-image loader, prompt in the world's words)
PHOTOS = {
    "astronaut": (lambda d: d.astronaut(), "a person in red on a blue background"),
    "coffee": (lambda d: d.coffee(), "a yellow circle and a red ring on a gray background"),
    "cat": (lambda d: d.chelsea(), "an orange circle and a yellow triangle on a gray background"),
    "rocket": (lambda d: d.rocket(), "a yellow triangle on blue ground under a black sky"),
    "logo": (lambda d: d.logo(), "a blue square and a yellow square on a white background"),
    "camera": (lambda d: d.camera(), "a person in purple on gray ground under a white sky"),
    "horse": (lambda d: d.horse(), "a purple square on a white background"),
    "motorcycle": (lambda d: d.stereo_motorcycle()[0], "a red circle and a blue circle on a gray background"),
}


def photo(load) -> np.ndarray:
    """A scikit-image picture as uint8 RGB (grey, binary and RGBA ones too), centre-cropped to a square."""
    from skimage import data
    from skimage.util import img_as_ubyte

    image = img_as_ubyte(load(data))
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    elif image.shape[2] == 4:  # RGBA on white
        alpha = image[..., 3:] / 255.0
        image = (image[..., :3] * alpha + 255 * (1 - alpha)).astype(np.uint8)
    h, w = image.shape[:2]
    s = min(h, w)
    return np.ascontiguousarray(image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s])


def inputs(kind: str) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """name -> (the input as a user gives it, its 64 px control map, prompt)."""
    if kind == "drawings":
        return {
            name: (d := drawing(strokes, i), np.ascontiguousarray(preprocessors.sketch(d, 64, None)), prompt)
            for i, (name, (strokes, prompt)) in enumerate(DRAWINGS.items())
        }
    return {
        name: (p := photo(load), preprocessors.canny(p, 64, None), prompt) for name, (load, prompt) in PHOTOS.items()
    }


def measure(engine, kind: str, seeds: int, rows: list | None = None, only: list[str] | None = None) -> dict:
    """Print a markdown table for one set; returns the means. rows: collects (input, map, outputs) pictures.
    only: just these inputs (each then shuffled against the next of them)."""
    condition, f1 = ("scribble", evaluate.scribble_f1) if kind == "drawings" else ("canny", evaluate.edge_f1)
    given = {k: v for k, v in inputs(kind).items() if not only or k in only}
    names = list(given)
    scores = {"matched": [], "shuffled": [], "no control": []}
    print(f"\n| {kind[:-1]} ({condition}) | matched | shuffled | no control |\n|---|---:|---:|---:|")
    for k, name in enumerate(names):
        source, own, prompt = given[name]
        other = given[names[(k + 1) % len(names)]][1]
        outs, base = [], []
        for seed in range(1, seeds + 1):
            for units, into in (([ControlUnit(condition, own)], outs), ([], base)):
                request = Request(prompt, units, steps=20, guidance_scale=5, seed=seed, width=64, height=64)
                into.append((engine.generate(request).images[0] * 255).round().astype(np.uint8))
        row = {
            "matched": np.mean([f1(o, own) for o in outs]),
            "shuffled": np.mean([f1(o, other) for o in outs]),
            "no control": np.mean([f1(o, own) for o in base]),
        }
        for key, value in row.items():
            scores[key].append(value)
        print(f"| {name} | {row['matched']:.2f} | {row['shuffled']:.2f} | {row['no control']:.2f} |", flush=True)
        if rows is not None:
            rows.append(np.concatenate([cv2.resize(source, (64, 64), interpolation=cv2.INTER_AREA), own, *outs], 1))
    mean = {key: float(np.mean(v)) for key, v in scores.items()}
    print(
        f"| **mean of {len(names)}** | **{mean['matched']:.2f}** | {mean['shuffled']:.2f} | {mean['no control']:.2f} |"
    )
    print(f"\n{kind}: matched / shuffled = {mean['matched'] / mean['shuffled']:.2f}x, {seeds} seeds each")
    return mean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="assets/offline-model", help="a pipeline folder `train export` wrote")
    parser.add_argument("--sets", nargs="+", choices=["drawings", "photos"], default=["drawings", "photos"])
    parser.add_argument("--sheet", type=Path, help="also write a picture: per input, input, map, outputs per seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", nargs="+", metavar="NAME", help="just these drawings / photos (for a figure)")
    args = parser.parse_args()
    known = {*DRAWINGS, *PHOTOS}
    if args.only and set(args.only) - known:
        parser.error(f"unknown inputs {sorted(set(args.only) - known)}; known: {', '.join(sorted(known))}")

    engine = evaluate.load_engine(args.model)
    rows: list = []
    print(f"model: {args.model}")
    for kind in args.sets:
        if not args.only or set(args.only) & set(DRAWINGS if kind == "drawings" else PHOTOS):
            measure(engine, kind, args.seeds, rows, args.only)
    if args.sheet:
        sheet = np.concatenate([np.pad(r, ((0, 2), (0, 0), (0, 0)), constant_values=255) for r in rows])
        args.sheet.parent.mkdir(parents=True, exist_ok=True)
        big = Image.fromarray(cv2.resize(sheet, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST))
        big.quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(args.sheet, optimize=True)


if __name__ == "__main__":
    main()
