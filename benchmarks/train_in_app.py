"""How long the app's "Train one yourself" tab takes to show sudden convergence: the tab's own trainer
(`lab.training.job.Trainer`) with the tab's defaults, timed from Start, on this machine.

Reports every probe (step, seconds since Start, matched, shuffled), the largest jump and when matched first passed
the evaluation's rule (at least 3x shuffled) and stayed there. From the repo root, alone on the machine:

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.train_in_app                       # the tab's defaults
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.train_in_app --steps 1000 --batch 8 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time


def main() -> None:
    from controlnet_demo.lab.training.job import BATCH, PROBE_EVERY, STEPS, Trainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--condition", default="canny")
    parser.add_argument("--steps", type=int, default=STEPS["default"])
    parser.add_argument("--batch", type=int, default=BATCH["default"])
    parser.add_argument("--probe-every", type=int, default=PROBE_EVERY["default"])
    parser.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()

    began = time.monotonic()
    job = Trainer(device=args.device).start(
        "benchmark", condition=args.condition, steps=args.steps, batch_size=args.batch, probe_every=args.probe_every
    )
    probes, seen = [], 0
    for snapshot in job.updates():
        for step, matched, shuffled in snapshot.probes[seen:]:
            at = time.monotonic() - began
            probes.append(dict(step=step, seconds=round(at, 1), matched=round(matched, 4), shuffled=round(shuffled, 4)))
            print(f"step {step:5d}  {at:7.1f} s  matched {matched:.3f}  shuffled {shuffled:.3f}", flush=True)
        seen = len(snapshot.probes)
    end = job.snapshot
    if end.state != "done":
        raise SystemExit(f"the run ended {end.state}: {end.message}")
    at = {p["step"]: p["seconds"] for p in probes}
    result = dict(
        condition=args.condition,
        steps=args.steps,
        batch_size=args.batch,
        probe_every=args.probe_every,
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs" if args.device in (None, "cpu") else args.device,
        seconds=round(time.monotonic() - began, 1),
        median_seconds_per_step=round(end.seconds_per_step, 3),
        largest_jump=list(end.jump) if end.jump else None,
        largest_jump_done_after_s=at.get(end.jump[1]) if end.jump else None,
        converged_at=end.converged_at,
        converged_after_s=at.get(end.converged_at),
        probes=probes,
    )
    print(json.dumps({k: v for k, v in result.items() if k != "probes"}, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
