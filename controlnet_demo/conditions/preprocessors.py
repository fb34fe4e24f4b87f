"""The preprocessors that turn a photo or a drawing into a control map.

Every preprocessor takes a uint8 RGB image (H, W, 3) and returns a uint8 RGB control map in the layout the
ControlNet 1.1 checkpoints were trained on (white edges / scribbles on black, OpenPose colours, near = bright
depth). `resolution` is the length of the shorter side the detection runs at, rounded as controlnet-aux rounds it.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from ..errors import EmptyDrawingError, UserInputError

# controlnet-aux is imported where it is used: importing any of it imports every detector it has (timm, ...),
# seconds that a start-up, the CLI's --help or an upload of a ready map need not pay.


def passthrough(image: np.ndarray, resolution: int, detectors, **_) -> np.ndarray:
    """'none': the upload already is a control map."""
    return image


def canny(image: np.ndarray, resolution: int, detectors, low_threshold=100, high_threshold=200, **_) -> np.ndarray:
    if low_threshold > high_threshold:
        raise UserInputError(
            "Canny: the low threshold ({low}) is above the high threshold ({high}). "
            "Lower the low threshold or raise the high one.",
            low=f"{low_threshold:g}",
            high=f"{high_threshold:g}",
        )
    from controlnet_aux.canny import CannyDetector

    return CannyDetector()(
        image,
        int(low_threshold),
        int(high_threshold),
        detect_resolution=resolution,
        image_resolution=resolution,
        output_type="np",
    )


def sketch(image: np.ndarray, resolution: int, detectors, **_) -> np.ndarray:
    """A hand drawing, in either polarity, to the scribble model's white-lines-on-black."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.int16)
    # Ink is whatever differs from the canvas (the median shade), so light-on-dark, dark-on-light and a blank
    # canvas of any shade all come out right.
    ink = np.abs(gray - int(np.median(gray))).astype(np.uint8)
    if ink.max() < 32:
        raise EmptyDrawingError("The scribble is empty: draw something on the canvas (or upload a drawing) first.")
    from controlnet_aux.util import HWC3, resize_image

    ink = resize_image(HWC3(ink), resolution)  # before thresholding, so the map stays binary
    return ((ink > 48) * 255).astype(np.uint8)


def scribble_xdog(image: np.ndarray, resolution: int, detectors, xdog_threshold=32, **_) -> np.ndarray:
    """Scribble-like lines from a photo with no weights: the difference of two Gaussians (XDoG), thresholded.
    controlnet-aux has no weight-free line detector; this is the official ControlNet 1.1 demo's XDoG."""
    from controlnet_aux.util import HWC3, resize_image

    image = resize_image(image, resolution).astype(np.float32)
    fine = cv2.GaussianBlur(image, (0, 0), 0.5)
    coarse = cv2.GaussianBlur(image, (0, 0), 5.0)
    darkness = np.clip(np.max(coarse - fine, axis=2), 0, 255)  # lines are darker than their neighbourhood
    return HWC3(((2 * darkness > xdog_threshold) * 255).astype(np.uint8))


_NUMPY_RANDOM = threading.Lock()  # controlnet-aux's shuffle draws from numpy's global generator


def shuffle(image: np.ndarray, resolution: int, detectors, shuffle_seed=0, **_) -> np.ndarray:
    """ControlNet 1.1's content shuffle (controlnet-aux): the picture warped by a random smooth flow, its colours and
    textures kept, its layout gone. Seeded: the same seed gives the same map (numpy's global generator, whose state
    is put back after)."""
    from controlnet_aux.shuffle import ContentShuffleDetector

    with _NUMPY_RANDOM:
        state = np.random.get_state()
        np.random.seed(int(shuffle_seed))
        try:
            return ContentShuffleDetector()(
                image, detect_resolution=resolution, image_resolution=resolution, output_type="np"
            )
        finally:
            np.random.set_state(state)


def aux(detector: str, settings: dict[str, str] | None = None, **call_kwargs):
    """A preprocessor that runs a controlnet-aux detector (by its name in detectors.DETECTORS) at the resolution;
    `settings`: the condition's params it reads, by the detector's own argument names ({"value_threshold": "thr_v"})."""
    settings = settings or {}

    def run(image: np.ndarray, resolution: int, detectors, **values) -> np.ndarray:
        model = detectors.get(detector)  # first: a detector without weights is refused before anything loads
        from controlnet_aux.util import HWC3

        given = {settings[k]: v for k, v in values.items() if k in settings}
        out = model(
            image, detect_resolution=resolution, image_resolution=resolution, output_type="np", **call_kwargs, **given
        )
        out = np.asarray(out)
        return HWC3(out) if out.ndim == 2 else out[..., :3]

    return run
