"""The model presets: which base model and which ControlNet serves each condition, in one table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    base: str  # hub id, local folder, or "builtin:*" for a model built from configs
    controlnets: dict[str, str]  # condition -> hub id / local folder / "builtin:*"
    resolution: tuple[int, int, int, int]  # (min, max, step, default) of the output's longer side
    steps: int = 20
    guidance: float = 7.5
    banner: str | None = None  # shown at the top of the UI when this preset is active
    examples_prompt: dict[str, str] = field(default_factory=dict)


SD15 = Preset(
    name="sd15",
    title="Stable Diffusion 1.5 + ControlNet 1.1",
    base="stable-diffusion-v1-5/stable-diffusion-v1-5",
    controlnets={
        "canny": "lllyasviel/control_v11p_sd15_canny",
        "pose": "lllyasviel/control_v11p_sd15_openpose",
        "depth": "lllyasviel/control_v11f1p_sd15_depth",
        "scribble": "lllyasviel/control_v11p_sd15_scribble",
    },
    resolution=(256, 768, 64, 512),
)

OFFLINE = Preset(
    name="offline",
    title="Offline: tiny random SD-architecture model",
    base="builtin:tiny-random",
    controlnets={c: f"builtin:tiny-random:{c}" for c in ("canny", "pose", "depth", "scribble")},
    resolution=(64, 256, 64, 128),
    steps=10,
    banner=(
        "**Offline mode.** Stable Diffusion 1.5 could not be reached or found in the local cache, so the app "
        "runs a tiny, randomly initialised model with the same architecture. Every control, preprocessor and "
        "setting works, but **its images are noise**: they show the mechanics, not pictures. Run once with "
        "internet access (or point `CONTROLNET_DEMO_BASE_MODEL` at a local copy) to get SD1.5."
    ),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (SD15, OFFLINE)}
