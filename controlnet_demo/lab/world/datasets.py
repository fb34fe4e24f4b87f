"""World examples written to a folder as a dataset, and dataset folders (this layout or fill50k's) read back."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .render import MAPS, example
from .scenes import DEFAULT, WorldConfig


def _write_png(path: Path, rgb: np.ndarray) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"Cannot encode {path.name} as PNG.")
    path.write_bytes(buf.tobytes())


def write_dataset(folder: str | Path, n: int, seed: int = 0, size: int = 64, config: WorldConfig = DEFAULT) -> Path:
    """n examples as folder/images/{i:06d}.png, folder/conditions/{canny,scribble,depth,pose}/{i:06d}.png and
    folder/prompts.jsonl. Example i depends only on (seed, i): same seed, byte-identical files. Returns the jsonl."""
    root = Path(folder)
    for sub in ("images", *(f"conditions/{c}" for c in MAPS)):
        (root / sub).mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        ex = example(np.random.default_rng([seed, i]), size, config)
        name = f"{i:06d}.png"
        _write_png(root / "images" / name, ex.image)
        for c in MAPS:
            _write_png(root / "conditions" / c / name, ex.maps[c])
        lines.append(
            json.dumps(
                {
                    "image": f"images/{name}",
                    "prompt": ex.prompt,
                    "conditions": {c: f"conditions/{c}/{name}" for c in MAPS},
                }
            )
        )
    path = root / "prompts.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_rgb(path: Path) -> np.ndarray:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise FileNotFoundError(f"Cannot read the image {path}.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class DatasetFolder:
    """(image, condition image, prompt) triples, uint8 RGB, from a folder written by write_dataset (prompts.jsonl,
    pick the condition) or in the fill50k tutorial layout (prompt.json lines {"source", "target", "prompt"}: the
    source is the condition, whatever its kind)."""

    def __init__(self, folder: str | Path, condition: str = "canny"):
        self.root = Path(folder)
        if (self.root / "prompts.jsonl").exists():
            rows = [json.loads(line) for line in (self.root / "prompts.jsonl").read_text().splitlines() if line]
            self.conditions = tuple(rows[0]["conditions"]) if rows else ()
            if rows and condition not in self.conditions:
                raise KeyError(f"{self.root} has no {condition!r} maps; it has {', '.join(self.conditions)}.")
            self.items = [(r["image"], r["conditions"][condition], r["prompt"]) for r in rows]
        elif (self.root / "prompt.json").exists():
            rows = [json.loads(line) for line in (self.root / "prompt.json").read_text().splitlines() if line]
            self.conditions = (condition,)
            self.items = [(r["target"], r["source"], r["prompt"]) for r in rows]
        else:
            raise FileNotFoundError(f"{self.root} has neither prompts.jsonl nor a fill50k-style prompt.json.")
        self.condition = condition

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray, str]:
        image, cond, prompt = self.items[i]
        return read_rgb(self.root / image), read_rgb(self.root / cond), prompt
