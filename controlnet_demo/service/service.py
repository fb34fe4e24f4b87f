"""The app's one service: a user's request in, a stream of typed events out (maps, steps, previews, done, error).

It keeps the models resident and the control maps cached, validates every value on the server, runs the engine
and writes every image as a PNG that carries its parameters. The UI and the CLI both call
`ControlNetService.generate` and read the same events; neither talks to the engine directly. No gradio here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..conditions import Detectors, condition, detect
from ..conditions.check import ControlCheck, check_control, not_yet_checked
from ..conditions.openpose_json import detected_json, is_pose_json, render_pose
from ..engine import ControlUnit, Engine, Request, zero_convolutions
from ..engine.fast_mode import AOT_MODE, default_compile_mode
from ..errors import GenerationTimeout, UserInputError, check_number
from ..images import load_rgb
from ..models import curves
from ..models.devices import pick_devices
from ..models.loading import ModelStore, Resolved, resolve_preset
from ..settings import Settings
from .files import ResultFiles
from .guards import MapCache, Priority, RateLimiter
from .live import LastFrames, LiveLane
from .specs import (
    ControlMap,
    Done,
    Event,
    Failed,
    GenerateSpec,
    ImagesReady,
    MapsReady,
    Output,
    Prepared,
    PreviewReady,
    StepDone,
    UnitSpec,
    editor_image,
    prepare,
)

log = logging.getLogger(__name__)


class ControlNetService:
    def __init__(
        self, settings: Settings | None = None, resolved: Resolved | None = None, output_dir: str | None = None
    ):
        self.settings = settings or Settings.from_env()
        self.resolved = resolved or resolve_preset(self.settings)
        log.info("preset %s: %s", self.resolved.preset.name, self.resolved.reason)
        # one store (the weights resident) and one engine per device; the first store also serves what is not a
        # generation (the How tab's norms); the fast mode on a GPU keeps the convolutions in channels_last: faster
        # there (docs/performance.md)
        self.stores = [
            ModelStore(
                self.resolved, device, dtype, channels_last=self.settings.compile is not None and device.type == "cuda"
            )
            for device, dtype in pick_devices(self.settings.device)
        ]
        self.store = self.stores[0]
        self.detectors = Detectors(self.settings.annotators, online=self.resolved.online, device=str(self.store.device))
        self.maps = MapCache(self.settings.map_cache_mb * 2**20)
        self.limiter = RateLimiter(self.settings.rate_limit_per_minute)
        self.files = ResultFiles(output_dir or tempfile.mkdtemp(prefix="controlnet_demo_"), self.settings.cache_ttl_s)
        self._engines: list[Engine | None] = [None] * self.capacity
        self._engine_locks = [threading.Lock() for _ in range(self.capacity)]
        # the engines not running a job; last in, first out: when one suffices it is always the same (warm) one
        self._free: queue.LifoQueue[int] = queue.LifoQueue()
        for index in reversed(range(self.capacity)):
            self._free.put(index)
        self.priority = Priority(self.capacity)  # full-quality jobs go before live frames
        self.live_lane = LiveLane(self._live_frame, max_waiting=self.settings.queue_size)
        self.last_frames = LastFrames(self.settings.queue_size)  # the page's frames, checked when it pauses
        # requests run on kept threads, not a new thread each: torch's first work on a thread costs (on 2 CPU
        # cores a fresh thread made the offline model's 20 steps 0.5-0.8 s slower; docs/performance.md). One per
        # engine: an engine runs one job at a time, and the UI sends as many full-quality jobs at once as there are
        # engines (`capacity`)
        self._worker = ThreadPoolExecutor(max_workers=self.capacity, thread_name_prefix="request")

    @property
    def preset(self):
        return self.resolved.preset

    @property
    def output_dir(self) -> Path:
        """Where the result files go (`files`)."""
        return self.files.folder

    @property
    def capacity(self) -> int:
        """How many generations run at once: one per device."""
        return len(self.stores)

    @property
    def compile_mode(self) -> str | None:
        """The fast mode's torch.compile mode (None: the exact engine), "auto" resolved for the (first) device."""
        return self._compile_mode(self.store.device)

    def _compile_mode(self, device) -> str | None:
        mode = self.settings.compile
        if mode == "auto":  # ZeroGPU supports ahead-of-time compilation only
            return AOT_MODE if self.settings.zero_gpu else default_compile_mode(device)
        return mode

    @property
    def engine(self) -> Engine:
        """The first device's engine."""
        return self.engine_on(0)

    def engine_on(self, index: int) -> Engine:
        """The engine on the `index`th device's models, made (and the base model loaded) on first use."""
        with self._engine_locks[index]:
            if self._engines[index] is None:
                store = self.stores[index]
                decoder = store.preview_decoder() if self.settings.preview_every > 0 else None
                self._engines[index] = Engine(
                    store.base,
                    store.controlnets,
                    store.device,
                    store.dtype,
                    decoder,
                    compile_mode=self._compile_mode(store.device),
                    loras=store.loras,
                )
            return self._engines[index]

    # -- the one entry point -----------------------------------------------------------------------------

    def generate(
        self, spec: GenerateSpec, client: str | None = None, stop: threading.Event | None = None
    ) -> Iterator[Event]:
        """One request's events: MapsReady, then StepDone (and PreviewReady) per step, then ImagesReady (the images,
        before the control check and the PNGs), then Done; or Failed at the first error. The work runs on one of the service's request threads, on a free engine; closing the stream (the user pressed
        Stop or went away), or setting `stop`, stops it at its next denoising step. `client` (a host name) is rate-limited; None (the CLI) is not."""
        events: queue.Queue = queue.Queue()
        stop = stop or threading.Event()  # set by the caller, or when the stream is closed

        def work():
            try:
                deadline = time.monotonic() + self.settings.request_timeout_s  # detection counts too
                if client is not None:
                    self.limiter.check(client)
                prepared = self.prepare(spec)
                events.put(MapsReady(prepared))
                with self.priority.full():
                    output = self.run(
                        prepared,
                        deadline=deadline,
                        on_step=lambda i, n: events.put(StepDone(i, n)),
                        should_stop=stop.is_set,
                        on_preview=lambda i, n, images: events.put(PreviewReady(i, n, images)),
                        on_images=lambda images: events.put(ImagesReady(images)),
                    )
                events.put(Done(output))
            except BaseException as exc:  # handed to the request's stream; never kills the server
                events.put(Failed(exc))

        self._worker.submit(work)
        try:
            while True:
                event = events.get()
                yield event
                if isinstance(event, (Done, Failed)):
                    return
        finally:
            stop.set()

    def live(self, spec: GenerateSpec, client: str, check: bool = True) -> Output | None:
        """One frame of the live canvas: its Output, or None when a newer frame of the same `client` (a session)
        replaced it before it ran. At most one frame per client waits (`LiveLane`), frames run one at a time and
        never ahead of a full-quality job (`Priority`); errors are raised, in words. Not rate-limited per minute:
        the lane is the bound, and a replaced frame costs nothing. `check` False: the frame comes without its
        control check (its PNG's is None), which `check_paused` makes once the drawing pauses."""
        number = self.last_frames.asked(client)
        future = self.live_lane.submit(client, (client, number, spec, check))
        try:
            return future.result(timeout=self.settings.request_timeout_s)
        except TimeoutError:
            raise GenerationTimeout(
                "The live frame waited past the server's time limit behind other jobs; draw again to retry."
            ) from None

    def _live_frame(self, job) -> Output:
        client, number, spec, check = job
        deadline = time.monotonic() + self.settings.request_timeout_s
        prepared = self.prepare(spec)
        with self.priority.live():
            output = self.run(prepared, deadline=deadline, check=check)
        if not check:
            self.last_frames.keep(client, number, (prepared, output.result))
        return output

    def check_paused(self, client: str, pause_s: float) -> list[ControlCheck] | None:
        """The control check of `client`'s last unchecked live frame, once no newer frame was asked for within
        `pause_s`; None when one was (or there is none, or its turn did not come within the server's time limit).
        The detectors run as background work: after every job and frame that waits."""
        kept = self.last_frames.after_pause(client, pause_s)
        if kept is None:
            return None
        number, frame = kept
        try:
            with self.priority.background(timeout=self.settings.request_timeout_s):
                if not self.last_frames.latest(client, number):  # drawn again while it waited for its turn
                    return None
                return self.check(*frame)
        except TimeoutError:
            return None

    # -- its steps ---------------------------------------------------------------------------------------

    def detect(self, unit: UnitSpec, client: str | None = None) -> np.ndarray:
        """The unit's control map alone, no generation: what `generate` would give its ControlNet (HxWx3 uint8).
        `client` is rate-limited like a generation; None (the CLI) is not."""
        if client is not None:
            self.limiter.check(client)
        return self.control_map(unit).image

    def detect_pose(self, picture, resolution: int, client: str | None = None, side: int = 512) -> str:
        """The people OpenPose finds in `picture`, as OpenPose JSON on a canvas of the picture's shape with the
        longer side `side` (the pose editor's starting point). Raises ModelUnavailableError without its weights."""
        if client is not None:
            self.limiter.check(client)
        limits = self.settings.limits
        image = load_rgb(editor_image(picture), limits, what="pose image")
        resolution = check_number(resolution, "Preprocessor resolution", *limits.preprocess_resolutions, integer=True)
        model = self.detectors.get("openpose")
        from controlnet_aux.util import HWC3, resize_image

        poses = model.detect_poses(resize_image(HWC3(image), resolution))
        h, w = image.shape[:2]
        scale = side / max(w, h)
        return detected_json(poses, max(1, round(w * scale)), max(1, round(h * scale)))

    def control_map(self, unit: UnitSpec) -> ControlMap:
        """The unit's control map and what made it, detected once per (image content, preprocessor, settings)."""
        limits = self.settings.limits
        spec = condition(unit.condition, self.preset.controlnets, context=f" ({self.preset.title})")
        picture = editor_image(unit.image)
        if spec.reads_pose_json and is_pose_json(picture):  # a pose from a program: drawn, it is the map
            if spec.preprocessor(unit.preprocessor).name != "none":
                raise UserInputError(
                    "A pose given as OpenPose JSON is the map itself: choose the preprocessor 'none' for it."
                )
            picture = render_pose(picture)
        image = load_rgb(picture, limits, what=f"{spec.label.lower()} image")
        resolution = check_number(
            unit.preprocess_resolution, "Preprocessor resolution", *limits.preprocess_resolutions, integer=True
        )
        settings = spec.checked_settings(unit.preprocessor, unit.params or {})  # what the preprocessor reads
        preprocessor = spec.preprocessor(unit.preprocessor).name

        def made():
            return detect(unit.condition, image, unit.preprocessor, resolution, self.detectors, **settings)

        if preprocessor == "none":  # the picture is the map: nothing to save by keeping it (up to 4096² pixels)
            return ControlMap(made(), preprocessor, settings, resolution)
        key = (
            hashlib.sha1(image.tobytes()).hexdigest(),
            image.shape,
            unit.condition,
            preprocessor,
            resolution,
            tuple(sorted(settings.items())),
        )
        return ControlMap(self.maps.get_or_make(key, made), preprocessor, settings, resolution)

    def prepare(self, spec: GenerateSpec) -> Prepared:
        """Validate every value on the server and build the engine request; errors say what to change."""
        extra = {"engine": f"compiled (fast mode, {self.compile_mode})"} if self.compile_mode else None
        return prepare(spec, self.preset, self.settings.limits, self.control_map, extra)

    def run(
        self,
        prepared: Prepared,
        on_step=None,
        should_stop=None,
        on_preview=None,
        deadline=None,
        on_images=None,
        check: bool = True,
    ) -> Output:
        """The prepared request on a free engine (waiting for one when all are busy), its images checked and saved;
        it stops at `deadline` (time.monotonic(); default: the server's time limit from now). `on_images(images)`
        gets the images as soon as the engine is done: before the control check, which re-runs a detector on each
        (`check` False: each unit's says it is not checked yet)."""
        deadline = deadline or time.monotonic() + self.settings.request_timeout_s
        index = self._free.get()
        try:
            result = self.engine_on(index).generate(
                prepared.request,
                on_step=on_step,
                should_stop=should_stop,
                deadline=deadline,
                on_preview=on_preview,
                preview_every=self.settings.preview_every,
            )
        finally:
            self._free.put(index)
        if on_images is not None:
            on_images(result.images)
        checks = self.check(prepared, result) if check else [not_yet_checked(u) for u in prepared.request.units]
        params = {
            **prepared.params,
            "seconds": round(result.seconds, 2),
            "control_check": [c.as_dict() for c in checks],
        }
        files = self.files.save_pngs(result, params, prepared.kept_maps)
        output = Output(files, prepared.maps, {**params, "seeds": result.seeds}, result, tuple(checks))
        return dataclasses.replace(output, residual_file=self.files.save_residuals(result))

    def check(self, prepared: Prepared, result) -> list[ControlCheck]:
        """How well the result follows each unit's map (`conditions.check`)."""
        return [
            check_control(
                condition(unit.condition),
                result.images,
                unit.image,
                given["preprocessor"],
                given["params"],
                self.detectors,
                unit.strength,
                unit.start,
                unit.end,
            )
            for unit, given in zip(prepared.request.units, prepared.params["units"])
        ]

    # -- around the requests -----------------------------------------------------------------------------

    def aot_sides(self) -> tuple[int, ...]:
        """The sides the "aoti" mode compiles for: `settings.aot_sizes`, else the preset's default."""
        low, high, step, default = self.preset.resolution
        for side in self.settings.aot_sizes:
            if not low <= side <= high or side % step:  # the operator's setting, read at start-up (as settings.py)
                raise ValueError(
                    f"CONTROLNET_DEMO_AOT_SIZES: {side} is not a resolution this model serves ({low} to {high}, "
                    f"in steps of {step})."
                )
        return tuple(dict.fromkeys(self.settings.aot_sizes)) or (default,)  # each size once

    def compile_ahead(self, index: int = 0, conditions=None, sides=None) -> dict:
        """The "aoti" mode's graphs for the `index`th engine: the U-Net and every ControlNet (or those of
        `conditions`), each captured in a square request (one image, CFG) of each of `sides` (default: aot_sides)
        and compiled with `spaces`' AoT functions. Returned, for `install_graphs` (on ZeroGPU this runs in a GPU
        worker, which hands them back)."""
        sides = sides or self.aot_sides()  # checked before anything is imported or captured
        import spaces  # the "aoti" mode's capture and compile: Hugging Face's package (requirements-test.txt)

        requests = [
            (
                c,
                Request(
                    "",
                    [ControlUnit(c, np.zeros((side, side, 3), np.uint8))],
                    steps=1,
                    guidance_scale=self.preset.guidance,
                    width=side,
                    height=side,
                ),
            )
            for side in sides
            for c in conditions or self.preset.controlnets
        ]
        return self.engine_on(index).compile_ahead(requests, spaces.aoti_capture, spaces.aoti_compile)

    def install_graphs(self, graphs: dict, index: int = 0) -> None:
        self.engine_on(index).install(graphs)

    def warm_up(self) -> float:
        """One small request on every engine through every path a first request takes (base, a ControlNet, CFG),
        so that the models are loaded and the fast mode compiled at start-up rather than in a user's request
        (the "aoti" mode's graphs compiled first); returns its seconds."""
        started = time.perf_counter()
        if self.compile_mode == AOT_MODE:
            for index in range(self.capacity):
                if not self.engine_on(index).aot.graphs:
                    self.install_graphs(self.compile_ahead(index), index)
        side = self.preset.resolution[3]  # the default
        name = next(iter(self.preset.controlnets))
        # 2 steps, control on the first only: the U-Net with and without residuals
        unit = ControlUnit(name, np.zeros((side, side, 3), np.uint8), end=0.5)
        request = Request("", [unit], steps=2, guidance_scale=self.preset.guidance, width=side, height=side)
        for index in range(self.capacity):
            self.engine_on(index).generate(request)
        return time.perf_counter() - started

    def zero_conv_norms(self, name: str) -> list[float]:
        """The Frobenius norm of each of the 13 zero convolutions of a condition's ControlNet (0 when untrained)."""
        net = self.store.controlnet(name)
        return [float(z.weight.detach().float().norm()) for z in zero_convolutions(net)]

    def training_curves(self) -> dict[str, dict]:
        """The training curves shipped with the preset's local ControlNets (`train export` writes them)."""
        return curves.training_curves(self.preset.controlnets)

    def evaluation(self) -> dict | None:
        """The evaluation summary shipped beside the preset's base model, if it is a local folder that has one."""
        return curves.evaluation(self.preset.base)
