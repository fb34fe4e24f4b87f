"""`torchrun --nproc_per_node 2 -m controlnet_demo train ...` on a machine without GPUs and without `--device`: one
data-parallel run on the two CPU processes, as with `--device cpu` (not two one-process runs into the same folder);
and a device that cannot be shared by several processes refused in words."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from controlnet_demo.errors import UserInputError
from controlnet_demo.lab import training
from controlnet_demo.paths import REPO_ROOT
from tests.lab.test_training import _metrics, base  # noqa: F401  (base: the tiny base fixture)


@pytest.mark.slow
def test_torchrun_without_device_on_a_machine_without_gpus_trains_one_run_on_both_cpu_processes(base, tmp_path):  # noqa: F811
    out = tmp_path / "two"
    args = ["train", "controlnet", "--base", str(base), "--steps", "3", "--resolution", "32", "--batch-size", "4"]
    # no --device; CUDA_VISIBLE_DEVICES="": a machine without GPUs, even where the tests run on one
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env["CUDA_VISIBLE_DEVICES"] = ""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = subprocess.run(
        [*command, "-m", "controlnet_demo", *args, "--quiet", "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]

    rows = _metrics(out)
    # one run: each step logged once, by the main process, as a run of two processes with the global batch of both
    assert [(r["step"], r["num_processes"], r["global_batch_size"]) for r in rows] == [(s, 2, 8) for s in (1, 2, 3)]
    for row in rows:  # each process read its own half, and both hold the same weights (the gradients averaged)
        first, second = row["batch_checksums"]
        assert first != second
        assert row["weights_checksums"][0] == row["weights_checksums"][1], row
    assert (out / "diffusion_pytorch_model.safetensors").is_file()


def test_a_device_that_several_processes_cannot_share_is_refused_in_one_line(tmp_path, monkeypatch):
    """MPS has no collective backend: under torchrun each process would train alone."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    config = training.TrainConfig(kind="controlnet", out=str(tmp_path / "out"), device="mps")
    with pytest.raises(UserInputError) as caught:
        training.train(config, progress=False)
    message = str(caught.value)
    assert "--device mps" in message and "--device cpu" in message and "\n" not in message
