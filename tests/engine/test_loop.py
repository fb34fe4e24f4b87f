"""The engine's ControlNet arithmetic, pinned on tiny real models against diffusers' stock pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from controlnet_demo import conditions
from controlnet_demo.engine import ControlUnit, Engine, Request
from controlnet_demo.images import resize
from controlnet_demo.models import architectures as tiny

SIZE = 64


def _map(photo: np.ndarray, low=100, high=200) -> np.ndarray:
    edges = conditions.detect("canny", photo, resolution=SIZE, low_threshold=low, high_threshold=high)
    return resize(edges, (SIZE, SIZE))


def _request(*units: ControlUnit, **kw) -> Request:
    defaults = dict(
        prompt="a red circle",
        negative_prompt="blurry",
        steps=4,
        guidance_scale=7.5,
        seed=3,
        num_images=2,
        width=SIZE,
        height=SIZE,
        scheduler="UniPC",
    )
    defaults.update(kw)
    return Request(units=list(units), **defaults)


def _stock(store, nets, images, req: Request, scales, starts=None, ends=None) -> np.ndarray:
    from diffusers import MultiControlNetModel, StableDiffusionControlNetPipeline
    from PIL import Image

    from controlnet_demo.engine import make_scheduler

    base = store.base
    comps = {k: v for k, v in base.components.items() if k not in ("scheduler", "image_encoder")}
    controlnet = nets[0] if len(nets) == 1 else MultiControlNetModel(nets)
    pipe = StableDiffusionControlNetPipeline(
        **comps, controlnet=controlnet, scheduler=make_scheduler(req.scheduler, base.scheduler.config)
    )
    pipe.set_progress_bar_config(disable=True)
    pil = [Image.fromarray(im) for im in images]
    return pipe(
        req.prompt,
        pil[0] if len(pil) == 1 else pil,
        height=req.height,
        width=req.width,
        num_inference_steps=req.steps,
        guidance_scale=req.guidance_scale,
        negative_prompt=req.negative_prompt,
        num_images_per_prompt=req.num_images,
        generator=[torch.Generator().manual_seed(req.seed + i) for i in range(req.num_images)],
        controlnet_conditioning_scale=scales if len(nets) > 1 else scales[0],
        control_guidance_start=starts or 0.0,
        control_guidance_end=ends or 1.0,
        output_type="np",
    ).images


@pytest.mark.parametrize("scheduler", ["UniPC", "Euler a", "DDIM"])
def test_balanced_single_condition_equals_stock_pipeline(engine, store, astronaut, scheduler):
    edges = _map(astronaut)
    req = _request(ControlUnit("canny", edges, strength=0.8), scheduler=scheduler)
    ours = engine.generate(req).images
    stock = _stock(store, [store.controlnet("canny")], [edges], req, [0.8])
    assert ours.shape == stock.shape == (2, SIZE, SIZE, 3)
    assert np.abs(ours - stock).max() <= 1e-4


def test_two_conditions_equal_stock_multicontrolnet(engine, store, astronaut, coffee):
    a, b = _map(astronaut), resize(conditions.detect("scribble", coffee, "xdog", resolution=SIZE), (SIZE, SIZE))
    req = _request(ControlUnit("canny", a, 1.2, 0.0, 0.75), ControlUnit("scribble", b, 0.6, 0.25, 1.0))
    ours = engine.generate(req).images
    stock = _stock(
        store,
        [store.controlnet("canny"), store.controlnet("scribble")],
        [a, b],
        req,
        [1.2, 0.6],
        [0.0, 0.25],
        [0.75, 1.0],
    )
    assert np.abs(ours - stock).max() <= 1e-4


def test_fresh_controlnet_from_unet_leaves_base_output_unchanged_at_any_strength(store, astronaut):
    base_unet = store.base.unet
    fresh = tiny.tiny_controlnet(base_unet, zero_convs="zero")

    # the same base, with the freshly copied (zero-conv) ControlNet for the condition
    engine = Engine(store.base, {"canny": fresh}, store.device, store.dtype)
    without = engine.generate(_request()).images
    for strength in (0.5, 1.0, 2.0):
        with_control = engine.generate(_request(ControlUnit("canny", _map(astronaut), strength))).images
        assert np.array_equal(without, with_control)


@pytest.mark.slow
def test_different_control_images_give_different_outputs(engine, astronaut, coffee):
    one = engine.generate(_request(ControlUnit("canny", _map(astronaut)))).images
    other = engine.generate(_request(ControlUnit("canny", _map(coffee)))).images
    assert np.abs(one - other).max() > 1e-2


def test_zero_strength_or_outside_window_changes_nothing(engine, astronaut):
    plain = engine.generate(_request()).images
    zero = engine.generate(_request(ControlUnit("canny", _map(astronaut), strength=0.0)))
    assert np.array_equal(plain, zero.images) and zero.controlnet_calls == 0
    # end=0.2 of 4 steps: (i+1)/4 > 0.2 for every step, so the window is empty
    outside = engine.generate(_request(ControlUnit("canny", _map(astronaut), start=0.0, end=0.2)))
    assert np.array_equal(plain, outside.images) and outside.controlnet_calls == 0


def test_window_runs_controlnet_only_inside_it(engine, astronaut):
    result = engine.generate(_request(ControlUnit("canny", _map(astronaut), start=0.25, end=0.75), steps=8))
    assert result.controlnet_calls == 4  # steps 2..5 of 8


@pytest.mark.parametrize("mode", ["prompt", "control", "cfg_resolution"])
def test_control_modes_change_the_output_and_differ_from_balanced(engine, astronaut, mode):
    edges = _map(astronaut)
    balanced = engine.generate(_request(ControlUnit("canny", edges))).images
    other = engine.generate(_request(ControlUnit("canny", edges, mode=mode))).images
    assert np.abs(balanced - other).max() > 1e-3


def test_cond_branch_only_modes_equal_stock_guess_mode_shape_of_batch(engine, store, astronaut):
    """'control' mode puts the residuals on the conditional branch only: with CFG off the two branches are one,
    so it must equal 'prompt' mode (same scales on the single branch)."""
    edges = _map(astronaut)
    a = engine.generate(_request(ControlUnit("canny", edges, mode="control"), guidance_scale=1.0)).images
    b = engine.generate(_request(ControlUnit("canny", edges, mode="prompt"), guidance_scale=1.0)).images
    assert np.array_equal(a, b)


def test_region_mask_of_zeros_equals_no_control_and_of_ones_equals_unmasked(engine, astronaut):
    edges = _map(astronaut)
    plain = engine.generate(_request()).images
    unmasked = engine.generate(_request(ControlUnit("canny", edges))).images
    zeros = engine.generate(_request(ControlUnit("canny", edges, mask=np.zeros((SIZE, SIZE), np.float32)))).images
    ones = engine.generate(_request(ControlUnit("canny", edges, mask=np.ones((SIZE, SIZE), np.float32)))).images
    assert np.array_equal(zeros, plain)
    assert np.array_equal(ones, unmasked)


def test_each_image_is_reproducible_alone_from_its_reported_seed(engine, astronaut):
    edges = _map(astronaut)
    batch = engine.generate(_request(ControlUnit("canny", edges), num_images=2, seed=10))
    assert batch.seeds == [10, 11]
    second = engine.generate(_request(ControlUnit("canny", edges), num_images=1, seed=11)).images
    assert np.abs(batch.images[1] - second[0]).max() <= 1e-5


def test_control_mode_scales_follow_the_paper_and_the_official_code_on_sd15_sizes():
    from controlnet_demo.engine import CONTROL_MODES

    sizes = [64, 64, 64, 32, 32, 32, 16, 16, 16, 8, 8, 8, 8]  # SD1.5 at 512x512: 12 skips + middle
    assert CONTROL_MODES["cfg_resolution"].scales(1.0, sizes) == [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 8]
    ramp = CONTROL_MODES["prompt"].scales(0.5, sizes)
    assert ramp[-1] == 0.5 and abs(ramp[0] - 0.5 * 0.825**12) < 1e-12
    assert CONTROL_MODES["balanced"].scales(0.7, sizes) == [0.7] * 13
    assert [m.cond_branch_only for m in CONTROL_MODES.values()] == [False, False, True, True]


def test_balanced_mode_equals_stock_pipeline_bit_for_bit(engine, store, astronaut, coffee):
    """The engine's own ControlNet forward, with the condition embedded once, changes no bit of the stock result."""
    a, b = _map(astronaut), _map(coffee)
    req = _request(ControlUnit("canny", a, 0.9, 0.0, 0.75), ControlUnit("depth", b, 0.7, 0.25, 1.0))
    stock = _stock(
        store, [store.controlnet("canny"), store.controlnet("depth")], [a, b], req, [0.9, 0.7], [0.0, 0.25], [0.75, 1.0]
    )
    assert np.array_equal(engine.generate(req).images, stock)


@pytest.mark.slow
def test_condition_is_embedded_once_per_unit_per_request_where_stock_embeds_it_every_step(
    engine, store, astronaut, coffee
):
    a, b = _map(astronaut), _map(coffee)
    nets = [store.controlnet("canny"), store.controlnet("scribble")]
    calls = {id(net): 0 for net in nets}

    def counter(net):
        def hook(module, inputs, output):
            calls[id(net)] += 1

        return net.controlnet_cond_embedding.register_forward_hook(hook)

    handles = [counter(net) for net in nets]
    try:
        engine.generate(_request(ControlUnit("canny", a), ControlUnit("scribble", b, end=0.5), steps=6))
        assert list(calls.values()) == [1, 1]
        _stock(store, nets[:1], [a], _request(ControlUnit("canny", a), steps=6), [1.0])
        assert calls[id(nets[0])] == 1 + 6
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("channel_order", ["rgb", "bgr"])
def test_controlnet_forward_equals_controlnet_model_forward_bit_for_bit(store, channel_order):
    from diffusers import ControlNetModel

    from controlnet_demo.engine import controlnet_forward, embed_condition

    canny = store.controlnet("canny")
    net = ControlNetModel.from_config(canny.config, controlnet_conditioning_channel_order=channel_order).eval()
    net.load_state_dict(canny.state_dict())
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(4, 4, SIZE // 2, SIZE // 2, generator=generator)  # 2 images x 2 CFG branches
    text = torch.randn(4, 77, net.config.cross_attention_dim, generator=generator)
    cond = torch.rand(4, 3, SIZE, SIZE, generator=generator)
    for t in (torch.tensor(801), torch.tensor(412.5)):  # integer (DDIM, UniPC) and float (Euler) timesteps
        with torch.inference_mode():
            down, mid = net(x, t, encoder_hidden_states=text, controlnet_cond=cond, return_dict=False)
            ours = controlnet_forward(net, x, t, text, embed_condition(net, cond))
        assert len(ours) == len(down) + 1
        assert all(torch.equal(a, b) for a, b in zip(ours, [*down, mid]))


def test_a_global_control_equals_stock_pipeline(store, astronaut):
    """A shuffle-style ControlNet (`global_pool_conditions`): its residuals averaged over the picture and read on the
    conditional branch only, as diffusers' pipeline runs it (guess mode, forced by the config)."""
    from diffusers import ControlNetModel

    canny = store.controlnet("canny")
    shuffle = ControlNetModel.from_config(canny.config, global_pool_conditions=True).eval()
    shuffle.load_state_dict(canny.state_dict())
    edges = _map(astronaut)
    req = _request(ControlUnit("shuffle", edges, strength=1.5))
    ours = Engine(store.base, {"shuffle": shuffle}, store.device, store.dtype).generate(req).images
    stock = _stock(store, [shuffle], [edges], req, [1.5])
    assert np.abs(ours - stock).max() <= 1e-4
    local = Engine(store.base, {"canny": canny}, store.device, store.dtype).generate(
        _request(ControlUnit("canny", edges, strength=1.5))
    )
    assert np.abs(ours - local.images).max() > 1e-3  # the same weights, pooled: another picture


@pytest.mark.parametrize("config, named", [({"num_class_embeds": 4}, "class embeddings")])
def test_controlnet_configs_the_engine_does_not_cover_are_refused_by_name(store, astronaut, config, named):
    from diffusers import ControlNetModel

    from controlnet_demo.errors import ModelUnavailableError

    unusual = ControlNetModel.from_config(store.controlnet("canny").config, **config).eval()

    with pytest.raises(ModelUnavailableError, match=f"canny ControlNet uses {named}"):
        Engine(store.base, {"canny": unusual}, store.device, store.dtype).generate(
            _request(ControlUnit("canny", _map(astronaut)))
        )


def test_unipc_steps_under_the_unchecked_solve_equal_plain_steps_and_never_check_on_the_host():
    # on a GPU the engine wraps each scheduler step in SolveUnchecked (no host wait for solve's error flag);
    # the steps must come out the same, and the check must really be gone (a singular system does not raise)
    from diffusers import UniPCMultistepScheduler

    from controlnet_demo.engine.schedulers import SolveUnchecked

    def run(mode):
        scheduler = UniPCMultistepScheduler()
        scheduler.set_timesteps(8)
        scheduler.set_begin_index(0)
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(1, 4, 8, 8, generator=generator)
        for t in scheduler.timesteps:
            with mode:
                x = scheduler.step(torch.randn(x.shape, generator=generator), t, x, return_dict=False)[0]
        return x

    import contextlib

    assert torch.equal(run(SolveUnchecked()), run(contextlib.nullcontext()))
    singular = torch.ones(2, 2)
    with pytest.raises(torch.linalg.LinAlgError):
        torch.linalg.solve(singular, torch.ones(2))
    with SolveUnchecked():
        torch.linalg.solve(singular, torch.ones(2))
