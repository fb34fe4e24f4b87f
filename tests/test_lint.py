"""The code passes the project's linter and is formatted by its formatter (ruff, configured in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controlnet_demo.paths import REPO_ROOT

CODE = ["controlnet_demo", "tests", "benchmarks", "tools", "app.py"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["lint", "format"])
def test_ruff_finds_nothing(command):
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff is not installed (it comes with requirements-test.txt)")
    result = subprocess.run([ruff, *command, *CODE], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
