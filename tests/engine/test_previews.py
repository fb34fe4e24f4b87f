"""Live previews: every few steps the model's current estimate of the finished image (x0 from its guided output),
decoded by the preset's tiny VAE or the small model's own; the final image does not change."""

from __future__ import annotations

import numpy as np
import pytest

from controlnet_demo.engine import ControlUnit, Engine, Request
from controlnet_demo.engine.previews import predicted_x0
from controlnet_demo.lab import world


@pytest.fixture(scope="module")
def offline_engine():
    from controlnet_demo.models.devices import pick_device
    from controlnet_demo.models.loading import ModelStore, Resolved
    from controlnet_demo.models.presets import OFFLINE

    store = ModelStore(Resolved(OFFLINE, False, "test"), *pick_device("cpu"))
    return Engine(store.base, store.controlnets, store.device, store.dtype, preview_decoder=store.preview_decoder())


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["UniPC", "Euler", "DDIM"])
def test_previews_converge_on_the_final_image_which_they_leave_unchanged(offline_engine, scheduler):
    example = world.example(np.random.default_rng(10**6 + 5))  # a held-out scene
    request = Request(
        example.prompt,
        [ControlUnit("canny", example.maps["canny"])],
        steps=20,
        guidance_scale=5.0,
        seed=3,
        width=64,
        height=64,
        scheduler=scheduler,
    )
    previews = []
    with_previews = offline_engine.generate(
        request, on_preview=lambda i, n, images: previews.append((i, n, images)), preview_every=5
    )
    assert [(i, n) for i, n, _ in previews] == [(5, 20), (10, 20), (15, 20)]  # none after the last step
    assert all(images.shape == (1, 64, 64, 3) and images.min() >= 0 and images.max() <= 1 for *_, images in previews)
    np.testing.assert_array_equal(with_previews.images, offline_engine.generate(request).images)
    distance = [float(np.abs(images - with_previews.images).mean()) for *_, images in previews]
    assert distance[0] > distance[1] > distance[2] and distance[2] < 0.03, distance  # mean |Δ| in [0, 1]


def test_no_previews_when_switched_off(offline_engine):
    request = Request("a red circle", [], steps=4, width=64, height=64)
    calls = []
    offline_engine.generate(request, on_preview=lambda *a: calls.append(a), preview_every=0)
    offline_engine.generate(request, on_preview=lambda *a: calls.append(a), preview_every=4)  # 4 of 4: the result
    assert calls == []


@pytest.mark.parametrize("prediction", ["epsilon", "v_prediction", "sample"])
def test_predicted_x0_inverts_the_forward_process(prediction):
    import torch

    rng = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 4, 8, 8, generator=rng), torch.randn(2, 4, 8, 8, generator=rng)
    alpha_bar = 0.3
    x_t = alpha_bar**0.5 * x0 + (1 - alpha_bar) ** 0.5 * eps
    output = {"epsilon": eps, "v_prediction": alpha_bar**0.5 * eps - (1 - alpha_bar) ** 0.5 * x0, "sample": x0}[
        prediction
    ]
    torch.testing.assert_close(predicted_x0(x_t, output, alpha_bar, prediction), x0, rtol=1e-5, atol=1e-5)
