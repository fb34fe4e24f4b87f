"""What the last host wait in the denoising loop costs on a GPU: SD1.5 architecture (random weights), 512 px,
20 steps, CFG 7.5, fp16, channels_last, one ControlNet, UniPC; run on a CUDA machine from the repo root:

    HF_HUB_OFFLINE=1 python -m benchmarks.gpu_waits --json artifacts/gpu/waits.json

Side by side in one process, runs interleaved: the engine as shipped (each scheduler step under
`controlnet_demo.engine.schedulers.SolveUnchecked`, so UniPC's corrector does not check its 2x2 solve on the host)
and the same engine with that context swapped for a no-op (the solve checks, and the host waits for the GPU once per
step). For each: host waits per image (cudaStreamSynchronize / cudaDeviceSynchronize calls under torch.profiler)
and the median wall time of the exact engine and the fast mode (torch.compile, reduce-overhead).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics

from benchmarks import benchmark
from controlnet_demo.engine import schedulers

# swapped in schedulers' namespace: `without_waits` looks SolveUnchecked up there at every request
VARIANTS = {"unchecked solve (shipped)": schedulers.SolveUnchecked, "checked solve": contextlib.nullcontext}


def host_waits(fn) -> int:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sum(e.count for e in prof.key_averages() if e.key in ("cudaStreamSynchronize", "cudaDeviceSynchronize"))


def main() -> None:
    args, device, dtype, size, steps, out = benchmark.one_controlnet_setup("artifacts/gpu/waits.json", runs=7)
    cuda = device.type == "cuda"
    base, nets = benchmark.build(args.model, size, 1, device, dtype, channels_last=cuda)
    bargs = argparse.Namespace(guidance=7.5, seed=0, images=1, scheduler="UniPC", compile=True, compile_mode=None)
    fns = benchmark.runners(base, nets, [benchmark.control_map(size, 0)], bargs, size, steps, 1.0, device, dtype)
    fns.pop("stock")
    for fn in fns.values():  # the fast mode compiles here
        fn(), fn()
    times: dict = {(v, f): [] for v in VARIANTS for f in fns}
    for v, mode in VARIANTS.items():
        schedulers.SolveUnchecked = mode
        for f, fn in fns.items():
            out[f"{v} / {f} host waits"] = host_waits(fn)
    for _ in range(args.runs):  # interleaved, so drift hits both alike
        for v, mode in VARIANTS.items():
            schedulers.SolveUnchecked = mode
            for f, fn in fns.items():
                times[v, f].append(benchmark.timed(fn, device)[0])
    schedulers.SolveUnchecked = VARIANTS["unchecked solve (shipped)"]
    for (v, f), ms in times.items():
        out[f"{v} / {f} ms"] = round(statistics.median(ms), 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1), flush=True)


if __name__ == "__main__":
    main()
