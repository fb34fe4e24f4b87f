"""The paper's training claims on tiny real models: zero convs start at zero and leave it; the base stays locked."""

from __future__ import annotations

import torch

from controlnet_demo import tiny
from controlnet_demo.training import controlnet_loss, drop_prompts, lock, zero_convolutions


def _batch(seed=0):
    g = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 16, 16, generator=g)
    text = torch.randn(2, 77, 32, generator=g)
    condition = (torch.rand(2, 3, 32, 32, generator=g) > 0.8).float()  # sparse "edges" in [0, 1]
    return latents, text, condition, g


def test_one_optimizer_step_moves_zero_convs_off_zero_and_leaves_base_bit_identical():
    from diffusers import DDPMScheduler

    unet = lock(tiny.unet(seed=0))
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    controlnet = tiny.controlnet(unet, zero_convs="zero").train()
    assert all(torch.count_nonzero(p) == 0 for z in zero_convolutions(controlnet) for p in z.parameters())

    optimizer = torch.optim.AdamW(controlnet.parameters(), lr=1e-4)
    latents, text, condition, g = _batch()
    loss = controlnet_loss(unet, controlnet, DDPMScheduler.from_config(tiny.SD_SCHEDULER_CONFIG), latents, text, condition, g)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in unet.parameters())  # nothing computed or stored for the locked model
    optimizer.step()

    assert all(torch.count_nonzero(z.weight) > 0 for z in zero_convolutions(controlnet))
    after = unet.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_at_initialisation_the_controlnet_adds_exactly_nothing():
    unet = tiny.unet(seed=0).eval()
    controlnet = tiny.controlnet(unet, zero_convs="zero")
    latents, text, condition, _ = _batch(1)
    t = torch.tensor([500, 500])
    with torch.no_grad():
        down, mid = controlnet(latents, t, encoder_hidden_states=text, controlnet_cond=condition, return_dict=False)
        assert all(torch.count_nonzero(r) == 0 for r in (*down, mid))
        plain = unet(latents, t, encoder_hidden_states=text).sample
        steered = unet(latents, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                       mid_block_additional_residual=mid).sample
    assert torch.equal(plain, steered)


def test_prompt_dropout_empties_about_the_requested_share():
    prompts = [f"prompt {i}" for i in range(2000)]
    dropped = drop_prompts(prompts, 0.5, torch.Generator().manual_seed(0))
    share = sum(p == "" for p in dropped) / len(prompts)
    assert 0.45 < share < 0.55
    assert drop_prompts(prompts, 0.0, torch.Generator().manual_seed(0)) == prompts
