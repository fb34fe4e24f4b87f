"""The embedded offline model as a user of diffusers alone would load it: the snippet of docs/offline-model.md,
run as it is written, in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from PIL import Image

from controlnet_demo.models.presets import OFFLINE, offline_fallback
from controlnet_demo.paths import DOCS_DIR, REPO_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(offline_fallback() is not OFFLINE, reason="the embedded offline model is not installed"),
]


def snippet(name: str) -> str:
    """The ```python block after `<!-- snippet: NAME -->` in the docs."""
    text = (DOCS_DIR / "offline-model.md").read_text()
    found = re.search(rf"<!-- snippet: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"no snippet {name} in docs/offline-model.md"
    return found.group(1)


def test_the_documented_plain_diffusers_snippet_loads_and_generates_on_a_cpu(tmp_path):
    code = snippet("load-offline-model").replace('"assets/', f'"{REPO_ROOT}/assets/')
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    with Image.open(tmp_path / "offline-canny.png") as image:
        assert image.size == (64, 64)
