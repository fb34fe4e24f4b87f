"""ControlNet++'s controllability metrics as its evaluation code defines them (Li et al., ECCV 2024; its
eval/eval_edge.py and eval/eval_depth.py), and its protocol, run through the app's own service on any folder of
image + prompt pairs (SD1.5 where its weights are cached; any preset otherwise).

- canny: F1 over every pixel of the group of images generated from one condition image (4 seeds), of their Canny
  edges (OpenCV, thresholds 100 and 200) against the condition's edge map, with no distance tolerance; the mean over
  condition images, x100. ControlNet++ reports 34.65 for ControlNet 1.1 on SD1.5.
- depth: the RMSE on 0-255 between the depth estimated on each generated image and the condition's depth map, the
  mean over images. ControlNet++ reports 35.90, estimating depth with DPT-Large; this app's depth detector is
  MiDaS DPT-Hybrid (controlnet-aux), used for the condition and the generated images alike.
- hed (MS-SSIM, 0.7621) is for a soft-edge ControlNet, which this app does not serve: not measured here.

The protocol: 512 px, UniPC, 20 steps, CFG 7.5, 4 images (seeds 0 to 3) per condition image.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

CANNY_THRESHOLDS = (100, 200)
PROTOCOL = dict(resolution=512, scheduler="UniPC", steps=20, guidance_scale=7.5, num_images=4)
REPORTED = {"canny": 34.65, "depth": 35.90}  # ControlNet 1.1 on SD1.5, in ControlNet++'s controllability table
METRICS = {"canny": "F1 x100, per pixel (ControlNet++)", "depth": "RMSE, 0-255 (ControlNet++)"}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def canny_edges(image: np.ndarray) -> np.ndarray:
    """(H, W) bool: OpenCV's Canny edges of a uint8 RGB image at ControlNet++'s thresholds."""
    return cv2.Canny(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY), *CANNY_THRESHOLDS) > 0


def _gray(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def binary_f1(predicted: np.ndarray, target: np.ndarray) -> float:
    """F1 of two boolean masks, pixel by pixel (0 when neither has a positive, as torchmetrics' BinaryF1Score)."""
    tp = int(np.count_nonzero(predicted & target))
    wrong = int(np.count_nonzero(predicted ^ target))
    return 2 * tp / (2 * tp + wrong) if tp else 0.0


def canny_f1(generated: list[np.ndarray], edge_map: np.ndarray) -> float:
    """ControlNet++'s canny F1 (0..1) of the images generated from one edge map: every pixel of all of them."""
    target = _gray(edge_map) > 127
    predicted = np.stack([canny_edges(image) for image in generated])
    return binary_f1(predicted, np.broadcast_to(target, predicted.shape))


def depth_rmse(estimated: np.ndarray, depth_map: np.ndarray) -> float:
    """ControlNet++'s depth RMSE (0-255) of one generated image's estimated depth against the condition's."""
    a, b = _gray(estimated).astype(np.float64), _gray(depth_map).astype(np.float64)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def pairs(folder: str | Path) -> list[tuple[Path, str]]:
    """Every image in `folder` with a caption beside it (the same name, .txt), sorted by name."""
    from ...errors import UserInputError

    folder = Path(folder)
    found = [
        (path, path.with_suffix(".txt").read_text(encoding="utf-8").strip())
        for path in sorted(folder.iterdir() if folder.is_dir() else [])
        if path.suffix.lower() in IMAGE_SUFFIXES and path.with_suffix(".txt").is_file()
    ]
    if not found:
        raise UserInputError(
            f"--pairs {folder}: no image with a caption beside it (photo.png and photo.txt holding its prompt)."
        )
    return found


def _resized(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return cv2.resize(image, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)


def evaluate_pairs(
    service, folder, conditions=("canny", "depth"), limit: int | None = None, protocol: dict | None = None
) -> dict:
    """ControlNet++'s protocol on `folder`'s pairs by `service` (a ControlNetService): per condition image, its map
    by the app's detector, 4 images generated from it with the protocol's settings, and the metric. JSON-ready."""
    from ...service import GenerateSpec, UnitSpec, final_output

    protocol = {**PROTOCOL, **(protocol or {})}
    side = protocol["resolution"]
    results = {}
    for condition in conditions:
        if condition not in METRICS:
            from ...errors import UserInputError

            raise UserInputError(f"ControlNet++'s protocol here: {', '.join(METRICS)}; got {condition!r}.")
        values = []
        for path, prompt in pairs(folder)[:limit]:
            control = service.detect(UnitSpec(condition, path, preprocess_resolution=side))
            spec = GenerateSpec(prompt, [UnitSpec(condition, control, preprocessor="none")], seed=0, **protocol)
            output = final_output(service.generate(spec))
            images = [(im * 255).round().astype(np.uint8) for im in output.result.images]
            control = _resized(control, images[0].shape[:2])
            if condition == "canny":
                values.append(100 * canny_f1(images, control))
            else:
                estimated = [service.detect(UnitSpec("depth", im, preprocess_resolution=side)) for im in images]
                values.append(np.mean([depth_rmse(_resized(e, control.shape[:2]), control) for e in estimated]))
        results[condition] = dict(
            metric=METRICS[condition], value=float(np.mean(values)), n=len(values), reported=REPORTED[condition]
        )
    return dict(model=service.preset.name, protocol=protocol, conditions=results)
