"""The denoising engine: a request in, images out, with the ControlNet residuals added the paper's way.

A compact loop over diffusers components (the same text encoding, latents, schedulers and VAE as the stock
StableDiffusionControlNetPipeline, which it equals in "balanced" mode), owning what the stock pipeline lacks:
per-connection scales, control on the conditional CFG branch only, region masks, and not running a
ControlNet at all outside its start/end window. It embeds each control map once per request, where the stock
pipeline embeds it again at every step for every image and CFG branch. No gradio here.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image
from torch.overrides import TorchFunctionMode

from .errors import GenerationCancelled, GenerationTimeout, ModelUnavailableError

# --- control modes: how a unit's strength becomes the 13 connection scales, and which CFG branch gets them ---


def _ramp(strength: float, sizes: list[int]) -> list[float]:
    # official ControlNet "guess mode" scales: the deepest connection full, each shallower one x0.825
    return [strength * 0.825 ** float(len(sizes) - 1 - i) for i in range(len(sizes))]


def _resolution_weights(strength: float, sizes: list[int]) -> list[float]:
    # the paper's CFG resolution weighting: w_i = 64 / h_i at 512x512, i.e. (largest latent size) / h_i
    return [strength * sizes[0] / h for h in sizes]


@dataclass(frozen=True)
class ControlMode:
    label: str
    scales: Callable[[float, list[int]], list[float]]
    cond_branch_only: bool


CONTROL_MODES: dict[str, ControlMode] = {
    "balanced": ControlMode("Balanced", lambda s, sizes: [s] * len(sizes), False),
    "prompt": ControlMode("My prompt is more important", _ramp, False),
    "control": ControlMode("ControlNet is more important", _ramp, True),
    "cfg_resolution": ControlMode("CFG resolution weighting (paper)", _resolution_weights, True),
}


@dataclass
class ControlUnit:
    """One condition of a request; `image` is the control map at the output size, uint8 RGB (H, W, 3)."""

    condition: str
    image: np.ndarray
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    mode: str = "balanced"
    mask: np.ndarray | None = None  # (H, W) in [0, 1]: where this condition applies


@dataclass
class Request:
    prompt: str
    units: list[ControlUnit]
    negative_prompt: str = ""
    steps: int = 20
    guidance_scale: float = 7.5
    seed: int = 0
    num_images: int = 1
    width: int = 512
    height: int = 512
    scheduler: str = "UniPC"


@dataclass
class Result:
    images: np.ndarray  # (B, H, W, 3) float in [0, 1]
    seeds: list[int]
    residual_norms: dict[str, list[float]] = field(default_factory=dict)  # unit label -> mean |residual| per connection
    controlnet_calls: int = 0
    seconds: float = 0.0

    def pil_images(self) -> list[Image.Image]:
        return [Image.fromarray((im * 255).round().astype(np.uint8)) for im in self.images]


def _scheduler_table():
    from diffusers import (
        DDIMScheduler,
        DPMSolverMultistepScheduler,
        EulerAncestralDiscreteScheduler,
        EulerDiscreteScheduler,
        UniPCMultistepScheduler,
    )

    return {
        "UniPC": (UniPCMultistepScheduler, {}),
        "DPM++ 2M Karras": (DPMSolverMultistepScheduler, {"use_karras_sigmas": True}),
        "Euler a": (EulerAncestralDiscreteScheduler, {}),
        "Euler": (EulerDiscreteScheduler, {}),
        "DDIM": (DDIMScheduler, {}),
    }


SCHEDULERS = ("UniPC", "DPM++ 2M Karras", "Euler a", "Euler", "DDIM")


def make_scheduler(name: str, base_config):
    """A fresh scheduler per request: diffusers schedulers keep per-run state and are not thread-safe."""
    cls, extra = _scheduler_table()[name]
    return cls.from_config(base_config, **extra)


# --- the ControlNet itself ----------------------------------------------------------------------------------------


def embed_condition(net, cond: torch.Tensor) -> torch.Tensor:
    """c_f = E(c): control maps (N, 3, H, W) in [0, 1] -> (N, C, h, w) at the latents' size."""
    if net.config.controlnet_conditioning_channel_order == "bgr":
        cond = cond.flip(1)
    return net.controlnet_cond_embedding(cond)


def controlnet_forward(net, x, t, text, hint) -> list[torch.Tensor]:
    """ControlNetModel.forward at conditioning_scale 1, from its own submodules, with the condition embedded already.

    The method (cldm.py's ControlNet.forward): a trainable copy of the U-Net's encoder reads z_t + c_f; a zero
    convolution on each of its skips and on the middle block gives the residuals the U-Net adds (13 for SD1.5).
    """
    emb = net.time_embedding(net.time_proj(t.expand(x.shape[0])).to(x.dtype))  # t: () -> (B, 4C)
    h = net.conv_in(x) + hint  # x (B, 4, h, w), hint (B, C, h, w) -> (B, C, h, w); text: (B, 77, D)
    skips = [h]
    for block in net.down_blocks:
        h, res = _block(block, h, emb, text)
        skips.extend(res)
    if net.mid_block is not None:
        h = _block(net.mid_block, h, emb, text)
    return [zero(s) for zero, s in zip(net.controlnet_down_blocks, skips)] + [net.controlnet_mid_block(h)]


def unet_forward(unet, x, t, text, down, mid) -> torch.Tensor:
    """The base U-Net's noise (or v) prediction with the ControlNet residuals added to its skips and middle block."""
    return unet(x, t, encoder_hidden_states=text, down_block_additional_residuals=down,
                mid_block_additional_residual=mid, return_dict=False)[0]


def vae_decode(vae, latents) -> torch.Tensor:
    return vae.decode(latents, return_dict=False)[0]  # AutoencoderKL.decode's generator argument is unused


def _to_numpy(pipe, image: torch.Tensor) -> np.ndarray:
    """Decoded images in [-1, 1] -> (B, H, W, 3) floats in [0, 1]."""
    return pipe.image_processor.postprocess(image, output_type="np", do_denormalize=[True] * len(image))


@dataclass(frozen=True)
class _Preview:
    callback: Callable[[int, int, np.ndarray], None]
    every: int
    decoder: torch.nn.Module


def _alpha_bars(scheduler, steps: int) -> list[float]:
    """ᾱ (the share of signal in x_t) at the timestep the model is given at each step: the noise level its output
    is relative to (for Karras-spaced sigmas the solver's own sigma can differ from it a lot)."""
    table = scheduler.alphas_cumprod
    return [float(table[min(max(round(float(t)), 0), len(table) - 1)]) for t in scheduler.timesteps[:steps].cpu()]


def predicted_x0(x_t: torch.Tensor, model_output: torch.Tensor, alpha_bar: float, prediction_type: str) -> torch.Tensor:
    """The model's estimate of the clean latents from x_t = sqrt(ᾱ) x0 + sqrt(1 - ᾱ) ε and its (guided) output."""
    a, s = alpha_bar**0.5, (1.0 - alpha_bar) ** 0.5
    if prediction_type == "v_prediction":  # v = sqrt(ᾱ) ε - sqrt(1 - ᾱ) x0
        return a * x_t - s * model_output
    if prediction_type == "sample":
        return model_output
    return (x_t - s * model_output) / a


class _SolveUnchecked(TorchFunctionMode):
    """Within it, torch.linalg.solve runs as torch.linalg.solve_ex without its error check: the same kernels and the
    same result, but no copy of the check's flag to the host, which waits for the GPU to drain. UniPC's corrector
    solves a 2x2 system at every step (its rows [1, 1] and [r, 1], singular only if two of the solver's log-SNRs
    coincide, which its timesteps never do). A torch function mode is per thread: other requests' threads are not
    touched."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.linalg.solve:
            return torch.linalg.solve_ex(*args, **(kwargs or {}))[0]
        return func(*args, **(kwargs or {}))


def _without_waits(scheduler, device: torch.device, bit_exact: bool = False):
    """diffusers' sigma-based schedulers keep `sigmas` on the CPU and copy single values to the GPU inside `step`,
    and every such copy waits for the GPU to drain (about 7 per UniPC step). Kept on the device, their scalar maths
    is queued behind the U-Net like everything else, and the returned context (to wrap each `step` in) drops the
    last wait, UniPC's torch.linalg.solve checking its result on the host (`_SolveUnchecked`): the host then runs
    ahead of the GPU for the whole loop. The GPU's float32 rounds those scalars a little differently, so the fp16
    images move by rounding (max 2.9e-3 in [0, 1] on an H200), and the `cudagraphs` mode, whose point is stock's
    images bit for bit, keeps them on the CPU (`bit_exact`). Starting at index 0 also skips the first step's search
    for the timestep (another wait), with the same result."""
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(0)
    if bit_exact or device.type != "cuda":
        return contextlib.nullcontext()
    if isinstance(getattr(scheduler, "sigmas", None), torch.Tensor):
        scheduler.sigmas = scheduler.sigmas.to(device)
    return _SolveUnchecked()


def _block(block, h, emb, text):
    if getattr(block, "has_cross_attention", False):
        return block(h, emb, encoder_hidden_states=text)
    return block(h, emb)


def check_supported(net, condition: str) -> None:
    """`controlnet_forward` covers SD1.5-style ControlNets; refuse the configs that need more than it does."""
    extras = {
        "class embeddings": net.class_embedding is not None,
        "added (SDXL-style) embeddings": net.config.addition_embed_type is not None,
        "global pooling (a shuffle ControlNet)": net.config.global_pool_conditions,
    }
    if any(extras.values()):
        raise ModelUnavailableError(
            f"The {condition} ControlNet uses {', '.join(k for k, on in extras.items() if on)}, which this engine "
            "does not support; use an SD1.5 ControlNet for it."
        )


# torch.compile modes (settings.COMPILE_MODES) that replay CUDA graphs; "cudagraphs" records PyTorch's own kernels
CUDA_GRAPH_MODES = ("reduce-overhead", "cudagraphs")


def default_compile_mode(device: torch.device) -> str:
    """The fast mode's torch.compile mode when none is named: on a GPU CUDA graphs too (a batch-2 U-Net step is
    launch-bound there), on a CPU Inductor alone."""
    return "reduce-overhead" if device.type == "cuda" else "default"


def _compiled(fn, mode: str):
    return torch.compile(fn, backend="cudagraphs") if mode == "cudagraphs" else torch.compile(fn, mode=mode)


class Engine:
    """Runs requests on a ModelStore, one at a time (they share the device and the resident weights).

    `compiled=True` is the optional fast mode: the U-Net and ControlNet forwards go through torch.compile (the
    model weights are graph inputs, so one compiled graph serves every ControlNet of the same architecture; a new
    image size compiles again, then shapes turn dynamic); the first request of each shape pays the compilation
    (`Demo.warm_up`). `compile_mode` (None: "reduce-overhead" on CUDA, "default" on CPU) is a torch.compile mode
    or "cudagraphs": Inductor's kernels round differently from PyTorch's, so those images differ from the exact
    engine's in the last bits; "cudagraphs" replays PyTorch's own kernels in CUDA graphs and keeps them exact.
    """

    def __init__(self, store, compiled: bool = False, compile_mode: str | None = None):
        self.store = store
        self._lock = threading.Lock()
        self.compile_mode = (compile_mode or default_compile_mode(store.device)) if compiled else None
        self._unet, self._controlnet = (_compiled(f, self.compile_mode) if compiled else f
                                        for f in (unet_forward, controlnet_forward))
        # on a GPU the VAE decode too (22 -> 8 ms at 512 px on an H100); on a CPU the small model's decoder is cheap
        # and compiling it would only lengthen the warm-up
        self._decode = _compiled(vae_decode, self.compile_mode) if compiled and store.device.type == "cuda" else vae_decode

    @property
    def compiled(self) -> bool:
        return self.compile_mode is not None

    @torch.inference_mode()
    def generate(
        self,
        request: Request,
        on_step: Callable[[int, int], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        deadline: float | None = None,
        on_preview: Callable[[int, int, np.ndarray], None] | None = None,
        preview_every: int = 5,
    ) -> Result:
        """`on_preview(step, steps, images)`, when given, gets every `preview_every` steps (not after the last)
        the model's current estimate of the finished images, (B, H, W, 3) floats in [0, 1], decoded by the store's
        preview decoder (a tiny VAE where the model has one): a look at the picture forming, without changing it."""
        preview = None
        if on_preview is not None and preview_every > 0:
            decoder = self.store.preview_decoder()
            if decoder is not None:
                preview = _Preview(on_preview, preview_every, decoder)
        with self._lock:
            try:
                return self._generate(request, on_step, should_stop, deadline, preview)
            except torch.OutOfMemoryError as exc:
                # the traceback's frames hold the failed request's tensors: drop them, then hand their blocks back
                # to the device, so the next request starts with the memory the last one had
                oom = exc.with_traceback(None)
            if self.store.device.type == "cuda":
                torch.cuda.empty_cache()
            raise oom

    def _generate(self, req: Request, on_step, should_stop, deadline, preview) -> Result:
        started = time.perf_counter()
        pipe = self.store.base
        nets = [self.store.controlnet(u.condition) for u in req.units]
        device, dtype = self.store.device, self.store.dtype
        do_cfg = req.guidance_scale > 1.0 and pipe.unet.config.time_cond_proj_dim is None
        batch = req.num_images

        # 1. text: [negative, positive] when CFG is on, as in the stock pipeline
        positive, negative = pipe.encode_prompt(req.prompt, device, batch, do_cfg, req.negative_prompt)
        text = torch.cat([negative, positive]) if do_cfg else positive  # (2B or B, 77, D)

        # 2. control maps -> c_f, once per unit for the whole (2B or B) batch (stock pipelines redo it at every
        #    step; a batch of one would take another conv kernel on CPU and differ in the last bits); masks -> a
        #    (1, 1, h, w) per size
        for u, net in zip(req.units, nets):
            check_supported(net, u.condition)
        conds = [self._control_tensor(pipe, u, batch, net.dtype) for u, net in zip(req.units, nets)]
        hints = [embed_condition(net, torch.cat([c] * 2) if do_cfg else c) for c, net in zip(conds, nets)]
        masks = [None if u.mask is None else _resized(torch.as_tensor(u.mask, dtype=dtype, device=device)[None, None])
                 for u in req.units]

        # 3. timesteps, on a scheduler of this request's own
        scheduler = make_scheduler(req.scheduler, pipe.scheduler.config)  # pipe.scheduler is never replaced
        scheduler.set_timesteps(req.steps, device=device)
        alpha_bars = _alpha_bars(scheduler, req.steps) if preview is not None else None
        unwaited = _without_waits(scheduler, device, bit_exact=self.compile_mode == "cudagraphs")
        timesteps = scheduler.timesteps
        n = len(timesteps)

        # 4. latents: one CPU generator per image, seeds seed, seed+1, ... (each image reproducible alone)
        seeds = [req.seed + i for i in range(batch)]
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        shape = (batch, pipe.unet.config.in_channels, req.height // pipe.vae_scale_factor, req.width // pipe.vae_scale_factor)
        latents = randn_tensor(shape, generator=generators, device=device, dtype=text.dtype) * scheduler.init_noise_sigma
        accepts = inspect.signature(scheduler.step).parameters
        step_kwargs = {k: v for k, v in (("eta", 0.0), ("generator", generators)) if k in accepts}

        norms: list[torch.Tensor | None] = [None] * len(req.units)  # summed on the device: no sync inside the loop
        calls = 0
        # 5. denoising loop
        for i, t in enumerate(timesteps):
            if self.compile_mode in CUDA_GRAPH_MODES:  # the last step's graph outputs are dead: their memory is reused
                torch.compiler.cudagraph_mark_step_begin()
            if should_stop is not None and should_stop():
                raise GenerationCancelled("Stopped.")
            if deadline is not None and time.monotonic() > deadline:
                raise GenerationTimeout(
                    f"The request ran past the server's time limit after {i} of {n} steps. Try fewer steps, a lower "
                    "resolution, fewer images or fewer conditions.")
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if do_cfg else latents, t)

            down, mid = None, None
            for k, (unit, net) in enumerate(zip(req.units, nets)):
                # outside its window a ControlNet is not run at all (stock pipelines run it and multiply by 0)
                if i / n < unit.start or (i + 1) / n > unit.end or unit.strength == 0:
                    continue
                res = self._residuals(net, unit, hints[k], masks[k], model_input, t, text, do_cfg)
                calls += 1
                step_norms = torch.stack([r.detach().abs().mean().float() for r in res])
                norms[k] = step_norms if norms[k] is None else norms[k] + step_norms
                down = res[:-1] if down is None else [a + b for a, b in zip(down, res[:-1])]
                mid = res[-1] if mid is None else mid + res[-1]

            noise = self._unet(pipe.unet, model_input, t, text, down, mid)
            if do_cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + req.guidance_scale * (cond - uncond)
            if preview is not None and (i + 1) % preview.every == 0 and i + 1 < n:
                x_t = model_input.chunk(2)[1] if do_cfg else model_input
                x0 = predicted_x0(x_t, noise, alpha_bars[i], scheduler.config.prediction_type)
                image = preview.decoder.decode(x0.to(preview.decoder.dtype) / preview.decoder.config.scaling_factor,
                                               return_dict=False)[0]
                preview.callback(i + 1, n, _to_numpy(pipe, image))
            with unwaited:
                latents = scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
            if on_step is not None:
                on_step(i + 1, n)

        # 6. decode
        if self.compile_mode in CUDA_GRAPH_MODES:
            torch.compiler.cudagraph_mark_step_begin()
        image = self._decode(pipe.vae, latents / pipe.vae.config.scaling_factor)
        images = _to_numpy(pipe, image)
        residual_norms = {
            f"{k + 1}. {u.condition}": (norms[k] / n).tolist() for k, u in enumerate(req.units) if norms[k] is not None
        }
        return Result(images, seeds, residual_norms, calls, time.perf_counter() - started)

    def _control_tensor(self, pipe, unit: ControlUnit, batch: int, dtype) -> torch.Tensor:
        from diffusers.image_processor import VaeImageProcessor

        processor = VaeImageProcessor(vae_scale_factor=pipe.vae_scale_factor, do_convert_rgb=True, do_normalize=False)
        image = processor.preprocess(Image.fromarray(unit.image), height=unit.image.shape[0], width=unit.image.shape[1])
        return image.to(torch.float32).repeat_interleave(batch, dim=0).to(self.store.device, dtype)  # (B, 3, H, W)

    def _residuals(self, net, unit, hint, mask, model_input, t, text, do_cfg) -> list[torch.Tensor]:
        """The 13 residuals one ControlNet adds, scaled per connection, masked, for the full CFG batch."""
        mode = CONTROL_MODES[unit.mode]
        cond_only = mode.cond_branch_only and do_cfg
        if cond_only:  # the conditional half of the batch only; the unconditional half gets zeros
            model_input, text, hint = model_input.chunk(2)[1], text.chunk(2)[1], hint.chunk(2)[1]
        res = self._controlnet(net, model_input, t, text, hint)
        scales = mode.scales(unit.strength, [r.shape[-2] for r in res])
        res = [r * s for r, s in zip(res, scales)]
        if mask is not None:
            res = [r * mask(r.shape[-2:]) for r in res]
        if cond_only:
            res = [torch.cat([torch.zeros_like(r), r]) for r in res]
        return res


def _resized(mask: torch.Tensor):
    """size -> the mask area-averaged to that size, each size computed once per request rather than at every step."""
    return functools.cache(lambda size: F.interpolate(mask, size=size, mode="area"))
