"""Re-make the README's pictures of the running app: `python -m tools.screenshot` (needs Debian chromium and the
embedded offline model; about a minute on 2 CPU cores). Writes assets/screenshot.png (a triangle and a square drawn
in the Scribble tab, generated) and assets/convergence.png (the How tab's sudden-convergence plot)."""

from __future__ import annotations

import shutil

from controlnet_demo.models.presets import OFFLINE, offline_fallback
from controlnet_demo.paths import ASSETS_DIR
from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import build, launch
from tools.browser import CHROMIUM_ARGS, VIEWPORT, block, draw_shapes, open_tab, pad_canvas

PROMPT = "a red triangle and a blue square on a yellow background"


def main() -> None:
    from playwright.sync_api import expect, sync_playwright

    if offline_fallback() is not OFFLINE:
        raise SystemExit("the embedded offline model (assets/offline-model) is not installed")
    service = ControlNetService(Settings(preset="offline"))
    blocks = build(service)
    launch(service, blocks, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(blocks.local_url)
            panel = open_tab(page, "Scribble")
            draw_shapes(page, pad_canvas(panel, "scribble-pad"))
            panel.get_by_label("Prompt", exact=True).fill(PROMPT)
            panel.get_by_role("button", name="Generate", exact=True).click()
            expect(block(panel, "Parameters (also stored in each PNG)")).to_contain_text(PROMPT, timeout=600_000)
            how = open_tab(page, "How ControlNet works")
            plot = how.locator("#convergence")
            plot.scroll_into_view_if_needed()
            page.wait_for_timeout(1500)  # the plot draws after it scrolls into view
            plot.screenshot(path=str(ASSETS_DIR / "convergence.png"))
            open_tab(page, "Scribble")
            page.mouse.move(0, 0)  # no hover highlight in the picture
            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(ASSETS_DIR / "screenshot.png"), full_page=True)
            browser.close()
    finally:
        blocks.close()
    print(f"wrote {ASSETS_DIR / 'screenshot.png'} and {ASSETS_DIR / 'convergence.png'}")


if __name__ == "__main__":
    main()
