"""Each endpoint's inputs declared once (ui/fields.py): the form makes the widgets, the handler's signature and its
docstring from one list of fields, and refuses a widget for no declared field or a field left without one."""

from __future__ import annotations

import inspect
import re

import gradio as gr
import pytest

from controlnet_demo.conditions import CONDITIONS
from controlnet_demo.ui.fields import COMMON, IMAGE, PROMPT, RESIDUAL_MAPS, Form


class _Service:  # what a form reads of the service: the limits and the preset (served conditions, defaults)
    def __init__(self):
        from controlnet_demo.models.presets import PRESETS
        from controlnet_demo.settings import Settings

        self.settings, self.preset = Settings(preset="tiny"), PRESETS["tiny"]


def test_a_form_makes_the_signature_and_the_docstring_from_its_fields():
    form = Form(_Service(), [IMAGE, *COMMON[:-1]], [COMMON[-1], RESIDUAL_MAPS])
    with gr.Blocks():
        for name in form.fields:
            form.add(name, gr.Checkbox() if name == "residual_maps" else None)

        def fn(*values, progress=None, request=None):
            return form.values(values)

        wrapped = form.handler(fn, "What it does.", "what it gives")
    params = inspect.signature(wrapped).parameters
    assert list(params)[: len(form.fields)] == list(form.fields)
    required = [n for n, p in params.items() if p.default is inspect.Parameter.empty]
    assert required == [IMAGE.name, *(f.name for f in COMMON[:-1])]
    assert form.n_required == len(required)
    args = re.findall(r"^    (\w+): (.+)$", wrapped.__doc__, re.M)
    assert [name for name, _ in args][: len(form.fields)] == list(form.fields)
    assert dict(args)["prompt"] == PROMPT.doc
    assert (
        isinstance(form["prompt"], gr.Textbox)
        and form["prompt"].max_length == _Service().settings.limits.max_prompt_chars
    )


def test_a_forms_condition_list_names_the_served_conditions():
    import dataclasses

    from controlnet_demo.ui.fields import CONDITION

    service = _Service()
    service.preset = dataclasses.replace(service.preset, family="offline")  # its ControlNets: the embedded model's
    served = [c for c in CONDITIONS if c in service.preset.controlnets]
    assert "canny" in served and len(served) < len(CONDITIONS)
    doc = Form(service, [CONDITION]).docstring("", "")
    assert f"one of {', '.join(served)}." in doc


SETTINGS_AND_COMMON = ["strength", "start", "end", "mode", "guidance_scale", "steps", "num_images", "resolution"]
SETTINGS_AND_COMMON += ["scheduler", "seed", "randomize_seed"]
BEFORE = {  # the API's parameters as they were before the fields were declared once (the API must not change)
    "canny": (
        ["image", "prompt", "negative_prompt", "preprocessor", "preprocess_resolution", "low_threshold"]
        + ["high_threshold", *SETTINGS_AND_COMMON],
        ["speed", "edited_map", "use_edited_map", "residual_maps"],
    ),
    "pose": (
        ["image", "prompt", "negative_prompt", "preprocessor", "preprocess_resolution", *SETTINGS_AND_COMMON],
        ["speed", "pose_json", "residual_maps"],
    ),
    "scribble": (
        ["image", "prompt", "negative_prompt", "preprocessor", "preprocess_resolution", "xdog_threshold"]
        + SETTINGS_AND_COMMON,
        ["speed", "upload", "pad", "edited_map", "use_edited_map", "residual_maps"],
    ),
}


@pytest.mark.parametrize("name", list(BEFORE))
def test_the_tabs_parameters_are_what_they_were(name):
    from controlnet_demo.ui.condition_tab import condition_form

    form = condition_form(CONDITIONS[name], _Service())
    required, optional = BEFORE[name]
    assert list(form.fields) == required + optional and form.n_required == len(required)


def test_composes_parameters_are_what_they_were():
    from controlnet_demo.ui.compose_tab import compose_form

    service = _Service()
    units = range(1, service.settings.limits.max_units + 1)
    unit = ["enabled", "condition", "image", "preprocessor", "preprocess_resolution", "strength", "start", "end"]
    common = ["prompt", "negative_prompt", "guidance_scale", "steps", "num_images", "resolution", "scheduler"]
    common += ["seed", "randomize_seed", "speed"]
    extra = ["pad", "pose_json", "edited_map", "use_edited_map"]
    expected = [f"{n}_{k}" for k in units for n in [*unit, "mode", "mask"]] + common
    expected += [f"{n}_{k}" for n in extra for k in units] + ["residual_maps"]
    form = compose_form(service)
    assert list(form.fields) == expected and form.n_required == 0


def test_a_widget_for_no_declared_field_or_a_field_without_one_fails_the_build():
    form = Form(_Service(), [IMAGE, PROMPT])
    with gr.Blocks():
        with pytest.raises(KeyError):
            form.add("negative_prompt")
        form.add("prompt")
        with pytest.raises(ValueError, match="made already"):
            form.add("prompt")
        with pytest.raises(ValueError, match="editor makes"):
            Form(_Service(), [RESIDUAL_MAPS]).add("residual_maps")
        with pytest.raises(ValueError, match="without a widget: image"):
            form.handler(lambda *v, request=None: v, "", "")
    with pytest.raises(ValueError, match="twice"):
        Form(_Service(), [IMAGE], [IMAGE])


def test_a_compose_units_field_is_numbered_in_name_and_description():
    two = IMAGE.numbered(2)
    assert two.name == "image_2" and two.doc.startswith("Condition 2: the photo or control map")
