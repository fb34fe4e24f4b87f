"""What each kind of run trains: the parts it updates, the parts it keeps locked, its loss and what it saves.

For a ControlNet the loss is ordinary noise prediction, ||eps - eps_theta(z_t, t, c_text, c_image)||^2, with the
base (VAE, text encoder, U-Net) locked: gradients reach only the trainable copy, its zero convolutions and the
condition encoder, and a share of the prompts (default 50 %) is replaced by "" so the ControlNet learns to read
the condition map on its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ...errors import ModelUnavailableError, UserInputError
from ...models import architectures
from ...models.architectures import MODEL_CONFIGS, build_text_encoder, build_unet, build_vae
from ...models.loading import load_controlnet, load_pipeline
from ...models.presets import LCM_LORA_FILE
from .config import TrainConfig
from .data import Examples
from .recipe import drop_prompts, encode_latents, lock, noise_loss


@dataclass
class Task:
    trainable: dict[str, torch.nn.Module]  # what the optimizer updates and the checkpoints store
    loss: Callable[[dict, torch.Generator], torch.Tensor]  # (batch, generator) -> scalar
    save: Callable[[Path, Examples], None]  # the final model, in diffusers layout
    locked: dict[str, torch.nn.Module] = field(default_factory=dict)  # never changes, gets no gradients
    checkpointed: tuple[torch.nn.Module, ...] = ()  # gradient checkpointing also through these locked parts
    probe: Callable[..., dict] | None = None  # a measurement of the model as it is now, logged every --eval-every


def load_base(source: str):
    """The base pipeline a run builds on (SD1.5 from the hub or its cache, or a folder `train base` wrote), float32."""
    return load_pipeline(source, torch.float32, local_files_only=False)


def load_vae(source: str):
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"The VAE {source} could not be loaded ({type(exc).__name__}: {exc}).") from None


def _noise_scheduler(config):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(config)  # takes the keys DDPM knows (betas, prediction type, zero SNR)


def _text(pipe, prompts: list[str], device) -> torch.Tensor:
    return pipe.encode_prompt(prompts, device, 1, False)[0]  # (B, 77, D), no CFG pair


def vae_task(config: TrainConfig, device, dtype) -> Task:
    """The autoencoder from scratch: L1 + L2 reconstruction and a light KL towards N(0, 1)."""
    vae = build_vae(MODEL_CONFIGS[config.model_size]).to(device).train()

    def loss(batch, generator):
        x = batch["pixels"]
        posterior = vae.encode(x).latent_dist
        reconstruction = vae.decode(posterior.sample(generator)).sample.float()
        return F.l1_loss(reconstruction, x) + F.mse_loss(reconstruction, x) + config.kl_weight * posterior.kl().mean()

    def save(folder: Path, data: Examples):
        # Like SD's 0.18215: scale the latents to unit variance, so the diffusion model sees the noise level it expects
        z = encode_latents(
            vae.eval(), data.batch(0, config.batch_size, device)["pixels"], torch.Generator().manual_seed(0)
        )
        vae.register_to_config(scaling_factor=float(1 / z.float().std()))
        vae.save_pretrained(folder)

    return Task(trainable=dict(vae=vae), loss=loss, save=save)


def base_task(config: TrainConfig, device, dtype) -> Task:
    """Text-to-image from scratch: all of the U-Net and the text encoder, the VAE locked, 10 % empty prompts."""
    if config.vae is None:
        raise UserInputError("train base needs --vae DIR (a VAE that `train vae` wrote).")
    vae = lock(load_vae(config.vae)).to(device, dtype)
    sizes = MODEL_CONFIGS[config.model_size]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    unet, text_encoder = build_unet(sizes, config.resolution // factor), build_text_encoder(sizes)
    if config.init:  # continue from a pipeline folder's weights (a fresh optimizer), e.g. one session to the next
        start = load_base(config.init)
        unet.load_state_dict(start.unet.float().state_dict())
        text_encoder.load_state_dict(start.text_encoder.float().state_dict())
    unet, text_encoder = unet.to(device).train(), text_encoder.to(device).train()
    schedule = architectures.ZERO_SNR_SCHEDULER_CONFIG if config.v_prediction else architectures.SD_SCHEDULER_CONFIG
    scheduler = _noise_scheduler(schedule)
    pipe = architectures.assemble_pipeline(vae, text_encoder, architectures.tokenizer(), unet, schedule)

    def loss(batch, generator):
        prompts = drop_prompts(batch["prompts"], config.prompt_dropout, generator)
        latents = encode_latents(vae, batch["pixels"], generator)
        return noise_loss(unet, scheduler, latents, _text(pipe, prompts, device), generator)

    def save(folder: Path, data: Examples):
        vae.float()
        pipe.save_pretrained(folder)

    return Task(trainable=dict(unet=unet, text_encoder=text_encoder), loss=loss, save=save, locked=dict(vae=vae))


def controlnet_task(config: TrainConfig, device, dtype) -> Task:
    """The paper's recipe: the base locked, a trainable copy of its encoder and middle block, zero convolutions."""

    if config.base is None:
        raise UserInputError("train controlnet needs --base ID_OR_DIR (SD1.5's id, or a folder `train base` wrote).")
    if config.init and not (Path(config.init) / "config.json").is_file():
        raise UserInputError(
            f"--init {config.init}: not a ControlNet folder (no config.json); give a folder `train controlnet` wrote."
        )
    pipe = load_base(config.base)
    if config.init:  # go on from a trained ControlNet (e.g. on a wider world), a fresh optimizer
        controlnet = load_controlnet(config.init, torch.float32, local_files_only=False, condition=config.condition)
    else:
        controlnet = architectures.controlnet_for(pipe)
    controlnet = controlnet.to(device).train()  # copied from the float32 U-Net: its master weights stay float32
    vae, text_encoder, unet = (lock(m).to(device, dtype) for m in (pipe.vae, pipe.text_encoder, pipe.unet))
    scheduler = _noise_scheduler(pipe.scheduler.config)  # the base's own schedule and prediction type

    def loss(batch, generator):
        prompts = drop_prompts(batch["prompts"], config.empty_prompt_share, generator)
        with torch.no_grad():
            text = _text(pipe, prompts, device)
        latents = encode_latents(vae, batch["pixels"], generator)
        return noise_loss(unet, scheduler, latents, text, generator, controlnet, batch["condition"].to(dtype))

    def save(folder: Path, data: Examples):
        controlnet.save_pretrained(folder)

    def probe(**watch) -> dict:
        """Controllability now: held-out scenes generated with the ControlNet as trained so far (the curve that
        shows the paper's sudden convergence), by the app's own engine; `watch`: evaluate's on_output and turn."""
        from ...engine import Engine
        from ..evaluate import evaluate

        controlnet.eval()
        try:
            engine = Engine(pipe, {config.condition: controlnet}, device, dtype)
            result = evaluate(
                engine,
                [config.condition],
                n=config.eval_samples,
                steps=10,
                baseline=False,
                size=config.resolution,
                **watch,
            )["conditions"][config.condition]
        finally:
            controlnet.train()
        return {k: result[k] for k in ("matched", "shuffled", "ratio", "prompt_main")}

    return Task(
        trainable=dict(controlnet=controlnet),
        loss=loss,
        save=save,
        locked=dict(vae=vae, text_encoder=text_encoder, unet=unet),
        checkpointed=(unet,),
        probe=probe if config.data is None else None,
    )


# the LoRA of the few-step recipe goes on every attention projection, feed-forward and convolution of the U-Net's
# blocks, as in diffusers' LCM-LoRA script
LORA_TARGETS = (
    "to_q",
    "to_k",
    "to_v",
    "to_out.0",
    "proj_in",
    "proj_out",
    "ff.net.0.proj",
    "ff.net.2",
    "conv1",
    "conv2",
    "conv_shortcut",
    "downsamplers.0.conv",
    "upsamplers.0.conv",
    "time_emb_proj",
)


def lcm_task(config: TrainConfig, device, dtype) -> Task:
    """A few-step LoRA for the base by latent consistency distillation (`consistency.py`): the base's U-Net is the
    teacher, locked; the student is the same U-Net plus a LoRA, the only weights that train. The ControlNets are not
    involved: they steer the distilled U-Net as they steer the base."""
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from .consistency import DDIMSolver, consistency_loss

    if config.base is None:
        raise UserInputError("train lcm needs --base ID_OR_DIR (the pipeline to distil: a folder `train base` wrote).")
    if not 1 <= config.guidance_min <= config.guidance_max:
        raise UserInputError(
            f"--guidance-min ({config.guidance_min:g}) must be at least 1 and at most --guidance-max "
            f"({config.guidance_max:g})."
        )
    pipe = load_base(config.base)
    vae, text_encoder = (lock(m).to(device, dtype) for m in (pipe.vae, pipe.text_encoder))
    teacher = lock(load_base(config.base).unet).to(device, dtype)
    student = lock(pipe.unet).to(device)  # float32: its LoRA trains in float32, the base weights stay as they are
    student.add_adapter(
        LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_rank,
            target_modules=list(LORA_TARGETS),
            init_lora_weights="gaussian",
        )
    )
    student.train()
    scheduler = _noise_scheduler(pipe.scheduler.config)
    solver = DDIMSolver(scheduler.alphas_cumprod, scheduler.config.num_train_timesteps, config.ddim_steps)
    with torch.no_grad():
        empty = _text(pipe, [""], device)

    def loss(batch, generator):
        with torch.no_grad():
            text = _text(pipe, batch["prompts"], device)
        latents = encode_latents(vae, batch["pixels"], generator).float()
        return consistency_loss(
            student,
            teacher,
            scheduler,
            solver,
            latents,
            text.float(),
            empty.float(),
            (config.guidance_min, config.guidance_max),
            generator,
        )

    def save(folder: Path, data: Examples):
        StableDiffusionPipeline.save_lora_weights(
            folder,
            unet_lora_layers=get_peft_model_state_dict(student),
            weight_name=LCM_LORA_FILE,
            safe_serialization=True,
        )

    return Task(
        trainable=dict(unet=student),
        loss=loss,
        save=save,
        locked=dict(vae=vae, text_encoder=text_encoder, teacher=teacher),
    )


@dataclass(frozen=True)
class Kind:
    make: Callable[[TrainConfig, torch.device, torch.dtype], Task]
    condition: bool  # its batches carry condition maps


TASKS: dict[str, Kind] = {
    "vae": Kind(vae_task, condition=False),
    "base": Kind(base_task, condition=False),
    "controlnet": Kind(controlnet_task, condition=True),
    "lcm": Kind(lcm_task, condition=False),
}
