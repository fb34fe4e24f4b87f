"""Every knob of the demo, read from the environment in one place (no other module reads os.environ).

Settings are read when `Settings.from_env()` is called, never at import time, so tests and the CLI can
build their own.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

ENV_PREFIX = "CONTROLNET_DEMO_"
LOOPBACK = ("127.0.0.1", "localhost", "::1")  # a server here is reachable from this machine alone


@dataclass(frozen=True)
class Limits:
    """Server-side bounds on every request; the UI shows the same bounds, but the server enforces them."""

    max_prompt_chars: int = 1000
    max_steps: int = 100
    max_images: int = 4
    max_guidance: float = 30.0
    max_strength: float = 2.0
    max_units: int = 3
    max_pixels: int = 4096 * 4096  # 16.8 MP
    max_inline_bytes: int = 20 * 2**20  # an image sent inside the request as a data: URL (the drawing pad's PNG)
    min_side: int = 64
    max_side: int = 4096
    max_aspect: float = 4.0
    preprocess_resolutions: tuple[int, int] = (64, 2048)


# torch.compile modes of the optional fast mode; "cudagraphs" is the cudagraphs backend (no Inductor kernels)
# "aoti": ahead of time (engine/aot.py), ZeroGPU's way; "auto" picks it on ZeroGPU
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune-no-cudagraphs", "cudagraphs", "aoti")


@dataclass(frozen=True)
class Settings:
    preset: str = "auto"  # "auto" (sd15 when reachable or cached, else offline), "sd15", "offline" or "tiny"
    base_model: str | None = None  # override of the preset's base model: hub id or local folder
    controlnets: dict[str, str] = field(default_factory=dict)  # condition -> hub id or local folder
    annotators: str = "lllyasviel/Annotators"  # hub id or local folder with detector weights
    # None: CUDA when available, else CPU; "cuda:0,cuda:1" or "all" (every GPU): one engine per device, each
    # request on a free one (models.devices.pick_devices)
    device: str | None = None
    # the optional fast mode, warmed up at start: None (off), "auto" (reduce-overhead on CUDA, default on CPU) or a
    # torch.compile mode of COMPILE_MODES; "cudagraphs" replays PyTorch's own kernels, so its images stay exact
    compile: str | None = None
    aot_sizes: tuple[int, ...] = ()  # the "aoti" mode: a graph per module for each of these sides (() = the default)
    preview_every: int = 5  # live previews in the UI every this many denoising steps; 0 = none
    hub_timeout_s: float = 2.0  # how long to wait for the hub before falling back to offline
    queue_size: int = 16
    request_timeout_s: float = 120.0
    max_file_size: str = "20mb"
    cache_ttl_s: int = 3600  # result and upload files are deleted this long after they were written
    map_cache_mb: int = 256  # detected control maps kept for the next request with the same picture (in memory)
    # public hosting: no tracebacks, MCP and training off, a rate limit and a cap on each visitor's queued jobs. On
    # whenever the server listens beyond this machine (not 127.0.0.1 / localhost / ::1), runs on a Space or makes a
    # share link (GRADIO_SHARE), unless CONTROLNET_DEMO_PUBLIC=0 says otherwise; behind a reverse proxy on this
    # machine, set CONTROLNET_DEMO_PUBLIC=1 (and CONTROLNET_DEMO_BEHIND_PROXY=1)
    public: bool = False
    rate_limit_per_minute: int = 0  # generations per client a minute (a comparison is 5); 0 = off. Public: 30
    jobs_per_client: int = (
        0  # jobs one client may have queued or running at once (a comparison is 5); 0 = off. Public: 6
    )
    max_request_mb: int = 32  # a request body over this is refused before it is read (uploads: max_file_size)
    # the browser sessions whose state gradio keeps (about 0.6 MB each, the oldest dropped first): a caller can make
    # up a new session at every request. Public: 500
    sessions: int = 10_000
    # the client's address is the last one a proxy in front of the app adds to X-Forwarded-For (on a Space), not the
    # connection's (which is the proxy's, the same for every visitor)
    behind_proxy: bool = False
    # the named endpoints as MCP tools (gradio's MCP server): on for `python app.py` unless public, off in tests
    mcp: bool = False
    # the models on a Ray Serve application of this name (serving/ray_serve.py) instead of in this process, with
    # this many replicas at most (how many requests the app lets through at once)
    ray_app: str | None = None
    zero_gpu: bool = False  # on a Hugging Face ZeroGPU Space (SPACES_ZERO_GPU): every model loaded at start-up
    # the "Train one yourself" tab runs training here: on for `python app.py` unless public, off in tests
    training: bool = False
    ray_replicas: int = 1
    server_name: str = "127.0.0.1"
    server_port: int | None = None
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str, default=None):
            return env.get(ENV_PREFIX + name, default)

        # every CONTROLNET_DEMO_<CONDITION>_MODEL, known condition or not: a typo such as OPENPOSE_MODEL must
        # reach apply_overrides (which names the known conditions) instead of being silently ignored
        controlnets = {
            key[len(ENV_PREFIX) : -len("_MODEL")].lower(): value
            for key, value in env.items()
            if key.startswith(ENV_PREFIX) and key.endswith("_MODEL") and key != ENV_PREFIX + "BASE_MODEL" and value
        }
        on_spaces = bool(env.get("SPACE_ID"))
        server_name = get("SERVER_NAME", env.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1"))
        shared = _truthy(env.get("GRADIO_SHARE", "0"))  # a share link: reachable from anywhere
        public = _truthy(get("PUBLIC", "1" if on_spaces or shared or server_name not in LOOPBACK else "0"))
        values = dict(
            preset=get("PRESET", "auto"),
            base_model=get("BASE_MODEL"),
            controlnets=controlnets,
            annotators=get("ANNOTATORS", cls.annotators),
            device=get("DEVICE"),
            compile=_compile_mode(get("COMPILE", "0")),
            aot_sizes=_sizes(get("AOT_SIZES", "")),
            preview_every=max(0, int(get("PREVIEW_EVERY", cls.preview_every))),
            hub_timeout_s=float(get("HUB_TIMEOUT", cls.hub_timeout_s)),
            queue_size=int(get("QUEUE_SIZE", cls.queue_size)),
            request_timeout_s=float(get("REQUEST_TIMEOUT", cls.request_timeout_s)),
            max_file_size=get("MAX_FILE_SIZE", cls.max_file_size),
            cache_ttl_s=int(get("CACHE_TTL", cls.cache_ttl_s)),
            map_cache_mb=int(get("MAP_CACHE_MB", cls.map_cache_mb)),
            public=public,
            rate_limit_per_minute=int(get("RATE_LIMIT", 30 if public else cls.rate_limit_per_minute)),
            jobs_per_client=int(get("JOBS_PER_CLIENT", 6 if public else cls.jobs_per_client)),
            max_request_mb=int(get("MAX_REQUEST_MB", cls.max_request_mb)),
            sessions=int(get("SESSIONS", 500 if public else cls.sessions)),
            behind_proxy=_truthy(get("BEHIND_PROXY", "1" if on_spaces else "0")),
            mcp=_truthy(get("MCP", "0" if public else "1")),
            ray_app=get("RAY_APP") or None,
            zero_gpu=_truthy(env.get("SPACES_ZERO_GPU", "0")),
            training=_truthy(get("TRAINING", "0" if public else "1")),
            ray_replicas=max(1, int(get("RAY_REPLICAS", cls.ray_replicas))),
            server_name=server_name,
            server_port=_int_or_none(get("PORT", env.get("GRADIO_SERVER_PORT"))),
        )
        values.update(overrides)
        return cls(**values)

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)


def launched_processes(environ: dict[str, str] | None = None) -> int:
    """How many processes a launcher started this one among (torchrun, `accelerate launch`, mpirun): 1 alone. The
    variables accelerate itself reads for a multi-process run on CPUs."""
    env = os.environ if environ is None else environ
    sizes = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
    return max(int(env.get(name) or 1) for name in sizes)


def hub_offline(environ: dict[str, str] | None = None) -> bool:
    """True when the user told huggingface_hub not to touch the network."""
    env = os.environ if environ is None else environ
    return _truthy(env.get("HF_HUB_OFFLINE", "0"))


def _compile_mode(value: str) -> str | None:
    value = value.strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return None
    if _truthy(value):
        return "auto"
    if value not in COMPILE_MODES:
        raise ValueError(
            f"CONTROLNET_DEMO_COMPILE={value!r}: use 0 (off), 1 (the device's fastest) or one of "
            + ", ".join(COMPILE_MODES)
        )
    return value


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _sizes(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in value.replace(" ", "").split(",") if part)
    except ValueError:
        raise ValueError(
            f"CONTROLNET_DEMO_AOT_SIZES={value!r}: give the sides to compile, in pixels, e.g. 512,768."
        ) from None


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None
