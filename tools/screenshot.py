"""Re-make the README's pictures of the running app: `python -m tools.screenshot` (needs Debian chromium and the
embedded offline model; about a minute on 2 CPU cores). Writes assets/screenshot.png (a triangle and a square drawn
in the Scribble tab, generated) and assets/convergence.png (the How tab's sudden-convergence plot).
`python -m tools.screenshot --editors` writes docs/using-the-app.md's pictures of the two editors instead:
assets/pose-editor.png (the standing figure, its right wrist dragged up) and assets/map-editor.png (the example
photo's canny map, a region erased). `python -m tools.screenshot --train` writes assets/train-tab.png: the Train
tab after a run with its defaults (about 10 minutes on 2 CPU cores)."""

from __future__ import annotations

import contextlib
import shutil

from controlnet_demo.models.presets import OFFLINE, offline_fallback
from controlnet_demo.paths import ASSETS_DIR
from controlnet_demo.service import ControlNetService
from controlnet_demo.settings import Settings
from controlnet_demo.ui import build, launch
from tools.browser import CHROMIUM_ARGS, VIEWPORT, block, draw_shapes, open_tab, pad_canvas

PROMPT = "a red triangle and a blue square on a yellow background"


@contextlib.contextmanager
def app_page(preset: str, training: bool = False):
    """The app on `preset` (its Train tab on with `training`), served locally, and a chromium page open on it; both
    closed after."""
    from playwright.sync_api import sync_playwright

    from app import make_trainer

    settings = Settings(preset=preset, training=training)
    service = ControlNetService(settings)
    blocks = build(service, make_trainer(settings, service))
    launch(service, blocks, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(blocks.local_url)
            yield page
            browser.close()
    finally:
        blocks.close()


def main() -> None:
    from playwright.sync_api import expect

    if offline_fallback() is not OFFLINE:
        raise SystemExit("the embedded offline model (assets/offline-model) is not installed")
    with app_page("offline", training=True) as page:  # the app as it runs locally: its Train tab on
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
    print(f"wrote {ASSETS_DIR / 'screenshot.png'} and {ASSETS_DIR / 'convergence.png'}")


def editors() -> None:
    """The pose editor and the map editor, as a user leaves them after a first edit (no generation)."""
    from playwright.sync_api import expect

    from controlnet_demo.conditions.openpose_json import STANDING
    from tools.browser import stroke

    with app_page("offline" if offline_fallback() is OFFLINE else "tiny") as page:
        panel = open_tab(page, "Human pose")
        editor = panel.locator("#pose-editor")
        canvas = editor.locator("canvas")
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        x, y = box["x"] + STANDING[4][0] * box["width"], box["y"] + STANDING[4][1] * box["height"]
        stroke(page, [(x, y), (x - 60, y - 150)], steps=5)  # the right wrist up: a wave
        expect(editor.locator(".pose-status")).to_contain_text("Generate reads this pose")
        page.mouse.move(0, 0)
        editor.screenshot(path=str(ASSETS_DIR / "pose-editor.png"))

        panel = open_tab(page, "Canny edges")
        examples = panel.locator(".block", has_text="Examples (click one, then Generate)")
        examples.locator("tbody tr, .gallery-item").first.click()
        panel.get_by_text("Edit the map the ControlNet reads").click()
        panel.get_by_role("button", name="Detect the map to edit it").click()
        expect(panel.locator("#canny-map-note")).to_contain_text("Detected with")
        editor = panel.locator("#canny-map-editor")
        editor.get_by_role("button", name="Eraser").click()
        editor.get_by_label("Brush size").fill("40")
        box = pad_canvas(panel, "canny-map-editor").bounding_box()
        for f in (0.62, 0.7, 0.78, 0.86):  # the lower left: the badge and the arm's folds
            y = box["y"] + f * box["height"]
            stroke(page, [(box["x"] + 0.1 * box["width"], y), (box["x"] + 0.45 * box["width"], y)], steps=6)
        page.mouse.move(0, 0)
        top = panel.get_by_role("button", name="Detect the map to edit it").bounding_box()
        bottom = panel.locator("#canny-use-map").bounding_box()
        scrolled = page.evaluate("window.scrollY")  # boxes are in the window, a full-page clip in the page
        clip = dict(x=top["x"] - 8, y=top["y"] - 8 + scrolled, width=top["width"] + 16)
        clip["height"] = bottom["y"] + scrolled + bottom["height"] + 8 - clip["y"]
        page.screenshot(path=str(ASSETS_DIR / "map-editor.png"), clip=clip, full_page=True)
    print(f"wrote {ASSETS_DIR / 'pose-editor.png'} and {ASSETS_DIR / 'map-editor.png'}")


def train_tab() -> None:
    """The Train tab at the end of a run with its defaults: the norms, the loss, the probe's jump, its pictures."""
    from playwright.sync_api import expect

    with app_page("offline", training=True) as page:
        panel = open_tab(page, "Train one yourself")
        panel.get_by_role("button", name="Start training").click()
        expect(panel.locator("#train-status")).to_contain_text("Done", timeout=3_600_000)
        page.wait_for_timeout(1500)  # the plots draw their last data
        page.mouse.move(0, 0)
        panel.screenshot(path=str(ASSETS_DIR / "train-tab.png"))
    print(f"wrote {ASSETS_DIR / 'train-tab.png'}")


if __name__ == "__main__":
    import sys

    {"--editors": editors, "--train": train_tab}.get(next(iter(sys.argv[1:]), ""), main)()
