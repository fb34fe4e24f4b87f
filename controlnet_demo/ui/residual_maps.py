"""Where the residuals go: for a result, what each of the 13 connections added, where on the picture, per condition
and per denoising step (Result.residual_maps), drawn as one grid of heatmaps on one colour scale."""

from __future__ import annotations

import cv2
import gradio as gr
import numpy as np
from PIL import Image, ImageDraw

from .i18n import t
from .inputs import FILE, declare
from .widgets import handler, unfetched

EXPLAIN = (
    "Each square is one of the 13 connections through which a ControlNet adds to the locked U-Net: its 12 skips "
    "(from the finest, at the latents' size, to the coarsest) and its middle block, as the mean size of what it "
    "added over channels, stretched onto the picture. Bright is where it pushes hardest. All squares share one "
    "colour scale, over every step and condition, so they compare with each other; slide through the steps to "
    "see the control act early, when the layout forms. A zero convolution starts at exactly 0, so an untrained "
    "ControlNet's squares are all dark."
)
CELL = 72  # pixels per heatmap's longer side
HEADER, LEFT, TOP = 18, 92, 28  # TOP: clear of the image block's own label, drawn over its top-left


def names(count: int) -> list[str]:
    return [f"skip {k + 1}" for k in range(count - 1)] + ["middle"]


def render(maps: dict[str, np.ndarray] | None, step: int) -> np.ndarray | None:
    """The grid for denoising step `step` (1-based): a row per condition, a column per connection, and the
    colour scale's top value, written in the corner."""
    if not maps:
        return None
    top = max(float(m.max()) for m in maps.values()) or 1.0
    first = next(iter(maps.values()))
    steps, count, h, w = first.shape
    index = min(max(int(step), 1), steps) - 1
    cw, ch = (CELL, max(1, round(CELL * h / w))) if w >= h else (max(1, round(CELL * w / h)), CELL)
    canvas = Image.new("RGB", (LEFT + count * (cw + 2), TOP + HEADER + len(maps) * (ch + 2) + HEADER), "white")
    draw = ImageDraw.Draw(canvas)
    for j, name in enumerate(names(count)):
        draw.text((LEFT + j * (cw + 2) + 2, TOP + 3), name, fill="black")
    for r, (label, m) in enumerate(maps.items()):
        y = TOP + HEADER + r * (ch + 2)
        draw.text((4, y + ch // 2 - 6), label, fill="black")
        for j in range(count):
            cell = np.clip(m[index, j] / top * 255, 0, 255).astype(np.uint8)
            coloured = cv2.applyColorMap(
                cv2.resize(cell, (cw, ch), interpolation=cv2.INTER_NEAREST), cv2.COLORMAP_VIRIDIS
            )
            canvas.paste(Image.fromarray(coloured[..., ::-1]), (LEFT + j * (cw + 2), y))
    draw.text(
        (4, canvas.height - HEADER + 3),
        f"step {index + 1} of {steps} · colour scale 0 (dark) to {top:.3g} (yellow), mean |residual|",
        fill="black",
    )
    return np.asarray(canvas)


def residual_panel(service):
    """The switch that asks for the maps (off: the default path does nothing more), the grid, its step slider and
    the maps themselves as an .npz; the slider draws the grid again from the service's own copy of the maps that
    file names (`service.files.residual_maps`: never from a file a request sends), without the GPU."""
    with gr.Accordion(t("Where the residuals go"), open=False):
        gr.Markdown(t(EXPLAIN))
        switch = gr.Checkbox(
            value=False, label=t("Record where each connection's residual goes (at the next Generate)")
        )
        picture = gr.Image(label=t("What each connection added"), format="png", interactive=False)
        step = gr.Slider(1, 2, value=1, step=1, label=t("Denoising step"), visible=False)
        kept = declare(
            unfetched(
                gr.File(
                    label=t("The maps as numbers (NumPy .npz: per condition, steps x connections x height x width)"),
                    interactive=False,
                )
            ),
            FILE,
        )

    def draw(maps_file, step, request: gr.Request | None = None):
        from .panels import user_error  # (panels shows this panel's outputs)

        if maps_file is None:
            return None
        try:
            return render(service.files.residual_maps(maps_file.name), step)
        except Exception as exc:
            raise user_error(exc, "residual maps") from None

    step.change(
        handler(draw, {"maps": kept, "step": step}, progress=False),
        [kept, step],
        picture,
        api_visibility="private",
        show_progress="hidden",
        concurrency_id="residual-maps",
        concurrency_limit=1,
    )
    return switch, picture, step, kept


def residual_updates(output):
    """The panel's outputs for a result: the last step's grid, the slider over the steps, the maps' file."""
    maps = output.result.residual_maps
    if not maps:
        return None, gr.update(visible=False), None
    steps = next(iter(maps.values())).shape[0]
    slider = gr.update(minimum=1, maximum=steps, value=steps, visible=True)
    return render(maps, steps), slider, output.residual_file  # plain values where they can be: the API's too
