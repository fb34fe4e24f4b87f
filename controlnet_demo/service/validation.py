"""Every loose value of a request checked on the server, in words a user can act on, before any model runs."""

from __future__ import annotations

import secrets
from collections.abc import Callable

import numpy as np

from ..engine import CONTROL_MODES, SCHEDULERS, ControlUnit, Request
from ..errors import UserInputError, check_number, message, quoted
from ..images import fit_resolution, load_rgb, resize
from ..models.presets import Preset
from ..paths import shown
from ..settings import Limits
from .metadata import map_png
from .specs import MAX_SEED, ControlMap, GenerateSpec, Prepared, UnitSpec


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
