"""A ControlNet that does not fit the base (another model family, or a condition encoder that downsamples unlike the
base's VAE) is refused when it loads, naming both models and why, in the service (the app and the API show its
message) and in the CLI, instead of failing deep in the loop with a tensor-size error."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from controlnet_demo.errors import ModelMismatchError
from controlnet_demo.models import architectures as tiny
from controlnet_demo.paths import EXAMPLES_DIR, REPO_ROOT
from controlnet_demo.service import ControlNetService, Failed, GenerateSpec, UnitSpec, user_message
from controlnet_demo.settings import Settings


@pytest.fixture(scope="module")
def misfits(tmp_path_factory) -> dict:
    """Two ControlNets saved in diffusers' layout that the tiny base cannot take."""
    from diffusers import ControlNetModel

    root = tmp_path_factory.mktemp("misfits")
    other_family = tiny.build_unet(
        tiny.ModelConfig((32, 64), (32, 64), (False, True), 8, text_hidden=48, text_layers=2), sample_size=32
    )
    ControlNetModel.from_unet(other_family, conditioning_embedding_out_channels=(16, 32)).save_pretrained(
        root / "family"
    )
    torch.manual_seed(0)
    # the tiny VAE halves once (2x); SD1.5's 4-conv condition encoder brings a map down 8x
    ControlNetModel.from_unet(
        tiny.tiny_unet(seed=0), conditioning_embedding_out_channels=(16, 32, 96, 256)
    ).save_pretrained(root / "encoder")
    return {"family": str(root / "family"), "encoder": str(root / "encoder")}


@pytest.mark.parametrize(
    "kind, why",
    [
        ("family", "text embeddings of size 48, the base's text encoder gives 32"),
        ("encoder", "condition encoder downsamples the map 8x, the base's VAE 2x"),
    ],
)
def test_the_service_refuses_a_misfit_at_load_naming_both_models(misfits, tmp_path, astronaut, kind, why):
    service = ControlNetService(Settings(preset="tiny", controlnets={"canny": misfits[kind]}), output_dir=str(tmp_path))
    spec = GenerateSpec("a house", [UnitSpec("canny", astronaut, preprocess_resolution=128)], steps=2, resolution=64)
    events = list(service.generate(spec))
    assert isinstance(events[-1], Failed) and isinstance(events[-1].error, ModelMismatchError)
    message = user_message(events[-1].error)  # what the app and the API show
    assert f"The canny ({misfits[kind]}) ControlNet does not fit the base model builtin:tiny-random" in message
    assert why in message and "Use a ControlNet trained for this base" in message
    with pytest.raises(ModelMismatchError):
        service.store.controlnet("canny")  # refused at load: no request reached the loop
    assert not service.store._controlnets


@pytest.mark.slow
def test_the_cli_prints_the_misfit_on_one_line(misfits, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTROLNET_DEMO_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "controlnet_demo",
            "generate",
            "--preset",
            "tiny",
            "--controlnet",
            f"canny={misfits['family']}",
            "--condition",
            "canny",
            "--image",
            str(EXAMPLES_DIR / "coffee.jpg"),
            "--prompt",
            "a cup",
            "--steps",
            "1",
            "--out",
            str(tmp_path),
        ],
        cwd=REPO_ROOT,
        env={**env, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "does not fit the base model" in errors[0] and "Traceback" not in result.stderr


def test_the_shipped_controlnets_fit_their_bases():
    from controlnet_demo.models.devices import pick_device
    from controlnet_demo.models.loading import ModelStore, resolve_preset

    store = ModelStore(resolve_preset(Settings(preset="tiny")), *pick_device("cpu"))
    for condition in store.preset.controlnets:
        assert store.controlnet(condition) is not None
    assert np.isfinite(float(store.base.unet.conv_in.weight.sum()))
