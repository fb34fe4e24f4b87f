"""What ships measured beside a model: each ControlNet's training curve and the model's evaluation scores.

`train export` writes controlnet-<condition>/training_curve.json; `controlnet-demo evaluate --out` writes
evaluation.json beside the pipeline. The UI, the banner and the docs read them here, so a retraining changes
data files, not code.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import Message, message

CURVE_FILE = "training_curve.json"
EVALUATION_FILE = "evaluation.json"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # absent (a hub model) or damaged: nothing measured to show
        return None


def training_curves(controlnets: dict[str, str]) -> dict[str, dict]:
    """condition -> the training curve shipped in that ControlNet's folder, for the local ones that have one."""
    curves = {c: _read(Path(source) / CURVE_FILE) for c, source in controlnets.items()}
    return {c: curve for c, curve in curves.items() if curve is not None}


def evaluation(base: str) -> dict | None:
    """The evaluation summary shipped beside a local pipeline folder, or None (also when it lacks a figure the app
    shows: a damaged or foreign file must not keep the app from starting)."""
    scores = _read(Path(base) / EVALUATION_FILE)
    try:
        figures = [scores[k] for k in ("n", "steps", "guidance", "prompt_main")] + [
            r[k] for r in scores["conditions"].values() for k in ("matched", "shuffled", "ratio", "prompt_main")
        ]
    except (TypeError, KeyError, AttributeError):
        return None
    return scores if scores["conditions"] and all(isinstance(x, (int, float)) for x in figures) else None


def quality_line(scores: dict) -> Message:
    """One sentence of what an evaluation measured, for the banner: the range of the ControlNets' margins over
    chance and the prompt adherence."""
    ratios = [r["ratio"] for r in scores["conditions"].values()]
    return message(
        "Measured on {n} held-out scenes per condition: the ControlNets follow their map {lo}–{hi}× better than "
        "chance, and the prompt's colour and shape are right in {pct} % of samples.",
        n=scores["n"],
        lo=f"{min(ratios):.1f}",
        hi=f"{max(ratios):.1f}",
        pct=f"{100 * scores['prompt_main']:.1f}",
    )
