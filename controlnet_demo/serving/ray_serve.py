"""The service on Ray Serve: one replica per GPU (or a CPU slice), each a whole `ControlNetService` with its weights
resident, and `RemoteService`, the front that the Gradio app (one process: gradio needs sticky sessions) uses in
place of the in-process service. The same request and event types travel both ways.

    serve run --name controlnet controlnet_demo.serving.ray_serve:build replicas=2      # one machine, 2 replicas
    serve run --name controlnet controlnet_demo.serving.ray_serve:build max_replicas=8  # autoscaled from 0 to 8
    CONTROLNET_DEMO_RAY_APP=controlnet CONTROLNET_DEMO_RAY_REPLICAS=2 python app.py   # the front

A replica that dies mid-request (its process killed, its node lost) costs that request one retry on another
replica, from the start; when that fails too the user is told in words. Ray is imported only here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterator

from ..errors import DemoError, GenerationTimeout, WorkerLost
from ..service import ControlNetService, Done, Failed, GenerateSpec, MapsReady, Output, UnitSpec
from ..settings import Settings

log = logging.getLogger(__name__)

APP = "controlnet"  # the Serve application's default name
DEPLOYMENT = "ControlNet"
RETRIES = 1  # a request whose replica died is sent again this many times


class Replica:
    """One Serve replica: a whole service on the device Ray gave it (CUDA_VISIBLE_DEVICES), its models loaded and
    warmed before it takes requests. Rate limits and the live lane stay in the front."""

    def __init__(self, settings: Settings | None = None):
        # None: the replica's own CONTROLNET_DEMO_* environment (Serve's runtime_env sets it on a cluster)
        self.service = ControlNetService(settings or Settings.from_env())
        self.service.warm_up()

    async def generate(self, spec: GenerateSpec):
        """The request's events, each with this replica's pid (which replica served what). The job runs on the
        service's request thread; when the front cancels (Stop, or its user went away), Serve cancels this
        coroutine and the job stops at its next denoising step, as it does in-process."""
        stop = threading.Event()
        events = self.service.generate(spec, stop=stop)
        try:
            while (event := await asyncio.to_thread(next, events, None)) is not None:
                if isinstance(event, Failed) and not isinstance(event.error, DemoError):  # a bug: its traceback
                    log.error("request failed", exc_info=event.error)  # stays here, pickling drops it
                yield os.getpid(), event
        finally:
            stop.set()

    def live_frame(self, spec: GenerateSpec) -> tuple[Output, tuple]:
        prepared = self.service.prepare(spec)
        return self.service.run(prepared), prepared.kept_maps

    def detect(self, unit: UnitSpec):
        return self.service.detect(unit)

    def detect_pose(self, picture, resolution: int, side: int) -> str:
        return self.service.detect_pose(picture, resolution, side=side)

    def zero_conv_norms(self, name: str) -> list[float]:
        return self.service.zero_conv_norms(name)


def deployment(settings: Settings | None = None, *, replicas: int = 1, max_replicas: int = 0, gpus: float = 0):
    """The Serve application: `replicas` replicas, or (`max_replicas` > 0) autoscaled from 0 to that many at one
    request per replica; each replica takes `gpus` GPUs (1 on a GPU machine) and runs one request at a time."""
    from ray import serve

    options = dict(max_ongoing_requests=1, ray_actor_options={"num_gpus": gpus, "num_cpus": 0 if gpus else 1})
    if max_replicas > 0:
        options["autoscaling_config"] = {
            "min_replicas": 0,
            "initial_replicas": 1,
            "max_replicas": max_replicas,
            "target_ongoing_requests": 1,
        }
    else:
        options["num_replicas"] = replicas
    return serve.deployment(Replica, name=DEPLOYMENT, **options).bind(settings)


def build(args: dict[str, str]):
    """`serve run --name controlnet controlnet_demo.serving.ray_serve:build replicas=N | max_replicas=N [gpus=1]`;
    `gpus` defaults to 1 when the machine running `serve run` has a GPU (give it on a head node without one); the
    replicas' other settings come from their own CONTROLNET_DEMO_* environment."""
    import torch

    gpus = float(args.get("gpus", 1 if torch.cuda.is_available() else 0))
    return deployment(replicas=int(args.get("replicas", 1)), max_replicas=int(args.get("max_replicas", 0)), gpus=gpus)


class RemoteService(ControlNetService):
    """The in-process service's surface (generate, live, detect, …) over a Serve deployment: what the UI calls
    when the models live elsewhere. Validation runs on the replicas; the rate limit, the live lane and the result
    PNGs (written again here from what the replica sent) stay in this process. `capacity` is how many requests it
    lets through at once: the deployment's (largest) number of replicas."""

    def __init__(self, settings: Settings, handle, replicas: int, output_dir: str | None = None):
        self._replicas = replicas
        super().__init__(settings, output_dir=output_dir)  # its stores never load anything
        self.handle = handle
        self.served_by: Counter[int] = Counter()  # replica pid -> requests finished there

    @classmethod
    def connect(cls, settings: Settings) -> RemoteService:
        """The front of the Serve application `settings.ray_app` on the Ray cluster RAY_ADDRESS names (or the
        local one)."""
        import ray
        from ray import serve

        if not ray.is_initialized():
            ray.init(address="auto", log_to_driver=False)
        return cls(settings, serve.get_app_handle(settings.ray_app), settings.ray_replicas)

    @property
    def capacity(self) -> int:
        return self._replicas

    def generate(self, spec: GenerateSpec, client: str | None = None) -> Iterator:
        try:
            if client is not None:
                self.limiter.check(client)
        except Exception as exc:
            yield Failed(exc)
            return
        with self.priority.full():
            for attempt in range(RETRIES + 1):
                stream = self.handle.options(stream=True).generate.remote(spec)
                prepared, finished = None, False
                try:
                    for pid, event in stream:
                        if isinstance(event, MapsReady):
                            prepared = event.prepared
                        elif isinstance(event, Done):
                            event = Done(self._here(event.output, prepared.kept_maps))
                            self.served_by[pid] += 1
                        finished = isinstance(event, (Done, Failed))
                        yield event
                        if finished:
                            return
                except _lost() as exc:
                    log.warning("replica lost (attempt %d of %d): %s", attempt + 1, RETRIES + 1, exc)
                except Exception as exc:  # Serve's own (no replica, back-pressure, ...): an event, as in-process
                    finished = True
                    yield Failed(exc)
                    return
                finally:
                    if not finished:  # the user pressed Stop or went away: the replica stops at its next step
                        stream.cancel()
        yield Failed(WorkerLost(_LOST))

    def _live_frame(self, job) -> Output:
        _, _, spec, _ = job  # checked on the replica whatever the page asked (check_paused finds no frame here)
        with self.priority.live():
            output, kept = self._call("live_frame", spec)
        return self._here(output, kept)

    def detect(self, unit: UnitSpec, client: str | None = None):
        if client is not None:
            self.limiter.check(client)
        return self._call("detect", unit)

    def detect_pose(self, picture, resolution: int, client: str | None = None, side: int = 512) -> str:
        if client is not None:
            self.limiter.check(client)
        return self._call("detect_pose", picture, resolution, side)

    def zero_conv_norms(self, name: str) -> list[float]:
        return self._call("zero_conv_norms", name)

    def warm_up(self) -> float:
        return 0.0  # each replica warms itself up before it takes requests

    def _call(self, method: str, *args):
        """A unary call, retried on another replica when its replica died; a replica's own error raised as is."""
        from ray.exceptions import RayTaskError

        for attempt in range(RETRIES + 1):
            try:
                return getattr(self.handle, method).remote(*args).result(timeout_s=self.settings.request_timeout_s)
            except RayTaskError as exc:  # raised in the replica: the error itself, not Ray's wrapper
                raise exc.cause from None
            except TimeoutError:
                raise GenerationTimeout(
                    "The server's {method} took longer than its time limit; try again.", method=method
                ) from None
            except _lost() as exc:
                log.warning("replica lost in %s (attempt %d of %d): %s", method, attempt + 1, RETRIES + 1, exc)
        raise WorkerLost(_LOST)

    def _here(self, output: Output, kept_maps) -> Output:
        """The replica's output with its PNGs written in this process (the replica's disk may be another node's)."""
        params = {k: v for k, v in output.params.items() if k != "seeds"}
        files = self.files.save_pngs(output.result, params, kept_maps)
        return dataclasses.replace(output, files=files, residual_file=self.files.save_residuals(output.result))


_LOST = (
    "The machine running your request stopped, and so did the retry on another one. Nothing was generated; "
    "try again in a moment."
)


def _lost() -> tuple[type[BaseException], ...]:
    from ray.exceptions import ActorUnavailableError, RayActorError

    return (RayActorError, ActorUnavailableError)
