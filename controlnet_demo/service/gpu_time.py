"""How long a request holds the GPU: what a ZeroGPU Space's `spaces.GPU(duration=...)` is told for it, so that a
short job asks for little and is queued ahead of long ones.

From the per-step times this project measured (assets/gpu-times.json, docs/performance.md): a step of one image
costs the U-Net's share plus each ControlNet's share over the part of the steps where it runs (outside its window
it is not run), scaled by the pixels (measured at 512 x 512; the cost grows at least as fast as the pixels, so at
768 px this is the low side) and halved without CFG (a batch of one). The time asked for is that estimate times
MARGIN, plus ALLOWANCE_S per request for what was not measured on a GPU (the detectors, the control check, the
PNGs). A re-measurement changes the data file, not this code.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass

from ..errors import DemoError
from ..models.presets import Preset
from ..paths import ASSETS_DIR
from ..settings import Limits
from .specs import GenerateSpec

GPU_TIMES = ASSETS_DIR / "gpu-times.json"
MARGIN = 1.2  # at most this much over the estimate: ZeroGPU gives shorter jobs better priority
ALLOWANCE_S = 2.0  # per request: detection, the control check and the files, not measured on a GPU
DETECT_S = 10  # a detection alone (no denoising): the detectors' first call on the GPU included
UNREADABLE_S = 60  # spaces' own default, for values the service will refuse anyway


@dataclass(frozen=True)
class StepTimes:
    """Seconds per denoising step of one image with CFG, at `pixels`: the U-Net's (with the rest of the image's
    fixed cost spread over the steps) and one ControlNet's."""

    unet_s: float
    controlnet_s: float
    pixels: int

    @classmethod
    def measured(cls, path=GPU_TIMES) -> StepTimes:
        """From two measured runs, with 1 and with 3 ControlNets: their difference is two ControlNets' share."""
        data = json.loads(path.read_text())
        one, three, steps = data["seconds"]["1"], data["seconds"]["3"], data["steps"]
        controlnet = (three - one) / 2 / steps
        return cls(one / steps - controlnet, controlnet, data["pixels"])


@functools.cache
def _measured() -> StepTimes:
    return StepTimes.measured()


def estimated_seconds(spec: GenerateSpec, preset: Preset, limits: Limits, times: StepTimes | None = None) -> float:
    """The denoising time of `spec` on the measured GPU, its values as the service will resolve them (a few-step
    speed's own steps, the preset's defaults for what the spec leaves out) and held within the server's limits
    (beyond them the service refuses the request before it runs)."""
    times = times or _measured()
    sampling = preset.sampling(spec.speed)
    few_step = sampling.scheduler is not None
    steps = sampling.steps if few_step or spec.steps is None else min(int(spec.steps), limits.max_steps)
    guidance = sampling.guidance if few_step or spec.guidance_scale is None else float(spec.guidance_scale)
    # the longer side: a square is the most pixels the request can have
    side = min(int(spec.resolution or preset.resolution[3]), preset.resolution[1])
    images = min(max(1, int(spec.num_images)), limits.max_images)
    scale = side * side / times.pixels * (1.0 if guidance > 1.0 else 0.5)
    units = [u for u in spec.units[: limits.max_units] if float(u.strength) != 0]
    share = sum(max(0.0, min(float(u.end), 1.0) - max(float(u.start), 0.0)) for u in units)
    return max(1, steps) * images * (times.unet_s + times.controlnet_s * share) * scale


def gpu_seconds(spec: GenerateSpec, preset: Preset, limits: Limits, times: StepTimes | None = None) -> int:
    """The duration to ask ZeroGPU for: whole seconds. Never raises: it runs before the request is checked."""
    try:
        estimate = estimated_seconds(spec, preset, limits, times)
    except (TypeError, ValueError, AttributeError, DemoError):  # refused by the service, with a message, at once
        return UNREADABLE_S
    return max(1, math.ceil(MARGIN * estimate + ALLOWANCE_S))
