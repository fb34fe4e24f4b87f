"""Training the offline model and ControlNets for any SD1.5-style base: settings (`config`), the paper's recipe
(`recipe`), what each kind trains (`tasks`), the data stream (`data`), the accelerate loop (`loop`), the export."""

from .config import LEARNING_RATES, MIXED_PRECISIONS, TrainConfig, check
from .data import Examples
from .export import EXPORT_DTYPES, converged_at, export, largest_jump, training_curve
from .loop import DTYPES, train
from .recipe import drop_prompts, lock, noise_loss
from .tasks import TASKS, load_base

__all__ = [
    "DTYPES",
    "EXPORT_DTYPES",
    "LEARNING_RATES",
    "MIXED_PRECISIONS",
    "TASKS",
    "Examples",
    "TrainConfig",
    "check",
    "converged_at",
    "drop_prompts",
    "export",
    "largest_jump",
    "load_base",
    "lock",
    "noise_loss",
    "train",
    "training_curve",
]
