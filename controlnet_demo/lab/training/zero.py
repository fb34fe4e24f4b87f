"""DeepSpeed ZeRO for the training loop, through accelerate's DeepSpeed plugin: `train ... --deepspeed FILE` (or
`accelerate launch` with a DeepSpeed config). ZeRO-2 splits the optimizer's state and the gradients over the
processes (and may keep the optimizer's state in CPU memory), so each GPU holds less than with plain data parallel.

The loop keeps calling its models' own methods: with ZeRO-1 and ZeRO-2 every process holds all the trained weights,
and DeepSpeed's gradient hooks sit on the parameters themselves, so a forward pass outside its engine is fine;
ZeRO-3, which splits the weights too, is refused. What the config file leaves "auto" comes from the run's own
settings (batch size, gradient accumulation, clipping, mixed precision); the optimizer and schedule are the loop's."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import UserInputError

_FROM_THE_RUN = (  # DeepSpeed's key, the TrainConfig field it must equal, the option's name
    ("train_micro_batch_size_per_gpu", "batch_size", "--batch-size"),
    ("gradient_accumulation_steps", "gradient_accumulation", "--gradient-accumulation"),
    ("gradient_clipping", "max_grad_norm", "the loop's clipping"),
)


def read(path: str, run) -> dict:
    """A DeepSpeed config file, checked for what this loop can run and against the run's settings."""
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserInputError(f"--deepspeed {path}: the file could not be read ({exc.strerror}).") from None
    except json.JSONDecodeError as exc:
        raise UserInputError(f"--deepspeed {path} is not JSON ({exc.msg}, line {exc.lineno}).") from None
    if not isinstance(config, dict):
        raise UserInputError(f"--deepspeed {path} must hold a JSON object (DeepSpeed's config).")
    stage = config.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2):
        raise UserInputError(
            f"--deepspeed {path} asks for ZeRO stage {stage}; this loop runs stages 0 to 2 (stage 3 splits the "
            "weights themselves, and the loop calls its models directly)."
        )
    for key in ("optimizer", "scheduler"):
        if key in config:
            raise UserInputError(
                f"--deepspeed {path} sets a {key}; the loop brings its own (AdamW and --lr-scheduler): remove it."
            )
    _against(config, run)
    return config


def _against(ds: dict, run) -> None:
    for key, field, option in _FROM_THE_RUN:
        wanted, given = getattr(run, field), ds.get(key, "auto")
        if given != "auto" and float(given) != float(wanted):
            raise UserInputError(
                f'The DeepSpeed config sets {key} to {given}, but {option} is {wanted}: set it to "auto" or to '
                f"{wanted}."
            )


def plugin(config):
    """accelerate's DeepSpeed plugin for `--deepspeed`, or None (then `accelerate launch` may still bring one)."""
    if config.deepspeed is None:
        return None
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        raise UserInputError(
            "--deepspeed needs DeepSpeed: pip install --no-build-isolation -r requirements-deepspeed.txt (docs/cli.md)."
        ) from None
    from accelerate import DeepSpeedPlugin

    return DeepSpeedPlugin(hf_ds_config=read(config.deepspeed, config))


def process_group(config) -> list:
    """accelerate's process-group settings: with DeepSpeed on a machine without GPUs (tests, a CPU cluster), gloo;
    accelerate would otherwise see no backend and count each process as alone."""
    import torch

    if config.deepspeed is None or torch.cuda.is_available():
        return []
    from accelerate.utils import InitProcessGroupKwargs

    return [InitProcessGroupKwargs(backend="gloo")]


def in_use(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return accelerator.distributed_type == DistributedType.DEEPSPEED


def check_checkpoint(accelerator, folder: Path) -> None:
    """A checkpoint to resume from is of this run's kind: DeepSpeed's (its engine's folder) with DeepSpeed, else
    accelerate's."""
    theirs = (folder / "pytorch_model").is_dir()  # DeepSpeed's engine writes its state there
    if theirs != in_use(accelerator):
        raise UserInputError(
            f"--resume: {folder} was written "
            + ("with DeepSpeed: resume with the same --deepspeed" if theirs else "without DeepSpeed: resume without it")
            + ", or start anew from its model with --init."
        )


def fill(accelerator, config, trainable: dict) -> None:
    """The DeepSpeed config's "auto" (or missing) values from the run's settings; a number that differs, ZeRO-3 (also
    from `accelerate launch`) or more than one trained module is refused."""
    ds_plugin = accelerator.state.deepspeed_plugin
    if ds_plugin.zero_stage == 3:
        raise UserInputError("DeepSpeed ZeRO stage 3 splits the weights themselves; this loop runs stages 0 to 2.")
    if len(trainable) != 1:
        raise UserInputError(
            f"--deepspeed trains one module; this run trains {len(trainable)} ({', '.join(trainable)})."
        )
    ds = ds_plugin.deepspeed_config
    _against(ds, config)
    for key, field, _ in _FROM_THE_RUN:
        if ds.get(key, "auto") == "auto":
            ds[key] = getattr(config, field)
