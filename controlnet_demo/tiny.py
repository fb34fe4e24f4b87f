"""Tiny Stable-Diffusion-architecture components built from configs: the offline preset and the tests.

Same classes as SD1.5 (AutoencoderKL, UNet2DConditionModel, CLIPTextModel, ControlNetModel), a few thousand
times smaller, initialised from a seed. The tokenizer is the real CLIP one (assets/clip-tokenizer).
"""

from __future__ import annotations

from pathlib import Path

import torch

ASSETS = Path(__file__).resolve().parent.parent / "assets"
TOKENIZER_DIR = ASSETS / "clip-tokenizer"

# SD1.5's scheduler settings; every scheduler of the demo is made from these.
SD_SCHEDULER_CONFIG = dict(
    num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
    prediction_type="epsilon", steps_offset=1, clip_sample=False, set_alpha_to_one=False, timestep_spacing="leading",
)


def tokenizer():
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(TOKENIZER_DIR))


def text_encoder(seed: int = 0, hidden: int = 32, layers: int = 2):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=49408, hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=layers,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=49406, eos_token_id=49407, pad_token_id=49407,
    )
    return CLIPTextModel(config).eval()


def vae(seed: int = 0):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        block_out_channels=[32, 64], in_channels=3, out_channels=3,
        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
        latent_channels=4, norm_num_groups=32,
    ).eval()


def unet(seed: int = 0, cross_attention_dim: int = 32):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=cross_attention_dim, norm_num_groups=32, attention_head_dim=8,
    ).eval()


def controlnet(base_unet, seed: int = 0, zero_convs: str = "random"):
    """A ControlNet copied from `base_unet` (the paper's trainable copy).

    zero_convs="zero" keeps the paper's initialisation (the copy adds nothing yet); "random" gives the zero
    convolutions and the condition encoder small random weights, standing in for a trained net.
    """
    from diffusers import ControlNetModel

    net = ControlNetModel.from_unet(base_unet, conditioning_embedding_out_channels=(16, 32))
    if zero_convs == "random":
        generator = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for module in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding]:
                for p in module.parameters():
                    p.copy_(torch.randn(p.shape, generator=generator) * 0.1)
    return net.eval()


def components(seed: int = 0) -> dict:
    """The parts of a StableDiffusionPipeline, tiny and seeded (no safety checker)."""
    from diffusers import DDIMScheduler

    return dict(
        vae=vae(seed), text_encoder=text_encoder(seed), tokenizer=tokenizer(), unet=unet(seed),
        scheduler=DDIMScheduler(**SD_SCHEDULER_CONFIG),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
