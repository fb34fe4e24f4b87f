"""The offline model on inputs the synthetic world never made: a real photo through canny, hand-drawn scribbles,
a real OpenPose skeleton; plus a held-out world scene per condition. Writes one figure (input, control map, three
seeds) and prints how closely each output follows its map (edge / scribble F1), next to the same outputs scored
against the map mirrored left-right (what an output that ignores the map would score).

    HF_HUB_OFFLINE=1 .venv/bin/python -m tools.figures --out assets/offline_examples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from controlnet_demo.conditions.table import WORLD_CAPTION
from controlnet_demo.lab import evaluate
from controlnet_demo.models.presets import OFFLINE
from controlnet_demo.paths import EXAMPLES_DIR
from controlnet_demo.service import ControlNetService, GenerateSpec, UnitSpec, final_output
from controlnet_demo.settings import Settings

CASES = [  # (label, condition, example, preprocessor, prompt, metric)
    ("photo → canny", "canny", "coffee.jpg", "canny", "a yellow circle on a purple background", "edges"),
    ("photo → canny", "canny", "astronaut.jpg", "canny", "a person in red on a blue background", "edges"),
    (
        "hand-drawn scribble",
        "scribble",
        "scribble_house.png",
        "sketch",
        "a purple square and a red triangle on a white background",
        "scribble",
    ),
    ("OpenPose skeleton", "pose", "pose_waving.png", "none", "a person in red waving on a yellow background", None),
    ("world scene, depth", "depth", "world_depth.png", "none", WORLD_CAPTION, None),
]
SEEDS = (1, 2, 3)
SCALE = 2  # 64 px pictures shown at 128 px


def _cell(image: np.ndarray, side: int) -> Image.Image:
    pil = Image.fromarray(image).convert("RGB")
    scale = side / max(pil.size)  # 64 px outputs are enlarged with visible pixels, photos shrunk smoothly
    pil = pil.resize(
        (round(pil.width * scale), round(pil.height * scale)),
        Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS,
    )
    canvas = Image.new("RGB", (side, side), "white")
    canvas.paste(pil, ((side - pil.width) // 2, (side - pil.height) // 2))
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("artifacts/offline_examples.png"))
    args = parser.parse_args()

    service = ControlNetService(Settings(preset="offline"))
    assert service.preset.name == OFFLINE.name
    side = 64 * SCALE
    rows, table = [], []
    for label, condition, example, preprocessor, prompt, metric in CASES:
        source = np.asarray(Image.open(EXAMPLES_DIR / example).convert("RGB"))
        unit = UnitSpec(condition, EXAMPLES_DIR / example, preprocessor, preprocess_resolution=64)
        outputs = []
        for seed in SEEDS:
            out = final_output(service.generate(GenerateSpec(prompt, [unit], seed=seed, resolution=64)))
            outputs.append(np.asarray(Image.open(out.files[0]).convert("RGB")))
        control = out.maps[0]
        rows.append([_cell(source, side), _cell(control, side), *(_cell(o, side) for o in outputs)])
        if metric:
            f1 = evaluate.edge_f1 if metric == "edges" else evaluate.scribble_f1
            own = np.mean([f1(o, control) for o in outputs])
            mirrored = np.mean([f1(o, control[:, ::-1]) for o in outputs])
            table.append(f"| {label} ({example}) | {metric} F1 | {own:.2f} | {mirrored:.2f} |")

    grid = Image.new("RGB", (side * 5 + 8 * 4, side * len(rows) + 8 * (len(rows) - 1)), "white")
    for r, cells in enumerate(rows):
        for c, cell in enumerate(cells):
            grid.paste(cell, (c * (side + 8), r * (side + 8)))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    print(
        f"wrote {args.out}: rows {', '.join(c[0] + ' (' + c[2] + ')' for c in CASES)}; columns input, map, "
        f"seeds {', '.join(map(str, SEEDS))}"
    )
    print("| input | metric | against its map | against the mirrored map |\n|---|---|---|---|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
