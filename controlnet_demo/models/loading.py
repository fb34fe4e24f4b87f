"""Model loading: pick the preset (fast, offline-aware), load the base model once, ControlNets lazily.

`resolve_preset` decides within `hub_timeout_s` whether SD1.5 can be served (local folder, hub cache or a
reachable hub); `ModelStore` owns the loaded weights and never swaps them, so concurrent requests cannot see
each other's models. `load_pipeline` and `load_controlnet` are the one way a model is read from disk or the hub,
for the app and for training alike.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import torch
from safetensors import SafetensorError

from ..conditions import CONDITIONS
from ..conditions import condition as known_condition
from ..errors import Message, ModelUnavailableError, UserInputError, message, quoted
from ..paths import shown
from ..settings import Settings, hub_offline
from . import architectures
from .presets import PRESETS, Preset, offline_fallback

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    preset: Preset
    online: bool  # the hub answered: from_pretrained may download
    reason: Message | str  # one line for the log and the UI (str() is the English)


def apply_overrides(preset: Preset, settings: Settings) -> Preset:
    for name in sorted(settings.controlnets):  # any condition of the table: a ControlNet of one's own may serve it
        known_condition(name, context=" (ControlNet overrides: CONTROLNET_DEMO_<CONDITION>_MODEL)")
    return dataclasses.replace(
        preset,
        base=settings.base_model or preset.base,
        overrides={**preset.overrides, **settings.controlnets},
    )


def _source_state(model_id: str, offline: bool, timeout: float, filename: str | None = None) -> str:
    """'local', 'cached', 'online' or 'missing' for one model id (with `filename`: for that file of it)."""
    if model_id.startswith("builtin:"):
        return "local"
    if os.path.isdir(model_id):
        return "local" if filename is None or os.path.isfile(os.path.join(model_id, filename)) else "missing"
    from huggingface_hub import try_to_load_from_cache

    for name in (filename,) if filename else ("model_index.json", "config.json"):
        try:
            hit = try_to_load_from_cache(model_id, name)
        except ValueError:  # HFValidationError: a path that is no folder (e.g. a typo) is no hub id either
            return "missing"
        if isinstance(hit, str):
            return "cached"
    if offline:
        return "missing"
    from huggingface_hub import model_info

    try:
        model_info(model_id, timeout=timeout)
        return "online"
    except Exception:
        return "missing"


def _states(sources: list[tuple[str, str | None]], offline: bool, timeout: float) -> list[str]:
    """_source_state of every (id, file) at once; what has not answered by the deadline counts as missing."""
    states = ["missing"] * len(sources)

    def check(k: int) -> None:
        states[k] = _source_state(sources[k][0], offline, timeout, sources[k][1])

    # daemon threads: a hub that hangs past the deadline must not keep the process from exiting
    threads = [threading.Thread(target=check, args=(k,), daemon=True) for k in range(len(sources))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout + 0.5
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return list(states)


def _servable(preset: Preset, lora_states: list[str]) -> Preset:
    """The preset with only the few-step ways whose LoRA can be loaded (a LoRA-free one always can)."""
    kept = {k: v for (k, v), state in zip(preset.few_step.items(), lora_states) if state != "missing"}
    for name in set(preset.few_step) - set(kept):
        log.info("few-step %s not offered: %s is not available", name, preset.few_step[name].lora)
    return dataclasses.replace(preset, few_step=kept)


def _lora_sources(preset: Preset) -> list[tuple[str, str | None]]:
    return [("builtin:", None) if f.lora is None else (f.lora, f.weight_name) for f in preset.few_step.values()]


def resolve_preset(settings: Settings) -> Resolved:
    """Choose the preset to serve; never waits much longer than `settings.hub_timeout_s`."""
    if settings.preset not in (*PRESETS, "auto"):
        raise UserInputError(
            "Unknown preset {preset}; choose one of: auto, {choices}.",
            preset=quoted(settings.preset),
            choices=", ".join(PRESETS),
        )
    offline = hub_offline()
    if settings.preset != "auto" and settings.preset != "sd15":
        preset = apply_overrides(PRESETS[settings.preset], settings)
        preset = _servable(preset, _states(_lora_sources(preset), True, settings.hub_timeout_s))
        return Resolved(preset, False, message("{preset} preset requested", preset=settings.preset))
    preset = apply_overrides(PRESETS["sd15"], settings)
    ids = [preset.base, *preset.controlnets.values()]
    states = _states([(i, None) for i in ids] + _lora_sources(preset), offline, settings.hub_timeout_s)
    states, lora_states = states[: len(ids)], states[len(ids) :]
    missing = [i for i, s in zip(ids, states) if s == "missing"]
    if not missing:
        online = "online" in states
        return Resolved(
            _servable(preset, lora_states),
            online,
            "SD1.5 " + ("from the hub" if online else "from local files / cache"),
        )
    where = "HF_HUB_OFFLINE is set" if offline else "the hub is not reachable"
    reason = message(
        "not a local folder, not in the hub cache, and {where}: {missing}", where=where, missing=", ".join(missing)
    )
    if settings.preset == "sd15":
        raise ModelUnavailableError("The sd15 preset can't be loaded ({reason}).", reason=reason)
    fallback = apply_overrides(offline_fallback(), settings.replace(base_model=None, controlnets={}))
    return Resolved(_servable(fallback, _states(_lora_sources(fallback), True, settings.hub_timeout_s)), False, reason)


# What a missing, damaged or truncated model raises: diffusers wraps most in OSError/ValueError, but
# transformers lets a truncated text_encoder/model.safetensors through as safetensors' own SafetensorError.
_LOAD_ERRORS = (OSError, ValueError, SafetensorError)
_LOAD_ADVICE = (
    "Check the path or id. If it is cached or downloaded but damaged (e.g. an interrupted download), delete that "
    "model's folder (for a hub id: models--<owner>--<name> in the Hugging Face cache) and run once with internet "
    "access to download it again."
)


def load_pipeline(source: str, dtype: torch.dtype = torch.float32, local_files_only: bool = True):
    """A StableDiffusionPipeline (no safety checker) from a hub id, a folder (SD1.5, or what `train base` wrote) or
    "builtin:tiny-random", every part in `dtype`."""
    from diffusers import StableDiffusionPipeline

    if source.startswith("builtin:"):
        pipe = architectures.tiny_pipeline(seed=0)
        pipe = pipe if dtype == torch.float32 else pipe.to(dtype=dtype)
    else:
        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                source,
                safety_checker=None,
                requires_safety_checker=False,
                dtype=dtype,
                local_files_only=local_files_only,
            )
        except _LOAD_ERRORS as exc:
            raise ModelUnavailableError(
                "The base model {source} could not be loaded ({kind}: {why}). {advice}",
                source=source,
                kind=type(exc).__name__,
                why=str(exc),
                advice=_LOAD_ADVICE,
            ) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe


# the tiny preset's random ControlNets of the first four conditions keep the seeds they had before the table grew (its
# images stay as they were); any other condition's is made from its name
FIRST_SEEDS = {"canny": 1, "depth": 2, "pose": 3, "scribble": 4}


def load_controlnet(
    source: str,
    dtype: torch.dtype = torch.float32,
    local_files_only: bool = True,
    condition: str = "",
):
    """A ControlNetModel from a hub id or folder, or "builtin:tiny-random:<condition>" (random, on the tiny base's
    copy, from a seed of its own: the same whatever other conditions the table holds)."""
    from diffusers import ControlNetModel

    if source.startswith("builtin:"):
        seed = FIRST_SEEDS.get(condition) or 10 + zlib.crc32(source.encode()) % 10_000
        net = architectures.tiny_controlnet(architectures.tiny_unet(seed=0), seed=seed)
        cond = CONDITIONS.get(condition)
        if cond is not None and cond.global_control:  # as its real checkpoint's config says (a shuffle)
            net.register_to_config(global_pool_conditions=True)
        return net if dtype == torch.float32 else net.to(dtype=dtype)
    try:
        return ControlNetModel.from_pretrained(source, dtype=dtype, local_files_only=local_files_only)
    except _LOAD_ERRORS as exc:
        raise ModelUnavailableError(
            "The {condition} ControlNet {source} could not be loaded ({kind}: {why}). {advice}",
            condition=condition,
            source=source,
            kind=type(exc).__name__,
            why=str(exc),
            advice=_LOAD_ADVICE,
        ) from None


# a U-Net smaller than this gets its few-step LoRA fused into a copy of its own (the offline and tiny models: a few
# MB each, and on a CPU the unfused LoRA's extra convolutions cost about as much as the fusing saves); SD1.5's
# U-Net (1.7 GB in fp16) keeps the LoRA as a switchable adapter instead of a second copy per LoRA
FUSE_BELOW_BYTES = 200 * 2**20


def load_lora(
    pipe, source: str, weight_name: str | None, adapter_name: str, local_files_only: bool = True, unet=None
) -> None:
    """A LoRA into the pipeline's U-Net (or `unet`) as adapter `adapter_name`, through diffusers (which reads the
    diffusers, kohya and peft layouts); a text-encoder part, if the file has one, is not loaded: the few-step LoRAs
    have none, and the text encoder's output must stay the same for every request. Loaded switched off."""
    unet = pipe.unet if unet is None else unet
    try:
        state, alphas = pipe.lora_state_dict(source, weight_name=weight_name, local_files_only=local_files_only)
        if not any(k.startswith(f"{pipe.unet_name}.") for k in state):
            raise ValueError("the file has no U-Net weights")
        pipe.load_lora_into_unet(state, alphas, unet, adapter_name=adapter_name, _pipeline=pipe)
    except _LOAD_ERRORS as exc:
        raise ModelUnavailableError(
            "The few-step LoRA {name} ({weights}) could not be loaded ({kind}: {why}). {advice}",
            name=shown(source),
            weights=weight_name,
            kind=type(exc).__name__,
            why=str(exc),
            advice=_LOAD_ADVICE,
        ) from None
    unet.disable_adapters()


def fused_copy(pipe, source: str, weight_name: str | None, local_files_only: bool = True):
    """A copy of the pipeline's U-Net with the LoRA merged into its weights (the original untouched): no adapter
    layers at run time."""
    import copy

    unet = copy.deepcopy(pipe.unet)
    load_lora(pipe, source, weight_name, "fused", local_files_only, unet=unet)
    unet.enable_adapters()
    unet.fuse_lora(adapter_names=["fused"])
    unet.unload_lora()
    return unet.eval()


class ControlNets(Mapping):
    """condition -> the store's ControlNet for it, loaded on first use: what the engine looks its nets up in."""

    def __init__(self, store: ModelStore):
        self._store = store

    def __getitem__(self, condition: str):
        return self._store.controlnet(condition)

    def __contains__(self, condition) -> bool:  # without loading anything
        return condition in self._store.preset.controlnets

    def __iter__(self) -> Iterator[str]:
        return iter(self._store.preset.controlnets)

    def __len__(self) -> int:
        return len(self._store.preset.controlnets)


class Loras(Mapping):
    """few-step name -> the adapter name of its LoRA in the base's U-Net, or a U-Net with it fused in (small
    models), loaded on first use (only the few-step ways that have a LoRA)."""

    def __init__(self, store: ModelStore):
        self._store = store

    def _names(self) -> list[str]:
        return [k for k, v in self._store.preset.few_step.items() if v.lora is not None]

    def __getitem__(self, name: str):
        if name not in self._names():
            raise KeyError(name)
        return self._store.lora(name)

    def __contains__(self, name) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


# Loading models is not thread-safe across stores: the tiny and trained-from-scratch models are built under the
# global torch seed, and diffusers' and accelerate's loaders patch torch.nn.Module while they build (two stores
# loading at once in two request threads gave different weights, and so images, than one store)
_LOADING = threading.RLock()
LOADING = _LOADING  # held by whatever else builds models in the process (a training run in the app)


class ModelStore:
    """The resident weights: one base pipeline, one ControlNet per condition loaded on first use."""

    def __init__(self, resolved: Resolved, device: torch.device, dtype: torch.dtype, channels_last: bool = False):
        self.preset, self.online, self.device, self.dtype = resolved.preset, resolved.online, device, dtype
        self.channels_last = channels_last  # U-Net and ControlNets in channels_last (the fast mode on a GPU)
        self._lock = _LOADING  # one load at a time in the process, whichever store (device) it is for
        self._base = None
        self._controlnets: dict[str, torch.nn.Module] = {}
        self._preview = None  # the loaded tiny VAE, or False once it failed to load
        self._loras: dict[str, object] = {}
        self.controlnets = ControlNets(self)
        self.loras = Loras(self)

    @property
    def base(self):
        """A StableDiffusionPipeline (no safety checker) whose parts the engine drives."""
        with self._lock:
            if self._base is None:
                self._base = self._load_base()
            return self._base

    def controlnet(self, condition: str):
        known_condition(condition, self.preset.controlnets)
        base = self.base
        with self._lock:
            if condition not in self._controlnets:
                self._controlnets[condition] = self._load_controlnet(condition, base)
            return self._controlnets[condition]

    def load_all(self) -> None:
        """Every model the preset can use, loaded onto the device now rather than on first use (ZeroGPU wants the
        weights moved to CUDA at start-up: a move inside the request is much slower there)."""
        for condition in self.preset.controlnets:
            self.controlnet(condition)
        for name in self.loras:
            self.lora(name)
        self.preview_decoder()

    def lora(self, name: str):
        """A few-step LoRA, loaded on first use: its adapter name in the base's U-Net (switched off), or, for a
        U-Net under FUSE_BELOW_BYTES, a copy of the U-Net with the LoRA fused in."""
        base = self.base
        with self._lock:
            if name not in self._loras:
                self._loras[name] = self._load_lora(name, base)
            return self._loras[name]

    def preview_decoder(self):
        """What live previews decode with: the preset's tiny VAE (loaded on first use), the base's own VAE when
        the preset names none (the small models, whose VAE is cheap already), or None when the tiny VAE can't be
        loaded (offline and not cached): then there are no previews, rather than slow ones with the full VAE."""
        if self.preset.preview_vae is None:
            return self.base.vae
        with self._lock:
            if self._preview is None:
                self._preview = self._load_preview()
            return self._preview or None

    # loads run outside inference mode even when a request (inside the engine's inference_mode) triggers them:
    # weights made inside it would be inference tensors, and the fast mode's compiled graphs, guarded on that,
    # would compile again for every model loaded the other way
    @torch.inference_mode(False)
    def _load_preview(self):
        from diffusers import AutoencoderTiny

        source = self.preset.preview_vae
        try:
            vae = AutoencoderTiny.from_pretrained(source, dtype=self.dtype, local_files_only=not self.online)
        except _LOAD_ERRORS as exc:
            log.warning("no live previews: the tiny VAE %s could not be loaded (%s)", source, type(exc).__name__)
            return False
        return _place(vae, self.device, self.dtype).eval()

    @torch.inference_mode(False)
    def _load_base(self):
        log.info("loading base model %s on %s (%s)", self.preset.base, self.device, self.dtype)
        pipe = _place(
            load_pipeline(self.preset.base, self.dtype, local_files_only=not self.online), self.device, self.dtype
        )
        if self.channels_last:
            pipe.unet.to(memory_format=torch.channels_last)
        return pipe

    @torch.inference_mode(False)
    def _load_lora(self, name: str, base):
        speed = self.preset.few_step[name]
        size = sum(p.numel() * p.element_size() for p in base.unet.parameters())
        fuse = size < FUSE_BELOW_BYTES
        log.info("loading few-step LoRA %s (%s)%s", speed.lora, speed.weight_name, " fused" if fuse else "")
        if fuse:
            return _place(fused_copy(base, speed.lora, speed.weight_name, not self.online), self.device, self.dtype)
        load_lora(base, speed.lora, speed.weight_name, name, local_files_only=not self.online)
        base.unet.to(self.device, self.dtype)  # the new LoRA layers, where and as the U-Net is
        return name

    @torch.inference_mode(False)
    def _load_controlnet(self, condition: str, base):
        source = self.preset.controlnets[condition]
        log.info("loading %s ControlNet %s", condition, source)
        net = load_controlnet(source, self.dtype, not self.online, condition)
        architectures.check_fits(net, base, f"{condition} ({shown(source)})", shown(self.preset.base))
        net = _place(net, self.device, self.dtype).eval()
        return net.to(memory_format=torch.channels_last) if self.channels_last else net


def _place(model, device: torch.device, dtype: torch.dtype):
    """Move to the device; cast only when needed (diffusers warns on every cast, even a no-op one)."""
    current = model.dtype if hasattr(model, "dtype") else next(model.parameters()).dtype
    return model.to(device) if current == dtype else model.to(device, dtype)
