"""The conditions ControlNet can follow, described by one table, and the preprocessors that make their maps.

Every preprocessor takes a uint8 RGB photo (H, W, 3) and returns a uint8 RGB control map in the layout the
ControlNet 1.1 checkpoints were trained on (white edges / scribbles on black, OpenPose colours, near = bright
depth). The UI tabs, the CLI options, the API and the tests are generated from `CONDITIONS`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import ModelUnavailableError, UserInputError


@dataclass(frozen=True)
class Param:
    """A numeric preprocessor setting, with the bounds the UI shows and the server enforces."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    default: float


@dataclass(frozen=True)
class Preprocessor:
    name: str
    label: str
    run: Callable[..., np.ndarray]  # run(image, resolution, detectors, **params) -> map
    params: tuple[str, ...] = ()  # names of the condition's Params this preprocessor reads
    weights: str | None = None  # annotator weights it needs (a detector name), None if it needs none


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    help: str  # one sentence for the tab: what the map is and what to upload
    preprocessors: dict[str, Preprocessor]
    default_preprocessor: str
    params: dict[str, Param] = field(default_factory=dict)
    examples: tuple[tuple[str, str, str], ...] = ()  # (file under assets/examples, prompt, preprocessor)


# ---------------------------------------------------------------------------------------------------------
# Preprocessors. `resolution` is the length of the shorter side the detection runs at (as in controlnet-aux).


def resize_short_side(image: np.ndarray, resolution: int) -> np.ndarray:
    """Scale so the shorter side is `resolution`, both sides rounded to multiples of 64 (as the annotators do)."""
    height, width = image.shape[:2]
    k = resolution / min(height, width)
    new_h, new_w = max(64, int(round(height * k / 64)) * 64), max(64, int(round(width * k / 64)) * 64)
    if (new_h, new_w) == (height, width):
        return image
    return cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LANCZOS4 if k > 1 else cv2.INTER_AREA)


def _gray3(single: np.ndarray) -> np.ndarray:
    return np.repeat(single[..., None], 3, axis=2)


def passthrough(image: np.ndarray, resolution: int, detectors, **_) -> np.ndarray:
    """'none': the upload already is a control map."""
    return image


def canny(image: np.ndarray, resolution: int, detectors, low_threshold=100, high_threshold=200, **_) -> np.ndarray:
    if low_threshold > high_threshold:
        raise UserInputError(
            f"Canny: the low threshold ({low_threshold:g}) is above the high threshold ({high_threshold:g}). "
            "Lower the low threshold or raise the high one."
        )
    image = resize_short_side(image, resolution)
    return _gray3(cv2.Canny(image, int(low_threshold), int(high_threshold)))


def sketch(image: np.ndarray, resolution: int, detectors, **_) -> np.ndarray:
    """A hand drawing, in either polarity, to the scribble model's white-lines-on-black."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.int16)
    # Ink is whatever differs from the canvas (the median shade), so light-on-dark, dark-on-light and a blank
    # canvas of any shade all come out right.
    ink = np.abs(gray - int(np.median(gray))).astype(np.uint8)
    if ink.max() < 32:
        raise UserInputError("The scribble is empty: draw something on the canvas (or upload a drawing) first.")
    ink = resize_short_side(ink, resolution)  # before thresholding, so the map stays binary
    return _gray3(((ink > 48) * 255).astype(np.uint8))


def scribble_xdog(image: np.ndarray, resolution: int, detectors, xdog_threshold=32, **_) -> np.ndarray:
    """Scribble-like lines from a photo with no weights: the difference of two Gaussians (XDoG), thresholded."""
    image = resize_short_side(image, resolution).astype(np.float32)
    fine = cv2.GaussianBlur(image, (0, 0), 0.5)
    coarse = cv2.GaussianBlur(image, (0, 0), 5.0)
    darkness = np.clip(np.max(coarse - fine, axis=2), 0, 255)  # lines are darker than their neighbourhood
    return _gray3(((2 * darkness > xdog_threshold) * 255).astype(np.uint8))


def _aux(detector: str, **call_kwargs):
    """A preprocessor that runs a controlnet-aux detector at the requested resolution."""

    def run(image: np.ndarray, resolution: int, detectors: Detectors, **_) -> np.ndarray:
        model = detectors.get(detector)
        out = model(image, detect_resolution=resolution, image_resolution=resolution, output_type="np", **call_kwargs)
        out = np.asarray(out)
        return _gray3(out) if out.ndim == 2 else out[..., :3]

    return run


# Where each detector's class lives in controlnet-aux, and every weights file its from_pretrained reads from
# lllyasviel/Annotators (or a local folder with the same layout).
DETECTORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "openpose": (
        "controlnet_aux.open_pose",
        "OpenposeDetector",
        ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"),
    ),
    "midas": ("controlnet_aux.midas", "MidasDetector", ("dpt_hybrid-midas-501f0c75.pt",)),
    "hed": ("controlnet_aux.hed", "HEDdetector", ("ControlNetHED.pth",)),
    "pidinet": ("controlnet_aux.pidi", "PidiNetDetector", ("table5_pidinet.pth",)),
}


class Detectors:
    """Lazily loaded controlnet-aux detectors, kept resident once loaded.

    `source` is a hub repo id (normally lllyasviel/Annotators) or a local folder with the same files. When
    `online` is False only the local cache is consulted, so a missing file fails at once instead of after
    the hub client's retries.
    """

    def __init__(self, source: str, online: bool, device: str = "cpu"):
        self.source, self.online, self.device = source, online, device
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, name: str):
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(name)
            return self._loaded[name]

    def _load(self, name: str):
        import importlib
        import os

        module, cls_name, filenames = DETECTORS[name]
        source = self.source
        # Every file is found (or fetched) before any model is built: a miss costs nothing and names its file;
        # otherwise from_pretrained would fail late, and MiDaS would try a download of its own.
        for filename in filenames:
            if os.path.isdir(source):
                if not os.path.isfile(os.path.join(source, filename)):
                    raise ModelUnavailableError(self._missing(name, filename, "file not in the folder"))
                continue
            if os.path.isabs(source) or source.startswith("."):
                raise ModelUnavailableError(self._missing(name, filename, "folder not found"))
            from huggingface_hub import hf_hub_download

            try:
                hf_hub_download(source, filename, local_files_only=not self.online)
            except Exception as exc:
                raise ModelUnavailableError(self._missing(name, filename, type(exc).__name__)) from None
        cls = getattr(importlib.import_module(module), cls_name)
        try:
            detector = cls.from_pretrained(source, local_files_only=not self.online)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise ModelUnavailableError(self._missing(name, ", ".join(filenames), why)) from None
        return detector.to(self.device) if hasattr(detector, "to") else detector

    def _missing(self, name: str, filename: str, why: str) -> str:
        return (
            f"The {name} detector needs its weights ({filename} from {self.source}), which are not available here "
            f"({why}). Upload a ready control map and choose the preprocessor 'none', pick another preprocessor, "
            "or run the app once with internet access so the weights are cached."
        )


NONE = Preprocessor("none", "none: my image is already a control map", passthrough)

CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in [
        Condition(
            name="canny",
            label="Canny edges",
            help="Upload a photo: its Canny edges (white on black) steer the layout. Or upload an edge map.",
            preprocessors={
                "canny": Preprocessor("canny", "Canny (OpenCV)", canny, ("low_threshold", "high_threshold")),
                "none": NONE,
            },
            default_preprocessor="canny",
            examples=(("astronaut.jpg", "an astronaut in an orange suit, studio portrait, best quality", "canny"),
                      ("coffee.jpg", "a cup of coffee on a wooden table, photo", "canny")),
            params={
                "low_threshold": Param("low_threshold", "Canny low threshold", 1, 255, 1, 100),
                "high_threshold": Param("high_threshold", "Canny high threshold", 1, 255, 1, 200),
            },
        ),
        Condition(
            name="pose",
            label="Human pose",
            help="Upload a photo of people (OpenPose finds their skeletons) or a ready OpenPose skeleton image.",
            preprocessors={
                "openpose": Preprocessor("openpose", "OpenPose (controlnet-aux)", _aux("openpose"), weights="openpose"),
                "none": NONE,
            },
            default_preprocessor="openpose",
            examples=(("pose_waving.png", "a chef waving in a kitchen, best quality", "none"),),
        ),
        Condition(
            name="depth",
            label="Depth",
            help="Upload a photo (MiDaS estimates its depth) or a depth map: near is bright, far is dark.",
            preprocessors={
                "midas": Preprocessor("midas", "MiDaS DPT-Hybrid (controlnet-aux)", _aux("midas"), weights="midas"),
                "none": NONE,
            },
            default_preprocessor="midas",
            examples=(("motorcycle_depth.png", "a red motorcycle in a garage, photo", "none"),),
        ),
        Condition(
            name="scribble",
            label="Scribble",
            help="Draw on the pad (dark on light or light on dark, both work), or upload a drawing, or a photo with "
            "the XDoG / HED / PiDiNet preprocessor to extract its lines.",
            preprocessors={
                "sketch": Preprocessor("sketch", "hand drawing (either polarity)", sketch),
                "xdog": Preprocessor("xdog", "lines from a photo (XDoG, OpenCV)", scribble_xdog, ("xdog_threshold",)),
                "hed": Preprocessor("hed", "HED scribble (controlnet-aux)", _aux("hed", scribble=True), weights="hed"),
                "pidinet": Preprocessor(
                    "pidinet", "PiDiNet scribble (controlnet-aux)", _aux("pidinet", safe=True, scribble=True),
                    weights="pidinet",
                ),
                "none": NONE,
            },
            default_preprocessor="sketch",
            examples=(("scribble_house.png", "a cosy cottage with a tree, watercolor", "sketch"),),
            params={"xdog_threshold": Param("xdog_threshold", "XDoG threshold", 1, 64, 1, 32)},
        ),
    ]
}


def detect(
    condition: str,
    image: np.ndarray,
    preprocessor: str | None = None,
    resolution: int = 512,
    detectors: Detectors | None = None,
    **params: float,
) -> np.ndarray:
    """Make the control map for `condition` from a normalised uint8 RGB image."""
    spec = CONDITIONS.get(condition)
    if spec is None:
        raise UserInputError(f"Unknown condition {condition!r}; choose one of: {', '.join(CONDITIONS)}.")
    name = preprocessor or spec.default_preprocessor
    proc = spec.preprocessors.get(name)
    if proc is None:
        raise UserInputError(
            f"Unknown preprocessor {name!r} for {condition}; choose one of: {', '.join(spec.preprocessors)}."
        )
    values = {}
    for key in proc.params:
        p = spec.params[key]
        try:
            value = float(params.get(key, p.default))
        except (TypeError, ValueError):
            raise UserInputError(f"{p.label} must be a number, got {params[key]!r}.") from None
        if not p.minimum <= value <= p.maximum:
            raise UserInputError(f"{p.label} must be between {p.minimum:g} and {p.maximum:g}, got {value:g}.")
        values[key] = value
    if proc.weights and detectors is None:
        raise ModelUnavailableError(f"The {proc.weights} detector is not configured; upload a ready control map.")
    out = proc.run(image, int(resolution), detectors, **values)
    if out.dtype != np.uint8:
        out = np.clip(out, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)
