"""The command line, run as a user runs it: `python -m controlnet_demo ...` in a subprocess, on the random "tiny" preset."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from controlnet_demo.paths import EXAMPLES_DIR, REPO_ROOT

pytestmark = pytest.mark.slow  # every test here runs the app, a subprocess or a load

ROOT = REPO_ROOT
EXAMPLES = EXAMPLES_DIR
FAST = ["--preset", "tiny", "--steps", "2", "--device", "cpu"]


def cli(*args: str, cwd: Path, module: str = "controlnet_demo", settings: dict | None = None):
    """`python -m controlnet_demo ARGS` (or another module that runs the CLI) as a user runs it; the environment's
    CONTROLNET_DEMO_* settings are `settings` alone."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    env = {k: v for k, v in env.items() if not k.startswith("CONTROLNET_DEMO_")} | (settings or {})
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def printed(result: subprocess.CompletedProcess, kind: str) -> list[str]:
    """The values of the `KIND value ...` lines the CLI prints on stdout."""
    return [line.split(" ")[1] for line in result.stdout.splitlines() if line.startswith(kind + " ")]


def metadata(path: str | Path) -> dict:
    with Image.open(path) as im:
        return json.loads(im.text["parameters"])


def pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@pytest.fixture(scope="module")
def composed(tmp_path_factory):
    """One composed run (pose map + scribble), each condition with options of its own, fixed seed."""
    cwd = tmp_path_factory.mktemp("composed")
    result = ok(
        cli(
            "generate",
            *FAST,
            "--resolution",
            "64",
            "--seed",
            "1234",
            "--prompt",
            "a chef waving by a cottage",
            "--condition",
            "pose",
            "--image",
            EXAMPLES / "pose_waving.png",
            "--preprocessor",
            "none",
            "--condition",
            "scribble",
            "--image",
            EXAMPLES / "scribble_house.png",
            "--strength",
            "0.6",
            "--end",
            "0.6",
            "--mode",
            "control",
            "--out",
            "out",
            cwd=cwd,
        )
    )
    return cwd, result


def test_generate_one_condition_writes_n_pngs_of_the_output_size_with_prompt_and_seed(tmp_path):
    # coffee.jpg is 600x400: a longer side of 128 keeps the 3:2 aspect on the 64 grid -> 128x64; no --seed: random
    result = ok(
        cli(
            "generate",
            *FAST,
            "--condition",
            "canny",
            "--image",
            EXAMPLES / "coffee.jpg",
            "--param",
            "low_threshold=50",
            "--prompt",
            "a cup of coffee",
            "--num-images",
            "2",
            "--resolution",
            "128",
            "--out",
            "results",
            cwd=tmp_path,
        )
    )
    files = printed(result, "image")
    assert len(files) == 2 and sorted(os.listdir(tmp_path / "results")) == sorted(
        [Path(f).name for f in files] + [Path(m).name for m in printed(result, "map")]
    )
    seed = int(printed(result, "seed")[0])
    for k, f in enumerate(files):
        with Image.open(tmp_path / f) as im:
            assert im.size == (128, 64)
        params = metadata(tmp_path / f)
        assert params["prompt"] == "a cup of coffee"
        assert params["seed"] == seed + k  # image k of a batch has seed + k: reproducible alone
        assert params["units"][0]["condition"] == "canny"
        assert params["units"][0]["params"] == {"low_threshold": 50.0}
    (map_file,) = printed(result, "map")
    assert pixels(tmp_path / map_file).shape == (64, 128, 3)
    assert "Denoising" in result.stderr  # the progress bar


def test_composition_records_both_units_with_their_own_options(composed):
    cwd, result = composed
    (f,) = printed(result, "image")
    units = metadata(cwd / f)["units"]
    assert [u["condition"] for u in units] == ["pose", "scribble"]
    pose, scribble = units
    assert (pose["preprocessor"], pose["strength"], pose["end"], pose["mode"]) == ("none", 1.0, 1.0, "balanced")
    assert (scribble["preprocessor"], scribble["strength"], scribble["end"], scribble["mode"]) == (
        "sketch",
        0.6,
        0.6,
        "control",
    )
    maps = printed(result, "map")
    assert [Path(m).stem.rsplit("-", 1)[1] for m in maps] == ["pose", "scribble"]
    assert all(pixels(cwd / m).shape == (64, 64, 3) for m in maps)


def test_from_png_reproduces_identical_pixels(composed):
    cwd, first = composed
    (original,) = printed(first, "image")
    again = ok(
        cli(
            "generate",
            "--from-png",
            original,
            "--preset",
            "tiny",  # the models come from the command line, never from the PNG
            "--image",
            EXAMPLES / "pose_waving.png",
            "--image",
            EXAMPLES / "scribble_house.png",
            "--out",
            "again",
            "-q",
            cwd=cwd,
        )
    )
    (copy,) = printed(again, "image")
    assert Path(copy).parent.name == "again"
    assert printed(again, "seed") == ["1234"]
    assert np.array_equal(pixels(cwd / copy), pixels(cwd / original))
    assert metadata(cwd / copy)["units"] == metadata(cwd / original)["units"]


def test_detect_writes_the_same_map_as_conditions_detect(tmp_path):
    from controlnet_demo.conditions import detect
    from controlnet_demo.images import load_rgb

    photo = EXAMPLES / "coffee.jpg"
    result = ok(
        cli(
            "detect",
            "--condition",
            "canny",
            "--image",
            photo,
            "--preprocess-resolution",
            "256",
            "--param",
            "low_threshold=50",
            "high_threshold=150",
            "--out",
            "maps/edges.png",
            cwd=tmp_path,
        )
    )
    assert printed(result, "map") == ["maps/edges.png"]
    expected = detect("canny", load_rgb(photo), "canny", 256, low_threshold=50, high_threshold=150)
    written = pixels(tmp_path / "maps" / "edges.png")
    assert written.shape == expected.shape and np.array_equal(written, expected)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--condition", "canny", "--image", "missing.jpg"], "missing.jpg: no such file"),
        (
            ["--condition", "canny", "--image", EXAMPLES / "coffee.jpg", "--start", "0.7", "--end", "0.3"],
            "start (0.7) must be before end (0.3)",
        ),
        (["--condition", "cany", "--image", EXAMPLES / "coffee.jpg"], "invalid choice: 'cany'"),
        (
            ["--strength", "0.5", "--condition", "canny", "--image", EXAMPLES / "coffee.jpg"],
            "--strength must follow the --condition",
        ),
    ],
    ids=["missing-image", "start-after-end", "unknown-condition", "unit-option-before-condition"],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path, args, says):
    result = cli("generate", *FAST, "--prompt", "x", *args, "--out", "out", cwd=tmp_path)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and says in errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out/*.png"))  # nothing half-written


def test_out_may_name_the_one_png_to_write_and_its_maps_go_beside_it(tmp_path):
    result = ok(
        cli(
            "generate",
            *FAST,
            "--condition",
            "canny",
            "--image",
            EXAMPLES / "coffee.jpg",
            "--prompt",
            "a cup",
            "--resolution",
            "64",
            "--seed",
            "3",
            "--out",
            "shots/result.png",
            cwd=tmp_path,
        )
    )
    assert printed(result, "image") == ["shots/result.png"]
    assert printed(result, "map") == ["shots/result-map1-canny.png"]
    assert sorted(os.listdir(tmp_path / "shots")) == ["result-map1-canny.png", "result.png"]
    assert metadata(tmp_path / "shots" / "result.png")["seed"] == 3


def test_out_naming_one_file_for_several_images_is_refused_with_what_to_pass(tmp_path):
    result = cli(
        "generate",
        *FAST,
        "--condition",
        "canny",
        "--image",
        EXAMPLES / "coffee.jpg",
        "--prompt",
        "a cup",
        "--num-images",
        "2",
        "--out",
        "result.png",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "names one file, but --num-images 2 makes 2 images: give a folder" in result.stderr
    assert not (tmp_path / "result.png").exists()


def test_from_png_of_the_offline_model_reproduces_from_any_folder(tmp_path):
    from controlnet_demo.models.presets import OFFLINE, offline_fallback

    if offline_fallback() is not OFFLINE:
        pytest.skip("the embedded offline model is not installed")
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir(), elsewhere.mkdir()
    made = ok(
        cli(
            "generate",
            "--preset",
            "offline",
            "--steps",
            "2",
            "--device",
            "cpu",
            "--seed",
            "8",
            "--prompt",
            "a red circle",
            "--condition",
            "canny",
            "--image",
            EXAMPLES / "world_picture.png",
            "--out",
            "a.png",
            cwd=first,
        )
    )
    assert metadata(first / "a.png")["base_model"] == "assets/offline-model"  # no machine path in the PNG
    again = ok(
        cli(
            "generate",
            "--from-png",
            first / "a.png",
            "--preset",
            "offline",
            "--image",
            EXAMPLES / "world_picture.png",
            "--out",
            "b.png",
            "-q",
            cwd=elsewhere,
        )
    )  # the embedded model's folders resolve from anywhere
    assert printed(made, "seed") == printed(again, "seed") == ["8"]
    assert np.array_equal(pixels(first / "a.png"), pixels(elsewhere / "b.png"))


@pytest.mark.parametrize("preset", ["tiny", pytest.param("offline", marks=pytest.mark.slow)])
def test_from_png_reproduces_edited_maps_kept_in_the_png_without_any_image(tmp_path, preset):
    """A map edited by hand has no picture to detect it from again, nor has a pose given as JSON: the result PNG
    keeps them (compressed, by key), and --from-png reproduces the image from them alone; on the random tiny model
    and on the embedded offline one."""
    from controlnet_demo.conditions.openpose_json import STANDING, pose_json
    from controlnet_demo.service import ControlNetService, GenerateSpec, UnitSpec, final_output, read_maps
    from controlnet_demo.settings import Settings

    edges = np.zeros((64, 64, 3), np.uint8)
    edges[10:50, 20] = edges[10, 20:50] = 255  # an edited canny map: two lines
    pose = pose_json([[(x * 64, y * 64) for x, y in STANDING]], 64, 64)
    (tmp_path / "made").mkdir()
    service = ControlNetService(Settings(preset=preset, device="cpu"), output_dir=str(tmp_path / "made"))
    spec = GenerateSpec(
        "a chair by a window",
        [UnitSpec("canny", edges, "none", edited=True), UnitSpec("pose", pose, "none", edited=True)],
        steps=2,
        seed=77,
        resolution=64,
    )
    (original,) = final_output(service.generate(spec, "test")).files
    units = metadata(original)["units"]
    assert [len(u["edited_map"]) for u in units] == [16, 16]
    kept = read_maps(original)
    assert set(kept) == {u["edited_map"] for u in units}
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(kept[units[0]["edited_map"]]))), edges)

    again = ok(
        cli(
            "generate",
            "--from-png",
            original,
            "--preset",
            preset,
            "--device",
            "cpu",
            "--out",
            "again",
            "-q",
            cwd=tmp_path,
        )
    )
    (copy,) = printed(again, "image")
    assert np.array_equal(pixels(tmp_path / copy), pixels(original))
    assert metadata(tmp_path / copy)["units"] == units

    wrong = cli("generate", "--from-png", original, "--image", EXAMPLES / "coffee.jpg", cwd=tmp_path)
    assert wrong.returncode != 0
    assert "keep their edited map in the PNG" in wrong.stderr
