"""The detected map as something to edit: the drawing pad (ui/pad.py) on the map's own black, with inks in the map's
own colours (white and black lines for edges and scribbles, grey levels and a fill for depth), an eraser that
paints "nothing here", and undo. "Use my edited map" makes the ControlNet read it instead of detecting again; the
result PNG keeps it (service/files.py), so `--from-png` reproduces the image.

gradio's ImageEditor was tried first: its eraser cannot touch the background (where the map must be, to be
edited), and a map handed to it as a layer came out misplaced and empty in gradio 6.
"""

from __future__ import annotations

import base64
import io

import gradio as gr
import numpy as np
from PIL import Image

from ..conditions import Condition
from ..errors import DemoError, message, quoted
from ..service import ControlNetService
from .i18n import locale_of, t, translate
from .pad import drawing_pad
from .panels import user_error
from .widgets import gpu_queue, handler, on_gpu

LINES = (("White: a line", "#ffffff"), ("Black: no line", "#000000"))
DEPTH = (
    ("Near: white", "#ffffff"),
    ("Grey 192", "#c0c0c0"),
    ("Grey 128", "#808080"),
    ("Grey 64", "#404040"),
    ("Far: black", "#000000"),
)
INKS = {"lines": LINES, "depth": DEPTH}  # by the table's Condition.editor

USE_LABEL = "Use my edited map (the ControlNet reads it; nothing is detected again)"


def map_inputs(cond: Condition, prefix: str | None = None, *, any_condition: bool = False, visible: bool = True):
    """A map editor, its Detect button, the "Use my edited map" switch and a note, in an accordion (returned first);
    their elem_ids start with `prefix` (the condition's name). `any_condition` (a Compose unit, whose condition can
    change): every ink and the fill, the page showing only those of the unit's condition (`MAP_KIND_CSS`, by the class map-kind-<Condition.editor>)."""
    prefix = prefix or cond.name
    depth = cond.editor == "depth"
    with gr.Accordion(t("Edit the map the ControlNet reads"), open=False, visible=visible) as box:
        gr.Markdown(
            t(
                "Detectors make mistakes: **Detect** puts the map here, then paint over what is wrong "
                + (
                    "(lines: white draws one, black or the eraser removes one; depth: white is near, black is far, "
                    "Fill paints one region)."
                    if any_condition
                    else "(white is near, black is far; Fill paints one region)."
                    if depth
                    else "(white draws a line, black or the eraser removes one)."
                )
            )
        )
        detect = gr.Button(t("Detect the map to edit it"), size="sm")
        editor = drawing_pad(
            f"{'Map' if any_condition else cond.label + ' map'} editor",
            brush=12 if depth else 4,
            paper="#000000",
            inks=DEPTH if any_condition else INKS[cond.editor],
            fill=any_condition or depth,
            elem_id=f"{prefix}-map-editor",
            elem_classes=[f"map-kind-{cond.editor}"] if any_condition else None,
        )
        use = gr.Checkbox(value=False, label=t(USE_LABEL), elem_id=f"{prefix}-use-map")
        note = gr.Markdown(elem_id=f"{prefix}-map-note")
    return box, editor, detect, use, note


# a Compose unit's editor shows the inks of its condition (its class, map-kind-<Condition.editor>, set by the
# condition's change)
MAP_KIND_CSS = """
.map-kind-lines .pad-tools button[data-color]:not([data-color="#ffffff"]):not([data-color="#000000"]),
.map-kind-lines .pad-tools button[data-action="fill"] { display: none; }
"""


def png_data_url(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def wire_map_editor(service: ControlNetService, named: dict, unit_of, editor, detect, use, note, sources) -> None:
    """Detect fills the editor and ticks "use"; a new picture, preprocessor or setting (`sources`: their
    components) detects again into an editor that holds a map, and says so. Editing never runs the detector."""
    names, inputs = list(named), list(named.values())

    def fresh(v: dict, request, why: str):
        unit = unit_of({**v, "use_edited_map": False})  # the map as detected from the picture
        locale = locale_of(request)
        try:
            control = service.detect(unit, None)
        except DemoError as exc:
            return "", False, translate(message("⚠️ No map to edit: {why}", why=exc.message), locale)
        except Exception as exc:
            raise user_error(exc, "map detection") from None
        return png_data_url(control), True, translate(why, locale)

    @on_gpu
    def start(*values, request: gr.Request | None = None):
        v = dict(zip(names, values))
        return fresh(
            v,
            request,
            message(
                "Detected with **{preprocessor}**. Edit it; Generate reads it while *Use my edited map* is ticked.",
                preprocessor=quoted(v["preprocessor"]),
            ),
        )

    @on_gpu
    def again(*values, request: gr.Request | None = None):
        v = dict(zip(names, values))
        if v.get("edited_map") is None:  # nothing being edited: nothing to redo
            return gr.skip(), gr.skip(), gr.skip()
        return fresh(
            v,
            request,
            message("**Detected again** for the new picture or settings: the edits to the last map were set aside."),
        )

    common = dict(api_visibility="private", **gpu_queue(service))
    detect.click(handler(start, named, progress=False, limited_by=service), inputs, [editor, use, note], **common)
    for component in sources:
        event = component.release if isinstance(component, gr.Slider) else component.change
        event(handler(again, named, progress=False, limited_by=service), inputs, [editor, use, note], **common)
