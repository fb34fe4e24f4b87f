"""A PNG is data: `generate --from-png` takes the prompt, seeds and conditions from it, never the models. A crafted
PNG naming a hub repo or a local folder does not make the CLI load it; the CLI says, in one line, what it uses
instead. And every file the CLI hands to the service is a `pathlib.Path` (the service never opens a str as a path).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from controlnet_demo.cli import build_parser, main
from controlnet_demo.cli.requests import build_spec, model_warning
from controlnet_demo.models.presets import OFFLINE, TINY
from controlnet_demo.paths import EXAMPLES_DIR, shown
from controlnet_demo.service.files import save_png
from tests.cli.test_generate import FAST, cli, metadata, ok, printed

EVIL_REPO = "attacker/evil-weights"


def _unit(condition: str = "canny", **extra) -> dict:
    return dict(
        condition=condition,
        preprocessor="canny",
        preprocess_resolution=64,
        params={"low_threshold": 50.0},
        strength=1.0,
        start=0.0,
        end=1.0,
        mode="balanced",
        **extra,
    )


def crafted_png(path: Path, evil_folder: Path, preset: str = "tiny") -> Path:
    """What an attacker hands out: a result PNG whose parameters name their own base model and ControlNet."""
    params = dict(
        prompt="a cup of coffee",
        negative_prompt="",
        steps=2,
        guidance_scale=7.5,
        seed=5,
        num_images=1,
        resolution=64,
        scheduler="UniPC",
        speed="full",
        preset=preset,
        base_model=EVIL_REPO,
        units=[_unit(model=str(evil_folder))],
    )
    save_png(Image.new("RGB", (64, 64)), path, params)
    return path


@pytest.fixture
def evil_folder(tmp_path) -> Path:
    """A local folder that looks like a model: loading it would fail (and, with pickled weights, run its code)."""
    folder = tmp_path / "evil-controlnet"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"_class_name": "ControlNetModel"}))
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    (folder / "diffusion_pytorch_model.bin").write_bytes(b"not weights")
    return folder


@pytest.fixture
def no_model_env(monkeypatch):
    for key in list(os.environ):
        if key == "CONTROLNET_DEMO_PRESET" or (key.startswith("CONTROLNET_DEMO_") and key.endswith("_MODEL")):
            monkeypatch.delenv(key)


def parse(*argv) -> object:
    return build_parser().parse_args(["generate", *map(str, argv)])


class Stop(Exception):
    pass


@pytest.mark.parametrize("options", [[], ["--preset", "tiny"]], ids=["no-model-option", "preset"])
def test_the_service_gets_no_model_of_the_png(tmp_path, evil_folder, no_model_env, monkeypatch, options):
    """What `generate --from-png` builds its service with: the command line's and environment's models only (the
    service is stopped there, before anything is resolved or loaded)."""
    import controlnet_demo.service as service

    built = []

    def record(settings, *args, **kwargs):
        built.append(settings)
        raise Stop

    monkeypatch.setattr(service, "ControlNetService", record)
    png = crafted_png(tmp_path / "crafted.png", evil_folder)
    argv = ["generate", "--from-png", str(png), "--image", str(EXAMPLES_DIR / "coffee.jpg"), *options]
    with pytest.raises(Stop):
        main([*argv, "--device", "cpu", "--out", str(tmp_path / "out")])
    (settings,) = built
    assert (settings.preset, settings.base_model, settings.controlnets) == (options[1] if options else "auto", None, {})


def test_the_warning_names_both_sides_on_one_printable_line():
    same = {"preset": "tiny", "base_model": shown(TINY.base), "units": [_unit(model=shown(TINY.controlnets["canny"]))]}
    assert model_warning(same, TINY, "a.png") is None
    assert model_warning({"units": [_unit()]}, TINY, "a.png") is None  # nothing named: nothing to say

    other = {
        "preset": "offline",
        "base_model": shown(OFFLINE.base),
        "units": [_unit(model=shown(OFFLINE.controlnets["canny"]))],
    }
    line = model_warning(other, TINY, "a.png")
    assert line == (
        "warning: a.png was made with the offline preset; using the tiny preset (models are never taken from a "
        "file; choose them with --preset, --base-model, --controlnet): pass --preset offline to reproduce it."
    )  # the offline preset's own models are not listed again

    crafted = {"preset": "tiny", "base_model": "evil/\x1b[2Jrepo\nrm -rf", "units": [_unit(model="/tmp/x")]}
    line = model_warning(crafted, TINY, "a.png")
    assert "\n" not in line and "\x1b" not in line
    assert "base model evil/?[2Jrepo?rm -rf, canny ControlNet /tmp/x; using base model builtin:tiny-random" in line
    assert line.endswith("the pixels will differ.")


@pytest.mark.slow
def test_a_crafted_png_naming_a_hub_repo_and_a_folder_runs_on_the_command_lines_models(tmp_path, evil_folder):
    png = crafted_png(tmp_path / "crafted.png", evil_folder)
    result = ok(
        cli(
            "generate",
            "--from-png",
            png,
            "--image",
            EXAMPLES_DIR / "coffee.jpg",
            *FAST,
            "--out",
            "out.png",
            cwd=tmp_path,
        )
    )
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {png} was made with base model {EVIL_REPO}, canny ControlNet {evil_folder}; using base model "
        "builtin:tiny-random, canny ControlNet builtin:tiny-random:canny (models are never taken from a file; "
        "choose them with --preset, --base-model, --controlnet): the pixels will differ."
    ]
    made = metadata(tmp_path / "out.png")  # what was loaded: the preset's models
    assert made["base_model"] == TINY.base and made["units"][0]["model"] == TINY.controlnets["canny"]
    assert (made["prompt"], made["seed"]) == ("a cup of coffee", 5)  # the PNG's data is used
    assert printed(result, "image") == ["out.png"]


@pytest.mark.slow
def test_the_environments_preset_not_the_pngs_is_used_and_said_even_with_q(tmp_path, evil_folder):
    """No model option: the settings' preset (here CONTROLNET_DEMO_PRESET=tiny), whatever preset the PNG names."""
    png = crafted_png(tmp_path / "crafted.png", evil_folder, preset="offline")
    argv = ["--from-png", png, "--image", EXAMPLES_DIR / "coffee.jpg", "--device", "cpu", "--out", "out.png", "-q"]
    result = ok(cli("generate", *argv, cwd=tmp_path, settings={"CONTROLNET_DEMO_PRESET": "tiny"}))
    made = metadata(tmp_path / "out.png")
    assert (made["preset"], made["base_model"], made["units"][0]["model"]) == (
        "tiny",
        TINY.base,
        TINY.controlnets["canny"],
    )
    (warning,) = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert (
        f"the offline preset, base model {EVIL_REPO}, canny ControlNet {evil_folder}; using the tiny preset" in warning
    )
    assert warning.endswith("pass --preset offline to reproduce it.")


def test_files_reach_the_service_as_paths(tmp_path, evil_folder):
    """A str is data to the service (a data: URL, pose JSON), never a path: the CLI hands files over as Paths."""
    photo, mask = EXAMPLES_DIR / "coffee.jpg", EXAMPLES_DIR / "scribble_house.png"
    spec, _ = build_spec(parse("--prompt", "x", "--condition", "canny", "--image", photo, "--mask", mask))
    assert spec.units[0].image == photo and isinstance(spec.units[0].image, Path)
    assert isinstance(spec.units[0].mask, Path)

    png = crafted_png(tmp_path / "crafted.png", evil_folder)
    spec, _ = build_spec(parse("--from-png", png, "--image", str(photo)))
    assert spec.units[0].image == photo and isinstance(spec.units[0].image, Path)


def test_detect_hands_load_rgb_a_path(tmp_path, monkeypatch, capsys):
    import controlnet_demo.images as images

    seen, real = [], images.load_rgb

    def spy(image, *args, **kwargs):
        seen.append(image)
        return real(image, *args, **kwargs)

    monkeypatch.setattr(images, "load_rgb", spy)
    photo = EXAMPLES_DIR / "coffee.jpg"
    argv = [
        "detect",
        "--condition",
        "canny",
        "--image",
        str(photo),
        "--device",
        "cpu",
        "--out",
        str(tmp_path / "m.png"),
    ]
    assert main(argv) == 0
    assert seen == [photo] and isinstance(seen[0], Path)
    assert np.asarray(Image.open(tmp_path / "m.png")).ndim == 3
