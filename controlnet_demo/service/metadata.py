"""The parameters every result PNG carries: written with the image, read back, turned into a request again."""

from __future__ import annotations

import base64
import hashlib
import io
import json

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

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


def map_png(control: np.ndarray) -> tuple[str, bytes]:
    """(key, PNG bytes) of a control map: the key is the start of the PNG's SHA-256."""
    buffer = io.BytesIO()
    Image.fromarray(control).save(buffer, format="PNG")
    png = buffer.getvalue()
    return hashlib.sha256(png).hexdigest()[:16], png


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
