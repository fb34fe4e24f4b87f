"""Shared fixtures: tiny real models (built from configs, seeded), real photos from scikit-image."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the hub from the tests
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from controlnet_demo.paths import EXAMPLES_DIR

torch.set_num_threads(min(2, torch.get_num_threads()))

EXAMPLES = EXAMPLES_DIR


@pytest.fixture(scope="session")
def store():
    from controlnet_demo.models.devices import pick_device
    from controlnet_demo.models.loading import ModelStore, resolve_preset
    from controlnet_demo.settings import Settings

    resolved = resolve_preset(Settings(preset="tiny"))
    device, dtype = pick_device("cpu")
    return ModelStore(resolved, device, dtype)


@pytest.fixture(scope="session")
def engine(store):
    from tests.builders import engine_on

    return engine_on(store)


# the best of three builds of the tiny pipeline on the 2-core machine the few time limits below were set on
REFERENCE_BUILD_S = 0.25


@pytest.fixture(scope="session")
def slowdown() -> float:
    """How many times slower this machine is than the one the suite's time limits were set on (at least 1), for the
    tests where a time limit is the behaviour under test: the best of three builds of the tiny pipeline (Python-heavy
    work, like loading a model) against REFERENCE_BUILD_S. Machines of our kind differ up to 5x."""
    import time

    from controlnet_demo.models import architectures

    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        architectures.tiny_pipeline(seed=0)
        best = min(best, time.perf_counter() - started)
    return max(1.0, best / REFERENCE_BUILD_S)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8, a person


@pytest.fixture(scope="session")
def coffee() -> np.ndarray:
    from skimage import data

    return data.coffee()  # (400, 600, 3) uint8


@pytest.fixture(scope="session")
def launched_app():
    """The real app (the "tiny" preset: a random tiny model, and its Train tab on) served on a free local port for
    the whole session.

    Yields (url, service). The tests that need other settings launch their own with `builders.serve`.
    """
    from controlnet_demo.settings import Settings
    from tests.builders import serve

    url, service, blocks = serve(Settings(preset="tiny", server_port=None, training=True))
    try:
        yield url, service
    finally:
        blocks.close()


@pytest.fixture(scope="session")
def client(launched_app):
    """A gradio_client on the session's app."""
    from gradio_client import Client

    return Client(launched_app[0], verbose=False)


@pytest.fixture(scope="session")
def api(client) -> dict:
    return client.view_api(return_format="dict", print_info=False)


@pytest.fixture(scope="session")
def files(tmp_path_factory) -> Path:
    """Every file the tests upload, besides the examples."""
    d = tmp_path_factory.mktemp("uploads")
    rng = np.random.default_rng(0)
    Image.new("RGB", (1, 1), "white").save(d / "one.png")
    Image.fromarray(rng.integers(0, 256, (10, 4000, 3), dtype=np.uint8)).save(d / "wide.png")
    (d / "text.png").write_text("this is a text file, not a picture\n" * 20)
    jpeg = (EXAMPLES / "astronaut.jpg").read_bytes()
    (d / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 3])
    mask = np.zeros((512, 512), np.uint8)
    mask[:, :256] = 255
    Image.fromarray(mask).save(d / "left_half.png")
    depth16 = np.tile(np.linspace(0, 65535, 128).astype(np.uint16), (128, 1))  # far left (0) .. near right
    Image.fromarray(depth16).save(d / "depth16.png")
    assert Image.open(d / "depth16.png").mode == "I;16"
    # sketchpad parts: the editor sends its background, its layers (RGBA) and their composite
    Image.new("RGB", (512, 512), "white").save(d / "canvas.png")
    Image.new("RGBA", (512, 512), (0, 0, 0, 0)).save(d / "blank_layer.png")
    house = np.asarray(Image.open(EXAMPLES / "scribble_house.png").convert("L"))
    layer = np.zeros((*house.shape, 4), np.uint8)
    layer[..., 3] = 255 - house  # black ink wherever the drawing is dark
    Image.fromarray(layer).save(d / "house_layer.png")
    Image.fromarray(house).convert("RGB").save(d / "house.png")
    (d / "bomb.png").write_bytes(_bomb_png(20000, 20000))  # 400 megapixels in 50 kB
    (d / "drawing.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200"><circle r="50"/></svg>'
    )
    return d


def _bomb_png(width: int, height: int) -> bytes:
    """A complete, valid 1-bit PNG of width x height black pixels: tiny on disk, huge once decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    body = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
