"""Training: the paper's ControlNet recipe, and the small base model (VAE, U-Net, text encoder) it steers.

One loop trains the three kinds; `TASKS` says per kind what is trained, what stays locked and what the loss is.
For a ControlNet the loss is ordinary noise prediction, ||eps - eps_theta(z_t, t, c_text, c_image)||^2, with the
base (VAE, text encoder, U-Net) locked: gradients reach only the trainable copy, its zero convolutions and the
condition encoder, and a share of the prompts (default 50 %) is replaced by "" so the ControlNet learns to read
the condition map on its own. Every step draws its data and noise from (seed, step) alone, so a run resumed from a
checkpoint continues exactly as if it had never stopped.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import tiny, world
from .errors import ModelUnavailableError, UserInputError
from .tiny import MODEL_CONFIGS, build_text_encoder, build_unet, build_vae

# --- the paper's pieces -----------------------------------------------------------------------------------------


def lock(model: torch.nn.Module) -> torch.nn.Module:
    """Freeze a pretrained model: no gradients are computed or stored for its weights."""
    model.requires_grad_(False)
    return model.eval()


def zero_convolutions(controlnet) -> list[torch.nn.Conv2d]:
    """The 13 zero convolutions joining the trainable copy to the locked U-Net (12 skips + the middle block)."""
    return [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]


def drop_prompts(prompts: list[str], share: float, generator: torch.Generator) -> list[str]:
    """Replace `share` of the prompts by "" (the paper's 50 %), chosen by `generator`."""
    keep = torch.rand(len(prompts), generator=generator) >= share
    return [p if k else "" for p, k in zip(prompts, keep.tolist())]


def noise_loss(unet, noise_scheduler, latents, text_embeddings, generator=None, controlnet=None, condition=None):
    """Noise-prediction loss of `unet` (or v-prediction, as the scheduler says), steered by `controlnet` if given.

    latents (B, 4, h, w) = VAE latents * scaling factor; text_embeddings (B, 77, D); condition (B, 3, H, W) in [0, 1].
    The noise is drawn on the generator's device and moved, so a CPU generator gives the same run on any device.
    """
    from diffusers.utils.torch_utils import randn_tensor

    noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
    steps = noise_scheduler.config.num_train_timesteps
    t = torch.randint(0, steps, (latents.shape[0],), generator=generator).to(latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, t)
    residuals = {}
    if controlnet is not None:
        down, mid = controlnet(noisy, t, encoder_hidden_states=text_embeddings, controlnet_cond=condition,
                               return_dict=False)
        residuals = dict(down_block_additional_residuals=down, mid_block_additional_residual=mid)
    prediction = unet(noisy, t, encoder_hidden_states=text_embeddings, **residuals, return_dict=False)[0]
    if noise_scheduler.config.prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, t)
    else:
        target = noise
    return F.mse_loss(prediction.float(), target.float())


def condition_channels(vae) -> tuple[int, ...]:
    """The condition encoder's channels for the ControlNet of a base with this VAE (see tiny.condition_channels)."""
    return tiny.condition_channels(len(vae.config.block_out_channels))


# --- the run's settings -----------------------------------------------------------------------------------------

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
MIXED_PRECISIONS = ("no", "fp16", "bf16")  # "no": float32 throughout


@dataclass
class TrainConfig:
    kind: str  # a key of TASKS: vae, base or controlnet
    out: str  # the final model, checkpoints/ and metrics.jsonl go here
    model_size: str = "small"  # vae and base: a key of MODEL_CONFIGS
    vae: str | None = None  # base: the locked VAE (a folder `train vae` wrote)
    base: str | None = None  # controlnet: the locked base, a hub id or a StableDiffusionPipeline folder
    init: str | None = None  # base: start from this pipeline folder's U-Net and text encoder instead of random;
    # controlnet: from this ControlNet folder instead of the base U-Net's copy (fresh optimizer, both)
    condition: str = "canny"  # controlnet: which map of the world (a label for a fill50k-style folder)
    data: str | None = None  # a dataset folder; None = world examples generated on the fly
    world_warp: float = 0.0  # world data: share of shapes drawn irregular (world.WorldConfig.warp)
    resolution: int = 64
    steps: int = 1000
    batch_size: int = 32
    lr: float | None = None  # None = the kind's default
    seed: int = 0
    empty_prompt_share: float = 0.5  # controlnet: the paper's 50 %
    prompt_dropout: float = 0.1  # base: empty prompts, so classifier-free guidance has an unconditional model
    v_prediction: bool = False  # base: v-prediction on zero-terminal-SNR betas (tiny.ZERO_SNR_SCHEDULER_CONFIG)
    kl_weight: float = 1e-6  # vae: a light KL keeps the latent space smooth without blurring
    max_grad_norm: float = 1.0
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    resume: bool = False
    eval_every: int = 0  # controlnet on world data: log controllability every N steps (0 = never)
    eval_samples: int = 4  # held-out scenes per measurement
    mixed_precision: str = "no"  # no, fp16 or bf16: autocast; fp16 adds a GradScaler
    gradient_checkpointing: bool = False
    device: str | None = None  # None = cuda when available
    workers: int = 0  # processes making the batches ahead of the loop (0: the loop makes them); same batches
    max_minutes: float | None = None  # stop after this long with a checkpoint and the model (--resume goes on)


# Options a resumed run must share with its checkpoint, or it would not continue the same run.
RUN_IDENTITY = ("kind", "model_size", "vae", "base", "init", "condition", "data", "world_warp", "resolution",
                "batch_size", "seed", "v_prediction")


# --- data ---------------------------------------------------------------------------------------------------------


def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre crop to a square, then area-resize to size x size. (size, size, 3) uint8"""
    import cv2

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    image = image[top : top + s, left : left + s]
    return image if s == size else cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class ImageFolder:
    """Every picture in a folder, prompt-less: enough to train the VAE on one's own images."""

    SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

    def __init__(self, folder: Path):
        self.files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in self.SUFFIXES)
        if not self.files:
            raise UserInputError(f"{folder} holds no images ({', '.join(self.SUFFIXES)}).")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return world._read_rgb(self.files[i]), None, ""


class Examples:
    """The training stream. Example i depends only on (seed, i): world example i (as `world.write_dataset(seed)`
    writes it), or item i of a seeded shuffle of the folder, a new shuffle each epoch."""

    def __init__(self, config: TrainConfig, with_condition: bool):
        self.seed, self.size = config.seed, config.resolution
        self.world = world.WorldConfig(warp=config.world_warp)
        self.condition = config.condition if with_condition else None
        self.dataset = None
        if config.data is not None:
            folder = Path(config.data)
            if not folder.is_dir():
                raise UserInputError(f"--data {folder}: no such folder.")
            try:
                self.dataset = world.DatasetFolder(folder, config.condition)
            except (FileNotFoundError, KeyError) as exc:
                if with_condition:
                    raise UserInputError(f"--data {folder}: {exc.args[0]}") from None
                self.dataset = ImageFolder(folder)
        elif with_condition and self.condition not in world.CONDITIONS:
            raise UserInputError(f"The world has no {self.condition!r} maps; choose from {', '.join(world.CONDITIONS)} "
                                 "or give a dataset with --data.")
        self._epoch, self._order = -1, None

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray | None, str]:
        if self.dataset is None:
            ex = world.example(np.random.default_rng([self.seed, i]), self.size, self.world,
                               maps=(self.condition,) if self.condition else ())
            return ex.image, ex.maps.get(self.condition), ex.prompt
        epoch, k = divmod(i, len(self.dataset))
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        image, condition, prompt = self.dataset[int(self._order[k])]
        return _square(image, self.size), None if condition is None else _square(condition, self.size), prompt

    def arrays(self, step: int, batch_size: int) -> dict:
        """Batch `step` as made on the CPU: images and conditions (B, S, S, 3) uint8 (conditions None without
        one), prompts."""
        images, conditions, prompts = zip(*(self[step * batch_size + j] for j in range(batch_size)))
        return dict(images=np.stack(images), prompts=list(prompts),
                    conditions=np.stack(conditions) if self.condition else None)

    @staticmethod
    def on_device(arrays: dict, device: torch.device) -> dict:
        """pixels (B, 3, S, S) in [-1, 1], condition (B, 3, S, S) in [0, 1] or None, prompts."""
        as_tensor = lambda a: torch.as_tensor(a).permute(0, 3, 1, 2).float().to(device)  # noqa: E731
        return dict(pixels=as_tensor(arrays["images"]) / 127.5 - 1, prompts=arrays["prompts"],
                    condition=None if arrays["conditions"] is None else as_tensor(arrays["conditions"]) / 255)

    def batch(self, step: int, batch_size: int, device: torch.device) -> dict:
        return self.on_device(self.arrays(step, batch_size), device)


class _Batches(torch.utils.data.Dataset):
    """Item `step` is batch `step` of the stream: a DataLoader's workers make them ahead of the loop, each one
    the same as the loop would make itself (a batch depends only on the seed and the step)."""

    def __init__(self, data: Examples, batch_size: int):
        self.data, self.batch_size = data, batch_size

    def __getitem__(self, step: int) -> dict:
        return self.data.arrays(step, self.batch_size)


def _batches(data: Examples, config: TrainConfig, start: int):
    """Batches start .. steps - 1 as CPU arrays, made by `config.workers` processes (0: here, one by one)."""
    if config.workers == 0:
        return (data.arrays(step, config.batch_size) for step in range(start, config.steps))
    return iter(torch.utils.data.DataLoader(_Batches(data, config.batch_size), batch_size=None,
                                            sampler=range(start, config.steps), num_workers=config.workers,
                                            collate_fn=_as_made, prefetch_factor=4))


def _as_made(batch: dict) -> dict:  # the DataLoader's collate: the arrays as Examples made them
    return batch


# --- what each kind trains --------------------------------------------------------------------------------------


@dataclass
class Task:
    trainable: dict[str, torch.nn.Module]  # what the optimizer updates and the checkpoints store
    loss: Callable[[dict, torch.Generator], torch.Tensor]  # (batch, generator) -> scalar
    save: Callable[[Path, Examples], None]  # the final model, in diffusers layout
    locked: dict[str, torch.nn.Module] = field(default_factory=dict)  # never changes, gets no gradients
    checkpointed: tuple[torch.nn.Module, ...] = ()  # gradient checkpointing also through these locked parts
    probe: Callable[[], dict] | None = None  # a measurement of the model as it is now, logged every --eval-every


def _encode_text(tokenizer, text_encoder, prompts: list[str], device) -> torch.Tensor:
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    return text_encoder(ids.to(device))[0]  # (B, 77, D)


def _latents(vae, pixels: torch.Tensor, generator) -> torch.Tensor:
    with torch.no_grad():
        return vae.encode(pixels.to(vae.dtype)).latent_dist.sample(generator) * vae.config.scaling_factor


def _pipeline(vae, text_encoder, tokenizer, unet, scheduler_config=None):
    """A StableDiffusionPipeline of these parts: DDIM with the schedule they were trained on (default SD1.5's),
    no safety checker."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline

    scheduler = DDIMScheduler.from_config(scheduler_config or tiny.SD_SCHEDULER_CONFIG)
    return StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def load_base(source: str):
    """A StableDiffusionPipeline from a hub id or folder (SD1.5, or what `train base` wrote), in float32."""
    from diffusers import StableDiffusionPipeline

    try:
        return StableDiffusionPipeline.from_pretrained(source, safety_checker=None, requires_safety_checker=False,
                                                       dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"The base model {source} could not be loaded ({type(exc).__name__}: {exc}).") from None


def _load_vae(source: str):
    from diffusers import AutoencoderKL

    try:
        return AutoencoderKL.from_pretrained(source, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(f"The VAE {source} could not be loaded ({type(exc).__name__}: {exc}).") from None


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
        z = _latents(vae.eval(), data.batch(0, config.batch_size, device)["pixels"], torch.Generator().manual_seed(0))
        vae.register_to_config(scaling_factor=float(1 / z.float().std()))
        vae.save_pretrained(folder)

    return Task(trainable=dict(vae=vae), loss=loss, save=save)


def base_task(config: TrainConfig, device, dtype) -> Task:
    """Text-to-image from scratch: all of the U-Net and the text encoder, the VAE locked, 10 % empty prompts."""
    if config.vae is None:
        raise UserInputError("train base needs --vae DIR (a VAE that `train vae` wrote).")
    vae = lock(_load_vae(config.vae)).to(device, dtype)
    sizes = MODEL_CONFIGS[config.model_size]
    factor = 2 ** (len(vae.config.block_out_channels) - 1)
    unet, text_encoder = build_unet(sizes, config.resolution // factor), build_text_encoder(sizes)
    if config.init:  # continue from a pipeline folder's weights (a fresh optimizer), e.g. one session to the next
        start = load_base(config.init)
        unet.load_state_dict(start.unet.float().state_dict())
        text_encoder.load_state_dict(start.text_encoder.float().state_dict())
    unet, text_encoder = unet.to(device).train(), text_encoder.to(device).train()
    tokenizer = tiny.tokenizer()
    schedule = tiny.ZERO_SNR_SCHEDULER_CONFIG if config.v_prediction else tiny.SD_SCHEDULER_CONFIG
    scheduler = _noise_scheduler(schedule)

    def loss(batch, generator):
        prompts = drop_prompts(batch["prompts"], config.prompt_dropout, generator)
        text = _encode_text(tokenizer, text_encoder, prompts, device)
        return noise_loss(unet, scheduler, _latents(vae, batch["pixels"], generator), text, generator)

    def save(folder: Path, data: Examples):
        _pipeline(vae.float(), text_encoder, tokenizer, unet, schedule).save_pretrained(folder)

    return Task(trainable=dict(unet=unet, text_encoder=text_encoder), loss=loss, save=save, locked=dict(vae=vae))


def controlnet_task(config: TrainConfig, device, dtype) -> Task:
    """The paper's recipe: the base locked, a trainable copy of its encoder and middle block, zero convolutions."""
    from diffusers import ControlNetModel

    if config.base is None:
        raise UserInputError("train controlnet needs --base ID_OR_DIR (SD1.5's id, or a folder `train base` wrote).")
    if config.init and not (Path(config.init) / "config.json").is_file():
        raise UserInputError(f"--init {config.init}: not a ControlNet folder (no config.json); give a folder "
                             "`train controlnet` wrote.")
    pipe = load_base(config.base)
    if config.init:  # go on from a trained ControlNet (e.g. on a wider world), a fresh optimizer
        controlnet = ControlNetModel.from_pretrained(config.init, torch_dtype=torch.float32)
    else:
        controlnet = ControlNetModel.from_unet(pipe.unet,
                                               conditioning_embedding_out_channels=condition_channels(pipe.vae))
    controlnet = controlnet.to(device).train()  # copied from the float32 U-Net: its master weights stay float32
    vae, text_encoder, unet = (lock(m).to(device, dtype) for m in (pipe.vae, pipe.text_encoder, pipe.unet))
    scheduler = _noise_scheduler(pipe.scheduler.config)  # the base's own schedule and prediction type

    def loss(batch, generator):
        prompts = drop_prompts(batch["prompts"], config.empty_prompt_share, generator)
        with torch.no_grad():
            text = _encode_text(pipe.tokenizer, text_encoder, prompts, device)
        latents = _latents(vae, batch["pixels"], generator)
        return noise_loss(unet, scheduler, latents, text, generator, controlnet, batch["condition"].to(dtype))

    def save(folder: Path, data: Examples):
        controlnet.save_pretrained(folder)

    def probe() -> dict:
        """Controllability now: held-out scenes generated with the ControlNet as trained so far (the curve that
        shows the paper's sudden convergence)."""
        from . import evaluate
        from .engine import Engine

        controlnet.eval()
        try:
            store = _TrainingStore(pipe, controlnet, config.condition, device, dtype)
            result = evaluate.evaluate(Engine(store), [config.condition], n=config.eval_samples, steps=10,
                                       baseline=False, size=config.resolution)["conditions"][config.condition]
        finally:
            controlnet.train()
        return {k: result[k] for k in ("matched", "shuffled", "ratio", "prompt_main")}

    return Task(trainable=dict(controlnet=controlnet), loss=loss, save=save,
                locked=dict(vae=vae, text_encoder=text_encoder, unet=unet), checkpointed=(unet,),
                probe=probe if config.data is None else None)


class _TrainingStore:
    """Just enough of a ModelStore for the engine to sample from the models being trained."""

    def __init__(self, pipe, controlnet, condition: str, device, dtype):
        import dataclasses

        from .presets import OFFLINE

        self.base, self._net, self.device, self.dtype = pipe, controlnet, device, dtype
        self.preset = dataclasses.replace(OFFLINE, name="training", controlnets={condition: "(being trained)"})

    def controlnet(self, condition: str):
        return self._net


def _noise_scheduler(config):
    from diffusers import DDPMScheduler

    return DDPMScheduler.from_config(config)  # takes the keys DDPM knows (betas, prediction type, zero SNR)


@dataclass(frozen=True)
class Kind:
    make: Callable[[TrainConfig, torch.device, torch.dtype], Task]
    lr: float  # default learning rate
    condition: bool  # its batches carry condition maps


TASKS: dict[str, Kind] = {
    "vae": Kind(vae_task, lr=2e-4, condition=False),
    "base": Kind(base_task, lr=2e-4, condition=False),
    # from scratch we can go faster than SD1.5's 1e-5 (use that with --lr for SD1.5)
    "controlnet": Kind(controlnet_task, lr=1e-4, condition=True),
}


# --- checkpoints --------------------------------------------------------------------------------------------------


def _checkpoints(out: Path) -> list[Path]:
    done = [p for p in (out / "checkpoints").glob("step-*") if p.name[5:].isdigit()]  # not the .partial ones
    return sorted(done, key=lambda p: int(p.name[5:]))


def save_checkpoint(out: Path, step: int, task: Task, optimizer, scaler, config: TrainConfig) -> Path:
    """Weights, optimizer and scaler state and the step counter, written whole or not at all."""
    from safetensors.torch import save_file

    folder = out / "checkpoints" / f"step-{step:08d}"
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    weights = {f"{name}.{k}": v.contiguous() for name, m in task.trainable.items() for k, v in m.state_dict().items()}
    save_file(weights, partial / "weights.safetensors")
    torch.save(dict(optimizer=optimizer.state_dict(), scaler=scaler.state_dict()), partial / "optimizer.pt")
    (partial / "state.json").write_text(json.dumps(dict(step=step, config=asdict(config)), indent=1))
    shutil.rmtree(folder, ignore_errors=True)
    partial.rename(folder)
    for old in _checkpoints(out)[: -config.keep_checkpoints]:
        shutil.rmtree(old)
    return folder


def load_checkpoint(folder: Path, task: Task, optimizer, scaler, config: TrainConfig) -> int:
    """Restore a checkpoint into the task; returns its step. Refuses one of a different run."""
    from safetensors.torch import load_file

    state = json.loads((folder / "state.json").read_text())
    defaults = {f.name: f.default for f in fields(TrainConfig)}  # keys older runs did not write
    differ = [k for k in RUN_IDENTITY if state["config"].get(k, defaults[k]) != getattr(config, k)]
    if differ:
        raise UserInputError(f"--resume: {folder} is from a run with other settings ("
                             + ", ".join(f"{k}={state['config'].get(k)!r}" for k in differ) + ").")
    weights = load_file(folder / "weights.safetensors")
    for name, module in task.trainable.items():
        prefix = name + "."
        module.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    other = torch.load(folder / "optimizer.pt", weights_only=True)
    optimizer.load_state_dict(other["optimizer"])
    scaler.load_state_dict(other["scaler"])
    return state["step"]


# --- the loop -------------------------------------------------------------------------------------------------------


def _step_generator(seed: int, step: int) -> torch.Generator:
    """The step's randomness (timesteps, noise, empty prompts, VAE samples), a function of (seed, step) only."""
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, step]).generate_state(1)[0]))


def peak_memory_mb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if device.type == "cpu":
        import resource  # POSIX only

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # the process's peak RSS (Linux: KiB)
    return None


def _metrics_log(out: Path, start: int):
    """metrics.jsonl opened for appending, cut back to `start` first: a resumed run repeats no step."""
    path = out / "metrics.jsonl"
    if path.exists():
        kept = [line for line in path.read_text().splitlines() if line and json.loads(line)["step"] <= start]
        path.write_text("".join(line + "\n" for line in kept))
    return path.open("a")


def check(config: TrainConfig) -> None:
    """Refuse settings that cannot run, naming the option."""
    choices = (("kind", TASKS), ("model_size", MODEL_CONFIGS), ("mixed_precision", MIXED_PRECISIONS))
    for name, allowed in choices:
        if getattr(config, name) not in allowed:
            raise UserInputError(f"--{name.replace('_', '-')} takes {', '.join(allowed)}; got {getattr(config, name)!r}.")
    for name in ("steps", "batch_size", "checkpoint_every", "resolution"):
        if getattr(config, name) < 1:
            raise UserInputError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(config, name)}.")
    for name in ("empty_prompt_share", "prompt_dropout", "world_warp"):
        if not 0 <= getattr(config, name) <= 1:
            raise UserInputError(f"--{name.replace('_', '-')} is a share, 0..1; got {getattr(config, name)}.")
    if config.workers < 0:
        raise UserInputError(f"--workers must be 0 or more; got {config.workers}.")
    if config.max_minutes is not None and not config.max_minutes > 0:
        raise UserInputError(f"--max-minutes must be more than 0; got {config.max_minutes}.")
    if config.world_warp and config.data is not None:
        raise UserInputError("--world-warp changes the generated world; it does nothing with --data. Drop one of them.")


def train(config: TrainConfig, progress: bool = True) -> Path:
    """Run (or resume) a training run; returns the folder holding the final model."""
    from tqdm import tqdm

    check(config)
    kind = TASKS[config.kind]
    out = Path(config.out)
    if _checkpoints(out) and not config.resume:
        raise UserInputError(f"--out {out} holds checkpoints of an earlier run: pass --resume to continue it, or "
                             "choose another --out.")
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(config.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = DTYPES.get(config.mixed_precision, torch.float32)  # the locked parts are kept in it, the trained float32

    data = Examples(config, kind.condition)
    torch.manual_seed(config.seed)  # the initial weights
    task = kind.make(config, device, dtype)
    if config.gradient_checkpointing:
        for module in (*task.trainable.values(), *task.checkpointed):  # diffusers and transformers name it apart
            (getattr(module, "enable_gradient_checkpointing", None) or module.gradient_checkpointing_enable)()
    params = [p for m in task.trainable.values() for p in m.parameters()]
    lr = config.lr or kind.lr
    optimizer = torch.optim.AdamW(params, lr=lr)
    scaler = torch.amp.GradScaler(device.type, enabled=config.mixed_precision == "fp16")

    start = 0
    if config.resume and _checkpoints(out):
        start = load_checkpoint(_checkpoints(out)[-1], task, optimizer, scaler, config)
    for group in optimizer.param_groups:  # a resumed run may change it
        group["lr"] = lr

    log = _metrics_log(out, start)
    if task.probe is not None and config.eval_every and start == 0:  # the starting point of the curve
        log.write(json.dumps(dict(step=0, controllability=task.probe())) + "\n")
    bar = tqdm(total=config.steps, initial=start, desc=f"train {config.kind}", unit="step", disable=not progress,
               dynamic_ncols=True)
    batches = _batches(data, config, start)
    deadline = None if config.max_minutes is None else time.monotonic() + 60 * config.max_minutes
    try:
        for step in range(start, config.steps):
            began = time.perf_counter()
            generator = _step_generator(config.seed, step)
            batch = data.on_device(next(batches), device)
            with torch.autocast(device.type, dtype=dtype, enabled=config.mixed_precision != "no"):
                loss = task.loss(batch, generator)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            torch.nn.utils.clip_grad_norm_(params, config.max_grad_norm)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)

            done = step + 1
            value = loss.item()
            log.write(json.dumps(dict(step=done, loss=value, lr=lr, seconds_per_step=time.perf_counter() - began,
                                      peak_memory_mb=peak_memory_mb(device))) + "\n")
            log.flush()
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update()
            if task.probe is not None and config.eval_every and done % config.eval_every == 0:
                log.write(json.dumps(dict(step=done, controllability=task.probe())) + "\n")
                log.flush()
            stopping = deadline is not None and time.monotonic() > deadline
            if done % config.checkpoint_every == 0 or done == config.steps or stopping:
                save_checkpoint(out, done, task, optimizer, scaler, config)
            if stopping:
                bar.write(f"--max-minutes {config.max_minutes:g}: stopped after step {done} of {config.steps} "
                          "(--resume goes on)")
                break
    finally:
        bar.close()
        log.close()
    for module in task.trainable.values():
        module.eval()
    task.save(out, data)
    return out


# --- export -----------------------------------------------------------------------------------------------------


def export(base: str, out: str | Path, controlnets: dict[str, str] | None = None, vae: str | None = None,
           dtype: str = "fp16") -> Path:
    """Assemble a StableDiffusionPipeline folder (DDIM, no safety checker), the ControlNets beside it in
    controlnet-<condition>/, all stored in `dtype` (a key of DTYPES). Load it with
    StableDiffusionControlNetPipeline.from_pretrained(out, controlnet=ControlNetModel.from_pretrained(out / "controlnet-canny"))."""
    from diffusers import ControlNetModel

    pipe = load_base(base)
    out = Path(out)
    _pipeline(_load_vae(vae) if vae else pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.unet,
              pipe.scheduler.config).to(
        dtype=DTYPES[dtype]).save_pretrained(out)
    for condition, source in (controlnets or {}).items():
        try:
            net = ControlNetModel.from_pretrained(source, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(f"The {condition} ControlNet {source} could not be loaded "
                                        f"({type(exc).__name__}: {exc}).") from None
        net.to(DTYPES[dtype]).save_pretrained(out / f"controlnet-{condition}")
        curve = training_curve(Path(source))
        if curve is not None:
            (out / f"controlnet-{condition}" / CURVE_FILE).write_text(json.dumps(curve))
    return out


CURVE_FILE = "training_curve.json"


def largest_jump(probes: list[list[float]]) -> list | None:
    """[from step, to step, rise] of the largest rise of the matched score between two probes in a row."""
    rises = [[a[0], b[0], round(b[1] - a[1], 4)] for a, b in zip(probes, probes[1:])]
    return max(rises, key=lambda r: r[2]) if rises else None


def converged_at(probes: list[list[float]]) -> int | None:
    """The first probed step from which on the ControlNet passes the evaluation's rule at every later probe:
    matched at least RATIO x the shuffled score (floored at MIN_SHUFFLED). None if it never settles there."""
    from .evaluate import MIN_SHUFFLED, RATIO

    passing = [matched >= RATIO * max(shuffled, MIN_SHUFFLED) for _, matched, shuffled in probes]
    for k in range(len(probes)):
        if all(passing[k:]):
            return int(probes[k][0])
    return None


def training_curve(run: Path, loss_window: int = 50) -> dict | None:
    """What a ControlNet's training log shows, small enough to ship with it: every controllability probe
    (`--eval-every`) and the loss averaged over windows of `loss_window` steps. None without probes."""
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    probes, losses, seconds = [], [], []
    for line in metrics.read_text().splitlines():
        row = json.loads(line)
        if "controllability" in row:
            c = row["controllability"]
            probes.append([row["step"], round(c["matched"], 4), round(c["shuffled"], 4)])
        elif "loss" in row:
            losses.append(row["loss"])
            seconds.append(row["seconds_per_step"])
    if not probes:
        return None
    loss = [[min(len(losses), i + loss_window), round(float(np.mean(losses[i : i + loss_window])), 4)]
            for i in range(0, len(losses), loss_window)]
    steps, stages = len(losses), []
    found = _checkpoints(run)  # a run started with --init goes on from another run's curve
    config = json.loads((found[-1] / "state.json").read_text())["config"] if found else {}
    before = training_curve(Path(config["init"]), loss_window) if config.get("init") else None
    if before is not None:
        offset = before["steps"]
        probes = before["controllability"] + [[step + offset, m, sh] for step, m, sh in probes if step > 0]
        loss = before["loss"] + [[step + offset, value] for step, value in loss]
        steps += offset
        moved = config.get("base") if config.get("base") != before.get("base") else None
        stages = before.get("stages", []) + [[offset, config.get("world_warp", 0.0), moved]]
    return dict(
        steps=steps,
        converged_at=converged_at(probes),
        largest_jump=largest_jump(probes),
        median_seconds_per_step=round(float(np.median(seconds)), 3),
        controllability=probes,  # [step, matched score, shuffled-condition score]
        loss=loss,
        stages=stages,  # [step, world_warp, base] where training went on from --init (on irregular shapes, if
        # world_warp > 0; base: the --base it went on with where that changed, else None)
        base=config.get("base"),
    )
