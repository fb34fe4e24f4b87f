"""What passes through the service: a user's loose request (specs), the validated request (`Prepared`), the
finished `Output`, and the events one request yields on its way (maps, step, preview, done, error)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..conditions import CONDITIONS
from ..engine import Request, Result
from ..images import ImageLike
from ..models.presets import FULL

MAX_SEED = 2**31 - 1
DEFAULT_NEGATIVE = "lowres, bad anatomy, worst quality, low quality"


@dataclass
class UnitSpec:
    """What a user set for one condition, as loose values (validated by `validation.prepare`)."""

    condition: str
    image: ImageLike | dict | None
    preprocessor: str | None = None
    preprocess_resolution: int = 512
    params: dict = field(default_factory=dict)
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    mode: str = "balanced"
    mask: ImageLike | dict | None = None
    edited: bool = False  # the image is a map edited by hand, or a pose JSON: the result PNG keeps the map


PICTURES = ("upload", "image", "pad", "drawing")  # where a unit's picture comes from: the first one given


def unit_from(values: Mapping, *, condition: str, resolution: int) -> UnitSpec:
    """One unit from a request's values by their API names (a Compose unit's without their number), the same way for
    every surface: the tabs, Compose, /live, /detect, the map editors and Compare.

    Its picture: the map itself when one is given (a pose as OpenPose JSON for a condition edited as keypoints, else
    an edited map with use_edited_map), else the first of `PICTURES` given: an uploaded file, the image input (a
    file, or a sketchpad's value), the drawing pad's PNG, a sketchpad drawing. A value left out (None) gets the
    default; `resolution`: the preprocessor's (the preset's). Nothing is checked here: `validation.prepare` is."""
    cond = CONDITIONS.get(condition) if isinstance(condition, str) else None
    edited = values.get("edited_map") if values.get("use_edited_map") else None
    drawn = (values.get("pose_json") if cond.reads_pose_json else edited) if cond is not None else edited
    picture = next((values[k] for k in PICTURES if values.get(k) is not None), None)

    def given(name: str, default):
        value = values.get(name)
        return default if value is None else value

    return UnitSpec(
        condition=condition,
        image=drawn or picture,
        preprocessor="none" if drawn else values.get("preprocessor") or None,
        preprocess_resolution=given("preprocess_resolution", resolution),
        params={p: values[p] for p in (cond.params if cond else ()) if values.get(p) is not None},
        strength=given("strength", 1.0),
        start=given("start", 0.0),
        end=given("end", 1.0),
        mode=given("mode", "balanced"),
        mask=values.get("mask"),
        edited=bool(drawn),
    )


@dataclass
class GenerateSpec:
    prompt: str
    units: list[UnitSpec]
    negative_prompt: str = DEFAULT_NEGATIVE
    steps: int | None = None  # None: the preset's default
    guidance_scale: float | None = None
    seed: int = -1  # -1: random
    num_images: int = 1
    resolution: int | None = None  # longer side of the output; None: the preset's default
    scheduler: str = "UniPC"  # the full path's; a few-step speed brings its own
    speed: str = FULL  # FULL (the paper's path) or a key of the preset's few_step; steps/guidance None: its own
    residual_maps: bool = False  # also where each connection's residual goes (Result.residual_maps)


@dataclass(frozen=True)
class ControlMap:
    """A unit's control map and what made it: the preprocessor (the table's name), its settings as checked and the
    resolution it ran at. `validation.prepare` records these; nothing resolves or checks them again."""

    image: np.ndarray  # uint8 RGB
    preprocessor: str
    settings: dict
    resolution: int


@dataclass(frozen=True)
class Prepared:
    """A request every value of which was checked, its maps detected: what the engine runs, and how to record it."""

    request: Request
    maps: tuple[np.ndarray, ...]  # the control maps as used (output size), uint8 RGB
    params: dict  # everything needed to reproduce the images (the PNG metadata); never changed after
    kept_maps: tuple[tuple[str, bytes], ...] = ()  # (key, PNG) of each edited map: stored in the result PNGs


@dataclass(frozen=True)
class Output:
    files: list[str]  # PNGs with their parameters in the metadata
    maps: tuple[np.ndarray, ...]
    params: dict  # Prepared.params with the seeds, the seconds the run took and the control check
    result: Result
    checks: tuple = ()  # a conditions.check.ControlCheck per unit: did the control take effect
    residual_file: str | None = None  # Result.residual_maps as a NumPy .npz (unit label -> array), when asked for


# --- the events of one request, in the order they come -----------------------------------------------------------


@dataclass(frozen=True)
class MapsReady:
    """Every value checked and the control maps made; no model has run yet."""

    prepared: Prepared


@dataclass(frozen=True)
class StepDone:
    step: int
    steps: int


@dataclass(frozen=True)
class PreviewReady:
    step: int
    steps: int
    images: np.ndarray  # (B, H, W, 3) float in [0, 1]: the model's current estimate of the finished images


@dataclass(frozen=True)
class ImagesReady:
    """The finished images, before the control check and the PNGs: the user sees them first."""

    images: np.ndarray  # (B, H, W, 3) float in [0, 1]


@dataclass(frozen=True)
class Done:
    output: Output


@dataclass(frozen=True)
class Failed:
    error: BaseException  # a DemoError (its message is for the user), or anything else (a bug: log it)


Event = MapsReady | StepDone | PreviewReady | ImagesReady | Done | Failed


def final_output(events: Iterable[Event]) -> Output:
    """Run a request's events to the end: its Output, or its error raised."""
    for event in events:
        if isinstance(event, Done):
            return event.output
        if isinstance(event, Failed):
            raise event.error
    raise RuntimeError("the request ended without a result")
