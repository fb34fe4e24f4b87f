"""Shared fixtures: tiny real models (built from configs, seeded), real photos from scikit-image."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the hub from the tests
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def store():
    from controlnet_demo.models import ModelStore, pick_device, resolve_preset
    from controlnet_demo.settings import Settings

    resolved = resolve_preset(Settings(preset="tiny"))
    device, dtype = pick_device("cpu")
    return ModelStore(resolved, device, dtype)


@pytest.fixture(scope="session")
def engine(store):
    from controlnet_demo.engine import Engine

    return Engine(store)


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
    """The real app (the "tiny" preset: a random tiny model) served on a free local port for the whole session.

    Yields (url, demo). Small limits keep it quick: the tests that need other settings launch their own.
    """
    from controlnet_demo.service import Demo
    from controlnet_demo.settings import Settings
    from controlnet_demo.ui import build, launch

    demo = Demo(Settings(preset="tiny", server_port=None))
    blocks = build(demo)
    launch(demo, blocks, prevent_thread_lock=True, quiet=True)
    try:
        yield blocks.local_url.rstrip("/"), demo
    finally:
        blocks.close()
