"""Driving the app in Debian chromium through playwright: the launch flags that work on machines without network,
finding a component by its label, the drawing pads, and pen strokes on them. Used by the browser tests and tools.screenshot."""

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
UI_TIMEOUT_MS = 20_000  # what a click, typing or a tab switch may take


def open_tab(page, name: str):
    """Click a tab and return its panel: a top-level one, or a condition's inside its group's tab (English names;
    the group's tab first when the condition's is not in sight)."""
    from playwright.sync_api import expect

    from controlnet_demo.ui.app import groups

    tab = page.get_by_role("tab", name=name, exact=True)
    group = next((g for g, conds in groups().items() if len(conds) > 1 and name in [c.label for c in conds]), None)
    if group is not None and not tab.is_visible():
        page.get_by_role("tab", name=group, exact=True).click()
    tab.click()
    panel = page.locator("[role=tabpanel]:visible")
    expect(panel.first).to_be_visible()
    return panel.last  # the innermost: a group's panel holds its conditions' tabs


def block(panel, label: str):
    """A component's block, found by the text of its floating label."""
    title = panel.page.get_by_test_id("block-label").filter(has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return panel.locator(".block").filter(has=title)


def pad_canvas(scope, elem_id: str):
    """The canvas of the drawing pad with this elem_id (scribble-pad, compose-pad-2), scrolled into view."""
    canvas = scope.locator(f"#{elem_id} canvas")
    canvas.scroll_into_view_if_needed()
    return canvas


def stroke(page, points, steps: int = 2):
    """One pen stroke: press at the first point, drag through the rest in a few moves each, release (the pad
    joins the moves with straight lines and sends the drawing on release)."""
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
