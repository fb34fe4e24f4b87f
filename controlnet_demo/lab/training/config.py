"""A training run's settings, their defaults and their checks: the CLI builds its options from them."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import UserInputError
from ...models.architectures import MODEL_CONFIGS

KINDS = ("vae", "base", "controlnet", "lcm")
LEARNING_RATES = {
    "vae": 2e-4,
    "base": 2e-4,
    "controlnet": 1e-4,
    "lcm": 1e-4,
}  # from scratch; use --lr 1e-5 for SD1.5's ControlNets
MIXED_PRECISIONS = ("no", "fp16", "bf16")  # "no": float32 throughout
# diffusers.optimization.get_scheduler's names that need no extra settings
LR_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial")


@dataclass
class TrainConfig:
    kind: str  # vae, base, controlnet or lcm
    out: str  # the final model, checkpoints/ and metrics.jsonl go here
    model_size: str = "small"  # vae and base: a key of MODEL_CONFIGS
    vae: str | None = None  # base: the locked VAE (a folder `train vae` wrote)
    base: str | None = None  # controlnet, lcm: the locked base, a hub id or a StableDiffusionPipeline folder
    init: str | None = None  # base: start from this pipeline folder's U-Net and text encoder instead of random;
    # controlnet: from this ControlNet folder instead of the base U-Net's copy (fresh optimizer, both)
    condition: str = "canny"  # controlnet: which map of the world (a label for a fill50k-style folder)
    data: str | None = None  # a dataset folder; None = world examples generated on the fly
    world_warp: float = 0.0  # world data: share of shapes drawn irregular (world.WorldConfig.warp)
    resolution: int = 64
    steps: int = 1000  # optimizer steps
    batch_size: int = 32  # examples per forward pass; an optimizer step sees batch_size x gradient_accumulation
    gradient_accumulation: int = 1
    lr: float | None = None  # None = the kind's default (LEARNING_RATES)
    lr_scheduler: str = "constant"  # a name of LR_SCHEDULERS
    lr_warmup_steps: int = 0
    seed: int = 0
    empty_prompt_share: float = 0.5  # controlnet: the paper's 50 %
    prompt_dropout: float = 0.1  # base: empty prompts, so classifier-free guidance has an unconditional model
    v_prediction: bool = False  # base: v-prediction on zero-terminal-SNR betas (ZERO_SNR_SCHEDULER_CONFIG)
    lora_rank: int = 32  # lcm: the LoRA's rank (alpha the same)
    guidance_min: float = 4.0  # lcm: the teacher's CFG scale, drawn per example in [min, max] (the app's scale)
    guidance_max: float = 6.0
    ddim_steps: int = 50  # lcm: the teacher's solver grid (LCMScheduler's original_inference_steps)
    kl_weight: float = 1e-6  # vae: a light KL keeps the latent space smooth without blurring
    max_grad_norm: float = 1.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = False
    eval_every: int = 0  # controlnet on world data: log controllability every N steps (0 = never)
    eval_samples: int = 4  # held-out scenes per measurement
    mixed_precision: str = "no"  # no, fp16 or bf16: the locked parts stored in it, the trained ones float32
    gradient_checkpointing: bool = False
    device: str | None = None  # None = cuda when available
    workers: int = 0  # processes making the batches ahead of the loop (0: the loop makes them); same batches
    max_minutes: float | None = None  # stop after this long with a checkpoint and the model (--resume goes on)
    deepspeed: str | None = None  # a DeepSpeed config file (JSON): ZeRO through accelerate (lab.training.zero)

    @property
    def learning_rate(self) -> float:
        return self.lr or LEARNING_RATES[self.kind]


# Options a resumed run must share with its checkpoint, or it would not continue the same run (the learning rate
# and its schedule are in the checkpoint: a run that wants another one starts anew with --init; --steps may grow
# only under a constant rate, loop.load_checkpoint checks that).
RUN_IDENTITY = (
    "kind",
    "model_size",
    "vae",
    "base",
    "init",
    "condition",
    "data",
    "world_warp",
    "resolution",
    "batch_size",
    "gradient_accumulation",
    "seed",
    "v_prediction",
    "lora_rank",
    "guidance_min",
    "guidance_max",
    "ddim_steps",
    "lr",
    "lr_scheduler",
    "lr_warmup_steps",
    "mixed_precision",  # an fp16 run's checkpoint holds its loss scaler, the others none
)


def default(name: str):
    """A TrainConfig field's default (the one place the defaults live)."""
    return TrainConfig.__dataclass_fields__[name].default


def check(config: TrainConfig) -> None:
    """Refuse settings that cannot run, naming the option."""
    choices = (
        ("kind", KINDS),
        ("model_size", MODEL_CONFIGS),
        ("mixed_precision", MIXED_PRECISIONS),
        ("lr_scheduler", LR_SCHEDULERS),
    )
    for name, allowed in choices:
        if getattr(config, name) not in allowed:
            raise UserInputError(
                f"--{name.replace('_', '-')} takes {', '.join(allowed)}; got {getattr(config, name)!r}."
            )
    for name in ("steps", "batch_size", "checkpoint_every", "resolution", "gradient_accumulation", "lora_rank"):
        if getattr(config, name) < 1:
            raise UserInputError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(config, name)}.")
    for name in ("empty_prompt_share", "prompt_dropout", "world_warp"):
        if not 0 <= getattr(config, name) <= 1:
            raise UserInputError(f"--{name.replace('_', '-')} is a share, 0..1; got {getattr(config, name)}.")
    if not 2 <= config.ddim_steps <= 1000:
        raise UserInputError(f"--ddim-steps takes 2..1000; got {config.ddim_steps}.")
    if config.workers < 0:
        raise UserInputError(f"--workers must be 0 or more; got {config.workers}.")
    if config.lr_warmup_steps < 0:
        raise UserInputError(f"--lr-warmup-steps must be 0 or more; got {config.lr_warmup_steps}.")
    if config.lr is not None and not config.lr > 0:
        raise UserInputError(f"--lr must be more than 0; got {config.lr}.")
    if config.max_minutes is not None and not config.max_minutes > 0:
        raise UserInputError(f"--max-minutes must be more than 0; got {config.max_minutes}.")
    if config.world_warp and config.data is not None:
        raise UserInputError("--world-warp changes the generated world; it does nothing with --data. Drop one of them.")
