"""The Compose tab (/compose): several conditions at once, each with its own image, settings and optional mask."""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..models.presets import FULL
from ..paths import EXAMPLES_DIR
from ..service import ControlNetService, GenerateSpec, UnitSpec
from ..service.specs import unit_from
from .compare import compare_button, compare_panel, wire_compare
from .fields import (
    COMMON,
    CONDITION,
    EDITED_MAP,
    ENABLED,
    END,
    GENERATED,
    IMAGE,
    MASK,
    MODE,
    PAD,
    POSE_JSON,
    PREPROCESS_RESOLUTION,
    PREPROCESSOR,
    RESIDUAL_MAPS,
    START,
    STRENGTH,
    USE_EDITED_MAP,
    Form,
    spec_of,
)
from .i18n import locale_of, t
from .live import live_switch
from .map_editor import map_inputs, wire_map_editor
from .pad import drawing_pad
from .panels import common_inputs, outputs, run_buttons, stream, unit_controls
from .pose_editor import pose_inputs, wire_pose_editor
from .residual_maps import residual_panel
from .widgets import LIGHT, gpu_duration, gpu_queue, handler, on_gpu

UNIT = (ENABLED, CONDITION, IMAGE, PREPROCESSOR, PREPROCESS_RESOLUTION, STRENGTH, START, END, MODE, MASK)
# each unit's drawing pad, pose JSON, edited map and "Use my edited map" switch, after the common inputs (added
# later, so older positional calls still work)
EXTRA = (PAD, POSE_JSON, EDITED_MAP, USE_EDITED_MAP)


def compose_form(service: ControlNetService) -> Form:
    """Compose's inputs in the API's order, each unit's numbered (`image_2`); all optional."""
    units = range(1, service.settings.limits.max_units + 1)
    fields = [*(f.numbered(k) for k in units for f in UNIT), *COMMON, *(f.numbered(k) for f in EXTRA for k in units)]
    return Form(service, (), [*fields, RESIDUAL_MAPS])


def compose_tab(service: ControlNetService):
    max_units = service.settings.limits.max_units
    form = compose_form(service)
    gr.Markdown(
        t(
            "Several conditions at once: each ControlNet reads its own image and their residuals are **added** "
            "(the paper's rule). A mask limits a condition to the white part of the mask image. A condition can be "
            "drawn instead of uploaded (its *Draw it* pad); with **Live** on, the picture follows the pen. Each "
            "condition's map can be edited before it is used: a pose's joints dragged, another map painted over."
        )
    )
    editors, map_sources = [], []
    with gr.Row():
        with gr.Column():
            for k in range(1, max_units + 1):
                n = f"_{k}"
                with gr.Accordion(t(f"Condition {k}"), open=k <= 2):
                    form.add("enabled" + n, value=k <= 2)
                    condition = form.add("condition" + n, value=list(CONDITIONS)[(k - 1) % len(CONDITIONS)])
                    first = CONDITIONS[condition.value]
                    image = form.add("image" + n)
                    with gr.Accordion(t("…or draw it (used when no image is uploaded above)"), open=False):
                        form.add("pad" + n, drawing_pad(f"Draw condition {k}", elem_id=f"compose-pad-{k}"))
                    # any condition's preprocessor may arrive (an API call never sends the condition's change
                    # event that sets this list): the service checks it against the condition
                    preprocessor = form.add("preprocessor" + n, condition=first, allow_custom_value=True)
                    prep_resolution = form.add("preprocess_resolution" + n)
                    unit_controls(form, n)
                    form.add("mask" + n)
                    # the map the unit's ControlNet reads, to edit: keypoints for a pose, a painted map otherwise
                    prefix = f"compose-{k}"
                    pose_box, pose, start_pose, json_text = pose_inputs(
                        prefix + "-pose",
                        title="Edit the pose: drag its joints, or an OpenPose JSON (used instead of the image)",
                        open=False,
                        visible=first.reads_pose_json,
                    )
                    form.add("pose_json" + n, pose)
                    map_box, editor, detect, use, note = map_inputs(
                        first, prefix, any_condition=True, visible=_painted(first)
                    )
                    form.add("edited_map" + n, editor)
                    form.add("use_edited_map" + n, use)
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
                        [pose_box, map_box, editor, use],
                        api_visibility="private",
                        **LIGHT,
                    )
                    wire_pose_editor(service, pose, start_pose, json_text, image, prep_resolution)
                    editors.append((editor, detect, use, note))
                    map_sources.append([image, preprocessor, prep_resolution])
            prompt = common_inputs(form)
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
            form.add("residual_maps", residual_switch)
            comparison = compare_panel()
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
        [form[f"{f}_{k}"] for k in (1, 2) for f in ("enabled", "condition", "image", "preprocessor")] + [prompt],
        api_visibility="private",
        **LIGHT,
    )

    def unit_of(u: dict) -> UnitSpec:
        """One unit from its values (UNIT's and EXTRA's, unnumbered)."""
        return unit_from(u, condition=u["condition"], resolution=service.preset.detect_resolution)

    def units_of(v: dict) -> list[UnitSpec]:
        """The enabled units."""
        units = ({f.name: v.get(f"{f.name}_{k}") for f in (*UNIT, *EXTRA)} for k in range(1, max_units + 1))
        return [unit_of(u) for u in units if u["enabled"]]

    def spec_for(values) -> GenerateSpec:  # cheap (no picture is read): the GPU time is priced from it too
        v = form.values(values)
        return spec_of(v, units_of(v))

    @on_gpu(duration=gpu_duration(service, spec_for))
    def compose(*values, progress=gr.Progress(), request: gr.Request | None = None):
        yield from stream(service, spec_for(values), progress, None, locale_of(request))

    compose = form.handler(
        compose,
        f"Generate images steered by up to {max_units} ControlNets at once (conditions 1 to {max_units}, each "
        "with its own picture, settings and optional mask): their residuals are added, the paper's rule.",
        GENERATED,
        limited_by=service,
    )
    event = gr.on(
        [run.click, prompt.submit],
        compose,
        form.components,
        [gallery, maps, params, form["seed"], residuals, check, *residual_outputs],
        api_name="compose",
        **gpu_queue(service),
    )
    stop.click(None, cancels=[event], api_visibility="private")
    wire_compare(service, compare, comparison, form, spec_for, stop, api_name="compare")
    for k, ((editor, detect, use, note), sources) in enumerate(zip(editors, map_sources), start=1):
        unit = {f.name: form[f"{f.name}_{k}"] for f in (*UNIT, *EXTRA)}
        wire_map_editor(service, unit, unit_of, editor, detect, use, note, sources)
    pads = [form[f"pad_{k}"] for k in range(1, max_units + 1)]
    live_switch(service, live, pads, form.named, [gallery, maps, params, check], units_of)


def _painted(cond) -> bool:
    """Its map is painted by hand (the map painter); a pose's is edited as keypoints, a normal map or a photo not."""
    return bool(cond.editor) and not cond.reads_pose_json


def _editor_for(condition: str, request=None):
    """A unit's editor for its condition: the keypoint editor for a pose, the map painter in its inks for a painted
    map, neither for a map that is not edited by hand."""
    cond = CONDITIONS.get(condition)
    if cond is None:  # an unknown name from the API: the service names the known ones when it runs
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    return (
        gr.update(visible=cond.reads_pose_json),
        gr.update(visible=_painted(cond)),
        gr.update(elem_classes=[f"map-kind-{cond.editor}"]) if _painted(cond) else gr.skip(),
        gr.skip() if _painted(cond) else False,  # a hidden map is not used (the service ignores it too)
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
