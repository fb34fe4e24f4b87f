"""Several devices in one machine: one engine per device (its own resident weights), each request on a free one,
as many at once as there are devices. Two CPU engines stand in for two GPUs."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from controlnet_demo.models.devices import pick_devices
from controlnet_demo.service import ControlNetService, final_output
from controlnet_demo.settings import Settings
from tests.builders import small_spec

CPU = (torch.device("cpu"), torch.float32)
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="what a machine without a GPU answers")


def test_devices_are_one_a_comma_separated_list_or_all():
    assert pick_devices("cpu") == [CPU]
    assert pick_devices(" cpu, cpu ") == [CPU, CPU]
    with pytest.raises(ValueError, match="'gpu0' .* is not a device: give cpu, cuda, cuda:N"):
        pick_devices("cpu,gpu0")


@no_gpu
def test_without_a_gpu_all_is_the_cpu_and_a_gpu_asked_for_is_refused_in_words():
    assert pick_devices("all") == pick_devices(None) == [CPU]
    with pytest.raises(ValueError, match="'cuda:0' asked for, but this machine has no CUDA GPU: use cpu"):
        pick_devices("cuda:0,cuda:1")


def test_two_engines_run_two_requests_at_once_and_each_result_equals_the_one_engine_service(astronaut, tmp_path):
    one = ControlNetService(Settings(preset="tiny", preview_every=0), output_dir=str(tmp_path / "one"))
    two = ControlNetService(
        Settings(preset="tiny", device="cpu,cpu", preview_every=0), output_dir=str(tmp_path / "two")
    )
    assert (one.capacity, two.capacity) == (1, 2)
    engines = [two.engine_on(0), two.engine_on(1)]
    assert engines[0] is not engines[1]
    assert two.stores[0].base.unet is not two.stores[1].base.unet  # each device holds its own weights

    # the first two jobs each wait, inside their engine, for the other to be running too: on one engine at a time
    # they never would (the barrier breaks, and the job fails); 4 jobs, each engine used
    barrier, lock, calls = threading.Barrier(2, timeout=120), threading.Lock(), []

    def meeting(index, generate):
        def wrapped(*args, **kwargs):
            with lock:
                calls.append(index)
                first_two = len(calls) <= 2
            if first_two:
                barrier.wait()
            return generate(*args, **kwargs)

        return wrapped

    for index, engine in enumerate(engines):
        engine.generate = meeting(index, engine.generate)
    specs = [small_spec(astronaut, seed=seed, prompt=f"a red circle, {seed}") for seed in range(4)]
    with ThreadPoolExecutor(len(specs)) as pool:
        outputs = list(pool.map(lambda spec: final_output(two.generate(spec)), specs))

    assert sorted(calls[:2]) == [0, 1] and len(calls) == 4  # the first two ran at once, one on each engine
    for spec, output in zip(specs, outputs):
        alone = final_output(one.generate(spec))
        assert output.params["seeds"] == alone.params["seeds"] == [spec.seed]
        assert np.array_equal(output.result.images, alone.result.images)  # bit for bit the one-device result


def test_the_app_lets_as_many_generations_run_at_once_as_there_are_devices(tmp_path):
    from controlnet_demo.ui.app import build
    from controlnet_demo.ui.widgets import GPU

    two = ControlNetService(Settings(preset="tiny", device="cpu,cpu"), output_dir=str(tmp_path))
    blocks = build(two)
    limits = {fn.api_name: fn.concurrency_limit for fn in blocks.fns.values() if fn.concurrency_id == GPU}
    assert {"canny", "pose", "depth", "scribble", "compose", "detect"} <= set(limits)
    assert set(limits.values()) == {2}


def test_the_app_started_with_a_device_that_does_not_exist_says_so_in_words():
    env = {**os.environ, "CONTROLNET_DEMO_DEVICE": "cpu,gpu0", "CONTROLNET_DEMO_PRESET": "tiny"}
    proc = subprocess.run([sys.executable, "app.py"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "controlnet_demo: Device 'gpu0'" in proc.stderr and "Traceback" not in proc.stderr
