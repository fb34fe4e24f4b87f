"""The demo's one shared service: widget or CLI values in, validated, preprocessed, generated, saved.

It turns loose user values (which may come from the API with any type) into an engine `Request`, keeps the
models resident and the control maps cached, and writes every image as a PNG that carries its parameters.
The UI and the CLI both call `Demo.generate`; neither talks to the engine directly. No gradio here.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from .conditions import CONDITIONS, Detectors, detect
from .engine import CONTROL_MODES, SCHEDULERS, ControlUnit, Engine, Request, Result
from .errors import GenerationTimeout, ModelUnavailableError, UserInputError
from .images import ImageLike, fit_resolution, load_rgb, resize
from .models import ModelStore, Resolved, pick_device, resolve_preset
from .presets import shown
from .settings import Settings

log = logging.getLogger(__name__)

MAX_SEED = 2**31 - 1
DEFAULT_NEGATIVE = "lowres, bad anatomy, worst quality, low quality"
METADATA_KEY = "parameters"


@dataclass
class UnitSpec:
    """What a user set for one condition, as loose values (validated by `Demo.prepare`)."""

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
    scheduler: str = "UniPC"


@dataclass
class Output:
    files: list[str]  # PNGs with their parameters in the metadata
    maps: list[np.ndarray]  # the control maps as used (output size), uint8 RGB
    params: dict  # everything needed to reproduce the images
    result: Result


def number(value, name: str, lo: float, hi: float, integer: bool = False) -> float | int:
    """Coerce a loose value (API input may be a string, None or NaN) to a number in [lo, hi], or explain."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number between {lo:g} and {hi:g}; got {value!r}.") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise UserInputError(f"{name} must be between {lo:g} and {hi:g}; got {value!r}.")
    if integer:
        if x != int(x):
            raise UserInputError(f"{name} must be a whole number; got {value!r}.")
        return int(x)
    return x


def editor_image(value) -> ImageLike | None:
    """The picture inside a sketchpad / image-editor value ({'composite': ..., 'background': ..., 'layers': ...})."""
    if isinstance(value, dict):
        return value.get("composite") if value.get("composite") is not None else value.get("background")
    return value


class MapCache:
    """Detected control maps by (image content, preprocessor, settings): re-running a prompt skips detection."""

    def __init__(self, size: int = 32):
        self.size, self._items, self._lock = size, OrderedDict(), threading.Lock()

    def get_or_make(self, key, make):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = make()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


class RateLimiter:
    """At most `per_minute` generations per client in any 60 s window; 0 turns it off (public hosting option)."""

    def __init__(self, per_minute: int, clock=time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self._seen: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def check(self, client: str) -> None:
        if self.per_minute <= 0:
            return
        now = self.clock()
        with self._lock:
            recent = [t for t in self._seen.get(client, []) if now - t < 60.0]
            if len(recent) >= self.per_minute:
                wait = 60.0 - (now - recent[0])
                raise UserInputError(f"Too many requests: this server allows {self.per_minute} a minute per user. "
                                     f"Try again in {max(1, round(wait))} s.")
            self._seen[client] = [*recent, now]


class Demo:
    def __init__(self, settings: Settings | None = None, resolved: Resolved | None = None, output_dir: str | None = None):
        self.settings = settings or Settings.from_env()
        self.resolved = resolved or resolve_preset(self.settings)
        log.info("preset %s: %s", self.resolved.preset.name, self.resolved.reason)
        device, dtype = pick_device(self.settings.device)
        # the fast mode on a GPU keeps the convolutions in channels_last (measured: 296 -> 290 ms with one ControlNet)
        channels_last = self.settings.compile is not None and device.type == "cuda"
        self.store = ModelStore(self.resolved, device, dtype, channels_last=channels_last)
        mode = self.settings.compile
        self.engine = Engine(self.store, compiled=mode is not None, compile_mode=None if mode == "auto" else mode)
        self.detectors = Detectors(self.settings.annotators, online=self.resolved.online, device=str(device))
        self.maps = MapCache()
        self.limiter = RateLimiter(self.settings.rate_limit_per_minute)
        self.output_dir = Path(output_dir or tempfile.mkdtemp(prefix="controlnet_demo_"))

    @property
    def preset(self):
        return self.resolved.preset

    # -- control maps ------------------------------------------------------------------------------------

    def control_map(self, unit: UnitSpec) -> np.ndarray:
        limits = self.settings.limits
        spec = CONDITIONS.get(unit.condition)
        if spec is None:
            raise UserInputError(f"Unknown condition {unit.condition!r}; choose one of: {', '.join(CONDITIONS)}.")
        image = load_rgb(editor_image(unit.image), limits, what=f"{spec.label.lower()} image")
        lo, hi = limits.preprocess_resolutions
        resolution = number(unit.preprocess_resolution, "Preprocessor resolution", lo, hi, integer=True)
        params = unit.params or {}
        key = (
            hashlib.sha1(image.tobytes()).hexdigest(), image.shape, unit.condition, unit.preprocessor, resolution,
            tuple(sorted((k, float(v)) for k, v in params.items() if isinstance(v, (int, float)))),
        )
        return self.maps.get_or_make(
            key, lambda: detect(unit.condition, image, unit.preprocessor, resolution, self.detectors, **params)
        )

    def zero_conv_norms(self, condition: str) -> list[float]:
        """The Frobenius norm of each of the 13 zero convolutions of a condition's ControlNet (0 when untrained)."""
        from .training import zero_convolutions

        net = self.store.controlnet(condition)
        return [float(z.weight.detach().float().norm()) for z in zero_convolutions(net)]

    def training_curves(self) -> dict[str, dict]:
        """The training curves shipped with the preset's local ControlNets (`train export` writes them)."""
        from .training import CURVE_FILE

        curves = {}
        for condition, source in self.preset.controlnets.items():
            path = Path(source) / CURVE_FILE
            if path.is_file():
                curves[condition] = json.loads(path.read_text())
        return curves

    # -- requests ----------------------------------------------------------------------------------------

    def prepare(self, spec: GenerateSpec) -> tuple[Request, list[np.ndarray], dict]:
        """Validate every value on the server and build the engine request; errors say what to change."""
        limits, preset = self.settings.limits, self.preset
        prompt = "" if spec.prompt is None else spec.prompt
        negative = "" if spec.negative_prompt is None else spec.negative_prompt
        if not isinstance(prompt, str) or not isinstance(negative, str):
            raise UserInputError("The prompt and negative prompt must be text.")
        for text, name in ((prompt, "prompt"), (negative, "negative prompt")):
            if len(text) > limits.max_prompt_chars:
                raise UserInputError(
                    f"The {name} is {len(text):,} characters; the limit is {limits.max_prompt_chars:,}. Shorten it "
                    "(CLIP reads only the first 77 tokens anyway)."
                )
        if not spec.units:
            raise UserInputError("Add at least one condition with an image.")
        if len(spec.units) > limits.max_units:
            raise UserInputError(f"At most {limits.max_units} conditions can be composed; got {len(spec.units)}.")
        steps = number(preset.steps if spec.steps is None else spec.steps, "Steps", 1, limits.max_steps, integer=True)
        guidance = number(preset.guidance if spec.guidance_scale is None else spec.guidance_scale,
                          "Guidance scale", 0, limits.max_guidance)
        seed = number(spec.seed, "Seed", -1, MAX_SEED, integer=True)
        seed = secrets.randbelow(MAX_SEED - limits.max_images) if seed == -1 else seed
        num_images = number(spec.num_images, "Number of images", 1, limits.max_images, integer=True)
        if seed + num_images - 1 > MAX_SEED:
            raise UserInputError(f"Seed + number of images must stay below {MAX_SEED + 1}; lower the seed.")
        r_min, r_max, r_step, r_default = preset.resolution
        resolution = number(r_default if spec.resolution is None else spec.resolution, "Resolution", r_min, r_max,
                            integer=True)
        if resolution % r_step:
            raise UserInputError(f"Resolution must be a multiple of {r_step}; got {resolution}.")
        if spec.scheduler not in SCHEDULERS:
            raise UserInputError(f"Unknown scheduler {spec.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}.")

        units, maps, unit_params, size, first_shape = [], [], [], None, None
        for k, u in enumerate(spec.units, start=1):
            strength = number(u.strength, f"Condition {k}: control strength", 0, limits.max_strength)
            start = number(u.start, f"Condition {k}: start", 0, 1)
            end = number(u.end, f"Condition {k}: end", 0, 1)
            if start >= end:
                raise UserInputError(f"Condition {k}: start ({start:g}) must be before end ({end:g}).")
            if u.mode not in CONTROL_MODES:
                raise UserInputError(f"Condition {k}: unknown control mode {u.mode!r}; choose one of: "
                                     f"{', '.join(CONTROL_MODES)}.")
            control = self.control_map(u)
            h, w = control.shape[:2]
            if first_shape is None:
                first_shape, size = (h, w), fit_resolution((w, h), resolution)
            elif abs(w / h - first_shape[1] / first_shape[0]) > 0.02 * first_shape[1] / first_shape[0]:
                raise UserInputError(
                    f"Condition {k}'s map is {w}x{h} but condition 1's is {first_shape[1]}x{first_shape[0]}: composed "
                    "conditions must have the same aspect ratio. Crop the images alike and try again."
                )
            control = resize(control, size)
            mask = None
            if editor_image(u.mask) is not None:
                gray = load_rgb(editor_image(u.mask), limits, what=f"condition {k} mask").mean(axis=2)
                mask = resize(gray.astype(np.float32), size) / 255.0
            units.append(ControlUnit(u.condition, control, strength, start, end, u.mode, mask))
            table_entry = CONDITIONS[u.condition]  # known: control_map checked it
            preprocessor = u.preprocessor or table_entry.default_preprocessor
            maps.append(control)
            unit_params.append(dict(
                condition=u.condition, model=shown(preset.controlnets[u.condition]),
                preprocessor=preprocessor, preprocess_resolution=int(u.preprocess_resolution),
                params={k: v for k, v in (u.params or {}).items() if k in table_entry.preprocessors[preprocessor].params},
                strength=strength, start=start, end=end, mode=u.mode, mask=mask is not None,
            ))
        request = Request(prompt, units, negative, steps, guidance, seed, num_images, size[0], size[1], spec.scheduler)
        params = dict(
            prompt=prompt, negative_prompt=negative, steps=steps, guidance_scale=guidance, seed=seed,
            num_images=num_images, width=size[0], height=size[1], resolution=resolution, scheduler=spec.scheduler,
            preset=preset.name, base_model=shown(preset.base), units=unit_params,
        )
        if self.engine.compiled:
            params["engine"] = f"compiled (fast mode, {self.engine.compile_mode})"
        return request, maps, params

    def warm_up(self) -> float:
        """One small request through every path a first request takes (base, a ControlNet, CFG), so that the
        fast mode's compilation happens at start-up rather than in a user's request; returns its seconds."""
        started = time.perf_counter()
        side = self.preset.resolution[3]  # the default
        condition = next(iter(self.preset.controlnets))
        # 2 steps, control on the first only: the U-Net with and without residuals
        unit = ControlUnit(condition, np.zeros((side, side, 3), np.uint8), end=0.5)
        self.engine.generate(Request("", [unit], steps=2, guidance_scale=self.preset.guidance, width=side, height=side))
        return time.perf_counter() - started

    def generate(self, spec: GenerateSpec, on_step=None, should_stop=None) -> Output:
        return self.run(*self.prepare(spec), on_step=on_step, should_stop=should_stop)

    def run(self, request: Request, maps: list[np.ndarray], params: dict, on_step=None, should_stop=None,
            on_preview=None) -> Output:
        deadline = time.monotonic() + self.settings.request_timeout_s
        result = self.engine.generate(request, on_step=on_step, should_stop=should_stop, deadline=deadline,
                                      on_preview=on_preview, preview_every=self.settings.preview_every)
        params["seconds"] = round(result.seconds, 2)
        files = self._save(result, params)
        params["seeds"] = result.seeds
        return Output(files, maps, params, result)

    def _save(self, result: Result, params: dict) -> list[str]:
        self._prune_outputs()
        files = []
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for image, seed in zip(result.pil_images(), result.seeds):
            info = PngInfo()
            info.add_text(METADATA_KEY, json.dumps({**params, "seed": seed, "num_images": 1, "batch_seed": params["seed"]}))
            path = self.output_dir / f"{stamp}-{seed}-{secrets.token_hex(3)}.png"
            image.save(path, pnginfo=info)
            files.append(str(path))
        return files


    def _prune_outputs(self) -> None:
        """Delete our result PNGs older than the cache TTL (gradio serves its own copies, cleaned by delete_cache)."""
        oldest = time.time() - self.settings.cache_ttl_s
        for path in self.output_dir.glob("*.png"):
            try:
                if path.stat().st_mtime < oldest:
                    path.unlink()
            except FileNotFoundError:  # another request pruned it first
                pass


def read_parameters(path: str) -> dict:
    """The parameters stored in a PNG written by the demo."""
    with Image.open(path) as im:
        return json.loads(im.text[METADATA_KEY])


def spec_from_parameters(params: dict, images: list[ImageLike]) -> GenerateSpec:
    """Rebuild a GenerateSpec from stored parameters and the original condition images (one per unit)."""
    units = [
        UnitSpec(u["condition"], img, u["preprocessor"], u["preprocess_resolution"], u.get("params", {}), u["strength"],
                 u["start"], u["end"], u["mode"])
        for u, img in zip(params["units"], images)
    ]
    return GenerateSpec(params["prompt"], units, params["negative_prompt"], params["steps"], params["guidance_scale"],
                        params["seed"], params["num_images"], params["resolution"], params["scheduler"])


def user_message(exc: BaseException) -> str:
    """What to tell the user about a failed request (the traceback goes to the server log only)."""
    import torch

    if isinstance(exc, (UserInputError, ModelUnavailableError, GenerationTimeout)):
        return str(exc)
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return ("Out of memory for this request. Try a lower resolution, fewer images or fewer conditions; the "
                "server is fine and the next request will work.")
    return (f"Generation failed unexpectedly ({type(exc).__name__}). Nothing else is affected: try again, and if it "
            "keeps failing, report the parameters.")
