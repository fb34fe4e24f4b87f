"""The Compose tab (/compose): several conditions at once, each with its own image, settings and optional mask."""

from __future__ import annotations

import dataclasses

import gradio as gr

from ..conditions import CONDITIONS
from ..models.presets import FULL
from ..paths import EXAMPLES_DIR
from ..service import ControlNetService, GenerateSpec, UnitSpec
from ..service.specs import unit_from
from .api_docs import GENERATED, docstring
from .compare import compare_button, compare_panel, wire_compare
from .i18n import locale_of, t
from .live import live_switch
from .map_editor import map_inputs, wire_map_editor
from .pad import drawing_pad
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
from .pose_editor import pose_inputs, wire_pose_editor
from .residual_maps import residual_panel
from .widgets import LIGHT, gpu_duration, gpu_queue, handler, image_input, on_gpu

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
# each unit's drawing pad, pose JSON and edited map, after the common inputs (optional: added later, so older
# positional calls still work)
PAD = "pad"
POSE_JSON = "pose_json"
EDITED = ("edited_map", "use_edited_map")  # a unit's map editor and its "Use my edited map" switch


def compose_tab(service: ControlNetService):
    max_units = service.settings.limits.max_units
    gr.Markdown(
        t(
            "Several conditions at once: each ControlNet reads its own image and their residuals are **added** "
            "(the paper's rule). A mask limits a condition to the white part of the mask image. A condition can be "
            "drawn instead of uploaded (its *Draw it* pad); with **Live** on, the picture follows the pen. Each "
            "condition's map can be edited before it is used: a pose's joints dragged, another map painted over."
        )
    )
    unit_inputs, drawings, poses, editors, map_sources = [], [], [], [], []
    with gr.Row():
        with gr.Column():
            for k in range(max_units):
                with gr.Accordion(t(f"Condition {k + 1}"), open=k < 2):
                    enabled = gr.Checkbox(value=k < 2, label=t("Use this condition"))
                    condition = gr.Dropdown(
                        [(t(c.label), c.name) for c in CONDITIONS.values()],
                        value=list(CONDITIONS)[k % len(CONDITIONS)],
                        label=t("Condition"),
                    )
                    first = CONDITIONS[condition.value]
                    image = image_input(label=t("Photo or control map"), sources=("upload", "clipboard"))
                    with gr.Accordion(t("…or draw it (used when no image is uploaded above)"), open=False):
                        drawings.append(drawing_pad(f"Draw condition {k + 1}", elem_id=f"compose-pad-{k + 1}"))
                    # any condition's preprocessor may arrive (an API call never sends the condition's change
                    # event that sets this list): the service checks it against the condition
                    preprocessor = gr.Dropdown(
                        [(t(p.label), p.name) for p in first.preprocessors.values()],
                        value=first.default_preprocessor,
                        label=t("Preprocessor"),
                        allow_custom_value=True,
                    )
                    prep_resolution = preprocessor_resolution(service)
                    strength, start, end, mode = unit_controls(service)
                    mask = image_input(
                        label=t("Region mask (optional: white = apply)"), sources=("upload", "clipboard"), height=160
                    )
                    # the map the unit's ControlNet reads, to edit: keypoints for a pose, a painted map otherwise
                    prefix = f"compose-{k + 1}"
                    pose_box, pose, start_pose, json_text = pose_inputs(
                        prefix + "-pose",
                        title="Edit the pose: drag its joints, or an OpenPose JSON (used instead of the image)",
                        open=False,
                        visible=first.reads_pose_json,
                    )
                    map_box, editor, detect, use, note = map_inputs(
                        first, prefix, any_condition=True, visible=not first.reads_pose_json
                    )
                    condition.change(
                        handler(
                            _preprocessor_choices,
                            {"condition": condition, "preprocessor": preprocessor},
                            progress=False,
                        ),
                        [condition, preprocessor],
                        preprocessor,
                        api_visibility="private",
                        **LIGHT,
                    )
                    condition.change(
                        handler(_editor_for, {"condition": condition}, progress=False),
                        condition,
                        [pose_box, map_box, editor],
                        api_visibility="private",
                        **LIGHT,
                    )
                    wire_pose_editor(service, pose, start_pose, json_text, image, prep_resolution)
                    poses.append(pose)
                    editors.append((editor, detect, use, note))
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
                    map_sources.append([image, preprocessor, prep_resolution])
            common = common_inputs(service)
            live = gr.Checkbox(
                value=False,
                label=t("Live: the picture follows the pen on a drawn condition (few-step, the seed fixed)"),
                visible=service.preset.live_speed != FULL,
                elem_id="compose-live-switch",
            )
            run, stop = run_buttons()
            compare = compare_button()
        with gr.Column():
            gallery, maps, params, residuals, check = outputs()
            residual_switch, *residual_outputs = residual_panel(service)
            comparison = compare_panel()
    per_unit = len(UNIT_NAMES)
    first, second = unit_inputs[:per_unit], unit_inputs[per_unit : 2 * per_unit]  # (enabled, condition, image, pre..)
    example = gr.Button(t("Load an example: a pose and a scribble, composed"), size="sm")
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
        **LIGHT,
    )

    unit_names = [f"{n}_{k + 1}" for k in range(max_units) for n in UNIT_NAMES]
    pad_names = [f"{PAD}_{k + 1}" for k in range(max_units)]
    pose_names = [f"{POSE_JSON}_{k + 1}" for k in range(max_units)]
    edited_names = [f"{n}_{k + 1}" for n in EDITED for k in range(max_units)]
    names = unit_names + COMMON_NAMES + pad_names + pose_names + edited_names + ["residual_maps"]
    inputs = [
        *unit_inputs,
        *common,
        *drawings,
        *poses,
        *(e[0] for e in editors),
        *(e[2] for e in editors),
        residual_switch,
    ]
    named = dict(zip(names, inputs))
    extra = (PAD, POSE_JSON, *EDITED)

    def unit_of(u: dict) -> UnitSpec:
        """One unit from its values (UNIT_NAMES and `extra`, unnumbered)."""
        return unit_from(u, condition=u["condition"], resolution=service.preset.detect_resolution)

    def unit_values(v: dict, k: int) -> dict:
        return {n: v.get(f"{n}_{k}") for n in (*UNIT_NAMES, *extra)}

    def units_of(v: dict) -> list[UnitSpec]:
        """The enabled units."""
        return [unit_of(u) for k in range(1, max_units + 1) if (u := unit_values(v, k))["enabled"]]

    def spec_for(values) -> GenerateSpec:  # cheap (no picture is read): the GPU time is priced from it too
        v = dict(zip(names, values))
        spec = spec_of(*(v[n] for n in COMMON_NAMES), units_of(v))
        return dataclasses.replace(spec, residual_maps=bool(v.get("residual_maps")))

    @on_gpu(duration=gpu_duration(service, spec_for))
    def compose(*values, progress=gr.Progress(), request: gr.Request | None = None):
        spec = spec_for(values)
        yield from stream(service, spec, progress, None, locale_of(request))

    compose.__doc__ = docstring(
        f"Generate images steered by up to {max_units} ControlNets at once (conditions 1 to {max_units}, each "
        "with its own picture, settings and optional mask): their residuals are added, the paper's rule.",
        names,
        GENERATED,
    )
    compose = handler(compose, named, required=0, limited_by=service)
    event = gr.on(
        [run.click, common[0].submit],
        compose,
        inputs,
        [gallery, maps, params, common[7], residuals, check, *residual_outputs],
        api_name="compose",
        **gpu_queue(service),
    )
    stop.click(None, cancels=[event], api_visibility="private")
    wire_compare(service, compare, comparison, named, spec_for, stop, api_name="compare")
    for k, ((editor, detect, use, note), sources) in enumerate(zip(editors, map_sources), start=1):
        unit = {n: named[f"{n}_{k}"] for n in (*UNIT_NAMES, *extra)}
        wire_map_editor(service, unit, unit_of, editor, detect, use, note, sources)
    live_switch(service, live, drawings, named, [gallery, maps, params, check], units_of)


def _editor_for(condition: str, request=None):
    """A unit's editor for its condition: the keypoint editor for a pose, else the map painter in its inks."""
    cond = CONDITIONS.get(condition)
    if cond is None:  # an unknown name from the API: the service names the known ones when it runs
        return gr.skip(), gr.skip(), gr.skip()
    return (
        gr.update(visible=cond.reads_pose_json),
        gr.update(visible=not cond.reads_pose_json),
        gr.update(elem_classes=[f"map-kind-{cond.editor}"]),
    )


def _preprocessor_choices(condition: str, current: str, request=None):
    """The new condition's preprocessors; the current choice stays when it fits ('none' fits all, and an
    example that sets condition and preprocessor together must not be overruled)."""
    cond = CONDITIONS.get(condition)
    if cond is None:  # an unknown name from the API: the service names the known ones when it runs
        return gr.skip()
    return gr.Dropdown(
        choices=[(t(p.label), p.name) for p in cond.preprocessors.values()],
        value=current if current in cond.preprocessors else cond.default_preprocessor,
    )
