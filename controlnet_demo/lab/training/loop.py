"""The training loop, on accelerate: mixed precision, gradient accumulation, clipping, a learning-rate schedule from
diffusers, and checkpoints (`save_state` / `load_state`) from which a run resumes exactly.

Every step draws its data and noise from (seed, step) alone, so a resumed run continues as if it had never stopped.
The same command runs on a CPU and a GPU, and on N processes (`torchrun --nproc_per_node N -m controlnet_demo train
...`, `accelerate launch --multi_gpu ...`): data parallel, each process its own share of every step's examples
(`--batch-size` each), the gradients averaged over the processes before each optimizer step; with `--deepspeed
FILE`, DeepSpeed's ZeRO averages them and splits the optimizer's state over the processes (`zero`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch

from ...errors import UserInputError
from ...models.loading import LOADING
from ...settings import launched_processes
from . import zero
from .config import RUN_IDENTITY, TrainConfig, check
from .data import Examples, batches
from .tasks import TASKS

DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}  # --mixed-precision -> locked parts'


@dataclass
class Watch:
    """A caller in the same process that follows a run and steers it (the app's training panel). It sees the
    trained modules before the first step (`on_record({"step": start}, modules)`) and then every line of
    metrics.jsonl as it is written, each probe's pictures (`on_sample(prompt, map, picture)`), and may end the run
    after any step (`should_stop`, the model saved as at that step). Every optimizer step and every probe picture
    runs inside `turn()`: the app's users' jobs go first."""

    on_record: Callable[[dict, dict[str, torch.nn.Module]], None] = lambda record, modules: None
    on_sample: Callable[[str, np.ndarray, np.ndarray], None] | None = None
    should_stop: Callable[[], bool] = lambda: False
    turn: Callable[[], AbstractContextManager] = contextlib.nullcontext


def checkpoints(out: Path) -> list[Path]:
    done = [p for p in (out / "checkpoints").glob("step-*") if p.name[5:].isdigit()]  # not the .partial ones
    return sorted(done, key=lambda p: int(p.name[5:]))


def save_checkpoint(accelerator, out: Path, step: int, config: TrainConfig) -> Path:
    """accelerate's state (weights, optimizer, schedule, loss scaler, every process's RNG) and the step, written
    whole or not at all. Called by every process; the main one does the file moves."""
    folder = out / "checkpoints" / f"step-{step:08d}"
    partial = folder.with_name(folder.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (partial / "state.json").write_text(json.dumps(dict(step=step, config=asdict(config)), indent=1))
        shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
        for old in checkpoints(out)[: -config.keep_checkpoints]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return folder


def load_checkpoint(accelerator, folder: Path, config: TrainConfig) -> int:
    """Restore a checkpoint into the prepared objects; returns its step. Refuses one of a different run."""
    state = json.loads((folder / "state.json").read_text())
    defaults = {f.name: f.default for f in fields(TrainConfig)}  # keys older runs did not write
    differ = [k for k in RUN_IDENTITY if state["config"].get(k, defaults[k]) != getattr(config, k)]
    if differ:
        raise UserInputError(
            f"--resume: {folder} is from a run with other settings ("
            + ", ".join(f"{k}={state['config'].get(k)!r}" for k in differ)
            + ")."
        )
    if config.lr_scheduler not in ("constant", "constant_with_warmup") and state["config"]["steps"] != config.steps:
        raise UserInputError(
            f"--resume: the {config.lr_scheduler} schedule of {folder} runs over --steps "
            f"{state['config']['steps']}; resume with that, or start anew from its model with --init."
        )
    zero.check_checkpoint(accelerator, folder)  # DeepSpeed's own layout, or accelerate's
    if not zero.in_use(accelerator) and not (folder / "optimizer.bin").is_file():
        raise UserInputError(
            f"--resume: {folder} was written by an older version of the training code; start a new "
            "run from its model with --init instead."
        )
    accelerator.load_state(str(folder))
    return state["step"]


def _step_generator(seed: int, step: int, process: int = 0) -> torch.Generator:
    """The step's randomness (timesteps, noise, empty prompts, VAE samples), a function of (seed, step) only, and
    of the process for all but the first (so one process draws as it always has)."""
    key = [seed, step] if process == 0 else [seed, step, process]
    return torch.Generator().manual_seed(int(np.random.SeedSequence(key).generate_state(1)[0]))


def _average_gradients(accelerator, params: list[torch.nn.Parameter]) -> None:
    """Data parallel: every process's gradients become their mean over the processes, in one all-reduce.

    Not torch's DistributedDataParallel: it averages only what passes through its wrapper's forward, and the
    tasks call their models' own methods (vae.encode, pipe.encode_prompt, a LoRA-carrying U-Net)."""
    if accelerator.num_processes == 1:
        return
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

    grads = [p.grad for p in params]
    if any(g is None for g in grads):  # every process must send the same buffer
        raise RuntimeError("a trained parameter got no gradient in this step")
    mean = accelerator.reduce(_flatten_dense_tensors(grads), reduction="mean")
    for grad, synced in zip(grads, _unflatten_dense_tensors(mean, grads)):
        grad.copy_(synced)


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


def _on_cpu(config: TrainConfig) -> bool:
    """Whether accelerate runs this process on the CPU (its `cpu=`): `--device cpu`, and also no `--device` on a
    machine without CUDA when the process is one of several. accelerate sees no collective backend for those
    processes otherwise and counts each one as alone: N one-process runs into the same --out. Not with DeepSpeed,
    which accelerate turns off when told `cpu` (on a machine without GPUs its CPU accelerator runs it, over gloo:
    zero.process_group)."""
    if config.deepspeed is not None:
        return False
    if config.device == "cpu":
        return True
    if launched_processes() <= 1:
        return False
    if config.device == "mps":
        raise UserInputError(
            "--device mps trains in one process only (MPS has no collective backend): on several processes use "
            "--device cpu, or run one process."
        )
    return config.device is None and not torch.cuda.is_available()


def _accelerator(config: TrainConfig):
    from accelerate import Accelerator

    cpu = _on_cpu(config)
    if config.device and config.device.startswith("cuda:"):  # accelerate's one process runs on the current device
        torch.cuda.set_device(int(config.device[5:]))
    return Accelerator(
        mixed_precision=config.mixed_precision,
        cpu=cpu,
        gradient_accumulation_steps=config.gradient_accumulation,
        deepspeed_plugin=zero.plugin(config),
        kwargs_handlers=zero.process_group(config),
    )


def _release(accelerator) -> None:
    """accelerate keeps one process-wide state, fixed by the first Accelerator (its device and mixed precision): a
    run hands it back, so that the next run in this process (a test, the app's training panel) may choose its own."""
    from accelerate.state import AcceleratorState, GradientState

    accelerator.end_training()
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def _autocast(accelerator, config: TrainConfig, dtype: torch.dtype):
    # accelerate autocasts fp16 only on GPUs; on a CPU torch's own autocast keeps the fp16 path runnable (slow, but
    # the same code as on a GPU, without the loss scaler a CPU does not need)
    if config.mixed_precision == "fp16" and accelerator.device.type == "cpu":
        return torch.autocast("cpu", dtype=dtype)
    return accelerator.autocast()


def train(config: TrainConfig, progress: bool = True, watch: Watch | None = None) -> Path:
    """Run (or resume) a training run; returns the folder holding the final model. `watch`: see Watch."""
    from diffusers.optimization import get_scheduler
    from tqdm import tqdm

    check(config)
    kind = TASKS[config.kind]
    out = Path(config.out)
    if checkpoints(out) and not config.resume:
        raise UserInputError(
            f"--out {out} holds checkpoints of an earlier run: pass --resume to continue it, or choose another --out."
        )
    accelerator = _accelerator(config)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    processes, rank = accelerator.num_processes, accelerator.process_index
    global_batch = config.batch_size * config.gradient_accumulation * processes
    device, dtype = accelerator.device, DTYPES[config.mixed_precision]  # the locked parts in dtype, trained float32

    data = Examples(config, kind.condition)
    with LOADING:  # not while the app loads a model: the initial weights come from the global seed
        torch.manual_seed(config.seed)
        task = kind.make(config, device, dtype)
    if config.gradient_checkpointing:
        for module in (*task.trainable.values(), *task.checkpointed):  # diffusers and transformers name it apart
            (getattr(module, "enable_gradient_checkpointing", None) or module.gradient_checkpointing_enable)()
    params = [p for m in task.trainable.values() for p in m.parameters() if p.requires_grad]  # a LoRA's only
    optimizer = torch.optim.AdamW(params, lr=config.learning_rate)
    # accelerate's prepared schedule moves once per process at each step (as diffusers' training scripts count)
    schedule = get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=config.lr_warmup_steps * processes,
        num_training_steps=config.steps * processes,
    )
    deepspeed = zero.in_use(accelerator)
    if deepspeed:  # DeepSpeed's engine holds the one trained module and the optimizer; the closures use the module
        zero.fill(accelerator, config, task.trainable)
        _, optimizer, schedule = accelerator.prepare(*task.trainable.values(), optimizer, schedule)
    else:  # registered for the checkpoints (and mixed precision), never wrapped: the task's closures keep using
        # these very modules, and _average_gradients does the data parallel part
        for module in task.trainable.values():
            accelerator.prepare_model(module, evaluation_mode=True)
        optimizer, schedule = accelerator.prepare(optimizer, schedule)

    start = 0
    if config.resume and checkpoints(out):
        start = load_checkpoint(accelerator, checkpoints(out)[-1], config)

    main = accelerator.is_main_process  # writes the metrics, probes and saves the model
    log = _metrics_log(out, start) if main else open(os.devnull, "w")
    watch = watch or Watch()

    def record(line: dict) -> None:
        log.write(json.dumps(line) + "\n")
        log.flush()
        watch.on_record(line, task.trainable)

    def probe() -> None:
        record(dict(step=done, controllability=task.probe(on_output=watch.on_sample, turn=watch.turn)))

    watch.on_record(dict(step=start), task.trainable)
    done = start
    if main and task.probe is not None and config.eval_every and start == 0:  # the starting point of the curve
        probe()
    bar = tqdm(
        total=config.steps,
        initial=start,
        desc=f"train {config.kind}",
        unit="step",
        disable=not (progress and main),
        dynamic_ncols=True,
    )
    micro = config.gradient_accumulation
    stream = batches(data, config, start * micro, config.steps * micro, rank, processes)
    deadline = None if config.max_minutes is None else time.monotonic() + 60 * config.max_minutes

    def optimizer_step(step: int) -> tuple[list[float], list[float]]:
        """One optimizer step over its micro-batches (the last one syncs and steps): their losses, and checksums of
        what this process read."""
        losses, checksums = [], []
        for k in range(micro):  # the micro-batches of one optimizer step; the last one syncs and steps
            with accelerator.accumulate(*task.trainable.values()):
                batch = data.on_device(next(stream), device)
                if processes > 1:  # what this process read, for the metrics (one process: nothing to compare)
                    checksums.append(float(batch["pixels"].double().sum()))
                with _autocast(accelerator, config, dtype):
                    loss = task.loss(batch, _step_generator(config.seed, step * micro + k, rank))
                accelerator.backward(loss)  # with DeepSpeed also its averaging, clipping and step
                if accelerator.sync_gradients and not deepspeed:
                    _average_gradients(accelerator, params)
                    accelerator.clip_grad_norm_(params, config.max_grad_norm)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
        return losses, checksums

    try:
        for step in range(start, config.steps):
            lr = schedule.get_last_lr()[0]  # the rate this step runs at (the schedule moves on after it)
            with watch.turn():  # the app's users' jobs wait for this one step at most
                began = time.perf_counter()  # the step's own time, not the wait for its turn
                losses, checksums = optimizer_step(step)

            done = step + 1
            value = float(np.mean(losses))
            line = dict(step=done, loss=value, lr=lr, num_processes=processes, global_batch_size=global_batch)
            if deepspeed:
                line.update(zero_stage=accelerator.state.deepspeed_plugin.zero_stage)
            if processes > 1:  # the mean loss over the processes, what each read and what each holds now (checksums of
                # its pixels and of its trained weights: the first differ, the second are equal)
                weights = float(sum(p.detach().double().sum() for p in params))
                mine = torch.tensor([[value, sum(checksums), weights]], dtype=torch.float64, device=device)
                per_process = accelerator.gather(mine).tolist()
                line.update(
                    loss=float(np.mean([row[0] for row in per_process])),
                    batch_checksums=[row[1] for row in per_process],
                    weights_checksums=[row[2] for row in per_process],
                )
            line.update(seconds_per_step=time.perf_counter() - began, peak_memory_mb=peak_memory_mb(device))
            record(line)
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update()
            if main and task.probe is not None and config.eval_every and done % config.eval_every == 0:
                probe()
            out_of_time = deadline is not None and time.monotonic() > deadline
            stopping = out_of_time or watch.should_stop()
            if processes > 1:  # all stop at the same step, when any one's time is up
                stopping = bool(accelerator.reduce(torch.tensor(float(stopping), device=device), "max"))
            if done % config.checkpoint_every == 0 or done == config.steps or stopping:
                save_checkpoint(accelerator, out, done, config)
            if stopping:
                if out_of_time:
                    bar.write(
                        f"--max-minutes {config.max_minutes:g}: stopped after step {done} of {config.steps} "
                        "(--resume goes on)"
                    )
                break
    finally:
        bar.close()
        log.close()
        _release(accelerator)
    for module in task.trainable.values():
        module.eval()
    if main:
        task.save(out, data)
    return out
