"""What a ZeroGPU Space is told each request may take (service.gpu_time), for a range of sd15 requests."""

from __future__ import annotations

import json
import math

import pytest

from controlnet_demo.models.presets import FULL, SD15
from controlnet_demo.service import GenerateSpec, UnitSpec
from controlnet_demo.service.gpu_time import (
    ALLOWANCE_S,
    GPU_TIMES,
    MARGIN,
    UNREADABLE_S,
    StepTimes,
    estimated_seconds,
    gpu_seconds,
)
from controlnet_demo.settings import Limits

LIMITS = Limits()


def spec(units: int = 1, steps=20, images=1, resolution=512, guidance=7.5, speed=FULL, **unit) -> GenerateSpec:
    return GenerateSpec(
        "a cat",
        [UnitSpec("canny", None, **unit) for _ in range(units)],
        steps=steps,
        guidance_scale=guidance,
        num_images=images,
        resolution=resolution,
        speed=speed,
    )


def test_the_measured_runs_are_what_the_estimate_gives_back():
    """The per-step times come from two measured runs (1 and 3 ControlNets, 20 steps, 512 px, one image with CFG):
    priced again, those runs cost exactly what they took."""
    measured = json.loads(GPU_TIMES.read_text())
    assert estimated_seconds(spec(1), SD15, LIMITS) == pytest.approx(measured["seconds"]["1"])
    assert estimated_seconds(spec(3), SD15, LIMITS) == pytest.approx(measured["seconds"]["3"])
    times = StepTimes.measured()
    assert 0 < times.controlnet_s < times.unet_s  # a ControlNet is the U-Net's encoder half, the U-Net all of it


def test_the_duration_is_at_most_the_margin_over_the_estimate_and_grows_with_the_work():
    base = spec()
    seconds = gpu_seconds(base, SD15, LIMITS)
    assert seconds == math.ceil(MARGIN * estimated_seconds(base, SD15, LIMITS) + ALLOWANCE_S)
    bigger = [spec(steps=50), spec(images=4), spec(3), spec(resolution=768)]
    smaller = [spec(0), spec(end=0.5), spec(strength=0.0), spec(guidance=1.0), spec(speed="lcm", steps=50)]
    for other in bigger:
        assert estimated_seconds(other, SD15, LIMITS) > estimated_seconds(base, SD15, LIMITS), other
    for other in smaller:
        assert estimated_seconds(other, SD15, LIMITS) < estimated_seconds(base, SD15, LIMITS), other
    # the few-step speed brings its own steps (LCM's 4), whatever the request says
    assert estimated_seconds(spec(speed="lcm", steps=50), SD15, LIMITS) == pytest.approx(
        estimated_seconds(spec(speed="lcm", steps=4, guidance=SD15.few_step["lcm"].guidance), SD15, LIMITS)
    )
    # the largest request the server takes (100 steps, 4 images, 768 px, 3 ControlNets) still asks for a bounded time
    largest = gpu_seconds(spec(3, steps=100, images=4, resolution=768), SD15, LIMITS)
    assert seconds < largest < 120


def test_values_beyond_the_limits_are_priced_at_the_limits_and_unreadable_ones_at_the_default():
    """The duration function runs before the service checks the request: it must not fail, nor ask for hours for a
    request the service will refuse at once."""
    at_limits = gpu_seconds(spec(3, steps=LIMITS.max_steps, images=LIMITS.max_images, resolution=768), SD15, LIMITS)
    assert gpu_seconds(spec(9, steps=10**6, images=10**6, resolution=10**6), SD15, LIMITS) == at_limits
    for bad in (spec(steps="many"), spec(speed="warp"), spec(images=None), spec(strength="x")):
        assert gpu_seconds(bad, SD15, LIMITS) == UNREADABLE_S
