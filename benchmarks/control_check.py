"""Where the control check's thresholds come from: its score on results that follow their map (control at full
strength) and on results that cannot (strength 0: the ControlNet does not run), same scenes, prompts and seeds.

    python -m benchmarks.control_check --n 24     # the offline model on held-out world scenes, 2 CPU cores: minutes

Per condition it prints the scores' quartiles both ways and the share the threshold calls "follows". Depth and pose
are scored only where the MiDaS / OpenPose weights are cached (not offline).
"""

from __future__ import annotations

import argparse
import json

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=24, help="held-out scenes per condition")
    parser.add_argument("--speed", default="full", help="full, or the offline model's few-step speed (lcm)")
    args = parser.parse_args()

    from controlnet_demo.conditions import CONDITIONS, Detectors
    from controlnet_demo.conditions.check import check_control
    from controlnet_demo.engine import ControlUnit, Request
    from controlnet_demo.lab import world
    from controlnet_demo.lab.evaluate.run import EVAL_SEED, load_engine
    from controlnet_demo.models.presets import OFFLINE
    from controlnet_demo.paths import OFFLINE_MODEL_DIR
    from controlnet_demo.settings import Settings

    engine = load_engine(OFFLINE_MODEL_DIR)
    detectors = Detectors(Settings.from_env().annotators, online=False)
    sampling = OFFLINE.sampling(args.speed)
    report = {}
    for condition in world.MAPS:
        scores = {"followed (strength 1)": [], "ignored (strength 0)": []}
        found = 0
        i = 0
        while found < args.n:
            ex = world.example(np.random.default_rng([EVAL_SEED + 7, i]), 64)
            i += 1
            if condition == "pose" and ex.scene.person is None:
                continue
            found += 1
            for values, strength in zip(scores.values(), (1.0, 0.0)):
                unit = ControlUnit(condition, ex.maps[condition], strength=strength)
                request = Request(
                    ex.prompt,
                    [unit],
                    steps=sampling.steps,
                    guidance_scale=sampling.guidance,
                    seed=i,
                    width=64,
                    height=64,
                    scheduler=sampling.scheduler or "UniPC",
                    lora=sampling.lora,
                )
                images = engine.generate(request).images
                check = check_control(
                    CONDITIONS[condition], images, ex.maps[condition], "none", {}, detectors, strength
                )
                values.append(check.score)
        row = {}
        for name, values in scores.items():
            if any(v is None for v in values):
                row[name] = "not scored (no detector weights here)"
                continue
            q = np.percentile(values, [10, 25, 50, 75, 90]).round(3).tolist()
            row[name] = dict(
                p10_25_50_75_90=q,
                follows=round(float(np.mean(np.array(values) >= CONDITIONS[condition].check.threshold)), 3),
            )
        report[condition] = dict(threshold=CONDITIONS[condition].check.threshold, **row)
    print(json.dumps(dict(n=args.n, speed=args.speed, steps=sampling.steps, conditions=report), indent=1))


if __name__ == "__main__":
    main()
