"""The samplers a request can choose, a fresh one per request, and how their steps avoid waiting for the GPU."""

from __future__ import annotations

import contextlib

import torch
from torch.overrides import TorchFunctionMode

SCHEDULERS = ("UniPC", "DPM++ 2M Karras", "Euler a", "Euler", "DDIM")  # what a user picks for the full path
FEW_STEP_SCHEDULERS = ("LCM", "DDIM trailing")  # what the few-step LoRAs were made for: chosen with their speed


def _scheduler_table():
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        LCMScheduler,
        UniPCMultistepScheduler,
    )

    return {
        "UniPC": (UniPCMultistepScheduler, {}),
        "DPM++ 2M Karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
        "Euler a": (EulerAncestralDiscreteScheduler, {}),
        "Euler": (EulerDiscreteScheduler, {}),
        "DDIM": (DDIMScheduler, {}),
        "LCM": (LCMScheduler, {}),
        "DDIM trailing": (DDIMScheduler, {"timestep_spacing": "trailing"}),
    }


def make_scheduler(name: str, base_config):
    """A fresh scheduler per request: diffusers schedulers keep per-run state and are not thread-safe."""
    cls, extra = _scheduler_table()[name]
    return cls.from_config(base_config, **extra)


class SolveUnchecked(TorchFunctionMode):
    """Within it, torch.linalg.solve runs as torch.linalg.solve_ex without its error check: the same kernels and the
    same result, but no copy of the check's flag to the host, which waits for the GPU to drain. UniPC's corrector
    solves a 2x2 system at every step (its rows [1, 1] and [r, 1], singular only if two of the solver's log-SNRs
    coincide, which its timesteps never do). A torch function mode is per thread: other requests' threads are not
    touched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.linalg.solve:
            return torch.linalg.solve_ex(*args, **(kwargs or {}))[0]
        return func(*args, **(kwargs or {}))


def without_waits(scheduler, device: torch.device, bit_exact: bool = False):
    """diffusers' sigma-based schedulers keep `sigmas` on the CPU and copy single values to the GPU inside `step`,
    and every such copy waits for the GPU to drain (about 7 per UniPC step). Kept on the device, their scalar maths
    is queued behind the U-Net like everything else, and the returned context (to wrap each `step` in) drops the
    last wait, UniPC's torch.linalg.solve checking its result on the host (`SolveUnchecked`): the host then runs
    ahead of the GPU for the whole loop. The GPU's float32 rounds those scalars a little differently, so the fp16
    images move by rounding (max 2.9e-3 in [0, 1] on an H200), and the `cudagraphs` mode, whose point is stock's
    images bit for bit, keeps them on the CPU (`bit_exact`). Starting at index 0 also skips the first step's search
    for the timestep (another wait), with the same result."""
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(0)
    if bit_exact or device.type != "cuda":
        return contextlib.nullcontext()
    if isinstance(getattr(scheduler, "sigmas", None), torch.Tensor):
        scheduler.sigmas = scheduler.sigmas.to(device)
    return SolveUnchecked()
