"""Live previews: the model's current estimate of the finished picture, decoded cheaply, without changing it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Preview:
    callback: Callable[[int, int, np.ndarray], None]  # (step, steps, images (B, H, W, 3) in [0, 1])
    every: int
    decoder: torch.nn.Module  # a VAE (the tiny TAESD where the model has one)


def alpha_bars(scheduler, steps: int) -> list[float]:
    """ᾱ (the share of signal in x_t) at the timestep the model is given at each step: the noise level its output
    is relative to (for Karras-spaced sigmas the solver's own sigma can differ from it a lot)."""
    table = scheduler.alphas_cumprod
    return [float(table[min(max(round(float(t)), 0), len(table) - 1)]) for t in scheduler.timesteps[:steps].cpu()]


def predicted_x0(x_t: torch.Tensor, model_output: torch.Tensor, alpha_bar: float, prediction_type: str) -> torch.Tensor:
    """The model's estimate of the clean latents from x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) ε and its (guided) output."""
    a, s = alpha_bar**0.5, (1.0 - alpha_bar) ** 0.5
    if prediction_type == "v_prediction":  # v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x0
        return a * x_t - s * model_output
    if prediction_type == "sample":
        return model_output
    return (x_t - s * model_output) / a


def decode_estimate(decoder, x0: torch.Tensor) -> torch.Tensor:
    """Predicted clean latents -> decoded images in [-1, 1]."""
    return decoder.decode(x0.to(decoder.dtype) / decoder.config.scaling_factor, return_dict=False)[0]
