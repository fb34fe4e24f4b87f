"""`python app.py`'s start-up: which service it makes, and what it loads before the first request."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from controlnet_demo.models.presets import OFFLINE
from controlnet_demo.paths import REPO_ROOT
from tests.annotators import write_random_annotators

STARTUP = """
    import json, sys
    import controlnet_demo.service.service as service_module
    picked = []  # was `spaces` imported when the device was picked?
    original = service_module.pick_devices
    service_module.pick_devices = lambda requested=None: picked.append("spaces" in sys.modules) or original(requested)
    import app
    from controlnet_demo.settings import Settings
    service = app.make_service(Settings(preset={preset!r}, zero_gpu={zero_gpu}, annotators={annotators!r}))
    store = service.store
    print(json.dumps(dict(picked=picked, base=store._base is not None, controlnets=sorted(store._controlnets),
                          loras=sorted(store._loras), preview=store._preview is not None,
                          detectors=sorted(service.detectors._loaded))))
"""


def _startup(zero_gpu: bool, preset: str = "tiny", annotators: str = "lllyasviel/Annotators") -> dict:
    code = textwrap.dedent(STARTUP.format(zero_gpu=zero_gpu, preset=preset, annotators=annotators))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_on_zerogpu_spaces_comes_first_and_every_model_is_loaded_at_start_up(tmp_path):
    """ZeroGPU emulates CUDA from the moment `spaces` is imported, and wants the weights moved there at start-up:
    the app imports it before the device is picked, and loads the base, every ControlNet, the few-step LoRAs and
    the preview decoder before any request, and every detector whose weights are there (here PiDiNet's only; the
    others say why when used). (Outside a Space, `spaces` patches nothing: the device is the CPU.)"""
    write_random_annotators(tmp_path, "pidinet")
    out = _startup(zero_gpu=True, preset="offline", annotators=str(tmp_path))
    assert out["picked"] == [True]
    assert out["base"] and out["controlnets"] == sorted(OFFLINE.controlnets)  # every one the embedded model has
    assert out["loras"] == ["lcm"]  # (its previews decode with the base's own small VAE: nothing more to load)
    assert out["detectors"] == ["pidinet"]


def test_elsewhere_nothing_is_loaded_before_the_first_request():
    out = _startup(zero_gpu=False)
    assert out == dict(picked=[False], base=False, controlnets=[], loras=[], preview=False, detectors=[])
