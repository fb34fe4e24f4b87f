"""Where the time of one fast-mode image goes on a GPU: SD1.5 architecture (random weights), 512 px, 20 steps, CFG 7.5,
fp16, channels_last, one ControlNet; run on a CUDA machine from the repo root:

    HF_HUB_OFFLINE=1 python -m benchmarks.gpu_profile --json artifacts/gpu/profile.json

It reports, each as the median of timed runs with the device drained: stock diffusers, our exact engine and the fast
mode end to end; the fast mode under torch.profiler (kernel time against wall time: how much of the image the GPU is
busy, and the top kernels); the pieces outside the loop (prompt encoding, the VAE decode eager and compiled, a tiny
AutoencoderTiny decode as used for previews); and the fast mode with control on the conditional branch only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from benchmarks import benchmark
from controlnet_demo.engine import ControlUnit, Request


def median_ms(fn, runs: int) -> float:
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return statistics.median(benchmark.timed(fn, device)[0] for _ in range(runs))


def main() -> None:
    args, device, dtype, size, steps, out = benchmark.one_controlnet_setup("artifacts/gpu/profile.json", runs=5)
    cuda = device.type == "cuda"

    def save():
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2))

    base, nets = benchmark.build(args.model, size, 1, device, dtype, channels_last=cuda)
    bargs = argparse.Namespace(guidance=7.5, seed=0, images=1, scheduler="UniPC", compile=True, compile_mode=None)
    maps = [benchmark.control_map(size, 0)]
    fns = benchmark.runners(base, nets, maps, bargs, size, steps, 1.0, device, dtype)
    started = time.perf_counter()
    fns["compiled"]()
    out["fast_first_call_s"] = time.perf_counter() - started
    for fn in fns.values():
        fn()
    for name, fn in fns.items():
        out[f"{name}_ms"] = median_ms(fn, args.runs)
    save()

    # the fast mode under the profiler: kernel time vs wall
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])) as prof:
        benchmark._sync(device)
        started = time.perf_counter()
        fns["compiled"]()
        benchmark._sync(device)
        wall = (time.perf_counter() - started) * 1e3
    events = prof.key_averages()
    kernel_us = sum(e.self_device_time_total for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    out["profiled_wall_ms"] = wall
    out["profiled_kernel_ms"] = kernel_us / 1e3
    out["cpu_ops"] = {
        e.key: [e.count, round(e.cpu_time_total / 1e3, 2)] for e in sorted(events, key=lambda e: -e.cpu_time_total)[:25]
    }
    table = events.table(
        sort_by="self_cuda_time_total" if cuda else "self_cpu_time_total", row_limit=25, max_name_column_width=70
    )
    print(table, flush=True)
    out["top_kernels"] = table
    save()

    # the pieces outside the denoising loop
    pipe = base
    latents = torch.randn(
        1, 4, size // pipe.vae_scale_factor, size // pipe.vae_scale_factor, device=device, dtype=dtype
    )
    with torch.inference_mode():
        out["encode_prompt_ms"] = median_ms(
            lambda: pipe.encode_prompt("a red circle", device, 1, True, "blurry"), args.runs
        )
        decode = lambda: pipe.vae.decode(latents, return_dict=False)[0]  # noqa: E731
        out["vae_decode_ms"] = median_ms(decode, args.runs)
        from diffusers import AutoencoderTiny

        taesd = AutoencoderTiny().to(device, dtype).eval()
        out["tiny_vae_decode_ms"] = median_ms(lambda: taesd.decode(latents, return_dict=False)[0], args.runs)
    save()
    mode = "max-autotune-no-cudagraphs"  # what was measured; the engine's fast mode uses its own compile mode
    try:
        with torch.inference_mode():
            compiled = torch.compile(pipe.vae.decode, mode=mode)
            started = time.perf_counter()
            compiled(latents, return_dict=False)
            out[f"vae_decode_compile_s[{mode}]"] = time.perf_counter() - started
            out[f"vae_decode_compiled_ms[{mode}]"] = median_ms(
                lambda: compiled(latents, return_dict=False)[0], args.runs
            )
    except Exception as exc:  # noqa: BLE001 - the measurements before it are kept
        out[f"vae_decode_compiled_error[{mode}]"] = f"{type(exc).__name__}: {exc}"[:300]
    save()

    # control on the conditional branch only (the "ControlNet is more important" mode's branch), fast mode
    fast = benchmark.engine(base, nets, device, dtype, compile_mode="auto")
    unit = ControlUnit("canny", maps[0], mode="control")
    request = Request(benchmark.PROMPT, [unit], benchmark.NEGATIVE, steps, 7.5, 0, 1, size, size, "UniPC")
    started = time.perf_counter()
    fast.generate(request)
    out["cond_only_first_call_s"] = time.perf_counter() - started
    fast.generate(request)
    out["cond_only_fast_ms"] = median_ms(lambda: fast.generate(request), args.runs)
    save()
    print(json.dumps({k: v for k, v in out.items() if k != "top_kernels"}, indent=1), flush=True)


if __name__ == "__main__":
    main()
