"""The paper's recipe, piece by piece: lock the pretrained model, drop half the prompts, and the noise-prediction loss
of the locked U-Net steered by the trainable copy."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def lock(model: torch.nn.Module) -> torch.nn.Module:
    """Freeze a pretrained model: no gradients are computed or stored for its weights."""
    model.requires_grad_(False)
    return model.eval()


def drop_prompts(prompts: list[str], share: float, generator: torch.Generator) -> list[str]:
    """Replace `share` of the prompts by "" (the paper's 50 %), chosen by `generator`."""
    keep = torch.rand(len(prompts), generator=generator) >= share
    return [p if k else "" for p, k in zip(prompts, keep.tolist())]


def encode_latents(vae, pixels: torch.Tensor, generator) -> torch.Tensor:
    """Pixels (B, 3, S, S) in [-1, 1] -> a sample of the VAE's latents, scaled as the diffusion model sees them."""
    with torch.no_grad():
        return vae.encode(pixels.to(vae.dtype)).latent_dist.sample(generator) * vae.config.scaling_factor


def noise_loss(unet, noise_scheduler, latents, text_embeddings, generator=None, controlnet=None, condition=None):
    """Noise-prediction loss of `unet` (or v-prediction, as the scheduler says), steered by `controlnet` if given.

    latents (B, 4, h, w) = VAE latents * scaling factor; text_embeddings (B, 77, D); condition (B, 3, H, W) in [0, 1].
    The noise is drawn on the generator's device and moved, so a CPU generator gives the same run on any device.
    """
    from diffusers.utils.torch_utils import randn_tensor

    noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    steps = noise_scheduler.config.num_train_timesteps
    t = torch.randint(0, steps, (latents.shape[0],), generator=generator).to(latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    residuals = {}
    if controlnet is not None:
        down, mid = controlnet(
            noisy, t, encoder_hidden_states=text_embeddings, controlnet_cond=condition, return_dict=False
        )
        # in the locked U-Net's dtype, as diffusers' train_controlnet.py does: accelerate hands a prepared model's
        # outputs back in float32, which a half-precision U-Net's normalisations refuse
        residuals = dict(
            down_block_additional_residuals=[d.to(unet.dtype) for d in down],
            mid_block_additional_residual=mid.to(unet.dtype),
        )
    prediction = unet(noisy, t, encoder_hidden_states=text_embeddings, **residuals, return_dict=False)[0]
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, t)
    else:
        target = noise
    return F.mse_loss(prediction.float(), target.float())
