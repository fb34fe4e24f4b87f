"""The learner's lab in a real browser: a short training run in the "Train one yourself" tab shows the zero
convolutions leave 0, a probe point and its pictures."""

from __future__ import annotations

import shutil

import pytest

from controlnet_demo.paths import REPO_ROOT
from tools.browser import block, open_tab

pytestmark = pytest.mark.browser

if shutil.which("chromium") is None:
    pytest.skip("Debian chromium is not on PATH (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")

ARTIFACTS = REPO_ROOT / "artifacts"
RUN_TIMEOUT_MS = 600_000  # turns a hang into a failure; the run's own end is what the test waits for


def _set(panel, label: str, value: int) -> None:
    box = panel.get_by_label(f"number input for {label}")
    box.fill(str(value))
    box.press("Enter")


def test_a_short_training_run_shows_the_zero_convolutions_leave_0_and_a_probe_point(page):
    panel = open_tab(page, "Train one yourself")
    for label, value in (("Steps", 3), ("Batch size", 2), ("Probe every (steps)", 2)):
        _set(panel, label, value)
    panel.get_by_role("button", name="Start training").click()
    status = panel.locator("#train-status")
    sync_api.expect(status).to_contain_text("Done · step 3 of 3", timeout=RUN_TIMEOUT_MS)
    text = status.inner_text()
    assert "largest weight norm 0 before the first step" in text
    now = float(text.split("before the first step, ")[1].split(" now")[0])
    assert now > 0  # they left 0
    for plot in ("#train-norms", "#train-probes"):
        sync_api.expect(panel.locator(f"{plot} canvas, {plot} svg").first).to_be_visible()
    sync_api.expect(block(panel, "The latest probe: map, picture").last.locator("img")).to_have_count(8)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "browser_training.png"), full_page=True)
