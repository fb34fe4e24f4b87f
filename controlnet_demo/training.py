"""ControlNet training, the paper's recipe: the base U-Net locked, its encoder copied, zero convolutions.

The loss is ordinary noise prediction, ||eps - eps_theta(z_t, t, c_text, c_image)||^2; gradients reach only
the trainable copy, its zero convolutions and the condition encoder. A share of the prompts (default 50 %) is
replaced by the empty string so the ControlNet learns to read the condition map on its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lock(model: torch.nn.Module) -> torch.nn.Module:
    """Freeze a pretrained model: no gradients are computed or stored for its weights."""
    model.requires_grad_(False)
    return model.eval()


def zero_convolutions(controlnet) -> list[torch.nn.Conv2d]:
    """The 13 zero convolutions joining the trainable copy to the locked U-Net (12 skips + the middle block)."""
    return [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]


def drop_prompts(prompts: list[str], share: float, generator: torch.Generator) -> list[str]:
    """Replace `share` of the prompts by "" (the paper's 50 %), chosen by `generator`."""
    keep = torch.rand(len(prompts), generator=generator) >= share
    return [p if k else "" for p, k in zip(prompts, keep.tolist())]


def controlnet_loss(unet, controlnet, noise_scheduler, latents, text_embeddings, condition, generator=None):
    """Noise-prediction loss of the locked `unet` steered by `controlnet`.

    latents (B, 4, h, w) = VAE latents * scaling factor; text_embeddings (B, 77, D); condition (B, 3, H, W) in [0, 1].
    """
    noise = torch.randn(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    steps = noise_scheduler.config.num_train_timesteps
    t = torch.randint(0, steps, (latents.shape[0],), generator=generator, device=latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    down, mid = controlnet(noisy, t, encoder_hidden_states=text_embeddings, controlnet_cond=condition, return_dict=False)
    prediction = unet(noisy, t, encoder_hidden_states=text_embeddings, down_block_additional_residuals=down,
                      mid_block_additional_residual=mid, return_dict=False)[0]
    return F.mse_loss(prediction.float(), noise.float())
