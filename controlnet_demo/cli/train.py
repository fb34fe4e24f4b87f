"""`train`: the offline model's lab from the command line (with `evaluate.py`, the CLI's only importer of
controlnet_demo.lab).

The parser reads the run settings' defaults and choices from the lab (`lab.training.config`, the export's dtypes,
the world's maps).
"""

from __future__ import annotations

import argparse
import dataclasses

from ..lab.training.config import LEARNING_RATES, LR_SCHEDULERS, MIXED_PRECISIONS, TrainConfig, default
from ..lab.training.export import EXPORT_DTYPES
from ..lab.world.render import MAPS
from ..models.architectures import MODEL_CONFIGS
from .generate import output_dir, quiet_libraries
from .options import PROG, Formatter, Parser, controlnet_source, device_name
from .requests import check_device


def _model_size_option(g) -> None:
    g.add_argument(
        "--model-size",
        choices=list(MODEL_CONFIGS),
        help=f"sizes of the model built from scratch (default {default('model_size')}; tiny is for tests)",
    )


def _train_vae_options(g) -> None:
    _model_size_option(g)


def _train_base_options(g) -> None:
    _model_size_option(g)
    g.add_argument("--vae", required=True, metavar="DIR", help="the locked VAE, a folder `train vae` wrote")
    g.add_argument(
        "--init",
        metavar="DIR",
        help="start from this pipeline folder's U-Net and text encoder (a fresh optimizer), e.g. to "
        "continue a model exported by an earlier session; default: random weights",
    )
    g.add_argument(
        "--prompt-dropout",
        type=float,
        metavar="SHARE",
        help=f"share of empty prompts, so guidance (CFG) works (default {default('prompt_dropout')})",
    )
    g.add_argument(
        "--v-prediction",
        action="store_true",
        default=None,
        help="v-prediction on betas rescaled to zero terminal SNR, trailing timesteps: no mean-colour "
        "bias on flat backgrounds (the exported scheduler keeps these settings)",
    )


def _train_controlnet_options(g) -> None:
    g.add_argument(
        "--base",
        required=True,
        metavar="ID_OR_DIR",
        help="the locked base: a folder `train base` wrote, or SD1.5 (a hub id or diffusers folder)",
    )
    g.add_argument(
        "--condition",
        metavar="NAME",
        help=f"the world's map to learn: {', '.join(MAPS)} (default "
        f"{default('condition')}); with --data, a label for the dataset's condition images",
    )
    g.add_argument(
        "--empty-prompt-share",
        type=float,
        metavar="SHARE",
        help=f"share of prompts replaced by '' (default {default('empty_prompt_share')}, the paper's)",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        metavar="N",
        help="on world data: log controllability on held-out scenes to metrics.jsonl every N steps "
        "(the sudden-convergence curve; default 0 = never)",
    )
    g.add_argument(
        "--eval-samples",
        type=int,
        metavar="N",
        help=f"held-out scenes per measurement (default {default('eval_samples')})",
    )
    g.add_argument(
        "--init",
        metavar="DIR",
        help="start from this ControlNet folder (a fresh optimizer), e.g. to go on training it on "
        "--world-warp scenes; default: a copy of the base U-Net's encoder",
    )


def _train_lcm_options(g) -> None:
    g.add_argument(
        "--base",
        required=True,
        metavar="ID_OR_DIR",
        help="the pipeline to distil (its U-Net is the locked teacher), a folder `train base` wrote",
    )
    g.add_argument("--lora-rank", type=int, metavar="R", help=f"the LoRA's rank (default {default('lora_rank')})")
    g.add_argument(
        "--guidance-min",
        type=float,
        metavar="G",
        help=f"the teacher's CFG scale is drawn in [min, max] (default {default('guidance_min')})",
    )
    g.add_argument("--guidance-max", type=float, metavar="G", help=f"(default {default('guidance_max')})")
    g.add_argument(
        "--ddim-steps",
        type=int,
        metavar="N",
        help=f"the teacher's DDIM grid, LCMScheduler's original_inference_steps (default {default('ddim_steps')})",
    )


TRAIN_KINDS = {  # kind -> (help, its own options)
    "vae": ("train the autoencoder (L1 + L2 reconstruction, light KL) from scratch", _train_vae_options),
    "base": (
        "train the text-to-image model (U-Net and text encoder) from scratch, the VAE locked",
        _train_base_options,
    ),
    "controlnet": (
        "train a ControlNet, the paper's recipe: the base locked, a trainable copy, zero convolutions",
        _train_controlnet_options,
    ),
    "lcm": (
        "distil the base into a few-step LoRA (latent consistency distillation, the LCM paper's recipe)",
        _train_lcm_options,
    ),
}


def configure_train(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind, (text, own_options) in TRAIN_KINDS.items():
        k = sub.add_parser(kind, help=text, description=text[0].upper() + text[1:] + ".", formatter_class=Formatter)
        own_options(k.add_argument_group(f"{kind} options"))
        g = k.add_argument_group("data and run")
        g.add_argument(
            "--out",
            required=True,
            metavar="DIR",
            help="the model (diffusers layout), checkpoints/ and metrics.jsonl go here",
        )
        g.add_argument(
            "--data",
            metavar="FOLDER",
            help="a dataset: prompts.jsonl (world.write_dataset) or fill50k's prompt.json layout"
            + (", or any folder of images" if kind == "vae" else "")
            + " (default: world examples made on the fly)",
        )
        g.add_argument(
            "--world-warp",
            type=float,
            metavar="SHARE",
            help="world data: share of shapes drawn irregular (stretched, sheared, bumpy), so a "
            f"ControlNet learns outlines beyond the five kinds (default {default('world_warp')})",
        )
        g.add_argument(
            "--resolution",
            type=int,
            metavar="PX",
            help=f"images are centre-cropped and resized to PX x PX (default {default('resolution')})",
        )
        g.add_argument("--steps", type=int, metavar="N", help=f"optimizer steps (default {default('steps')})")
        g.add_argument("--batch-size", type=int, metavar="N", help=f"default {default('batch_size')}")
        g.add_argument(
            "--lr",
            type=float,
            metavar="LR",
            help=f"AdamW learning rate (default {LEARNING_RATES[kind]:g}); --resume needs the run's own",
        )
        g.add_argument(
            "--lr-scheduler",
            choices=LR_SCHEDULERS,
            metavar="NAME",
            help=f"the learning rate over the run (diffusers' get_scheduler): {', '.join(LR_SCHEDULERS)} "
            f"(default {default('lr_scheduler')})",
        )
        g.add_argument(
            "--lr-warmup-steps",
            type=int,
            metavar="N",
            help=f"steps of linear warm-up from 0 (default {default('lr_warmup_steps')})",
        )
        g.add_argument(
            "--gradient-accumulation",
            type=int,
            metavar="N",
            help=f"batches whose gradients add up to one optimizer step (default {default('gradient_accumulation')})",
        )
        g.add_argument(
            "--seed", type=int, metavar="S", help=f"initial weights, data order and noise (default {default('seed')})"
        )
        g.add_argument(
            "--checkpoint-every",
            type=int,
            metavar="N",
            help=f"steps between checkpoints (default {default('checkpoint_every')})",
        )
        g.add_argument(
            "--resume",
            action="store_true",
            default=None,
            help="continue exactly from the latest checkpoint in --out (weights, optimizer, step)",
        )
        g.add_argument(
            "--mixed-precision",
            choices=MIXED_PRECISIONS,
            help="autocast on GPU: fp16 (with loss scaling) or bf16 (default no)",
        )
        g.add_argument(
            "--gradient-checkpointing",
            action="store_true",
            default=None,
            help="recompute activations in the backward pass: less memory, ~30 %% slower",
        )
        g.add_argument(
            "--device",
            type=device_name,
            metavar="DEVICE",
            help="cpu, cuda, cuda:N or mps (default: cuda when available, else cpu)",
        )
        g.add_argument(
            "--workers",
            type=int,
            metavar="N",
            help="processes making the batches ahead of the loop, e.g. to keep a GPU fed; the same "
            f"batches as without (default {default('workers')}: the loop makes them)",
        )
        g.add_argument(
            "--max-minutes",
            type=float,
            metavar="M",
            help="stop after M minutes with a checkpoint and the model as it is; the same command "
            "with --resume goes on (default: run all --steps)",
        )
        g.add_argument(
            "--deepspeed",
            metavar="FILE",
            help="a DeepSpeed config (JSON, ZeRO stage 0-2) for several GPUs with less memory each: "
            "docs/deepspeed-zero2.json (needs requirements-deepspeed.txt: docs/cli.md)",
        )
        g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        k.set_defaults(train=run_train_kind)
    e = sub.add_parser(
        "export",
        help="assemble a StableDiffusionPipeline folder with its ControlNets",
        description="Assemble a StableDiffusionPipeline folder (DDIM scheduler, no safety checker) "
        "with each ControlNet in controlnet-<condition>/ beside it, loadable with "
        "StableDiffusionControlNetPipeline.from_pretrained(FOLDER, controlnet=...).",
        formatter_class=Formatter,
    )
    e.add_argument("--base", required=True, metavar="ID_OR_DIR", help="the base pipeline (`train base` output)")
    e.add_argument("--vae", metavar="DIR", help="a VAE to use instead of the base's")
    e.add_argument(
        "--controlnet",
        type=controlnet_source,
        action="append",
        metavar="CONDITION=DIR",
        help="a trained ControlNet (repeatable)",
    )
    e.add_argument("--out", required=True, metavar="FOLDER", help="where to write the pipeline")
    e.add_argument("--dtype", choices=list(EXPORT_DTYPES), default="fp16", help="weights' type (default fp16)")
    e.set_defaults(train=run_export)


def train_epilog() -> str:
    return "\n".join(
        [
            "examples:",
            "  # the small world on 2 CPU cores (the wall times of each: docs/training-log.md)",
            f"  {PROG} train vae --out runs/vae --steps 2000",
            f"  {PROG} train base --vae runs/vae --out runs/base --steps 10000",
            f"  {PROG} train controlnet --condition canny --base runs/base --out runs/canny --steps 3000",
            f"  {PROG} train export --base runs/base --controlnet canny=runs/canny --out runs/pipeline",
            "  # SD1.5 on a GPU, the paper's recipe on your own fill50k-style folder (prompt.json, source/, target/)",
            f"  {PROG} train controlnet --base stable-diffusion-v1-5/stable-diffusion-v1-5 --data fill50k \\",
            "      --resolution 512 --batch-size 4 --lr 1e-5 --mixed-precision fp16 --gradient-checkpointing --out runs/fill50k",
            "  # after an interruption: the same command with --resume",
        ]
    )


def run_train_kind(args: argparse.Namespace) -> int:
    check_device(args.device)
    quiet_libraries()
    from ..lab.training import train

    given = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(TrainConfig)
        if getattr(args, f.name, None) is not None
    }
    out = train(TrainConfig(**given), progress=not args.quiet)
    print(f"model {out}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    quiet_libraries()
    from ..lab.training import export

    out = export(args.base, output_dir(args.out), dict(args.controlnet or []), args.vae, args.dtype)
    print(f"pipeline {out}")
    return 0
