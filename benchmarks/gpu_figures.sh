#!/usr/bin/env bash
# The GPU figures in the README, in one run on a CUDA machine (diffusers installed), from the repo root:
#   OUT=artifacts/gpu bash benchmarks/gpu_figures.sh
# 1. issue 4's configuration (b): SD1.5 architecture, random weights, 512 px, 20 steps, CFG 7.5, fp16; 1 and 3
#    ControlNets, full window and end 0.6: our exact engine, stock diffusers, SD alone, and the fast mode
#    (torch.compile with CUDA graphs), 5 timed runs each; then the same with the U-Nets in channels_last;
# 2. training cost of a ControlNet vs fine-tuning the U-Net, SD1.5 architecture, 512 px, batch 4, bf16 autocast;
# 3. the last host wait in the loop, side by side (benchmarks/gpu_waits.py: UniPC's solve checked or not);
# 4. where a fast-mode image's time goes (benchmarks/gpu_profile.py: kernel time vs wall, the pieces outside the loop).
set -uo pipefail
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
OUT=${OUT:-artifacts/gpu}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"
"$PY" -c "import torch, diffusers, transformers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__)" | tee -a "$OUT/gpu.txt"
timeout "${BENCH_TIMEOUT:-330}" "$PY" -m benchmarks.benchmark --models sd15 --runs 5 --compile \
    --json "$OUT/benchmark_sd15.json" 2>&1 | tee "$OUT/benchmark_sd15.md"
timeout "${BENCH_TIMEOUT:-330}" "$PY" -m benchmarks.benchmark --models sd15 --runs 5 --compile --channels-last \
    --json "$OUT/benchmark_sd15_cl.json" 2>&1 | tee "$OUT/benchmark_sd15_cl.md"
timeout "${COST_TIMEOUT:-150}" "$PY" -m benchmarks.training_cost --model sd15 --batch 4 --size 512 --dtype bf16 \
    2>&1 | tee "$OUT/training_cost_sd15.md"
timeout "${WAITS_TIMEOUT:-200}" "$PY" -m benchmarks.gpu_waits --json "$OUT/waits.json" 2>&1 | tee "$OUT/waits.md"
timeout "${PROFILE_TIMEOUT:-420}" "$PY" -m benchmarks.gpu_profile --json "$OUT/profile.json" 2>&1 | tee "$OUT/profile.md"
