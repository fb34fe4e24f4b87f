"""Control maps: the OpenCV preprocessors on real photos and drawings, the controlnet-aux detectors through their
real loading code with seeded random weights in a local folder, and the errors when weights are missing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from controlnet_demo.conditions import CONDITIONS, DETECTORS, Detectors, detect
from controlnet_demo.errors import ModelUnavailableError, UserInputError
from controlnet_demo.paths import REPO_ROOT
from tests.annotators import write_random_annotators


def is_binary_map(out: np.ndarray) -> bool:
    return set(np.unique(out)) <= {0, 255} and (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def drawing(height=512, width=512) -> np.ndarray:
    """Black anti-aliased strokes on a white canvas: a house and a sun."""
    canvas = np.full((height, width, 3), 255, np.uint8)
    for a, b in [
        ((100, 400), (100, 250)),
        ((100, 250), (250, 120)),
        ((250, 120), (400, 250)),
        ((400, 250), (400, 400)),
        ((100, 400), (400, 400)),
    ]:
        cv2.line(canvas, a, b, (0, 0, 0), 5, cv2.LINE_AA)
    cv2.circle(canvas, (430, 80), 40, (0, 0, 0), 4, cv2.LINE_AA)
    return canvas


# --- canny --------------------------------------------------------------------------------------------------


def test_canny_on_a_photo_gives_white_edges_on_black(astronaut):
    out = detect("canny", astronaut, "canny", resolution=384)
    assert out.shape == (384, 384, 3) and out.dtype == np.uint8
    assert is_binary_map(out)
    assert 0.01 < (out[..., 0] == 255).mean() < 0.40


def test_canny_map_shorter_side_is_the_resolution_rounded_to_64(coffee):
    assert detect("canny", coffee, resolution=512).shape == (512, 768, 3)  # 400x600 -> 512x768
    assert detect("canny", coffee, resolution=300).shape[0] == 320  # 300 rounds to 320


def test_canny_low_threshold_above_high_is_rejected(astronaut):
    with pytest.raises(UserInputError, match=r"low threshold \(150\) is above the high threshold \(50\).*Lower"):
        detect("canny", astronaut, low_threshold=150, high_threshold=50)


def test_canny_threshold_out_of_range_is_rejected(astronaut):
    with pytest.raises(UserInputError, match=r"Canny high threshold must be between 1 and 255; got 300"):
        detect("canny", astronaut, high_threshold=300)


def test_non_numeric_param_is_rejected(astronaut):
    with pytest.raises(UserInputError, match=r"Canny low threshold must be a number"):
        detect("canny", astronaut, low_threshold="high")


# --- scribble -----------------------------------------------------------------------------------------------


def test_sketch_black_on_white_gives_white_lines_on_black():
    image = drawing()
    out = detect("scribble", image, "sketch", resolution=512)
    assert out.shape == (512, 512, 3) and is_binary_map(out)
    assert out[0, 0, 0] == 0  # canvas -> black
    assert out[400, 250, 0] == 255  # the floor line -> white
    assert 0.005 < (out[..., 0] == 255).mean() < 0.1


def test_sketch_either_polarity_gives_the_same_map():
    image = drawing()
    np.testing.assert_array_equal(detect("scribble", image, "sketch"), detect("scribble", 255 - image, "sketch"))


def test_sketch_map_size_follows_the_resolution_rule():
    out = detect("scribble", drawing(512, 700), "sketch", resolution=512)
    assert out.shape == (512, 704, 3) and is_binary_map(out)  # like every other map: multiples of 64


@pytest.mark.parametrize("shade", [255, 0, 128])
def test_blank_canvas_is_rejected(shade):
    with pytest.raises(UserInputError, match=r"scribble is empty.*draw something"):
        detect("scribble", np.full((512, 512, 3), shade, np.uint8), "sketch")


def test_xdog_on_a_photo_gives_lines(coffee):
    out = detect("scribble", coffee, "xdog", resolution=512)
    assert out.shape == (512, 768, 3) and is_binary_map(out)
    assert 0.01 < (out[..., 0] == 255).mean() < 0.40


def test_xdog_threshold_controls_the_amount_of_lines(coffee):
    few = (detect("scribble", coffee, "xdog", xdog_threshold=64) == 255).mean()
    many = (detect("scribble", coffee, "xdog", xdog_threshold=8) == 255).mean()
    assert many > few


# --- names --------------------------------------------------------------------------------------------------


def test_none_passes_the_image_through(coffee):
    out = detect("canny", coffee, "none", resolution=256)
    np.testing.assert_array_equal(out, coffee)  # size kept: the upload already is the map


def test_unknown_condition_lists_the_valid_ones(astronaut):
    with pytest.raises(UserInputError, match=r"Unknown condition 'segmentation'.*canny, pose, depth, scribble"):
        detect("segmentation", astronaut)


def test_unknown_preprocessor_lists_the_valid_ones(astronaut):
    with pytest.raises(UserInputError, match=r"Unknown preprocessor 'lineart'.*sketch, xdog, hed, pidinet, none"):
        detect("scribble", astronaut, "lineart")


def test_detector_preprocessor_without_detectors_is_unavailable(astronaut):
    with pytest.raises(ModelUnavailableError, match="openpose"):
        detect("pose", astronaut, "openpose")


# --- controlnet-aux detectors, real code path, random weights -------------------------------------------------

# (condition, preprocessor, detector) for every preprocessor that needs annotator weights
WEIGHTED = [(c.name, p.name, p.weights) for c in CONDITIONS.values() for p in c.preprocessors.values() if p.weights]


def test_every_weighted_preprocessor_has_a_detector_entry():
    assert {w for _, _, w in WEIGHTED} == set(DETECTORS)
    assert set(DETECTORS) == {"openpose", "midas", "hed", "pidinet", "lineart", "lineart_anime", "mlsd", "normalbae"}


@pytest.fixture(scope="session")
def annotators(tmp_path_factory):
    """A folder laid out like lllyasviel/Annotators, filled per detector on first use with seeded random weights.

    Writing takes ~1-2 s per big detector (OpenPose, MiDaS) on an idle 2-core machine; the files (~0.5 GB in all)
    are deleted at the end of the session rather than left in pytest's kept temp folders.
    """
    folder = tmp_path_factory.mktemp("annotators")
    written: set[str] = set()

    def ensure(detector: str) -> Path:
        if detector not in written:
            write_random_annotators(folder, detector)
            written.add(detector)
        return folder

    yield ensure
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize("condition, preprocessor, detector", WEIGHTED, ids=[w for _, _, w in WEIGHTED])
def test_detector_from_local_folder_makes_a_map(annotators, coffee, condition, preprocessor, detector):
    detectors = Detectors(str(annotators(detector)), online=False)
    out = detect(condition, coffee, preprocessor, resolution=128, detectors=detectors)  # small: CPU time
    assert out.shape == (128, 192, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if condition not in ("pose", "normal"):  # depth and line maps are gray
        assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    if condition == "depth":
        assert out.min() == 0 and out.max() == 255  # normalised to the full range (no NaN from a flat output)
    if condition == "scribble":
        assert is_binary_map(out)
    assert detectors.get(detector) is detectors.get(detector)  # loaded once, kept resident


def test_openpose_folder_missing_the_hand_model_names_that_file(tmp_path):
    (tmp_path / "body_pose_model.pth").write_bytes(b"present")
    with pytest.raises(ModelUnavailableError, match=r"hand_pose_model\.pth"):
        Detectors(str(tmp_path), online=False).get("openpose")


def check_missing_message(message: str, detector: str) -> None:
    assert detector in message
    assert any(filename in message for filename in DETECTORS[detector][2])
    assert "ready control map" in message and "'none'" in message and "internet" in message


@pytest.mark.parametrize("detector", list(DETECTORS))
def test_missing_weights_in_folder_fail_fast_with_a_way_out(tmp_path, astronaut, detector):
    condition, preprocessor = next((c, p) for c, p, w in WEIGHTED if w == detector)
    with pytest.raises(ModelUnavailableError) as info:
        detect(condition, astronaut, preprocessor, detectors=Detectors(str(tmp_path), online=False))
    check_missing_message(str(info.value), detector)
    assert "file not in the folder" in str(info.value)


HUB_PROBE = """
import json, sys, time
import numpy as np
from controlnet_demo.conditions import Detectors, detect
from controlnet_demo.errors import ModelUnavailableError
results = {}
for condition, preprocessor, detector in json.loads(sys.argv[1]):
    start = time.perf_counter()
    try:
        detect(condition, np.zeros((256, 256, 3), np.uint8), preprocessor,
               detectors=Detectors("lllyasviel/Annotators", online=False))
        results[detector] = (time.perf_counter() - start, "no error")
    except ModelUnavailableError as exc:
        results[detector] = (time.perf_counter() - start, str(exc))
print(json.dumps(results))
"""


@pytest.mark.slow
def test_missing_weights_in_empty_hub_cache_fail_fast_with_a_way_out(tmp_path):
    # huggingface_hub reads HF_HUB_CACHE when it is imported, so the empty cache is set for a fresh interpreter.
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HOME", None)
    root = REPO_ROOT
    done = subprocess.run(
        [sys.executable, "-c", HUB_PROBE, json.dumps(WEIGHTED)],
        env=env,
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(results) == set(DETECTORS)
    for detector, (seconds, message) in results.items():
        assert seconds < 2.0, (detector, seconds)
        check_missing_message(message, detector)
        assert "lllyasviel/Annotators" in message
