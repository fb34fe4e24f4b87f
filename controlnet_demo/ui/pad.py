"""The drawing pad: a plain canvas (`gr.HTML` with its own script, assets/pad.js) whose value is the drawing as one
PNG data URL. Light enough for live drawing: a stroke sends one request with the picture inside it, where gradio's
image editor exports its layers as PNGs and uploads them first (1.8 s per stroke on a 2-core machine, measured
with benchmarks/live.py)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import gradio as gr

from .i18n import marked
from .inputs import DRAWING, declare

TEMPLATE = """
<div class="pad" role="group" aria-label="{label}" data-t-aria-label="{label}" data-paper="{paper}">
  <div class="pad-caption" data-t="{label}">{label}</div>
  <div class="pad-tools" role="toolbar" aria-label="Drawing tools" data-t-aria-label="Drawing tools">
    <button type="button" data-action="pen" aria-pressed="true" title="Pen (B)" data-t-title="Pen (B)" data-t="Pen">Pen</button>
    {swatches}
    <button type="button" data-action="eraser" aria-pressed="false" title="Eraser (E): paints the paper colour"
      data-t-title="Eraser (E): paints the paper colour" data-t="Eraser">Eraser</button>
    {fill}
    <label><span data-t="Size">Size</span> <input type="range" min="1" max="{max_brush}" value="{brush}"
      aria-label="Brush size" data-t-aria-label="Brush size"></label>
    <button type="button" data-action="undo" title="Undo (Ctrl+Z)" data-t-title="Undo (Ctrl+Z)" data-t="Undo" disabled>Undo</button>
    <button type="button" data-action="redo" title="Redo (Ctrl+Shift+Z)" data-t-title="Redo (Ctrl+Shift+Z)" data-t="Redo"
      disabled>Redo</button>
    <button type="button" data-action="clear" title="Start again on a blank page" data-t-title="Start again on a blank page"
      data-t="Clear">Clear</button>
  </div>
  <canvas width="{size}" height="{size}" tabindex="0" role="img" aria-label="{label}: drawing canvas"
    style="background: {paper}"></canvas>
</div>
"""

CSS = """
.pad { display: flex; flex-direction: column; gap: 6px; }
.pad-caption { font-size: var(--block-label-text-size); color: var(--block-label-text-color); }
.pad-tools { display: flex; flex-wrap: wrap; gap: 6px; align-items: center; font-size: var(--text-sm); }
.pad-tools button { font: inherit; font-size: var(--text-sm); padding: 2px 10px; border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); }
.pad-tools button[aria-pressed="true"] { border-color: var(--color-accent); box-shadow: 0 0 0 1px var(--color-accent); }
.pad-tools button:disabled { opacity: 0.45; }
.pad-tools button[data-color] { width: 24px; height: 24px; padding: 0; }
.pad canvas { width: 100%; max-width: 512px; aspect-ratio: 1; cursor: crosshair;
  border: 1px solid var(--border-color-primary); border-radius: 6px; touch-action: none; }
"""


@cache
def _script() -> str:
    return (Path(__file__).parent / "assets" / "pad.js").read_text(encoding="utf-8")


def drawing_pad(
    label: str,
    size: int = 512,
    brush: int = 6,
    *,
    paper: str = "#ffffff",
    inks: tuple[tuple[str, str], ...] = (),
    fill: bool = False,
    **kwargs,
) -> gr.HTML:
    """A square drawing pad of `size` pixels; its value is "" until something is drawn, then a
    data:image/png;base64 URL of the page. The pen draws black, or in `inks` ((name, "#rrggbb") swatches, the
    first chosen); the eraser paints `paper`; `fill` adds a flood fill. Its `input` event fires once per finished
    stroke, fill, undo, redo and clear. The template has no ${value}: a value from the page never redraws (and so
    wipes) the canvas; a PNG data URL sent by the server becomes the page (its size), with no undo history."""
    swatches = "".join(
        f'<button type="button" data-color="{color}" title="{name}" data-t-title="{name}" aria-label="{name} ink" '
        f'style="background: {color}"></button>'
        for name, color in inks
    )
    fill_button = (
        '<button type="button" data-action="fill" aria-pressed="false" title="Fill (F)" data-t-title="Fill (F)" '
        'data-t="Fill">Fill</button>'
    )
    pad = gr.HTML(
        value="",
        html_template=marked(
            TEMPLATE.format(
                label=label,
                size=int(size),
                brush=int(brush),
                max_brush=max(40, 4 * int(brush)),
                paper=paper,
                swatches=swatches,
                fill=fill_button if fill else "",
            )
        ),
        css_template=CSS,
        js_on_load=_script(),
        label=label,
        show_label=False,
        padding=False,
        **kwargs,
    )
    return declare(pad, DRAWING)  # its value: the page as a PNG data: URL, or ""
