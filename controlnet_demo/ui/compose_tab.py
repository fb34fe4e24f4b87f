"""The Compose tab (/compose): several conditions at once, each with its own image, settings and optional mask."""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..paths import EXAMPLES_DIR
from ..service import ControlNetService, UnitSpec
from .panels import (
    COMMON_NAMES,
    common_inputs,
    outputs,
    preprocessor_resolution,
    run_buttons,
    spec_of,
    stream,
    unit_controls,
)
from .widgets import GPU, client_of, image_input, name_api_parameters, on_gpu

UNIT_NAMES = [
    "enabled",
    "condition",
    "image",
    "preprocessor",
    "preprocess_resolution",
    "strength",
    "start",
    "end",
    "mode",
    "mask",
]  # one unit's inputs, in the API's order (each name gets the unit's number: image_1)


def compose_tab(service: ControlNetService):
    max_units = service.settings.limits.max_units
    gr.Markdown(
        "Several conditions at once: each ControlNet reads its own image and their residuals are **added** "
        "(the paper's rule). A mask limits a condition to the white part of the mask image."
    )
    unit_inputs = []
    with gr.Row():
        with gr.Column():
            for k in range(max_units):
                with gr.Accordion(f"Condition {k + 1}", open=k < 2):
                    enabled = gr.Checkbox(value=k < 2, label="Use this condition")
                    condition = gr.Dropdown(
                        [(c.label, c.name) for c in CONDITIONS.values()],
                        value=list(CONDITIONS)[k % len(CONDITIONS)],
                        label="Condition",
                    )
                    first = CONDITIONS[condition.value]
                    image = image_input(label="Photo or control map", sources=("upload", "clipboard"))
                    # any condition's preprocessor may arrive (an API call never sends the condition's change
                    # event that sets this list): the service checks it against the condition
                    preprocessor = gr.Dropdown(
                        [(p.label, p.name) for p in first.preprocessors.values()],
                        value=first.default_preprocessor,
                        label="Preprocessor",
                        allow_custom_value=True,
                    )
                    prep_resolution = preprocessor_resolution(service)
                    strength, start, end, mode = unit_controls(service)
                    mask = image_input(
                        label="Region mask (optional: white = apply)", sources=("upload", "clipboard"), height=160
                    )
                    condition.change(
                        _preprocessor_choices,
                        [condition, preprocessor],
                        preprocessor,
                        api_visibility="private",
                        queue=False,
                    )
                    unit_inputs += [
                        enabled,
                        condition,
                        image,
                        preprocessor,
                        prep_resolution,
                        strength,
                        start,
                        end,
                        mode,
                        mask,
                    ]
            common = common_inputs(service)
            run, stop = run_buttons()
        with gr.Column():
            gallery, maps, params, residuals, check = outputs()
    per_unit = len(UNIT_NAMES)
    first, second = unit_inputs[:per_unit], unit_inputs[per_unit : 2 * per_unit]  # (enabled, condition, image, pre..)
    example = gr.Button("Load an example: a pose and a scribble, composed", size="sm")
    # a button, not gr.Examples: dataset samples whose inputs sit in accordions did not render in gradio 6.31
    example.click(
        lambda: (
            True,
            "pose",
            str(EXAMPLES_DIR / "pose_waving.png"),
            "none",
            True,
            "scribble",
            str(EXAMPLES_DIR / "scribble_house.png"),
            "sketch",
            "a person waving in front of a cottage, watercolor",
        ),
        None,
        [first[0], first[1], first[2], first[3], second[0], second[1], second[2], second[3], common[0]],
        api_visibility="private",
        queue=False,
    )

    @on_gpu
    def compose(*values, progress=gr.Progress(), request: gr.Request | None = None):
        units = []
        for k in range(max_units):
            (enabled, condition, image, preprocessor, prep_resolution, strength, start, end, mode, mask) = values[
                k * per_unit : (k + 1) * per_unit
            ]
            if enabled:
                units.append(
                    UnitSpec(condition, image, preprocessor, prep_resolution, {}, strength, start, end, mode, mask)
                )
        spec = spec_of(*values[max_units * per_unit :], units)
        yield from stream(service, spec, progress, client_of(request))

    name_api_parameters(
        compose, [f"{n}_{k + 1}" for k in range(max_units) for n in UNIT_NAMES] + COMMON_NAMES, required=0
    )
    event = gr.on(
        [run.click, common[0].submit],
        compose,
        [*unit_inputs, *common],
        [gallery, maps, params, common[7], residuals, check],
        api_name="compose",
        concurrency_id=GPU,
        concurrency_limit=1,
    )
    stop.click(None, cancels=[event], api_visibility="private")


def _preprocessor_choices(condition: str, current: str):
    """The new condition's preprocessors; the current choice stays when it fits ('none' fits all, and an
    example that sets condition and preprocessor together must not be overruled)."""
    cond = CONDITIONS.get(condition)
    if cond is None:  # an unknown name from the API: the service names the known ones when it runs
        return gr.skip()
    return gr.Dropdown(
        choices=[(p.label, p.name) for p in cond.preprocessors.values()],
        value=current if current in cond.preprocessors else cond.default_preprocessor,
    )
