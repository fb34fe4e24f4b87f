"""Driving the app in Debian chromium through playwright: the launch flags that work on machines without network,
finding a component by its label, and pen strokes on a sketchpad. Used by the browser tests and tools.screenshot."""

from __future__ import annotations

import re

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1400, "height": 1000}


def open_tab(page, name: str):
    """Click a top-level tab and return its (now the only visible) panel."""
    from playwright.sync_api import expect

    page.get_by_role("tab", name=name, exact=True).click()
    panel = page.locator("[role=tabpanel]:visible")
    expect(panel).to_have_count(1)
    return panel


def block(panel, label: str):
    """A component's block, found by the text of its floating label."""
    title = panel.page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return panel.locator(".block").filter(has=title)


def stroke(page, points, steps: int = 2):
    """One pen stroke: press at the first point, drag through the rest in a few moves each, release.

    Each move repaints the WebGL editor (software-rendered here), so moves are kept few: the brush joins them.
    """
    page.mouse.move(*points[0])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x, y, steps=steps)
    page.mouse.up()


def draw_shapes(page, canvas):
    """A triangle on the left and a square on the right, as a user would draw them: a few straight strokes."""
    box = canvas.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def at(dx, dy):
        return cx + dx, cy + dy

    stroke(page, [at(-120, 60), at(-65, -60), at(-10, 60), at(-120, 60)])  # triangle
    stroke(page, [at(20, -40), at(115, -40), at(115, 55), at(20, 55), at(20, -40)])  # square
