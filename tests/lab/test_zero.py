"""DeepSpeed ZeRO-2 through accelerate (`train ... --deepspeed FILE`), for real on two CPU processes (DeepSpeed's CPU
accelerator over gloo) with the shipped config (docs/deepspeed-zero2.json: the optimizer's state offloaded, so
DeepSpeed's own CPU Adam, built on first use): the same model as plain data parallel, DeepSpeed's own checkpoints,
an exact resume; and the config files this loop cannot run refused in words."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from controlnet_demo.cli import main
from controlnet_demo.paths import REPO_ROOT
from tests.lab.test_training import FAST, _metrics, base  # noqa: F401  (base: the tiny base fixture)

ZERO2 = {"zero_optimization": {"stage": 2}, "train_micro_batch_size_per_gpu": "auto", "gradient_clipping": "auto"}


def _two_processes(args: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = subprocess.run(
        [*command, "-m", "controlnet_demo", *args], env=env, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.slow
def test_zero2_on_two_processes_trains_the_same_model_as_data_parallel_and_resumes_exactly(base, tmp_path, capsys):  # noqa: F811
    pytest.importorskip("deepspeed")
    config = REPO_ROOT / "docs" / "deepspeed-zero2.json"
    assert json.loads(config.read_text())["zero_optimization"]["offload_optimizer"]["device"] == "cpu"
    args = ["train", "controlnet", "--base", str(base), "--resolution", "32", "--device", "cpu", "--quiet"]
    args += ["--batch-size", "4", "--checkpoint-every", "2"]
    plain, zero = tmp_path / "plain", tmp_path / "zero"
    _two_processes([*args, "--steps", "4", "--out", str(plain)])
    _two_processes([*args, "--steps", "2", "--out", str(zero), "--deepspeed", str(config)])
    _two_processes([*args, "--steps", "4", "--out", str(zero), "--deepspeed", str(config), "--resume"])

    rows, reference = _metrics(zero), _metrics(plain)
    assert [(r["step"], r["num_processes"], r["global_batch_size"], r["zero_stage"]) for r in rows] == [
        (s, 2, 8, 2) for s in (1, 2, 3, 4)
    ]
    for ours, theirs in zip(rows, reference):  # the same batches, the same averaged gradients, the same steps
        assert ours["batch_checksums"] == theirs["batch_checksums"]
        assert ours["loss"] == pytest.approx(theirs["loss"], rel=1e-5)
        first, second = ours["weights_checksums"]
        assert first == second and first == pytest.approx(theirs["weights_checksums"][0], rel=1e-6)  # CPU Adam
    checkpoint = zero / "checkpoints" / "step-00000004"
    assert (checkpoint / "pytorch_model").is_dir() and not (checkpoint / "optimizer.bin").exists()  # DeepSpeed's
    assert (zero / "diffusion_pytorch_model.safetensors").is_file()
    # DeepSpeed's checkpoint resumed without it: refused in words, not a traceback
    assert main([*args, "--steps", "6", "--out", str(zero), "--resume"]) == 2
    assert "was written with DeepSpeed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "could not be read"),
        ("{zero", "is not JSON"),
        (json.dumps({"zero_optimization": {"stage": 3}}), "ZeRO stage 3"),
        (json.dumps({**ZERO2, "optimizer": {"type": "AdamW"}}), "brings its own"),
        (json.dumps({**ZERO2, "train_micro_batch_size_per_gpu": 16}), 'set it to "auto" or to 2'),
    ],
)
def test_a_deepspeed_config_this_loop_cannot_run_is_a_one_line_error(tmp_path, capsys, content, message):
    pytest.importorskip("deepspeed")
    config = tmp_path / "ds.json"
    if content is not None:
        config.write_text(content)
    args = ["train", "controlnet", "--base", str(tmp_path / "nothing"), "--out", str(tmp_path / "out"), *FAST]
    assert main([*args, "--deepspeed", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
