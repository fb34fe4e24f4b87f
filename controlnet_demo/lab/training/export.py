"""What a run leaves for the app: a StableDiffusionPipeline folder with its ControlNets beside it, each with the
training curve its metrics show (the sudden-convergence plot of the How tab)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ...models.architectures import assemble_pipeline
from ...models.curves import CURVE_FILE
from ...models.loading import load_controlnet
from .loop import checkpoints
from .tasks import load_base, load_vae

EXPORT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def export(
    base: str, out: str | Path, controlnets: dict[str, str] | None = None, vae: str | None = None, dtype: str = "fp16"
) -> Path:
    """Assemble a StableDiffusionPipeline folder (DDIM, no safety checker), the ControlNets beside it in
    controlnet-<condition>/, all stored in `dtype` (a key of EXPORT_DTYPES). It loads as a user would write it:
    StableDiffusionControlNetPipeline.from_pretrained(out, controlnet=ControlNetModel.from_pretrained(out / "controlnet-canny"))."""

    pipe = load_base(base)
    out = Path(out)
    assemble_pipeline(
        load_vae(vae) if vae else pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.unet, pipe.scheduler.config
    ).to(dtype=EXPORT_DTYPES[dtype]).save_pretrained(out)
    _text_encoder_loads_as_float32(out)
    for condition, source in (controlnets or {}).items():
        net = load_controlnet(source, torch.float32, local_files_only=False, condition=condition)
        net.to(EXPORT_DTYPES[dtype]).save_pretrained(out / f"controlnet-{condition}")
        curve = training_curve(Path(source))
        if curve is not None:
            (out / f"controlnet-{condition}" / CURVE_FILE).write_text(json.dumps(curve))
    return out


def _text_encoder_loads_as_float32(folder: Path) -> None:
    """transformers 5 loads a model in the dtype its config names (the stored one), diffusers its own models in
    float32: a folder stored in fp16 would load with an fp16 text encoder beside an fp32 U-Net, and the plain
    `from_pretrained(folder)` fails on a CPU ("mat1 and mat2 must have the same dtype"). Naming float32 in the
    config makes both load alike; `dtype=torch.float16` (a GPU) still loads everything in fp16."""
    path = folder / "text_encoder" / "config.json"
    config = json.loads(path.read_text())
    config["dtype"] = "float32"
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def largest_jump(probes: list[list[float]]) -> list | None:
    """[from step, to step, rise] of the largest rise of the matched score between two probes in a row."""
    rises = [[a[0], b[0], round(b[1] - a[1], 4)] for a, b in zip(probes, probes[1:])]
    return max(rises, key=lambda r: r[2]) if rises else None


def converged_at(probes: list[list[float]]) -> int | None:
    """The first probed step from which on the ControlNet passes the evaluation's rule at every later probe:
    matched at least RATIO x the shuffled score (floored at MIN_SHUFFLED). None if it never settles there."""
    from ..evaluate import passes

    passing = [passes(matched, shuffled) for _, matched, shuffled in probes]
    for k in range(len(probes)):
        if all(passing[k:]):
            return int(probes[k][0])
    return None


def training_curve(run: Path, loss_window: int = 50) -> dict | None:
    """What a ControlNet's training log shows, small enough to ship with it: every controllability probe
    (`--eval-every`) and the loss averaged over windows of `loss_window` steps. None without probes."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    probes, losses, seconds = [], [], []
    for line in metrics.read_text().splitlines():
        row = json.loads(line)
        if "controllability" in row:
            c = row["controllability"]
            probes.append([row["step"], round(c["matched"], 4), round(c["shuffled"], 4)])
        elif "loss" in row:
            losses.append(row["loss"])
            seconds.append(row["seconds_per_step"])
    if not probes:
        return None
    loss = [
        [min(len(losses), i + loss_window), round(float(np.mean(losses[i : i + loss_window])), 4)]
        for i in range(0, len(losses), loss_window)
    ]
    steps, stages = len(losses), []
    found = checkpoints(run)  # a run started with --init goes on from another run's curve
    config = json.loads((found[-1] / "state.json").read_text())["config"] if found else {}
    before = training_curve(Path(config["init"]), loss_window) if config.get("init") else None
    if before is not None:
        offset = before["steps"]
        probes = before["controllability"] + [[step + offset, m, sh] for step, m, sh in probes if step > 0]
        loss = before["loss"] + [[step + offset, value] for step, value in loss]
        steps += offset
        moved = config.get("base") if config.get("base") != before.get("base") else None
        stages = before.get("stages", []) + [[offset, config.get("world_warp", 0.0), moved]]
    return dict(
        steps=steps,
        converged_at=converged_at(probes),
        largest_jump=largest_jump(probes),
        median_seconds_per_step=round(float(np.median(seconds)), 3),
        controllability=probes,  # [step, matched score, shuffled-condition score]
        loss=loss,
        stages=stages,  # [step, world_warp, base] where training went on from --init (on irregular shapes, if
        # world_warp > 0; base: the --base it went on with where that changed, else None)
        base=config.get("base"),
    )
