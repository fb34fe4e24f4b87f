"""What the engine is asked and what it answers: control units, requests, results, and the control modes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

# --- control modes: how a unit's strength becomes the 13 connection scales, and which CFG branch gets them ---


def _ramp(strength: float, sizes: list[int]) -> list[float]:
    # official ControlNet "guess mode" scales: the deepest connection full, each shallower one x0.825
    return [strength * 0.825 ** float(len(sizes) - 1 - i) for i in range(len(sizes))]


def _resolution_weights(strength: float, sizes: list[int]) -> list[float]:
    # the paper's CFG resolution weighting: w_i = 64 / h_i at 512x512, i.e. (largest latent size) / h_i
    return [strength * sizes[0] / h for h in sizes]


@dataclass(frozen=True)
class ControlMode:
    label: str
    scales: Callable[[float, list[int]], list[float]]
    cond_branch_only: bool


CONTROL_MODES: dict[str, ControlMode] = {
    "balanced": ControlMode("Balanced", lambda s, sizes: [s] * len(sizes), False),
    "prompt": ControlMode("My prompt is more important", _ramp, False),
    "control": ControlMode("ControlNet is more important", _ramp, True),
    "cfg_resolution": ControlMode("CFG resolution weighting (paper)", _resolution_weights, True),
}


@dataclass(frozen=True)
class ControlUnit:
    """One condition of a request; `image` is the control map at the output size, uint8 RGB (H, W, 3)."""

    condition: str  # which of the engine's ControlNets reads it
    image: np.ndarray
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    mode: str = "balanced"  # a key of CONTROL_MODES
    mask: np.ndarray | None = None  # (H, W) in [0, 1]: where this condition applies


@dataclass(frozen=True)
class Request:
    prompt: str
    units: Sequence[ControlUnit]
    negative_prompt: str = ""
    steps: int = 20
    guidance_scale: float = 7.5
    seed: int = 0
    num_images: int = 1
    width: int = 512
    height: int = 512
    scheduler: str = "UniPC"  # a key of the schedulers' table (schedulers.SCHEDULERS or FEW_STEP_SCHEDULERS)
    lora: str | None = None  # the few-step LoRA the U-Net runs with (a key of the engine's loras); None: none
    residual_maps: bool = False  # also where each connection's residual goes, per step (Result.residual_maps)


@dataclass(frozen=True)
class Result:
    images: np.ndarray  # (B, H, W, 3) float in [0, 1]
    seeds: list[int]
    residual_norms: dict[str, list[float]] = field(default_factory=dict)  # unit label -> mean |residual| per connection
    controlnet_calls: int = 0
    seconds: float = 0.0
    # asked for only (Request.residual_maps): unit label -> (steps, 13, h, w) float32, per step and connection the
    # mean |residual| over channels that the first image's conditional branch got, at the latents' size (nearest
    # upsampling, which keeps each map's mean); zero at the steps where the unit's ControlNet did not run
    residual_maps: dict[str, np.ndarray] = field(default_factory=dict)

    def pil_images(self) -> list[Image.Image]:
        return [Image.fromarray((im * 255).round().astype(np.uint8)) for im in self.images]
