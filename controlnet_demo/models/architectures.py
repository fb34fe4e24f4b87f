"""Stable-Diffusion-architecture models built from configs: the embedded model's sizes, the tiny test model.

Same classes as SD1.5 (AutoencoderKL, UNet2DConditionModel, CLIPTextModel, ControlNetModel), thousands of times
smaller; `MODEL_CONFIGS` holds the sizes ("tiny" for tests and the random preset, "small" for the trained offline
model); `check_fits` refuses a ControlNet made for another base. The tokenizer is the real CLIP one
(assets/clip-tokenizer). `assemble_pipeline` is the one place a StableDiffusionPipeline is put together from parts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import ModelMismatchError
from ..paths import TOKENIZER_DIR

# SD1.5's scheduler settings; every scheduler of the demo is made from these.
SD_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    prediction_type="epsilon",
    steps_offset=1,
    clip_sample=False,
    set_alpha_to_one=False,
    timestep_spacing="leading",
)
# the same betas rescaled to zero terminal SNR, with v-prediction and trailing timesteps (Lin et al. 2024, "Common
# diffusion noise schedules and sample steps are flawed"): the last step is pure noise, so a model can't lean on the
# image's mean colour leaking through it (flat backgrounds at 64 px suffer from that most)
ZERO_SNR_SCHEDULER_CONFIG = dict(
    SD_SCHEDULER_CONFIG, prediction_type="v_prediction", rescale_betas_zero_snr=True, timestep_spacing="trailing"
)


def tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))


def assemble_pipeline(vae, text_encoder, tokenizer, unet, scheduler_config: dict | None = None):
    """A StableDiffusionPipeline of these parts: DDIM on the schedule they were trained on (default SD1.5's), no
    safety checker."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler.from_config(scheduler_config or SD_SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


# --- model sizes ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of a small SD-architecture model family (VAE, U-Net, CLIP text encoder) built from scratch."""

    vae_channels: tuple[int, ...]  # per level; len - 1 halvings: (a, b, c) turns 64 px into 16x16x4 latents
    unet_channels: tuple[int, ...]  # per level of the U-Net
    unet_attention: tuple[bool, ...]  # cross-attention (the prompt) at that level
    unet_heads: int  # diffusers calls it attention_head_dim; SD1.5's 8 is the number of heads
    text_hidden: int  # also the U-Net's cross_attention_dim
    text_layers: int
    layers_per_block: int = 2


MODEL_CONFIGS: dict[str, ModelConfig] = {
    # the tests and the random offline preset
    "tiny": ModelConfig(
        vae_channels=(32, 64),
        unet_channels=(32, 64),
        unet_attention=(False, True),
        unet_heads=8,
        text_hidden=32,
        text_layers=2,
    ),
    # the embedded offline model: what trains on 2 CPU cores at 64 px (16x16x4 latents) and ships in under 70 MB
    # (its step times and sizes: docs/offline-model.md)
    "small": ModelConfig(
        vae_channels=(32, 64, 64),
        unet_channels=(64, 96, 128),
        unet_attention=(False, True, True),
        unet_heads=4,
        text_hidden=64,
        text_layers=3,
    ),
}


def build_vae(config: ModelConfig):
    from diffusers import AutoencoderKL

    n = len(config.vae_channels)
    return AutoencoderKL(
        block_out_channels=config.vae_channels,
        down_block_types=["DownEncoderBlock2D"] * n,
        up_block_types=["UpDecoderBlock2D"] * n,
        latent_channels=4,
        norm_num_groups=32,
    )


def build_unet(config: ModelConfig, sample_size: int):
    from diffusers import UNet2DConditionModel

    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in config.unet_attention)
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(config.unet_attention))
    return UNet2DConditionModel(
        block_out_channels=config.unet_channels,
        layers_per_block=config.layers_per_block,
        sample_size=sample_size,
        down_block_types=down,
        up_block_types=up,
        cross_attention_dim=config.text_hidden,
        attention_head_dim=config.unet_heads,
        norm_num_groups=32,
    )


def build_text_encoder(config: ModelConfig):
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(
        CLIPTextConfig(
            vocab_size=49408,
            hidden_size=config.text_hidden,
            intermediate_size=config.text_hidden * 2,
            num_hidden_layers=config.text_layers,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )


def condition_channels(vae_levels: int) -> tuple[int, ...]:
    """The ControlNet condition encoder: one stride-2 conv per VAE halving, so c_f has the latents' size.

    SD1.5 (4 VAE levels, 3 halvings) gets diffusers' (16, 32, 96, 256), the paper's 4-conv encoder E.
    """
    return (16, 32, 96, 256)[:vae_levels]


def controlnet_for(pipe, **kwargs):
    """A fresh ControlNet for a base pipeline: a copy of its U-Net's encoder, every zero convolution exactly 0, and
    a condition encoder that downsamples as the base's VAE does."""
    from diffusers import ControlNetModel

    channels = condition_channels(len(pipe.vae.config.block_out_channels))
    return ControlNetModel.from_unet(pipe.unet, conditioning_embedding_out_channels=channels, **kwargs)


# --- the tiny random model (tests, the "tiny" preset) -------------------------------------------------------------


def tiny_text_encoder(seed: int = 0):
    torch.manual_seed(seed)
    return build_text_encoder(MODEL_CONFIGS["tiny"]).eval()


def tiny_vae(seed: int = 0):
    torch.manual_seed(seed)
    return build_vae(MODEL_CONFIGS["tiny"]).eval()


def tiny_unet(seed: int = 0):
    torch.manual_seed(seed)
    return build_unet(MODEL_CONFIGS["tiny"], sample_size=32).eval()


def tiny_controlnet(base_unet, seed: int = 0, zero_convs: str = "random"):
    """A ControlNet copied from `base_unet` (the paper's trainable copy).

    zero_convs="zero" keeps the paper's initialisation (the copy adds nothing yet); "random" gives the zero
    convolutions and the condition encoder small random weights, standing in for a trained net.
    """
    from diffusers import ControlNetModel

    channels = condition_channels(len(MODEL_CONFIGS["tiny"].vae_channels))
    net = ControlNetModel.from_unet(base_unet, conditioning_embedding_out_channels=channels)
    if zero_convs == "random":
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding]:
                for p in module.parameters():
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return net.eval()


def tiny_pipeline(seed: int = 0):
    """A tiny seeded StableDiffusionPipeline (no safety checker)."""
    return assemble_pipeline(tiny_vae(seed), tiny_text_encoder(seed), tokenizer(), tiny_unet(seed))


def check_fits(net, pipe, controlnet_name: str, base_name: str) -> None:
    """Refuse a ControlNet made for another base, before any request reaches the loop: its residuals must have the
    U-Net's skip shapes and its condition encoder must bring the control map down to the latents' size."""
    unet, cfg = pipe.unet.config, net.config
    why = []
    if cfg.cross_attention_dim != unet.cross_attention_dim:
        why.append(
            f"it reads text embeddings of size {cfg.cross_attention_dim}, the base's text encoder gives "
            f"{unet.cross_attention_dim} (another model family)"
        )
    layout = ("block_out_channels", "down_block_types", "layers_per_block", "in_channels")
    differ = [k for k in layout if _as_list(cfg[k]) != _as_list(unet[k])]
    if differ:
        why.append(
            "its blocks differ from the base U-Net's ("
            + ", ".join(f"{k} {_as_list(cfg[k])} vs {_as_list(unet[k])}" for k in differ)
            + ")"
        )
    factor = 2 ** (len(cfg.conditioning_embedding_out_channels) - 1)
    if factor != pipe.vae_scale_factor:
        why.append(
            f"its condition encoder downsamples the map {factor}x, the base's VAE {pipe.vae_scale_factor}x "
            "(the map would not match the latents' size)"
        )
    if why:
        raise ModelMismatchError(
            "The {controlnet} ControlNet does not fit the base model {base}: {why}. Use a ControlNet trained for "
            "this base, or another base.",
            controlnet=controlnet_name,
            base=base_name,
            why="; ".join(why),
        )


def _as_list(value):
    return list(value) if isinstance(value, (list, tuple)) else value
