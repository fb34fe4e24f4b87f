"""One tab per condition, generated from the condition table, with its named API endpoint (/canny, /pose, ...)."""

from __future__ import annotations

import gradio as gr

from ..conditions import Condition
from ..models.presets import FULL
from ..paths import EXAMPLES_DIR
from ..service import ControlNetService, GenerateSpec, UnitSpec
from ..service.specs import unit_from
from .compare import compare_button, compare_panel, wire_compare
from .fields import (
    EDITED_MAP,
    END,
    GENERATED,
    GUIDANCE,
    IMAGE,
    MODE,
    NEGATIVE,
    NUM_IMAGES,
    PAD,
    POSE_JSON,
    PREPROCESS_RESOLUTION,
    PREPROCESSOR,
    PROMPT,
    RANDOMIZE,
    RESIDUAL_MAPS,
    RESOLUTION,
    SCHEDULER,
    SEED,
    SKETCH_IMAGE,
    SPEED,
    START,
    STEPS,
    STRENGTH,
    UPLOAD,
    USE_EDITED_MAP,
    Form,
    param_field,
    spec_of,
)
from .i18n import english, locale_of, mark, t
from .live import live_switch
from .map_editor import map_inputs, wire_map_editor
from .pad import drawing_pad
from .panels import common_inputs, outputs, run_buttons, stream, unit_controls
from .pose_editor import pose_inputs, wire_pose_editor
from .residual_maps import residual_panel
from .widgets import LIGHT, gpu_duration, gpu_queue, handler, on_gpu, sketchpad

NOT_SERVED = (
    "This model has no ControlNet for this condition: the tab shows what it takes, and a request is refused in "
    "words. Run once with internet access for Stable Diffusion 1.5's."
)


def condition_form(cond: Condition, service: ControlNetService) -> Form:
    """The tab's inputs, in the API's order: those an API call may leave out come last (added over time, so older
    positional calls still work)."""
    settings = [param_field(p) for p in cond.params.values()]  # the table's Params of the condition
    image = SKETCH_IMAGE if cond.drawn else IMAGE
    required = (image, PROMPT, NEGATIVE, PREPROCESSOR, PREPROCESS_RESOLUTION, *settings, STRENGTH, START, END, MODE)
    required += (GUIDANCE, STEPS, NUM_IMAGES, RESOLUTION, SCHEDULER, SEED, RANDOMIZE)
    drawn = (UPLOAD, PAD) if cond.drawn else ()
    edited = (POSE_JSON,) if cond.reads_pose_json else (EDITED_MAP, USE_EDITED_MAP) if cond.editor else ()
    return Form(service, required, (SPEED, *drawn, *edited, RESIDUAL_MAPS))


def condition_tab(cond: Condition, service: ControlNetService):
    form = condition_form(cond, service)
    upload = pose_json = editor = None
    with gr.Row():
        with gr.Column():
            gr.Markdown(t(cond.help))
            if cond.name not in service.preset.controlnets:  # a family without it (the table's checkpoints)
                gr.Markdown(t(NOT_SERVED), elem_classes="banner")
            if cond.drawn:
                # the page draws on a plain canvas (its PNG comes inline: light enough for Live); API clients
                # may still send a sketchpad value as `image`, so that input stays, out of sight
                pad = form.add(
                    "pad",
                    drawing_pad(
                        "Draw here: pen and eraser, then Generate (or turn Live on)", elem_id=f"{cond.name}-pad"
                    ),
                )
                image = form.add("image", sketchpad(label="drawing (API)", visible=False))
                # uploads go to their own input below, so a photo never ends up under the strokes
                upload = form.add("upload")
                live = gr.Checkbox(
                    value=False,
                    label=t("Live: the picture follows the pen (few-step, the seed below fixed)"),
                    visible=service.preset.live_speed != FULL,
                    elem_id="live-switch",
                )
            else:
                image = form.add(
                    "image", label=t(f"{cond.label}: photo or control map"), sources=("upload", "clipboard", "webcam")
                )
            if cond.reads_pose_json:  # its map is edited as keypoints
                _, pose_json, start_pose, json_text = pose_inputs()
                form.add("pose_json", pose_json)
            elif cond.editor:  # a map painted by hand
                _, editor, detect_map, use_map, map_note = map_inputs(cond)
                form.add("edited_map", editor)
                form.add("use_edited_map", use_map)
            preprocessor = form.add("preprocessor", condition=cond)
            prep_resolution = form.add("preprocess_resolution")
            shown = cond.preprocessor(None).params
            param_sliders = [form.add(p.name, visible=p.name in shown) for p in cond.params.values()]
            prompt = common_inputs(form)
            unit_controls(form)
            run, stop = run_buttons()
            compare = compare_button()
        with gr.Column():
            gallery, maps, params, residuals, check = outputs()
            residual_switch, *residual_outputs = residual_panel(service)
            form.add("residual_maps", residual_switch)
            comparison = compare_panel()
    examples = service.preset.examples(cond.name)
    if examples:
        inputs = [upload or image, prompt, preprocessor]
        table = gr.Examples(
            [[str(EXAMPLES_DIR / f), p, pre] for f, p, pre in examples],
            inputs=inputs,
            label=t("Examples (click one, then Generate)"),
        )
        # its column headers (the inputs' labels) and the preprocessor's name in each row (its choice's label), which
        # gradio's page would show as their i18n keys: in English, which the page's script translates (i18n.mark)
        table.dataset.headers = mark(*(english(c.label) for c in inputs))
        for props in table.dataset.component_props:
            if props.get("choices"):
                props["choices"] = [(mark(english(label))[0], value) for label, value in props["choices"]]
    if pose_json is not None:
        wire_pose_editor(service, pose_json, start_pose, json_text, image, prep_resolution)
    if param_sliders:  # show only the settings the chosen preprocessor reads

        def settings_of(name, request=None):
            return [gr.update(visible=p in getattr(cond.preprocessors.get(name), "params", ())) for p in cond.params]

        preprocessor.change(
            handler(settings_of, {"preprocessor": preprocessor}, progress=False),
            preprocessor,
            param_sliders,
            api_visibility="private",
            **LIGHT,
        )

    def unit_of(v: dict) -> UnitSpec:
        if cond.drawn:  # its `image` is the API's sketchpad: a drawing, after an upload and the page's pad
            v = {**v, "image": None, "drawing": v.get("image")}
        return unit_from(v, condition=cond.name, resolution=service.preset.detect_resolution)

    def spec_for(values) -> GenerateSpec:  # cheap (no picture is read): the GPU time is priced from it too
        v = form.values(values)
        return spec_of(v, [unit_of(v)])

    @on_gpu(duration=gpu_duration(service, spec_for))
    def generate(*values, progress=gr.Progress(), request: gr.Request | None = None):
        yield from stream(service, spec_for(values), progress, None, locale_of(request))

    generate.__name__ = cond.name
    generate = form.handler(
        generate,
        f"Generate images with Stable Diffusion steered by the {cond.label} ControlNet: the picture's "
        f"{cond.label.lower()} map (detected by the preprocessor, or the picture itself with 'none') fixes the "
        "layout, the prompt says what is in it.",
        GENERATED,
        limited_by=service,
    )
    event = gr.on(
        [run.click, prompt.submit],
        generate,
        form.components,
        [gallery, maps, params, form["seed"], residuals, check, *residual_outputs],
        api_name=cond.name,
        **gpu_queue(service),
    )
    stop.click(None, cancels=[event], api_visibility="private")
    wire_compare(service, compare, comparison, form, spec_for, stop)
    if editor is not None:
        sources = [upload or image, preprocessor, prep_resolution, *param_sliders]
        wire_map_editor(service, form.named, unit_of, editor, detect_map, use_map, map_note, sources)
    if upload is not None:  # the drawing pad's tab
        live_switch(
            service,
            live,
            [pad],
            form.named,
            [gallery, maps, params, check],
            lambda v: [unit_of(v)],
        )
