"""The denoising engine: a request in, images out, with the ControlNet residuals added the paper's way.

A compact loop over diffusers components (the same text encoding, latents, schedulers and VAE as the stock
StableDiffusionControlNetPipeline, which it equals in "balanced" mode), owning what the stock pipeline lacks:
per-connection scales, control on the conditional CFG branch only, region masks, and not running a
ControlNet at all outside its start/end window. It embeds each control map once per request, where the stock
pipeline embeds it again at every step for every image and CFG branch. No gradio, presets or settings here.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from diffusers.utils.torch_utils import randn_tensor
from PIL import Image

from ..errors import GenerationCancelled, GenerationTimeout, UserInputError, quoted
from .aot import AotForwards
from .controlnet import (
    check_supported,
    controlnet_forward,
    embed_condition,
    pooled,
    unet_forward,
    zero_convolutions,
)
from .fast_mode import AOT_MODE, CUDA_GRAPH_MODES, compiled, default_compile_mode
from .previews import Preview, alpha_bars, decode_estimate, predicted_x0
from .request import CONTROL_MODES, ControlUnit, Request, Result
from .schedulers import make_scheduler, without_waits


def vae_decode(vae, latents) -> torch.Tensor:
    return vae.decode(latents, return_dict=False)[0]  # AutoencoderKL.decode's generator argument is unused


def _to_numpy(pipe, image: torch.Tensor) -> np.ndarray:
    """Decoded images in [-1, 1] -> (B, H, W, 3) floats in [0, 1]."""
    return pipe.image_processor.postprocess(image, output_type="np", do_denormalize=[True] * len(image))


class Engine:
    """Runs requests on a base pipeline and its ControlNets, one at a time (they share the device and the weights).

    base: a StableDiffusionPipeline whose parts (text encoder, U-Net, VAE, scheduler config) the loop drives; the
        loop never changes its weights. controlnets: condition -> ControlNetModel, looked up per request (a lazy
        mapping may load on first use). loras: name -> the adapter name of a LoRA loaded into the base's U-Net,
        or a U-Net with the LoRA fused in (looking it up loads it); each request turns on its own (`Request.lora`)
        or none, inside the engine's lock, so no request sees another's: with none on, the U-Net computes exactly
        what it did before any LoRA was loaded. preview_decoder: the VAE that decodes live previews (None: no previews). compile_mode: None
        for the exact engine, else the fast mode's torch.compile mode ("auto": the device's best).
    """

    def __init__(
        self,
        base,
        controlnets: Mapping[str, torch.nn.Module],
        device: torch.device,
        dtype: torch.dtype,
        preview_decoder: torch.nn.Module | None = None,
        compile_mode: str | None = None,
        loras: Mapping[str, str | torch.nn.Module] | None = None,
    ):
        self.base, self.controlnets, self.device, self.dtype = base, controlnets, device, dtype
        self.loras = loras or {}
        self.preview_decoder = preview_decoder
        self._lock = threading.Lock()
        self.compile_mode = default_compile_mode(device) if compile_mode == "auto" else compile_mode
        self.aot = AotForwards() if self.compile_mode == AOT_MODE else None  # compiled by `compile_ahead`
        on = self.compile_mode is not None and self.aot is None
        self._unet, self._controlnet = (
            compiled(f, self.compile_mode) if on else f for f in (unet_forward, controlnet_forward)
        )
        if self.aot is not None:
            self._unet, self._controlnet = self.aot.unet, self.aot.controlnet
        # on a GPU the VAE decode too (docs/performance.md: a large share of a fast step); on a CPU the small model's
        # decoder is cheap
        # and compiling it would only lengthen the warm-up
        self._decode = compiled(vae_decode, self.compile_mode) if on and device.type == "cuda" else vae_decode

    @property
    def compiled(self) -> bool:
        return self.compile_mode is not None

    def compile_ahead(self, requests: list[tuple[str, Request]], capture, compile_) -> dict:
        """The "aoti" mode's graphs, captured in `requests` ((condition, a request with its unit over the whole
        window), per condition and size) with spaces.aoti_capture and compiled with spaces.aoti_compile; returned,
        not installed."""
        return self.aot.compile(self, requests, capture, compile_)

    def install(self, graphs: dict) -> None:
        self.aot.install(self, graphs)

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
        the model's current estimate of the finished images, (B, H, W, 3) floats in [0, 1], decoded by the
        preview decoder: a look at the picture forming, without changing it."""
        preview = None
        if on_preview is not None and preview_every > 0 and self.preview_decoder is not None:
            preview = Preview(on_preview, preview_every, self.preview_decoder)
        with self._lock:
            try:
                return self._generate(request, on_step, should_stop, deadline, preview)
            except torch.OutOfMemoryError as exc:
                # the traceback's frames hold the failed request's tensors: drop them, then hand their blocks back
                # to the device, so the next request starts with the memory the last one had
                oom = exc.with_traceback(None)
            if self.device.type == "cuda":
                torch.cuda.empty_cache()
            raise oom

    def _generate(self, req: Request, on_step, should_stop, deadline, preview: Preview | None) -> Result:
        started = time.perf_counter()
        pipe, device, dtype = self.base, self.device, self.dtype
        nets = [self.controlnets[u.condition] for u in req.units]
        unet = self._use_lora(req.lora)
        # a LoRA turned on in the base's U-Net: not what an ahead-of-time graph of it computes
        unet_call = unet_forward if self.aot is not None and req.lora is not None else self._unet
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
        conds = [self._control_tensor(u, batch, net.dtype) for u, net in zip(req.units, nets)]
        hints = [embed_condition(net, torch.cat([c] * 2) if do_cfg else c) for c, net in zip(conds, nets)]
        masks = [
            None if u.mask is None else _resized(torch.as_tensor(u.mask, dtype=dtype, device=device)[None, None])
            for u in req.units
        ]

        # 3. timesteps, on a scheduler of this request's own
        scheduler = make_scheduler(req.scheduler, pipe.scheduler.config)  # pipe.scheduler is never replaced
        scheduler.set_timesteps(req.steps, device=device)
        noise_levels = alpha_bars(scheduler, req.steps) if preview is not None else None
        unwaited = without_waits(scheduler, device, bit_exact=self.compile_mode == "cudagraphs")
        timesteps = scheduler.timesteps
        n = len(timesteps)

        # 4. latents: one CPU generator per image, seeds seed, seed+1, ... (each image reproducible alone)
        seeds = [req.seed + i for i in range(batch)]
        generators = [torch.Generator("cpu").manual_seed(s) for s in seeds]
        shape = (
            batch,
            pipe.unet.config.in_channels,
            req.height // pipe.vae_scale_factor,
            req.width // pipe.vae_scale_factor,
        )
        latents = (
            randn_tensor(shape, generator=generators, device=device, dtype=text.dtype) * scheduler.init_noise_sigma
        )
        accepts = inspect.signature(scheduler.step).parameters
        step_kwargs = {k: v for k, v in (("eta", 0.0), ("generator", generators)) if k in accepts}

        norms: list[torch.Tensor | None] = [None] * len(req.units)  # summed on the device: no sync inside the loop
        # per unit and step, (13, h, w) on the device, when asked for (None: the default path does nothing more)
        spatial = [[None] * len(timesteps) for _ in req.units] if req.residual_maps else None
        calls = 0
        # 5. denoising loop: the locked U-Net plus the sum of every active ControlNet's residuals, then CFG
        for i, t in enumerate(timesteps):
            if self.compile_mode in CUDA_GRAPH_MODES:  # the last step's graph outputs are dead: their memory is reused
                torch.compiler.cudagraph_mark_step_begin()
            if should_stop is not None and should_stop():
                raise GenerationCancelled("Stopped.")
            if deadline is not None and time.monotonic() > deadline:
                raise GenerationTimeout(
                    "The request ran past the server's time limit after {i} of {n} steps. Try fewer steps, a lower "
                    "resolution, fewer images or fewer conditions.",
                    i=i,
                    n=n,
                )
            model_input = scheduler.scale_model_input(torch.cat([latents] * 2) if do_cfg else latents, t)

            down, mid = None, None
            for k, (unit, net) in enumerate(zip(req.units, nets)):
                # outside its window a ControlNet is not run at all (stock pipelines run it and multiply by 0)
                if i / n < unit.start or (i + 1) / n > unit.end or unit.strength == 0:
                    continue
                res = self._residuals(net, unit, hints[k], masks[k], model_input, t, text, do_cfg)
                calls += 1
                if spatial is not None:
                    spatial[k][i] = _spatial(res, batch if do_cfg else 0, (shape[2], shape[3]))
                step_norms = torch.stack([r.detach().abs().mean().float() for r in res])
                norms[k] = step_norms if norms[k] is None else norms[k] + step_norms
                down = res[:-1] if down is None else [a + b for a, b in zip(down, res[:-1])]
                mid = res[-1] if mid is None else mid + res[-1]

            noise = unet_call(unet, model_input, t, text, down, mid)
            if do_cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + req.guidance_scale * (cond - uncond)
            if preview is not None and (i + 1) % preview.every == 0 and i + 1 < n:
                x_t = model_input.chunk(2)[1] if do_cfg else model_input
                x0 = predicted_x0(x_t, noise, noise_levels[i], scheduler.config.prediction_type)
                preview.callback(i + 1, n, _to_numpy(pipe, decode_estimate(preview.decoder, x0)))
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
        maps = {}  # one copy to the host per unit, after the loop
        for k, u in enumerate(req.units if spatial is not None else ()):
            empty = torch.zeros((len(zero_convolutions(nets[k])), shape[2], shape[3]), device=device)
            steps_k = [m if m is not None else empty for m in spatial[k]]
            maps[f"{k + 1}. {u.condition}"] = torch.stack(steps_k).cpu().numpy()
        return Result(images, seeds, residual_norms, calls, time.perf_counter() - started, maps)

    def _use_lora(self, name: str | None):
        """The U-Net this request runs: the LoRA's fused copy, or the base's with this request's adapter on and
        every other off (None: all off), whatever the last request left."""
        unet = self.base.unet
        if name is not None and name not in self.loras:
            raise UserInputError(
                "No few-step LoRA {name} here; the engine has: {choices}.",
                name=quoted(name),
                choices=", ".join(self.loras) or "none",
            )
        lora = None if name is None else self.loras[name]  # loads it on first use
        if isinstance(lora, torch.nn.Module):
            return lora
        if getattr(unet, "_hf_peft_config_loaded", False):
            if lora is None:
                unet.disable_adapters()
            else:
                unet.set_adapters(lora)
                unet.enable_adapters()  # set_adapters leaves a disabled model disabled
        return unet

    def _control_tensor(self, unit: ControlUnit, batch: int, dtype) -> torch.Tensor:
        from diffusers.image_processor import VaeImageProcessor

        processor = VaeImageProcessor(
            vae_scale_factor=self.base.vae_scale_factor, do_convert_rgb=True, do_normalize=False
        )
        image = processor.preprocess(Image.fromarray(unit.image), height=unit.image.shape[0], width=unit.image.shape[1])
        return image.to(torch.float32).repeat_interleave(batch, dim=0).to(self.device, dtype)  # (B, 3, H, W)

    def _residuals(self, net, unit, hint, mask, model_input, t, text, do_cfg) -> list[torch.Tensor]:
        """The 13 residuals one ControlNet adds, scaled per connection, masked, for the full CFG batch. A global
        control (a shuffle ControlNet) is pooled over the picture and, as diffusers runs it (its guess mode), read on
        the conditional branch only."""
        mode = CONTROL_MODES[unit.mode]
        is_global = bool(net.config.global_pool_conditions)
        cond_only = (mode.cond_branch_only or is_global) and do_cfg
        if cond_only:  # the conditional half of the batch only; the unconditional half gets zeros
            model_input, text, hint = model_input.chunk(2)[1], text.chunk(2)[1], hint.chunk(2)[1]
        res = self._controlnet(net, model_input, t, text, hint)
        scales = mode.scales(unit.strength, [r.shape[-2] for r in res])
        res = [r * s for r, s in zip(res, scales)]
        if is_global:
            res = pooled(res)
        if mask is not None:
            res = [r * mask(r.shape[-2:]) for r in res]
        if cond_only:
            res = [torch.cat([torch.zeros_like(r), r]) for r in res]
        return res


def _spatial(res: list[torch.Tensor], index: int, size: tuple[int, int]) -> torch.Tensor:
    """(13, h, w): each residual's mean |value| over channels for batch item `index`, at `size` (nearest: an
    integer upsampling, which keeps the mean)."""
    maps = [r[index : index + 1].detach().abs().float().mean(1, keepdim=True) for r in res]
    return torch.cat([F.interpolate(m, size=size, mode="nearest") for m in maps])[:, 0]


def _resized(mask: torch.Tensor):
    """size -> the mask area-averaged to that size, each size computed once per request rather than at every step."""
    return functools.cache(lambda size: F.interpolate(mask, size=size, mode="area"))
