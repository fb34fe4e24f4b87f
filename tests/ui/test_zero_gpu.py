"""The app's GPU functions as a ZeroGPU Space schedules them, with the real `spaces` package: each says how long it
may hold the GPU, priced per request from the measured per-step times."""

from __future__ import annotations

import inspect

import pytest
from spaces.zero.wrappers import static_duration  # what spaces.GPU calls with the request's arguments

from controlnet_demo.service import ControlNetService
from controlnet_demo.service.gpu_time import DETECT_S
from controlnet_demo.settings import Settings
from controlnet_demo.ui.app import build


@pytest.fixture(scope="module")
def gpu_functions():
    demo = build(ControlNetService(Settings(preset="tiny")))  # nothing is loaded to build the UI
    return {f.api_name: f for f in demo.fns.values() if f.api_name}


def duration(event, **changed) -> int:
    """What spaces.GPU would ask for on the page's values (each input's initial one) with `changed` on top."""
    names = [n for n in inspect.signature(event.fn).parameters if n not in ("progress", "request")]
    values = {**dict(zip(names, (c.value for c in event.inputs))), **changed}
    return static_duration(event.fn.gpu_duration, *values.values(), progress=None, request=None)


def test_every_gpu_endpoint_tells_zerogpu_how_long_it_may_take(gpu_functions):
    for name in ("canny", "pose", "depth", "scribble", "compose", "live", "detect"):
        assert gpu_functions[name].fn.gpu_duration is not None, name
    assert static_duration(gpu_functions["detect"].fn.gpu_duration) == DETECT_S


@pytest.fixture
def slow_gpu(monkeypatch):
    """Per-step times 100x the measured ones (the tiny preset's images are small: at the real times every request
    here would round to the same whole second)."""
    from controlnet_demo.service import gpu_time

    times = gpu_time.StepTimes.measured()
    slow = gpu_time.StepTimes(times.unet_s * 100, times.controlnet_s * 100, times.pixels)
    monkeypatch.setattr(gpu_time, "_measured", lambda: slow)
    return slow


def test_a_tabs_duration_follows_its_request(gpu_functions, slow_gpu):
    canny = gpu_functions["canny"]
    common = dict(prompt="a house", guidance_scale=7.5, num_images=1, resolution=128, speed="full")
    short = duration(canny, **common, steps=10)
    assert duration(canny, **common, steps=100) > short
    assert duration(canny, **{**common, "num_images": 4}, steps=10) > short
    # the ControlNet runs on half the steps only
    assert duration(canny, **common, steps=100, end=0.5) < duration(canny, **common, steps=100)
    assert isinstance(short, int) and short >= 1


def test_compose_pays_for_each_enabled_condition(gpu_functions, slow_gpu):
    compose = gpu_functions["compose"]
    common = dict(prompt="a house", guidance_scale=7.5, steps=20, num_images=1, resolution=128, speed="full")
    one = duration(compose, **common, enabled_1=True, enabled_2=False, enabled_3=False, condition_1="canny")
    three = duration(
        compose, **common, enabled_1=True, enabled_2=True, enabled_3=True, condition_2="depth", condition_3="pose"
    )
    assert three > one
    assert duration(compose, **{**common, "speed": "fast"}, enabled_1=True) < one  # the tiny preset's few-step speed
