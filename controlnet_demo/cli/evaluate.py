"""`evaluate`: how well the offline model (or any pipeline folder) follows its conditions, on the world; or
ControlNet++'s protocol on a folder of photos through the app's service (`--pairs`). The lab loads only when the
command runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..engine import SCHEDULERS
from ..models.presets import FULL, OFFLINE
from ..paths import OFFLINE_MODEL_DIR
from .generate import output_dir, quiet_libraries
from .options import FAILED, PROG, device_name, scheduler_name


def configure_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model",
        default=str(OFFLINE_MODEL_DIR),
        metavar="DIR",
        help="pipeline folder with controlnet-<condition>/ beside it (default: the embedded model)",
    )
    p.add_argument(
        "--conditions", default=None, metavar="A,B", help="comma-separated (default: every ControlNet found)"
    )
    p.add_argument("--n", type=int, default=50, help="held-out scenes per condition (default 50)")
    p.add_argument("--seed", type=int, default=0, help="picks the held-out scenes and the noise (default 0)")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default: the offline preset's, 20)")
    p.add_argument("--guidance", type=float, default=None, help="CFG scale (default: the offline preset's, 5)")
    p.add_argument(
        "--scheduler",
        type=scheduler_name,
        choices=SCHEDULERS,
        default="UniPC",
        help="sampler of the full path (default UniPC; a --speed brings its own)",
    )
    p.add_argument(
        "--speed",
        choices=OFFLINE.speeds(),
        default=FULL,
        help=f"{FULL}: the paper's path; or a few-step way of the offline model, with its sampler, steps and "
        "guidance (its LoRA from the model's lcm-lora/)",
    )
    p.add_argument(
        "--lora", metavar="DIR", default=None, help="the few-step LoRA from this folder (`train lcm` output)"
    )
    p.add_argument("--size", type=int, default=None, help="image side in px (default 64; with --pairs 512)")
    p.add_argument(
        "--pairs",
        type=Path,
        default=None,
        metavar="DIR",
        help="ControlNet++'s protocol instead, through the app's service, on this folder's images with a caption "
        "beside each (photo.png + photo.txt): canny F1 and depth RMSE as it defines them, 512 px, UniPC, 20 "
        "steps, CFG 7.5, 4 seeds (--conditions canny,depth; the model: --preset)",
    )
    p.add_argument(
        "--preset", default="auto", help="with --pairs: the app's preset (default auto: sd15 where it is cached)"
    )
    p.add_argument("--limit", type=int, default=None, metavar="N", help="with --pairs: the first N pairs only")
    p.add_argument("--device", type=device_name, default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the fast check (n 4, 10 steps, no baseline); exit status 1 when a condition fails",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the scores as JSON (per condition, no samples): with the model's folder's "
        "evaluation.json the app's banner and How tab show them",
    )
    p.add_argument("--samples", type=Path, default=None, metavar="FILE", help="write every sample's scores as JSON")


def run_evaluate(args: argparse.Namespace) -> int:
    from ..lab.evaluate import evaluate, format_table, quick_check, summary

    quiet_libraries()
    conditions = args.conditions.split(",") if args.conditions else None
    if args.pairs is not None:
        return _run_pairs(args, conditions)
    args.size = args.size or 64
    if args.quick:
        results = quick_check(args.model, conditions, device=args.device, size=args.size, seed=args.seed)
    else:
        results = evaluate(
            args.model,
            conditions,
            n=args.n,
            seed=args.seed,
            steps=args.steps,
            guidance=args.guidance,
            size=args.size,
            device=args.device,
            progress=True,
            scheduler=args.scheduler,
            speed=args.speed,
            lora=args.lora,
        )
    for path, value in ((args.out, summary(results)), (args.samples, results)):
        if path is not None:
            output_dir(str(path.parent))
            path.write_text(json.dumps(value, indent=1) + "\n")
    print(format_table(results))
    return FAILED if args.quick and not results["passed"] else 0


def _run_pairs(args: argparse.Namespace, conditions) -> int:
    from ..lab.evaluate.controlnet_pp import evaluate_pairs
    from ..service import ControlNetService
    from ..settings import Settings

    service = ControlNetService(Settings(preset=args.preset, device=args.device))
    protocol = {"resolution": args.size} if args.size else None
    results = evaluate_pairs(service, args.pairs, conditions or ("canny", "depth"), args.limit, protocol)
    if args.out is not None:
        output_dir(str(args.out.parent))
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"ControlNet++'s protocol on {args.pairs} with the {results['model']} preset:")
    for condition, r in results["conditions"].items():
        print(f"  {condition}: {r['metric']} {r['value']:.2f} over {r['n']} images (ControlNet 1.1 on SD1.5 in "
              f"ControlNet++'s table: {r['reported']:g})")  # fmt: skip
    return 0


def evaluate_epilog() -> str:
    return "\n".join(
        [
            "examples:",
            f"  {PROG} evaluate --n 50 --out assets/offline-model/evaluation.json",
            f"  {PROG} evaluate --model runs/pipeline --quick",
            f"  {PROG} evaluate --pairs my_photos/ --preset sd15 --out controlnet_pp.json   # a GPU",
        ]
    )
