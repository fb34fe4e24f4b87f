"""The optional fast mode: the U-Net, ControlNet and VAE forwards through torch.compile.

The model weights are graph inputs, so one compiled graph serves every ControlNet of the same architecture; a new
image size compiles again, then shapes turn dynamic. Inductor's kernels round differently from PyTorch's, so those
images differ from the exact engine's in the last bits; "cudagraphs" replays PyTorch's own kernels in CUDA graphs
and keeps them exact.
"""

from __future__ import annotations

import torch

# the modes (of settings.COMPILE_MODES, the one list a server may choose from) that replay CUDA graphs
CUDA_GRAPH_MODES = ("reduce-overhead", "cudagraphs")
AOT_MODE = "aoti"  # ahead of time (engine/aot.py): ZeroGPU's way, where torch.compile is not supported


def default_compile_mode(device: torch.device) -> str:
    """The fast mode's torch.compile mode when none is named: on a GPU CUDA graphs too (a batch-2 U-Net step is
    launch-bound there), on a CPU Inductor alone."""
    return "reduce-overhead" if device.type == "cuda" else "default"


def compiled(fn, mode: str):
    return torch.compile(fn, backend="cudagraphs") if mode == "cudagraphs" else torch.compile(fn, mode=mode)
