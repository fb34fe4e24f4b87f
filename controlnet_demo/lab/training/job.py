"""A training run inside the app (its "Train one yourself" tab): a fresh ControlNet on the offline base, every zero
convolution exactly 0, trained on the synthetic world by the project's own loop (`loop.train`) on a background
thread. One run at a time per server, stoppable by whoever started it, in a temporary folder that goes with it.
What the run does is read as snapshots: the loss, the zero convolutions' norms, the probes and their pictures."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...engine import zero_convolutions
from ...errors import DemoError, Message, UserInputError, check_number, message, quoted
from ...paths import OFFLINE_MODEL_DIR
from ..world import MAPS
from .config import TrainConfig
from .export import converged_at, largest_jump
from .loop import Watch, train

# what one run may ask for (the server enforces them, the tab shows them); the defaults reach the canny ControlNet's
# jump on a 2-core CPU in minutes (docs/how-controlnet-works.md)
STEPS = dict(default=600, low=1, high=3000)
BATCH = dict(default=32, low=1, high=64)
PROBE_EVERY = dict(default=50, low=1, high=1000)
PROBE_SAMPLES = dict(default=4, low=2, high=8)
SEED = dict(default=0, low=0, high=2**31 - 1)
RESOLUTION = 64  # the world and the offline base are drawn at 64 px

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """A run as it stands; `state` is starting, training, done, stopped or failed (`message` says why)."""

    condition: str
    steps: int
    state: str = "starting"
    step: int = 0
    losses: tuple[tuple[int, float], ...] = ()  # (step, loss)
    norms: tuple[float, ...] = ()  # the zero convolutions' weight norms now, connection by connection
    norms_at_start: tuple[float, ...] = ()  # before the first step: all exactly 0 for a fresh ControlNet
    probes: tuple[tuple[int, float, float], ...] = ()  # (step, matched, shuffled)
    samples: tuple[tuple[str, np.ndarray, np.ndarray], ...] = ()  # the latest probe's (prompt, map, picture)
    seconds_per_step: float | None = None  # the median so far
    elapsed_s: float = 0.0
    message: Message | str = ""  # str() is the English; the Train tab shows it in the page's language

    @property
    def jump(self) -> tuple | None:
        """(from step, to step, rise) of the largest rise of the matched score so far."""
        found = largest_jump([list(p) for p in self.probes])
        return tuple(found) if found else None

    @property
    def converged_at(self) -> int | None:
        """The probe from which on matched stays at least 3x shuffled."""
        return converged_at(self.probes)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "stopped", "failed")


def _norms(modules: dict) -> tuple[float, ...]:
    return tuple(float(conv.weight.detach().norm()) for conv in zero_convolutions(modules["controlnet"]))


class _Stopped(Exception):
    """Stop was pressed: the run ends at its next turn."""


class TrainingJob:
    """One run on its own thread; `updates()` yields a Snapshot at every change until it has finished."""

    def __init__(self, config: TrainConfig, owner: str, turn: Callable[[], AbstractContextManager]):
        self.owner = owner
        self._folder = tempfile.TemporaryDirectory(prefix="controlnet_demo_train_", ignore_cleanup_errors=True)
        self.folder = Path(self._folder.name)
        self._config = dataclasses.replace(config, out=str(self.folder / "run"))
        self._turn = turn
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._snapshot = Snapshot(config.condition, config.steps)
        self._version = 0
        self._samples: list = []
        self._began = time.monotonic()
        self._times: list[float] = []
        self._thread = threading.Thread(target=self._run, name="training", daemon=True)
        self._thread.start()

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def stop(self) -> None:
        """End the run after its current step or probe picture."""
        self._stop.set()

    def wait(self, timeout_s: float | None = None) -> Snapshot:
        self._thread.join(timeout_s)
        return self._snapshot

    def updates(self, every_s: float = 0.0) -> Iterator[Snapshot]:
        """The snapshot now, then the newest one after each change, at most one per `every_s` (the changes in
        between are in the next); the last one finished."""
        seen, last = -1, 0.0
        while True:
            with self._changed:
                self._changed.wait_for(lambda seen=seen: self._version != seen)
                # gather what changes until every_s has passed since the last one (or the run ends)
                self._changed.wait_for(lambda: self._snapshot.finished, max(0.0, last + every_s - time.monotonic()))
                seen, snapshot = self._version, self._snapshot
            last = time.monotonic()
            yield snapshot
            if snapshot.finished:
                return

    def _publish(self, **changes) -> None:
        with self._changed:
            self._snapshot = dataclasses.replace(self._snapshot, elapsed_s=time.monotonic() - self._began, **changes)
            self._version += 1
            self._changed.notify_all()

    def _on_record(self, record: dict, modules: dict) -> None:
        s, changes = self._snapshot, dict(step=record["step"], norms=_norms(modules))
        if "loss" in record:
            self._times.append(record["seconds_per_step"])
            changes.update(
                state="training",
                losses=(*s.losses, (record["step"], record["loss"])),
                seconds_per_step=float(np.median(self._times)),
            )
        elif "controllability" in record:
            c = record["controllability"]
            changes.update(probes=(*s.probes, (record["step"], c["matched"], c["shuffled"])))
            changes.update(samples=tuple(self._samples))
            self._samples = []
        else:  # the model before its first step
            changes.update(norms_at_start=changes["norms"])
        self._publish(**changes)

    def _on_sample(self, prompt: str, control_map: np.ndarray, picture: np.ndarray) -> None:
        self._samples.append((prompt, control_map, picture))

    @contextlib.contextmanager
    def _turn_unless_stopped(self):
        """The app's turn for one step or probe picture; after Stop the run ends here, saving nothing."""
        if self._stop.is_set():
            raise _Stopped
        with self._turn():
            yield

    def _run(self) -> None:
        watch = Watch(self._on_record, self._on_sample, self._stop.is_set, self._turn_unless_stopped)
        end = dict(state="failed", message="Training stopped unexpectedly.")
        try:
            train(self._config, progress=False, watch=watch)
            end = dict(state="stopped" if self._stop.is_set() else "done")
        except _Stopped:
            end = dict(state="stopped")
        except Exception as exc:  # said in the tab; the server goes on
            log.exception("the training run failed")
            text = exc.message if isinstance(exc, DemoError) else f"{type(exc).__name__}: {exc}"
            end = dict(state="failed", message=message("Training stopped with an error: {text}", text=text))
        finally:
            try:
                self._folder.cleanup()  # the run's checkpoints and model: nothing of it stays on the server
            finally:
                self._publish(**end)


class Trainer:
    """The app's training runs: at most one at a time on this server, on `device`, on the offline base; every step
    and probe picture inside `turn()` (the service's `priority.background`, so generation goes first)."""

    conditions = MAPS  # what a run may learn: the world's maps
    limits = dict(steps=STEPS, batch_size=BATCH, probe_every=PROBE_EVERY, probe_samples=PROBE_SAMPLES, seed=SEED)

    def __init__(
        self,
        base: str | Path = OFFLINE_MODEL_DIR,
        device: str | None = None,
        turn: Callable[[], AbstractContextManager] = contextlib.nullcontext,
    ):
        self.base, self.device, self.turn = str(base), device, turn
        self._lock = threading.Lock()
        self.job: TrainingJob | None = None

    @staticmethod
    def base_installed(base: str | Path = OFFLINE_MODEL_DIR) -> bool:
        """Whether the offline base a run starts from is here (an installed copy without assets/ has none)."""
        return (Path(base) / "model_index.json").is_file()

    def start(
        self,
        owner: str,
        condition: str = "canny",
        steps: int = STEPS["default"],
        batch_size: int = BATCH["default"],
        probe_every: int = PROBE_EVERY["default"],
        probe_samples: int = PROBE_SAMPLES["default"],
        seed: int = SEED["default"],
    ) -> TrainingJob:
        """A new run for `owner` (a browser session); refused, in words, while another one trains."""
        if condition not in MAPS:
            raise UserInputError(
                "Training learns one of the world's maps: {maps}; got {got}.",
                maps=", ".join(MAPS),
                got=quoted(condition),
            )
        values = dict(
            steps=steps, batch_size=batch_size, probe_every=probe_every, probe_samples=probe_samples, seed=seed
        )
        for (name, value), bounds in zip(values.items(), (STEPS, BATCH, PROBE_EVERY, PROBE_SAMPLES, SEED)):
            values[name] = check_number(value, name.replace("_", " ").capitalize(), bounds["low"], bounds["high"], True)
        with self._lock:
            if self.job is not None and not self.job.snapshot.finished:
                s = self.job.snapshot
                raise UserInputError(
                    "A training run is going on on this server (step {step} of {steps}); one runs at a time. Wait "
                    "for it to finish, or stop it in the tab that started it.",
                    step=s.step,
                    steps=s.steps,
                )
            config = TrainConfig(
                kind="controlnet",
                out="",  # the job's temporary folder
                base=self.base,
                condition=condition,
                resolution=RESOLUTION,
                steps=values["steps"],
                batch_size=values["batch_size"],
                eval_every=values["probe_every"],
                eval_samples=values["probe_samples"],
                checkpoint_every=values["steps"] + 1,  # the one checkpoint a run writes at its end
                keep_checkpoints=1,
                seed=values["seed"],
                device=self.device,
            )
            self.job = TrainingJob(config, owner, self.turn)
            return self.job

    def stop(self, owner: str) -> bool:
        """Stop `owner`'s run; False when it has none going."""
        job = self.job
        if job is None or job.owner != owner or job.snapshot.finished:
            return False
        job.stop()
        return True
