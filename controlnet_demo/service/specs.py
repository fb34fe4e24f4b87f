"""What passes through the service: a user's loose request (specs, made from a request's values by `unit_from`),
the validated request (`Prepared`: every loose value checked on the server by `prepare`, in words a user can act on,
before any model runs), the finished `Output`, and the events one request yields on its way (maps, step, preview,
done, error)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from ..conditions import CONDITIONS
from ..engine import CONTROL_MODES, SCHEDULERS, ControlUnit, Request, Result
from ..errors import UserInputError, check_number, message, quoted
from ..images import ImageLike, fit_resolution, load_rgb, map_png, resize
from ..models.presets import FULL, Preset
from ..paths import shown
from ..settings import Limits

MAX_SEED = 2**31 - 1
DEFAULT_NEGATIVE = "lowres, bad anatomy, worst quality, low quality"


@dataclass
class UnitSpec:
    """What a user set for one condition, as loose values (validated by `prepare`)."""

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

    Its picture: the map itself when one is given (a pose as OpenPose JSON for a condition edited as keypoints, an
    edited map with use_edited_map for one painted by hand; none for a condition not edited by hand), else the first of `PICTURES` given: an uploaded file, the image input (a
    file, or a sketchpad's value), the drawing pad's PNG, a sketchpad drawing. A value left out (None) gets the
    default; `resolution`: the preprocessor's (the preset's). Nothing is checked here: `prepare` is."""
    cond = CONDITIONS.get(condition) if isinstance(condition, str) else None
    edited = values.get("edited_map") if values.get("use_edited_map") else None
    if cond is not None:  # a map is given as its condition edits it: keypoints, a painted map, or not at all
        drawn = values.get("pose_json") if cond.reads_pose_json else edited if cond.editor else None
    else:
        drawn = edited
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
    resolution it ran at. `prepare` records these; nothing resolves or checks them again."""

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


# -- every loose value checked, before any model runs ---------------------------------------------------


def editor_image(value):
    """The picture inside a sketchpad / image-editor value ({'composite': ..., 'background': ..., 'layers': ...})."""
    if isinstance(value, dict):
        return value.get("composite") if value.get("composite") is not None else value.get("background")
    return value


def _text(spec: GenerateSpec, limits: Limits) -> tuple[str, str]:
    prompt = "" if spec.prompt is None else spec.prompt
    negative = "" if spec.negative_prompt is None else spec.negative_prompt
    if not isinstance(prompt, str) or not isinstance(negative, str):
        raise UserInputError("The prompt and negative prompt must be text.")
    for text, name in ((prompt, "prompt"), (negative, "negative prompt")):
        if len(text) > limits.max_prompt_chars:
            raise UserInputError(
                "The {name} is {n} characters; the limit is {limit}. Shorten it (CLIP reads only the first 77 tokens "
                "anyway).",
                name=name,
                n=f"{len(text):,}",
                limit=f"{limits.max_prompt_chars:,}",
            )
    return prompt, negative


def prepare(
    spec: GenerateSpec,
    preset: Preset,
    limits: Limits,
    control_map: Callable[[UnitSpec], ControlMap],
    extra_params: dict | None = None,
) -> Prepared:
    """Validate every value and build the engine request; `control_map(unit)` makes a unit's map and says what made
    it (a `ControlMap`)."""
    prompt, negative = _text(spec, limits)
    if not spec.units:
        raise UserInputError("Add at least one condition with an image.")
    if len(spec.units) > limits.max_units:
        raise UserInputError(
            "At most {limit} conditions can be composed; got {n}.", limit=limits.max_units, n=len(spec.units)
        )
    sampling = preset.sampling(spec.speed)
    steps = check_number(
        sampling.steps if spec.steps is None else spec.steps, "Steps", 1, limits.max_steps, integer=True
    )
    guidance = check_number(
        sampling.guidance if spec.guidance_scale is None else spec.guidance_scale,
        "Guidance scale",
        0,
        limits.max_guidance,
    )
    seed = check_number(spec.seed, "Seed", -1, MAX_SEED, integer=True)
    seed = secrets.randbelow(MAX_SEED - limits.max_images) if seed == -1 else seed
    num_images = check_number(spec.num_images, "Number of images", 1, limits.max_images, integer=True)
    if seed + num_images - 1 > MAX_SEED:
        raise UserInputError("Seed + number of images must stay below {limit}; lower the seed.", limit=MAX_SEED + 1)
    r_min, r_max, r_step, r_default = preset.resolution
    resolution = check_number(
        r_default if spec.resolution is None else spec.resolution, "Resolution", r_min, r_max, integer=True
    )
    if resolution % r_step:
        raise UserInputError("Resolution must be a multiple of {step}; got {value}.", step=r_step, value=resolution)
    if sampling.scheduler is None and spec.scheduler not in SCHEDULERS:
        raise UserInputError(
            "Unknown scheduler {name}; choose one of: {choices}.",
            name=quoted(spec.scheduler),
            choices=", ".join(SCHEDULERS),
        )
    scheduler = sampling.scheduler or spec.scheduler  # a few-step LoRA samples as it was made to

    units, maps, unit_params, kept, size, first_shape = [], [], [], [], None, None
    for k, u in enumerate(spec.units, start=1):
        strength = check_number(u.strength, message("Condition {k}: control strength", k=k), 0, limits.max_strength)
        start = check_number(u.start, message("Condition {k}: start", k=k), 0, 1)
        end = check_number(u.end, message("Condition {k}: end", k=k), 0, 1)
        if start >= end:
            raise UserInputError(
                "Condition {k}: start ({start}) must be before end ({end}).", k=k, start=f"{start:g}", end=f"{end:g}"
            )
        if u.mode not in CONTROL_MODES:
            raise UserInputError(
                "Condition {k}: unknown control mode {mode}; choose one of: {choices}.",
                k=k,
                mode=quoted(u.mode),
                choices=", ".join(CONTROL_MODES),
            )
        made = control_map(u)
        control = made.image
        if u.edited:  # no picture to detect it from again: the map itself goes into the result's PNG
            kept.append(map_png(control))
        h, w = control.shape[:2]
        if first_shape is None:
            first_shape, size = (h, w), fit_resolution((w, h), resolution)
        elif abs(w / h - first_shape[1] / first_shape[0]) > 0.02 * first_shape[1] / first_shape[0]:
            raise UserInputError(
                "Condition {k}'s map is {w}x{h} but condition 1's is {w1}x{h1}: composed conditions must have the same "
                "aspect ratio. Crop the images alike and try again.",
                k=k,
                w=w,
                h=h,
                w1=first_shape[1],
                h1=first_shape[0],
            )
        control = resize(control, size)
        mask = None
        if editor_image(u.mask) is not None:
            gray = load_rgb(editor_image(u.mask), limits, what=message("condition {k} mask", k=k)).mean(axis=2)
            mask = resize(gray.astype(np.float32), size) / 255.0
        units.append(ControlUnit(u.condition, control, strength, start, end, u.mode, mask))
        maps.append(control)
        unit_params.append(
            dict(
                condition=u.condition,
                model=shown(preset.controlnets[u.condition]),
                preprocessor=made.preprocessor,
                preprocess_resolution=made.resolution,
                params=made.settings,
                strength=strength,
                start=start,
                end=end,
                mode=u.mode,
                mask=mask is not None,
                **({"edited_map": kept[-1][0]} if u.edited else {}),
            )
        )
    request = Request(
        prompt,
        tuple(units),
        negative,
        steps,
        guidance,
        seed,
        num_images,
        size[0],
        size[1],
        scheduler,
        sampling.lora,
        residual_maps=spec.residual_maps is True,
    )
    params = dict(
        prompt=prompt,
        negative_prompt=negative,
        steps=steps,
        guidance_scale=guidance,
        seed=seed,
        num_images=num_images,
        width=size[0],
        height=size[1],
        resolution=resolution,
        scheduler=scheduler,
        speed=spec.speed,
        preset=preset.name,
        base_model=shown(preset.base),
        units=unit_params,
        **(extra_params or {}),
    )
    return Prepared(request, tuple(maps), params, tuple(kept))
