"""ControlNet++'s metrics as its evaluation code defines them (per-pixel canny F1, depth RMSE on 0-255), its
protocol on a folder of image + prompt pairs through the app's service (the tiny preset here; SD1.5 on a GPU), and
the canny F1 of that definition beside the evaluation's own on the world."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from controlnet_demo.errors import UserInputError
from controlnet_demo.lab.evaluate import controlnet_pp as pp
from controlnet_demo.paths import EXAMPLES_DIR


def test_binary_f1_counts_pixels_exactly():
    a = np.zeros((4, 4), bool)
    a[0] = True  # 4 positives
    b = np.zeros((4, 4), bool)
    b[0, :2] = b[1, :2] = True  # 2 of them, and 2 others
    assert pp.binary_f1(a, a) == 1.0
    assert pp.binary_f1(a, b) == pytest.approx(2 * 2 / (2 * 2 + 2 + 2))
    assert pp.binary_f1(a, ~a) == 0.0 and pp.binary_f1(~a & a, ~a & a) == 0.0  # no positive anywhere: 0


def test_canny_f1_is_1_for_the_maps_own_edges_and_has_no_distance_tolerance(coffee):
    edges = pp.canny_edges(coffee)
    edge_map = np.repeat(edges[..., None] * 255, 3, axis=2).astype(np.uint8)
    assert pp.canny_f1([coffee, coffee], edge_map) == 1.0
    shifted = np.roll(edge_map, 1, axis=1)  # one pixel off: a distance-tolerant F1 would still say ~1
    assert pp.canny_f1([coffee], shifted) < 0.5
    assert pp.canny_f1([np.zeros_like(coffee)], edge_map) == 0.0


def test_depth_rmse_is_on_0_255():
    depth = np.full((8, 8, 3), 100, np.uint8)
    assert pp.depth_rmse(depth + 10, depth) == pytest.approx(10.0)
    assert pp.depth_rmse(depth[..., 0], depth) == 0.0  # a gray map and an RGB one alike


def test_pairs_are_images_with_a_caption_beside_them(tmp_path):
    with pytest.raises(UserInputError, match="no image with a caption beside it"):
        pp.pairs(tmp_path)
    shutil.copy(EXAMPLES_DIR / "cat.jpg", tmp_path / "cat.jpg")
    (tmp_path / "cat.txt").write_text("a cat on a sofa\n")
    shutil.copy(EXAMPLES_DIR / "coffee.jpg", tmp_path / "coffee.jpg")  # no caption: not a pair
    assert pp.pairs(tmp_path) == [(tmp_path / "cat.jpg", "a cat on a sofa")]


@pytest.fixture(scope="module")
def pair_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    for name, prompt in (("astronaut", "an astronaut"), ("coffee", "a cup of coffee")):
        Image.open(EXAMPLES_DIR / f"{name}.jpg").resize((96, 64)).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text(prompt)
    return folder


@pytest.mark.slow
def test_the_protocol_on_pairs_through_the_apps_service(tmp_path, pair_folder):
    from controlnet_demo.service import ControlNetService
    from controlnet_demo.settings import Settings
    from tests.annotators import write_random_annotators

    annotators = tmp_path / "annotators"
    annotators.mkdir()
    write_random_annotators(annotators, "midas")  # the depth detector's files, random weights
    service = ControlNetService(Settings(preset="tiny", annotators=str(annotators)), output_dir=str(tmp_path / "o"))
    results = pp.evaluate_pairs(service, pair_folder, protocol={"resolution": 64, "steps": 2})
    assert results["protocol"] == {**pp.PROTOCOL, "resolution": 64, "steps": 2}
    canny, depth = results["conditions"]["canny"], results["conditions"]["depth"]
    assert canny["n"] == depth["n"] == 2 and canny["reported"] == 34.65 and depth["reported"] == 35.90
    assert 0 <= canny["value"] <= 100 and 0 <= depth["value"] <= 255
    json.dumps(results)


def test_the_cli_runs_the_protocol_and_writes_json(tmp_path, pair_folder, capsys):
    from controlnet_demo.cli import main

    out = tmp_path / "controlnet_pp.json"
    argv = ["evaluate", "--pairs", str(pair_folder), "--preset", "tiny", "--size", "64", "--conditions", "canny"]
    assert main([*argv, "--limit", "1", "--device", "cpu", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    assert written["conditions"]["canny"]["n"] == 1 and written["model"] == "tiny"
    assert "canny: F1 x100, per pixel (ControlNet++)" in capsys.readouterr().out
    assert main([*argv[:2], str(tmp_path / "empty"), "--preset", "tiny"]) == 2  # refused in words
    assert "no image with a caption" in capsys.readouterr().err
