"""The model presets: which base model and which ControlNet serves each condition, in one table.

Measured figures are not written here: the embedded model's scores ship beside it in evaluation.json
(`models.curves`), and the UI renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..conditions import CONDITIONS
from ..errors import UserInputError, quoted
from ..paths import OFFLINE_MODEL_DIR

OFFLINE_LCM_DIR = OFFLINE_MODEL_DIR / "lcm-lora"
LCM_LORA_FILE = "pytorch_lora_weights.safetensors"  # diffusers' name, as in latent-consistency/lcm-lora-sdv1-5


@dataclass(frozen=True)
class FewStep:
    """A few-step way to sample a preset's base: the distillation LoRA it needs (None: the base as it is) and the
    sampler, steps and guidance that LoRA was made for (its model card's)."""

    label: str
    scheduler: str  # a key of engine.schedulers' table
    steps: int
    guidance: float
    lora: str | None = None  # hub id or folder
    weight_name: str | None = None  # the LoRA's file in it


RANDOM = "builtin:tiny-random"  # the tiny model built from configs, random weights
FULL = "full"  # the speed every preset has: the paper's path, the preset's steps and guidance, no LoRA


@dataclass(frozen=True)
class Sampling:
    """What a speed means for a request: its default steps and guidance, its sampler (None: the request's own, the
    full path) and the LoRA to turn on (Request.lora; None: none)."""

    steps: int
    guidance: float
    scheduler: str | None
    lora: str | None


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    base: str  # hub id, local folder, or "builtin:*" for a model built from configs
    # which of a condition's checkpoints (conditions.Condition.checkpoints) serves it, relative to `folder` when
    # given; RANDOM: a randomly initialised ControlNet for every condition
    family: str
    resolution: tuple[int, int, int, int]  # (min, max, step, default) of the output's longer side
    steps: int = 20
    guidance: float = 7.5
    banner: str | None = None  # shown at the top of the UI when this preset is active
    detect_resolution: int = 512  # default preprocessor resolution: what the ControlNets were trained at
    folder: Path | None = None
    overrides: dict[str, str] = field(default_factory=dict)  # condition -> a ControlNet in place of the table's
    # an AutoencoderTiny (hub id / folder) that decodes live previews; None: the base's own VAE does (small models)
    preview_vae: str | None = None
    # name -> a few-step way to sample; the first one is what the live canvas draws with. Only those whose LoRA can
    # be loaded are kept when the preset is resolved
    few_step: dict[str, FewStep] = field(default_factory=dict)

    @property
    def controlnets(self) -> dict[str, str]:
        """condition -> the ControlNet serving it (hub id, local folder or "builtin:*"), in the table's order: the
        table's checkpoint of this preset's family, or the override given for it."""
        served = {}
        for name, cond in CONDITIONS.items():
            found = cond.checkpoints.get(self.family)
            if self.family == RANDOM:
                found = f"{RANDOM}:{name}"
            elif found is not None and self.folder is not None:
                found = str(self.folder / found)
            if name in self.overrides or found is not None:
                served[name] = self.overrides.get(name, found)
        return served

    def examples(self, condition: str) -> tuple:
        """The example rows (file under assets/examples, prompt, preprocessor) of a condition, for this preset."""
        return CONDITIONS[condition].examples_for(self.family)

    def speeds(self) -> tuple[str, ...]:
        return (FULL, *self.few_step)

    def sampling(self, speed: str) -> Sampling:
        """The speed's defaults, sampler and LoRA; an unknown speed is an error naming the offered ones."""
        if speed not in self.speeds():
            raise UserInputError(
                "Unknown speed {speed}; this model offers: {choices} (a few-step LoRA that is not downloaded or cached "
                "is not offered).",
                speed=quoted(speed),
                choices=", ".join(self.speeds()),
            )
        few = self.few_step.get(speed)
        if few is None:
            return Sampling(self.steps, self.guidance, None, None)
        return Sampling(few.steps, few.guidance, few.scheduler, speed if few.lora is not None else None)

    @property
    def live_speed(self) -> str:
        return next(iter(self.few_step), FULL)


SD15 = Preset(
    name="sd15",
    title="Stable Diffusion 1.5 + ControlNet 1.1",
    base="stable-diffusion-v1-5/stable-diffusion-v1-5",
    family="sd15",
    resolution=(256, 768, 64, 512),
    preview_vae="madebyollin/taesd",  # TAESD: SD1.5's latent space, ~2.4 M parameters
    few_step={
        # diffusers' LCM guide pairs it with the ControlNet pipeline: 4 steps, guidance about 1.5
        "lcm": FewStep(
            "LCM-LoRA, 4 steps",
            "LCM",
            4,
            1.5,
            "latent-consistency/lcm-lora-sdv1-5",
            "pytorch_lora_weights.safetensors",
        ),
        # its model card: DDIM with trailing timesteps, 8 steps, guidance 5 to 8
        "hyper": FewStep(
            "Hyper-SD15 8-step CFG LoRA",
            "DDIM trailing",
            8,
            5.0,
            "ByteDance/Hyper-SD",
            "Hyper-SD15-8steps-CFG-lora.safetensors",
        ),
    },
)

OFFLINE = Preset(
    name="offline",
    title="Offline: small model trained on a synthetic world",
    base=str(OFFLINE_MODEL_DIR),
    family="offline",
    folder=OFFLINE_MODEL_DIR,
    resolution=(64, 128, 64, 64),
    steps=20,
    guidance=5.0,
    detect_resolution=64,
    few_step={  # this project's LoRA, by latent consistency distillation of the base (`train lcm`): no CFG pass
        "lcm": FewStep("LCM-LoRA (distilled here), 4 steps", "LCM", 4, 1.0, str(OFFLINE_LCM_DIR), LCM_LORA_FILE),
    },
    banner=(
        "**Offline mode.** Stable Diffusion 1.5 could not be reached or found in the local cache, so the app runs "
        "its embedded model: the same architecture, small (64×64 px), trained by this project on a synthetic world "
        "of flat shapes and stick-figure people. Its pictures are small and soft (squares and stars come out "
        "rounded); its edge, line-art, scribble, depth and pose ControlNets put shapes and figures where the map has them, "
        "hand drawings and photos' edges more weakly; the other conditions need SD1.5. Every control works on it. Run "
        "once with internet access to get SD1.5."
    ),
)

TINY = Preset(
    name="tiny",
    title="Tiny random SD-architecture model",
    base=RANDOM,
    family=RANDOM,
    resolution=(64, 256, 64, 128),
    steps=10,
    detect_resolution=128,
    few_step={"fast": FewStep("UniPC, 4 steps (no LoRA)", "UniPC", 4, 7.5)},
    banner=(
        "**Offline mode, no trained model.** Stable Diffusion 1.5 could not be reached or found in the local "
        "cache, and the embedded model is not installed, so the app runs a tiny, randomly initialised model "
        "with the same architecture. Every control, preprocessor and setting works, but **its images are "
        "noise**: they show the mechanics, not pictures."
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (SD15, OFFLINE, TINY)}


def offline_fallback() -> Preset:
    """The embedded trained model when it is complete (base and every ControlNet), else the random tiny one."""
    parts = [Path(OFFLINE.base) / "model_index.json"] + [Path(c) / "config.json" for c in OFFLINE.controlnets.values()]
    return OFFLINE if all(p.is_file() for p in parts) else TINY
