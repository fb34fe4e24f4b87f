"""/detect: a picture in, its control map out (no generation), for programs and agents (an MCP tool) that want
to see or keep the map a ControlNet would read."""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..service import ControlNetService
from ..service.specs import unit_from
from .fields import CONDITION, IMAGE, PREPROCESS_RESOLUTION, PREPROCESSOR, Form
from .panels import user_error
from .widgets import gpu_queue, on_gpu


def detect_endpoint(service: ControlNetService) -> None:
    form = Form(service, [IMAGE], [CONDITION, PREPROCESSOR, PREPROCESS_RESOLUTION])
    with gr.Column(visible=False):
        form.add("image", label="image", sources=None)
        conditions = list(CONDITIONS)
        form.add("condition", choices=conditions, value=conditions[0], label="condition", allow_custom_value=True)
        form.add("preprocessor", gr.Textbox(label="preprocessor"))
        form.add("preprocess_resolution", maximum=2048, step=1, label="preprocess_resolution")
        out = gr.Image(label="control map", format="png")
        trigger = gr.Button("detect")

    @on_gpu
    def detect(*values, request: gr.Request | None = None):
        v = form.values(values)
        unit = unit_from(v, condition=v["condition"], resolution=service.preset.detect_resolution)
        try:
            return service.detect(unit, None)
        except Exception as exc:
            raise user_error(exc, "detect") from None

    detect = form.handler(
        detect,
        "Detect the control map of a picture, without generating anything: "
        + "; ".join(f"{c.name}: {c.label}" for c in CONDITIONS.values())
        + "; exactly as the generation endpoints would give it to their ControlNet. The preprocessor defaults to "
        "the condition's own; 'none' gives the picture itself.",
        "the control map as a PNG (white lines on black for edges and lines, grey for depth, coloured for a pose, "
        "normals or segments)",
        progress=False,
        limited_by=service,
    )
    trigger.click(detect, form.components, out, api_name="detect", **gpu_queue(service))
