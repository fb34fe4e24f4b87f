"""How well a model and its ControlNets follow their conditions and prompts, on held-out synthetic scenes."""

from .metrics import METRIC_NAMES, depth_agreement, edge_f1, pose_overlap, score, scribble_f1
from .run import (
    EVAL_SEED,
    MIN_MATCHED,
    MIN_PROMPT,
    MIN_SHUFFLED,
    RATIO,
    evaluate,
    format_table,
    load_engine,
    passes,
    quick_check,
    summary,
)

__all__ = [
    "EVAL_SEED",
    "METRIC_NAMES",
    "MIN_MATCHED",
    "MIN_PROMPT",
    "MIN_SHUFFLED",
    "RATIO",
    "depth_agreement",
    "edge_f1",
    "evaluate",
    "format_table",
    "load_engine",
    "passes",
    "pose_overlap",
    "quick_check",
    "score",
    "scribble_f1",
    "summary",
]
