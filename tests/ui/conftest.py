"""The browser tests' fixtures: headless Debian chromium (not playwright's own build) and a page on the session's
launched app."""

from __future__ import annotations

import shutil

import pytest

from tools.browser import CHROMIUM_ARGS, UI_TIMEOUT_MS, VIEWPORT


@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian chromium is not on PATH (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, launched_app):
    url, _ = launched_app
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    page.goto(url)
    try:
        yield page
    finally:
        context.close()
