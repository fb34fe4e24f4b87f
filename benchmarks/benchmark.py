"""Speed of the engine against diffusers' stock ControlNet pipelines: same weights, seed, scheduler and settings.

Per configuration (model, number of ControlNets, control window) it times our `Engine`, the stock
StableDiffusionControlNetPipeline (with a MultiControlNetModel for several ControlNets) and the stock
StableDiffusionPipeline with no ControlNet; it reports the median of the timed runs, ours/stock, peak memory, and
whether our images equal the stock ones (every configuration here has a stock equivalent). A Markdown table goes
to stdout, everything to a JSON file. The models are random (the same classes and sizes as the real ones):
"small" is the offline model's size at 64 px, "tiny" the tiny preset's, "sd15" the SD1.5 architecture.

    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.benchmark --quick        # checks the whole path in ~2 min on a CPU
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.benchmark --models small  # (a) the offline model's size, CPU
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.benchmark --models sd15   # (b) SD1.5, 512 px / 20 steps / fp16 on a GPU,
                                                                              #     256 px / 5 steps / fp32 on a CPU
    HF_HUB_OFFLINE=1 .venv/bin/python -m benchmarks.benchmark --models small --compile  # + the torch.compile fast mode
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from controlnet_demo.engine import SCHEDULERS, ControlUnit, Engine, Request, make_scheduler
from controlnet_demo.engine.fast_mode import default_compile_mode
from controlnet_demo.models import architectures
from controlnet_demo.settings import COMPILE_MODES

NET_NAMES = ("canny", "depth", "pose")  # names only: each is a ControlNet of its own random weights
PROMPT, NEGATIVE = "a red circle and a blue square on a yellow background", "blurry"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
TOLERANCE = {torch.float32: 1e-4, torch.float16: 2e-2, torch.bfloat16: 2e-2}  # max abs pixel difference, in [0, 1]


# --- models: random weights, seeded ---------------------------------------------------------------------------------


def _sd15_parts():
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        layers_per_block=2,
        latent_channels=4,
    )
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768)  # the other defaults are SD1.5's
    text = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=768,
            intermediate_size=3072,
            num_hidden_layers=12,
            num_attention_heads=12,
            max_position_embeddings=77,
            hidden_act="quick_gelu",
            bos_token_id=49406,
            eos_token_id=49407,
            pad_token_id=49407,
        )
    )
    return vae, unet, text


def _small_parts(name: str, size: int):
    config = architectures.MODEL_CONFIGS[name]
    latent = size // 2 ** (len(config.vae_channels) - 1)
    return (
        architectures.build_vae(config),
        architectures.build_unet(config, sample_size=latent),
        architectures.build_text_encoder(config),
    )


def build(model: str, size: int, n_nets: int, device: torch.device, dtype: torch.dtype, channels_last: bool):
    """(base StableDiffusionPipeline, ControlNets): each ControlNet a copy of the U-Net (ControlNetModel.from_unet)
    whose zero convolutions get the default init instead of zeros, standing in for trained weights."""
    from diffusers import ControlNetModel

    with torch.device(device):  # built where it runs: an SD1.5 U-Net initialises in seconds on a GPU
        torch.manual_seed(0)
        vae, unet, text = _sd15_parts() if model == "sd15" else _small_parts(model, size)
        nets = []
        for k in range(n_nets):
            channels = architectures.condition_channels(len(vae.config.block_out_channels))
            net = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=channels)
            torch.manual_seed(1 + k)
            for conv in [*net.controlnet_down_blocks, net.controlnet_mid_block, net.controlnet_cond_embedding.conv_out]:
                conv.reset_parameters()
            nets.append(net)
    # cast only when needed: diffusers warns on every cast, even a no-op one
    vae, unet, text, *nets = [(m if m.dtype == dtype else m.to(dtype)).eval() for m in (vae, unet, text, *nets)]
    if channels_last:
        for m in (unet, *nets):
            m.to(memory_format=torch.channels_last)
    base = architectures.assemble_pipeline(vae, text, architectures.tokenizer(), unet)  # DDIM, SD1.5's schedule
    base.set_progress_bar_config(disable=True)
    return base, nets


def engine(base, nets, device, dtype, compile_mode: str | None = None) -> Engine:
    """Our engine on these parts, one ControlNet per condition name (NET_NAMES[k] -> nets[k]); compile_mode None:
    the exact engine, "auto": the fast mode in the device's default mode, or a torch.compile mode / "cudagraphs"."""
    return Engine(base, dict(zip(NET_NAMES, nets)), device, dtype, compile_mode=compile_mode)


def control_map(size: int, seed: int) -> np.ndarray:
    """A blocky random binary map, uint8 RGB (size, size, 3): something for the ControlNet to follow."""
    cells = np.random.default_rng(seed).integers(0, 2, (8, 8), dtype=np.uint8) * 255
    return np.repeat(np.kron(cells, np.ones((size // 8, size // 8), np.uint8))[..., None], 3, axis=2)


# --- the three ways to make the same images -------------------------------------------------------------------------


def runners(base, nets, maps, args, size: int, steps: int, end: float, device, dtype):
    """{"ours", "stock"[, "compiled"]}: callables returning (B, H, W, 3) float images, for the first len(maps)
    ControlNets; "compiled" (with --compile) is our engine's optional fast mode."""
    from diffusers import MultiControlNetModel, StableDiffusionControlNetPipeline
    from PIL import Image

    n = len(maps)
    units = [ControlUnit(NET_NAMES[k], maps[k], strength=1.0, start=0.0, end=end) for k in range(n)]
    request = Request(PROMPT, units, NEGATIVE, steps, args.guidance, args.seed, args.images, size, size, args.scheduler)
    exact = engine(base, nets, device, dtype)
    fast = engine(base, nets, device, dtype, compile_mode=args.compile_mode or "auto") if args.compile else None
    stock_pipe = StableDiffusionControlNetPipeline(
        **_components(base),
        controlnet=nets[0] if n == 1 else MultiControlNetModel(nets[:n]),
        scheduler=make_scheduler(args.scheduler, base.scheduler.config),
    )
    stock_pipe.set_progress_bar_config(disable=True)
    pil = [Image.fromarray(m) for m in maps]
    one = n == 1

    def stock():
        return stock_pipe(
            PROMPT,
            pil[0] if one else pil,
            **_common(args, size, steps),
            controlnet_conditioning_scale=1.0 if one else [1.0] * n,
            control_guidance_start=0.0 if one else [0.0] * n,
            control_guidance_end=end if one else [end] * n,
        ).images

    fns = {"ours": lambda: exact.generate(request).images, "stock": stock}
    if fast is not None:
        fns["compiled"] = lambda: fast.generate(request).images
    return fns


def sd_alone(base, args, size: int, steps: int):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(**_components(base), scheduler=make_scheduler(args.scheduler, base.scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    return lambda: pipe(PROMPT, **_common(args, size, steps)).images


def _components(base) -> dict:
    return {k: v for k, v in base.components.items() if k not in ("scheduler", "image_encoder")}


def _common(args, size: int, steps: int) -> dict:
    # one CPU generator per image, seeds seed, seed+1, ...: the engine's convention
    return dict(
        height=size,
        width=size,
        num_inference_steps=steps,
        guidance_scale=args.guidance,
        negative_prompt=NEGATIVE,
        num_images_per_prompt=args.images,
        output_type="np",
        generator=[torch.Generator().manual_seed(args.seed + i) for i in range(args.images)],
    )


# --- timing and memory ------------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:  # Linux: "5" resets the process's peak RSS (VmHWM) to its current RSS
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # then the figure is the process's peak so far


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_controlnet_setup(json_default: str, runs: int):
    """The shared start of the one-ControlNet GPU scripts (benchmarks.gpu_profile, benchmarks.gpu_waits): their
    arguments (--runs, --model sd15 or tiny for a CPU check of the script, --json), then device, dtype, size, steps
    and the record's header: SD1.5 at 512 px and 20 steps in fp16 on a GPU."""
    import diffusers

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=runs)
    parser.add_argument("--model", default="sd15", choices=("sd15", "tiny"), help="tiny: a CPU check of the script")
    parser.add_argument("--json", type=Path, default=Path(json_default))
    args = parser.parse_args()
    diffusers.utils.logging.set_verbosity_error()
    cuda = torch.cuda.is_available()
    device, dtype = torch.device("cuda" if cuda else "cpu"), torch.float16 if cuda else torch.float32
    size, steps = (512, 20) if args.model == "sd15" else (64, 4)
    out = dict(
        gpu=torch.cuda.get_device_name() if cuda else "cpu",
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        model=args.model,
        size=size,
        steps=steps,
    )
    return args, device, dtype, size, steps, out


def timed(fn, device: torch.device):
    """(milliseconds, peak MB, images) of one call, the device drained before and after."""
    _sync(device)
    _reset_peak(device)
    started = time.perf_counter()
    images = fn()
    _sync(device)
    return (time.perf_counter() - started) * 1e3, _peak_mb(device), images


def measure(fns: dict, args, device: torch.device) -> dict:
    """name -> (median ms, max peak MB, last images); the callables alternate, so drifting load hits them alike."""
    for _ in range(args.warmup):
        for fn in fns.values():
            fn()
    samples = {name: [] for name in fns}
    for _ in range(args.runs):
        for name, fn in fns.items():
            samples[name].append(timed(fn, device))
    return {
        name: (statistics.median(s[0] for s in runs), max(s[1] for s in runs), runs[-1][2])
        for name, runs in samples.items()
    }


# --- the run ------------------------------------------------------------------------------------------------------------


def machine(device: torch.device, dtype: torch.dtype) -> dict:
    import diffusers

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
        name = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
            platform.processor(),
        )
    return dict(
        device=str(device),
        name=name,
        cpus=os.cpu_count(),
        torch_threads=torch.get_num_threads(),
        dtype=str(dtype).removeprefix("torch."),
        torch=torch.__version__,
        diffusers=diffusers.__version__,
        python=platform.python_version(),
        load_average_1min=os.getloadavg()[0],
    )


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        choices=("tiny", "small", "sd15"),
        default=["small", "sd15"],
        help="model sizes, random weights (default: small sd15)",
    )
    parser.add_argument(
        "--nets", nargs="+", type=int, choices=(1, 2, 3), default=[1, 3], help="ControlNets per request (default: 1 3)"
    )
    parser.add_argument(
        "--ends",
        nargs="+",
        type=float,
        default=[1.0, 0.6],
        help="control_guidance_end of every ControlNet (start 0) (default: 1.0 0.6)",
    )
    parser.add_argument(
        "--size",
        type=int,
        help="image side in px for every model (default: 64 for tiny/small; sd15 512 on a GPU, 256 on a CPU)",
    )
    parser.add_argument("--steps", type=int, help="denoising steps (default: 20; sd15 on a CPU 5)")
    parser.add_argument(
        "--runs", type=int, default=5, help="timed runs per configuration; the median is reported (default: 5)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (default: 1)")
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--dtype", choices=tuple(DTYPES), help="default: fp16 on cuda, fp32 on cpu")
    parser.add_argument(
        "--channels-last", action="store_true", help="U-Net and ControlNets in channels_last (ours and stock alike)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="also time our engine's optional fast mode (torch.compile); "
        "its first call, which compiles, is reported apart",
    )
    parser.add_argument(
        "--compile-mode",
        choices=COMPILE_MODES,
        help="torch.compile mode of the fast mode (default: the engine's: reduce-overhead, i.e. Inductor "
        "kernels in CUDA graphs, on a GPU; default on a CPU); cudagraphs: PyTorch's own kernels in CUDA graphs",
    )
    parser.add_argument("--scheduler", choices=SCHEDULERS, default="UniPC")
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--images", type=int, default=1, help="images per request (default: 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tolerance",
        type=float,
        help="max abs pixel difference that counts as equal (default: 1e-4 in fp32, 2e-2 in fp16/bf16)",
    )
    parser.add_argument("--json", type=Path, default=Path("artifacts/benchmark.json"), help="where the results go")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check of the whole path, not a measurement: small and sd15 at 64 px, 2 steps, 1 timed run",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.steps, args.runs, args.warmup = args.size or 64, args.steps or 2, 1, 1
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    import diffusers

    diffusers.utils.logging.set_verbosity_error()  # not the cast and safety-checker notices of every build
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    dtype = DTYPES[args.dtype] if args.dtype else (torch.float16 if device.type == "cuda" else torch.float32)
    tolerance = args.tolerance if args.tolerance is not None else TOLERANCE[dtype]
    info = machine(device, dtype)
    print(
        f"# {info['name']} ({info['device']}, {info['dtype']}), {info['cpus']} CPUs, {info['torch_threads']} torch threads; "
        f"torch {info['torch']}, diffusers {info['diffusers']}; load average {info['load_average_1min']:.1f}",
        file=sys.stderr,
    )
    if device.type == "cpu" and info["load_average_1min"] > 0.5:
        print("# warning: the machine is busy; these timings are not valid figures", file=sys.stderr)

    rows = []
    for model in args.models:
        on_cpu_sd15 = model == "sd15" and device.type == "cpu"
        size = args.size or (64 if model != "sd15" else 256 if on_cpu_sd15 else 512)
        steps = args.steps or (5 if on_cpu_sd15 else 20)
        started = time.perf_counter()
        base, nets = build(model, size, max(args.nets), device, dtype, args.channels_last)
        print(f"# {model}: built in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        alone = measure({"alone": sd_alone(base, args, size, steps)}, args, device)["alone"]
        for n in args.nets:
            maps = [control_map(size, seed=k) for k in range(n)]
            for end in args.ends:
                fns = runners(base, nets, maps, args, size, steps, end, device, dtype)
                compile_s, compile_error = None, None
                try:
                    if "compiled" in fns:  # its first call compiles (new shapes or graphs only): timed apart
                        compile_s = timed(fns["compiled"], device)[0] / 1e3
                    m = measure(fns, args, device)
                except Exception as exc:  # noqa: BLE001 - a fast-mode failure must not lose the exact rows
                    if "compiled" not in fns:
                        raise
                    compile_s, compile_error = None, f"{type(exc).__name__}: {exc}"[:500]
                    print(f"# fast mode failed: {compile_error}", file=sys.stderr)
                    del fns["compiled"]
                    args.compile = False  # not again for every configuration
                    m = measure(fns, args, device)
                diff = float(np.abs(m["ours"][2] - m["stock"][2]).max())
                rows.append(
                    dict(
                        model=model,
                        size=size,
                        steps=steps,
                        nets=n,
                        end=end,
                        ours_ms=m["ours"][0],
                        stock_ms=m["stock"][0],
                        ours_over_stock=m["ours"][0] / m["stock"][0],
                        sd_alone_ms=alone[0],
                        ours_peak_mb=m["ours"][1],
                        stock_peak_mb=m["stock"][1],
                        sd_alone_peak_mb=alone[1],
                        max_abs_diff=diff,
                        exact=bool(diff <= tolerance),  # False for NaN too
                    )
                )
                if compile_error is not None:
                    rows[-1]["compiled_error"] = compile_error
                if compile_s is not None:
                    rows[-1].update(
                        compile_mode=args.compile_mode or default_compile_mode(device),
                        compiled_ms=m["compiled"][0],
                        compiled_over_stock=m["compiled"][0] / m["stock"][0],
                        compiled_peak_mb=m["compiled"][1],
                        first_compiled_call_s=compile_s,
                        compiled_max_abs_diff=float(np.abs(m["compiled"][2] - m["stock"][2]).max()),
                    )
                print(
                    f"# {model} {n} net(s) end {end}: ours {rows[-1]['ours_ms']:.0f} ms, stock {rows[-1]['stock_ms']:.0f} ms"
                    + (f", compiled {rows[-1]['compiled_ms']:.0f} ms" if "compiled_ms" in rows[-1] else ""),
                    file=sys.stderr,
                )
                write_json(args, info, tolerance, rows)  # after every row: a run cut short keeps what it measured
        del base, nets
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()

    print(table(rows, info, tolerance))
    write_json(args, info, tolerance, rows)
    print(f"# written to {args.json}", file=sys.stderr)


def write_json(args, info: dict, tolerance: float, rows: list[dict]) -> None:
    args.json.parent.mkdir(parents=True, exist_ok=True)
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.json.write_text(json.dumps(dict(machine=info, settings=settings, tolerance=tolerance, rows=rows), indent=2))


def table(rows: list[dict], info: dict, tolerance: float) -> str:
    memory = "peak GPU memory allocated" if info["device"].startswith("cuda") else "peak process RSS, weights included"
    lines = [
        f"{info['name']}, {info['device']}, {info['dtype']}, {info['torch_threads']} threads, load average "
        f"{info['load_average_1min']:.1f} at the start; medians; {memory} (MB); exact = our images within {tolerance:g} "
        "of the stock ones",
        "",
        "| model | px | steps | ControlNets | window | ours ms | stock ms | ours/stock | speed-up | SD alone ms | "
        "peak MB ours / stock / SD alone | max abs diff | exact |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['size']} | {r['steps']} | {r['nets']} | 0–{r['end']:g} | {r['ours_ms']:.0f} | "
            f"{r['stock_ms']:.0f} | {r['ours_over_stock']:.2f} | {1 / r['ours_over_stock']:.2f}× | {r['sd_alone_ms']:.0f} | "
            f"{r['ours_peak_mb']:.0f} / {r['stock_peak_mb']:.0f} / {r['sd_alone_peak_mb']:.0f} | {r['max_abs_diff']:.1e} | "
            f"{'yes' if r['exact'] else 'no'} |"
        )
    fast = [r for r in rows if "compiled_ms" in r]
    if fast:
        lines += [
            "",
            f"Optional fast mode (torch.compile, mode {fast[0]['compile_mode']}; the last column says how close its images are):",
            "",
            "| model | ControlNets | window | compiled ms | stock ms | speed-up | first call (compiles) s | peak MB | "
            "max abs diff to stock |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['model']} | {r['nets']} | 0–{r['end']:g} | {r['compiled_ms']:.0f} | {r['stock_ms']:.0f} | "
            f"{1 / r['compiled_over_stock']:.2f}× | {r['first_compiled_call_s']:.1f} | {r['compiled_peak_mb']:.0f} | "
            f"{r['compiled_max_abs_diff']:.1e} |"
            for r in fast
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
