"""/detect: a picture in, its control map out (no generation), for programs and agents (an MCP tool) that want
to see or keep the map a ControlNet would read."""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..service import ControlNetService
from ..service.specs import unit_from
from .api_docs import docstring
from .panels import user_error
from .widgets import gpu_queue, handler, image_input, on_gpu, slider


def detect_endpoint(service: ControlNetService) -> None:
    with gr.Column(visible=False):
        inputs = dict(
            image=image_input(label="image"),
            condition=gr.Dropdown(
                list(CONDITIONS), value=next(iter(CONDITIONS)), label="condition", allow_custom_value=True
            ),
            preprocessor=gr.Textbox(label="preprocessor"),
            preprocess_resolution=slider(
                64, 2048, value=service.preset.detect_resolution, step=1, label="preprocess_resolution"
            ),
        )
        out = gr.Image(label="control map", format="png")
        trigger = gr.Button("detect")

    @on_gpu
    def detect(*values, request: gr.Request | None = None):
        v = dict(zip(inputs, values))
        unit = unit_from(v, condition=v["condition"], resolution=service.preset.detect_resolution)
        try:
            return service.detect(unit, None)
        except Exception as exc:
            raise user_error(exc, "detect") from None

    detect.__doc__ = docstring(
        "Detect the control map of a picture, without generating anything: canny edges, an OpenPose skeleton, a "
        "MiDaS depth map or scribble lines, exactly as the generation endpoints would give it to their ControlNet. "
        "The preprocessor defaults to the condition's own.",
        list(inputs),
        "the control map as a PNG (white lines on black for edges and scribbles, a grey depth map, a coloured "
        "skeleton for pose)",
    )
    detect = handler(detect, inputs, required=1, progress=False, limited_by=service)
    trigger.click(
        detect,
        list(inputs.values()),
        out,
        api_name="detect",
        **gpu_queue(service),
    )
