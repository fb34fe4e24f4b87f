"""The parameters every result PNG carries: written with the image, read back, turned into a request again."""

from __future__ import annotations

import json

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from ..images import ImageLike
from ..models.presets import FULL
from .specs import GenerateSpec, UnitSpec

METADATA_KEY = "parameters"


def save_png(image: Image.Image, path, params: dict) -> None:
    """The image as a PNG with `params` (JSON) in its text chunk."""
    info = PngInfo()
    info.add_text(METADATA_KEY, json.dumps(params))
    image.save(path, pnginfo=info)


def read_parameters(path: str) -> dict:
    """The parameters stored in a PNG written by the demo."""
    with Image.open(path) as im:
        return json.loads(im.text[METADATA_KEY])


def spec_from_parameters(params: dict, images: list[ImageLike]) -> GenerateSpec:
    """Rebuild a GenerateSpec from stored parameters and the original condition images (one per unit)."""
    units = [
        UnitSpec(
            u["condition"],
            img,
            u["preprocessor"],
            u["preprocess_resolution"],
            u.get("params", {}),
            u["strength"],
            u["start"],
            u["end"],
            u["mode"],
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
