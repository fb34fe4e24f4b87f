"""The service on the tiny preset, for the service's tests (their small request: builders.small_spec)."""

from __future__ import annotations

import pytest

from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> ControlNetService:
    return ControlNetService(Settings(preset="tiny", preview_every=0), output_dir=str(tmp_path_factory.mktemp("out")))
