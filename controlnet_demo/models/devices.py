"""Which devices the models run on, and in which precision."""

from __future__ import annotations

import torch


def pick_device(requested: str | None = None) -> tuple[torch.device, torch.dtype]:
    """CUDA with fp16 where there is a GPU, else CPU with fp32 (fp16 is slow or unsupported on CPUs). Of a list
    (see `pick_devices`), the first."""
    return pick_devices(requested)[0]


def pick_devices(requested: str | None = None) -> list[tuple[torch.device, torch.dtype]]:
    """The devices the service puts one engine each on: `requested` is one device ("cuda:1", "cpu"), a
    comma-separated list ("cuda:0,cuda:1"), "all" (every CUDA device, or the CPU when there is none) or None (CUDA
    when there is a GPU, else the CPU)."""
    if requested is None or not requested.strip():
        names = ["cuda" if torch.cuda.is_available() else "cpu"]
    elif requested.strip().lower() == "all":
        names = [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]
    else:
        names = [name.strip() for name in requested.split(",") if name.strip()]
    devices = []
    for name in names:
        try:
            device = torch.device(name)
        except RuntimeError:
            raise ValueError(
                f"Device {name!r} (of CONTROLNET_DEMO_DEVICE={requested!r}) is not a device: give cpu, cuda, "
                "cuda:N, a comma-separated list of them, or all."
            ) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"Device {name!r} asked for, but this machine has no CUDA GPU: use cpu.")
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"Device {name!r} asked for, but this machine has {torch.cuda.device_count()} GPU(s).")
        devices.append((device, torch.float16 if device.type == "cuda" else torch.float32))
    return devices
