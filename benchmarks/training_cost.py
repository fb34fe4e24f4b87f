"""Training cost of a ControlNet vs fine-tuning the base U-Net alone: time per step and peak memory, same batch.

The paper (one A100 40 GB, SD1.5): ControlNet training costs about 23 % more memory and 34 % more time per
iteration than fine-tuning SD. Each (model, mode) runs in its own subprocess so its peak memory is its own; the
modes alternate, and the median step time of each is reported. From the repo root:

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.training_cost --model small --batch 32            # CPU, 64 px
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.training_cost --model sd15 --batch 4 --size 512    # a GPU
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from controlnet_demo.paths import REPO_ROOT

# SD1.5's U-Net and text encoder, with random weights (timing needs no real weights)
SD15_UNET = dict(
    block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2,
    cross_attention_dim=768,
    attention_head_dim=8,
    down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    sample_size=64,
)


def _proc_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith(field + ":"))


def _peak_mb(device, baseline_mb: float) -> float:
    """GPU: peak allocated. CPU: the resident high-water mark above what the imports alone took."""
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return _proc_mb("VmHWM") - baseline_mb


def worker(model: str, mode: str, batch: int, size: int, steps: int, dtype_name: str) -> dict:
    """One measurement in this process: `steps` optimizer steps after 2 warm-ups."""
    import torch
    from diffusers import ControlNetModel, DDPMScheduler, UNet2DConditionModel

    from controlnet_demo.lab.training import lock, noise_loss
    from controlnet_demo.models import architectures

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[dtype_name]
    baseline_mb = _proc_mb("VmRSS")  # libraries loaded, no model yet
    torch.manual_seed(0)
    if model == "sd15":
        unet, hidden, levels = UNet2DConditionModel(**SD15_UNET), 768, 4
    else:
        config = architectures.MODEL_CONFIGS[model]
        levels = len(config.vae_channels)
        unet, hidden = architectures.build_unet(config, size // 2 ** (levels - 1)), config.text_hidden
    factor = 2 ** (levels - 1)  # the VAE's downsampling: latents are size / factor
    unet = unet.to(device)
    if mode == "controlnet":  # the paper's recipe: base locked, the trainable copy and zero convs
        # the condition encoder halves as often as the VAE does (SD1.5: the paper's 16/32/96/256 encoder)
        net = ControlNetModel.from_unet(
            unet, conditioning_embedding_out_channels=architectures.condition_channels(levels)
        )
        net = net.to(device).train()
        lock(unet)
        trainable = net
    else:  # fine-tune the base U-Net alone
        net, trainable = None, unet.train()
    optimizer = torch.optim.AdamW(trainable.parameters(), lr=1e-5)
    scheduler = DDPMScheduler.from_config(architectures.SD_SCHEDULER_CONFIG)
    g = torch.Generator().manual_seed(0)
    latents = torch.randn(batch, 4, size // factor, size // factor, generator=g).to(device)
    text = torch.randn(batch, 77, hidden, generator=g).to(device)
    condition = (torch.rand(batch, 3, size, size, generator=g) > 0.9).float().to(device)
    times = []
    for step in range(steps + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            loss = noise_loss(unet, scheduler, latents, text, g, net, condition)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            times.append(time.perf_counter() - began)
    return dict(seconds=times, peak_mb=_peak_mb(device, baseline_mb), device=str(device))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small", help="small, tiny (architectures.MODEL_CONFIGS) or sd15")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64, help="image size in pixels")
    p.add_argument("--steps", type=int, default=5, help="timed steps per run")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of (fine-tune, controlnet)")
    p.add_argument("--dtype", default="fp32", choices=("fp32", "bf16", "fp16"))
    p.add_argument("--worker", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        mode, out = args.worker
        Path(out).write_text(json.dumps(worker(args.model, mode, args.batch, args.size, args.steps, args.dtype)))
        return
    import tempfile

    results = {"finetune": [], "controlnet": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for mode in results:
                out = Path(tmp) / f"{mode}-{r}.json"
                # this module again, from the repo root (where `benchmarks` and `controlnet_demo` import from)
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.training_cost",
                        "--model",
                        args.model,
                        "--batch",
                        str(args.batch),
                        "--size",
                        str(args.size),
                        "--steps",
                        str(args.steps),
                        "--dtype",
                        args.dtype,
                        "--worker",
                        mode,
                        str(out),
                    ],
                    check=True,
                    cwd=REPO_ROOT,
                )
                results[mode].append(json.loads(out.read_text()))
    row = {
        m: (statistics.median(t for run in runs for t in run["seconds"]), max(run["peak_mb"] for run in runs))
        for m, runs in results.items()
    }
    (ft_s, ft_mb), (cn_s, cn_mb) = row["finetune"], row["controlnet"]
    device = results["finetune"][0]["device"]
    print(
        f"| model | device | batch | size | fine-tune U-Net s/step | ControlNet s/step | time | "
        f"fine-tune peak MB | ControlNet peak MB | memory |\n|---|---|---|---|---|---|---|---|---|---|\n"
        f"| {args.model} ({args.dtype}) | {device} | {args.batch} | {args.size} | {ft_s:.3f} | {cn_s:.3f} | "
        f"{100 * (cn_s / ft_s - 1):+.0f} % | {ft_mb:.0f} | {cn_mb:.0f} | {100 * (cn_mb / ft_mb - 1):+.0f} % |"
    )
    print("paper (SD1.5, A100 40 GB): ControlNet +34 % time, +23 % memory per iteration vs fine-tuning SD")


if __name__ == "__main__":
    main()
