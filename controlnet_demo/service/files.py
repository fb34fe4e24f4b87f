"""Where the service writes what it returns: each result PNG with its parameters (written with the image, read back,
turned into a request again), and the residual maps (.npz) when asked for; each file deleted `ttl_s` after it was
written, and the residual maps found again by their file name."""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections import deque
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..errors import UserInputError
from ..images import ImageLike
from ..models.presets import FULL
from .specs import GenerateSpec, UnitSpec

METADATA_KEY = "parameters"
MAPS_KEY = "control maps"  # {key: base64 PNG} of the edited maps, compressed; a unit names its map's key


def save_png(image: Image.Image, path, params: dict, maps: tuple[tuple[str, bytes], ...] = ()) -> None:
    """The image as a PNG with `params` (JSON) in its text chunk, and the edited control maps in another."""
    info = PngInfo()
    info.add_text(METADATA_KEY, json.dumps(params))
    if maps:
        info.add_text(MAPS_KEY, json.dumps({k: base64.b64encode(png).decode() for k, png in maps}), zip=True)
    image.save(path, pnginfo=info)


def read_maps(path: str) -> dict[str, bytes]:
    """The edited control maps a result PNG keeps, by key ({} when it keeps none)."""
    with Image.open(path) as im:
        stored = im.text.get(MAPS_KEY)
    return {k: base64.b64decode(v) for k, v in json.loads(stored).items()} if stored else {}


def read_parameters(path: str) -> dict:
    """The parameters stored in a PNG written by the demo."""
    with Image.open(path) as im:
        return json.loads(im.text[METADATA_KEY])


def spec_from_parameters(params: dict, images: list[ImageLike]) -> GenerateSpec:
    """Rebuild a GenerateSpec from stored parameters and the original condition images (one per unit)."""
    units = [
        UnitSpec(
            condition=u["condition"],
            image=img,
            preprocessor=u["preprocessor"],
            preprocess_resolution=u["preprocess_resolution"],
            params=u.get("params", {}),
            strength=u["strength"],
            start=u["start"],
            end=u["end"],
            mode=u["mode"],
            edited=bool(u.get("edited_map")),
        )
        for u, img in zip(params["units"], images)
    ]
    return GenerateSpec(
        params["prompt"],
        units,
        params["negative_prompt"],
        params["steps"],
        params["guidance_scale"],
        params["seed"],
        params["num_images"],
        params["resolution"],
        params["scheduler"],
        params.get("speed", FULL),  # PNGs from before the few-step modes ran the full path
    )


RESIDUAL_FILE = re.compile(r"\d{8}-\d{6}-[0-9a-f]{16}-residuals\.npz")  # the names save_residuals gives


class ResultFiles:
    def __init__(self, folder, ttl_s: float):
        self.ttl_s = ttl_s
        self.move_to(folder)
        self._written: deque[tuple[float, Path]] = deque()  # (when, file) of every file written here, oldest first
        self._lock = threading.Lock()

    def move_to(self, folder) -> None:
        """Write into `folder` from now on (the app: inside gradio's upload folder, so that each file is written
        once and gradio serves it where it is, instead of copying it)."""
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def save_pngs(self, result, params: dict, maps=()) -> list[str]:
        """Each image of `result` as a PNG that carries its parameters (and the edited `maps`)."""
        self.prune()
        files = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for image, seed in zip(result.pil_images(), result.seeds):
            path = self.folder / f"{stamp}-{seed}-{secrets.token_hex(3)}.png"
            save_png(image, path, {**params, "seed": seed, "num_images": 1, "batch_seed": params["seed"]}, maps)
            self._wrote(path)
            files.append(str(path))
        return files

    def save_residuals(self, result) -> str | None:
        """Where the residuals went (when asked for), as an .npz beside the PNGs."""
        if not result.residual_maps:
            return None
        path = self.folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(8)}-residuals.npz"
        np.savez_compressed(path, **result.residual_maps)
        self._wrote(path)
        return str(path)

    def residual_maps(self, name: str) -> dict[str, np.ndarray]:
        """The residual maps saved as `name` (the file's name that save_residuals gave), read from this folder:
        never from a path a request names. By the name alone: on ZeroGPU a forked worker wrote the file, and no
        list of them is shared between the processes."""
        path = self.folder / name if RESIDUAL_FILE.fullmatch(name or "") else None
        if path is None or not path.is_file():
            raise UserInputError(
                "These residual maps are no longer on the server (they are kept {minutes} min): generate again with "
                "the switch on.",
                minutes=max(1, round(self.ttl_s / 60)),
            )
        with np.load(path) as saved:
            return {label: saved[label] for label in saved.files}

    def prune(self) -> None:
        """Delete the files written here that are older than the TTL. Only those: the CLI's --out folder may hold
        the user's own files."""
        oldest = time.monotonic() - self.ttl_s
        with self._lock:
            while self._written and self._written[0][0] < oldest:
                self._written.popleft()[1].unlink(missing_ok=True)

    def _wrote(self, path: Path) -> None:
        with self._lock:
            self._written.append((time.monotonic(), path))
