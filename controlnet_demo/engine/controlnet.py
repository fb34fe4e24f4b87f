"""The ControlNet itself, as the paper writes it: condition encoder, trainable copy, zero convolutions, and the
locked U-Net that adds what they give."""

from __future__ import annotations

import torch

from ..errors import ModelUnavailableError


def zero_convolutions(controlnet) -> list[torch.nn.Conv2d]:
    """The 13 zero convolutions joining the trainable copy to the locked U-Net (12 skips + the middle block)."""
    return [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]


def embed_condition(net, cond: torch.Tensor) -> torch.Tensor:
    """c_f = E(c): control maps (N, 3, H, W) in [0, 1] -> (N, C, h, w) at the latents' size."""
    if net.config.controlnet_conditioning_channel_order == "bgr":
        cond = cond.flip(1)
    return net.controlnet_cond_embedding(cond)


def controlnet_forward(net, x, t, text, hint) -> list[torch.Tensor]:
    """ControlNetModel.forward at conditioning_scale 1, from its own submodules, with the condition embedded already.

    The method (cldm.py's ControlNet.forward): a trainable copy of the U-Net's encoder reads z_t + c_f; a zero
    convolution on each of its skips and on the middle block gives the residuals the U-Net adds (13 for SD1.5).
    """
    emb = net.time_embedding(net.time_proj(t.expand(x.shape[0])).to(x.dtype))  # t: () -> (B, 4C)
    h = net.conv_in(x) + hint  # x (B, 4, h, w), hint (B, C, h, w) -> (B, C, h, w); text: (B, 77, D)
    skips = [h]
    for block in net.down_blocks:
        h, res = _block(block, h, emb, text)
        skips.extend(res)
    if net.mid_block is not None:
        h = _block(net.mid_block, h, emb, text)
    return [zero(s) for zero, s in zip(zero_convolutions(net)[:-1], skips)] + [net.controlnet_mid_block(h)]


def pooled(residuals: list[torch.Tensor]) -> list[torch.Tensor]:
    """A global control's residuals (ControlNet 1.1's shuffle: `global_pool_conditions` in its config): each one's
    mean over the picture, the same at every position (diffusers adds the (B, C, 1, 1) mean by broadcasting)."""
    return [r.mean(dim=(2, 3), keepdim=True).expand_as(r).contiguous() for r in residuals]  # (a graph's layout)


def unet_forward(unet, x, t, text, down, mid) -> torch.Tensor:
    """The locked U-Net's noise (or v) prediction with the ControlNet residuals added to its skips and middle block."""
    return unet(
        x,
        t,
        encoder_hidden_states=text,
        down_block_additional_residuals=down,
        mid_block_additional_residual=mid,
        return_dict=False,
    )[0]


def _block(block, h, emb, text):
    if getattr(block, "has_cross_attention", False):
        return block(h, emb, encoder_hidden_states=text)
    return block(h, emb)


def check_supported(net, condition: str) -> None:
    """`controlnet_forward` covers SD1.5-style ControlNets; refuse the configs that need more than it does."""
    extras = {
        "class embeddings": net.class_embedding is not None,
        "added (SDXL-style) embeddings": net.config.addition_embed_type is not None,
    }
    if any(extras.values()):
        raise ModelUnavailableError(
            "The {condition} ControlNet uses {what}, which this engine does not support; use an SD1.5 ControlNet "
            "for it.",
            condition=condition,
            what=", ".join(k for k, on in extras.items() if on),
        )
