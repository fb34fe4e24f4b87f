"""The pose keypoint editor: `gr.HTML` with its own script (assets/pose.js) that draws OpenPose's 18 body keypoints
per person in the pose ControlNet's colours and lets people drag, nudge, hide, add and remove them. Its value is ""
while Generate reads the image, else the pose as OpenPose JSON; the server draws that JSON with controlnet-aux
(`conditions.openpose_json.render_pose`), so the map the ControlNet reads is controlnet-aux's own drawing."""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path

import gradio as gr

from ..conditions.openpose_json import MAX_JSON_CHARS, MAX_PEOPLE, STANDING, pose_json
from ..errors import ModelUnavailableError
from .i18n import locale_of, marked, scripted, t, translate
from .inputs import POSE, declare
from .panels import user_error
from .widgets import LIGHT, gpu_queue, handler, on_gpu

HELP = "Drag a joint · Tab, then arrow keys (Shift ×10) · H hide/show · Delete removes the person · Esc deselects"
TEMPLATE = """
<div class="pose-editor" role="group" aria-label="{label}" data-t-aria-label="{label}" data-standing="{standing}" data-max-people="{max_people}"
  data-max-chars="{max_chars}" data-used="false">
  <div class="pose-caption" data-t="{label}">{label}</div>
  <div class="pose-tools" role="toolbar" aria-label="Pose tools" data-t-aria-label="Pose tools">
    <button type="button" data-action="add" title="Add a standing person" data-t-title="Add a standing person" data-t="Add person">Add person</button>
    <button type="button" data-action="remove" title="Remove the selected joint's person (Delete)" data-t-title="Remove the selected joint's person (Delete)" data-t="Remove person">Remove person</button>
    <button type="button" data-action="hide" title="Hide or show the selected joint (H)" data-t-title="Hide or show the selected joint (H)" data-t="Hide/show joint" disabled>Hide/show joint</button>
    <button type="button" data-action="reset" title="One standing figure" data-t-title="One standing figure" data-t="Standing figure">Standing figure</button>
    <button type="button" data-action="open" title="Open an OpenPose JSON file" data-t-title="Open an OpenPose JSON file" data-t="Open JSON…">Open JSON…</button>
    <button type="button" data-action="save" title="Download this pose as OpenPose JSON" data-t-title="Download this pose as OpenPose JSON" data-t="Save JSON">Save JSON</button>
    <button type="button" data-action="unuse" title="Generate from the image again" data-t-title="Generate from the image again" data-t="Don't use" disabled>Don't use</button>
    <input type="file" accept=".json,application/json" hidden>
  </div>
  <canvas width="{size}" height="{size}" tabindex="0" role="application"
    aria-label="{label}: drag a joint, or Tab to it and move it with the arrow keys (Shift: 10 px); H hides it"
    data-t-aria-label="{label}: drag a joint, or Tab to it and move it with the arrow keys (Shift: 10 px); H hides it"></canvas>
  <div class="pose-status" aria-live="polite"></div>
  <div class="pose-live" aria-live="polite" hidden></div>
  <div class="pose-help" data-t="{help}">{help}</div>
</div>
"""

CSS = """
.pose-editor { display: flex; flex-direction: column; gap: 6px; }
.pose-caption { font-size: var(--block-label-text-size); color: var(--block-label-text-color); }
.pose-tools { display: flex; flex-wrap: wrap; gap: 6px; font-size: var(--text-sm); }
.pose-tools button { font: inherit; font-size: var(--text-sm); padding: 2px 10px; border: 1px solid var(--border-color-primary); border-radius: 6px;
  background: var(--button-secondary-background-fill); color: var(--button-secondary-text-color); }
.pose-tools button:disabled { opacity: 0.45; }
.pose-editor canvas { width: 100%; max-width: 512px; aspect-ratio: 1; background: #000; cursor: grab;
  border: 2px solid var(--border-color-primary); border-radius: 6px; touch-action: none; }
.pose-editor[data-used="true"] canvas { border-color: var(--color-accent); }
.pose-editor canvas:focus-visible { outline: 2px solid var(--color-accent); outline-offset: 2px; }
.pose-status { font-size: var(--text-sm); }
.pose-help { font-size: var(--text-xs); color: var(--body-text-color-subdued); }
"""


@cache
def _script() -> str:
    return scripted((Path(__file__).parent / "assets" / "pose.js").read_text(encoding="utf-8"))


def pose_editor(label: str, size: int = 512, **kwargs) -> gr.HTML:
    """A pose editor on a `size` x `size` canvas (a loaded JSON brings its own canvas size), starting from one
    standing figure. Its value is "" until the pose is edited, then the OpenPose JSON; `input` fires per change."""
    editor = gr.HTML(
        value="",
        html_template=marked(
            TEMPLATE.format(
                label=html.escape(label),
                help=HELP,
                size=int(size),
                standing=html.escape(json.dumps(STANDING)),
                max_people=MAX_PEOPLE,
                max_chars=MAX_JSON_CHARS,
            )
        ),
        css_template=CSS,
        js_on_load=_script(),
        label=label,
        show_label=False,
        padding=False,
        **kwargs,
    )
    return declare(editor, POSE)  # its value: OpenPose JSON text, or ""


def standing_json(width: int = 512, height: int = 512) -> str:
    return pose_json([[(x * width, y * height) for x, y in STANDING]], width, height)


def pose_inputs(
    prefix: str = "pose",
    *,
    title: str = "Edit the pose: drag its joints (used instead of the image once edited)",
    open: bool = True,
    visible: bool = True,
):
    """A pose editor (its value is the API's `pose_json`), the button that starts it from the image, and the JSON
    as text (to paste one in, or copy it out), in an accordion (returned first); elem_ids `{prefix}-editor` and
    `{prefix}-json-text`."""
    with gr.Accordion(t(title), open=open, visible=visible) as box:
        editor = pose_editor("Pose editor (OpenPose body, 18 keypoints)", elem_id=f"{prefix}-editor")
        start = gr.Button(t("Start from the image's pose"), size="sm")
        with gr.Accordion(t("The pose as OpenPose JSON (paste one here, or copy it out)"), open=False):
            text = gr.Textbox(
                label=t(
                    "OpenPose JSON: people[].pose_keypoints_2d (x, y, confidence x 18), canvas_width, "
                    "canvas_height, as the A1111 OpenPose editor saves it"
                ),
                lines=4,
                max_lines=12,
                max_length=MAX_JSON_CHARS,
                elem_id=f"{prefix}-json-text",
            )
    return box, editor, start, text


def wire_pose_editor(service, editor: gr.HTML, start: gr.Button, text: gr.Textbox, image, resolution) -> None:
    """Editor and text follow each other in the page (no round trip); the button detects the image's pose into
    the editor, or, with no OpenPose weights here, starts from a standing figure and says so."""
    private = dict(api_visibility="private", **LIGHT)
    editor.input(None, editor, text, js="(v) => v", **private)
    text.change(None, text, editor, js="(t) => t.trim()", **private)

    @on_gpu
    def from_image(picture, side, request: gr.Request | None = None):
        def say(text: str) -> str:
            return translate(text, locale_of(request))

        if picture is None:
            gr.Info(say("No image yet: the editor starts from a standing figure. Drag its joints into your pose."))
            return (pose := standing_json()), pose
        try:
            pose = service.detect_pose(picture, side, None)
        except ModelUnavailableError:
            gr.Warning(
                say(
                    "The OpenPose detector's weights are not on this machine: the editor starts from a standing "
                    "figure. Drag its joints into the pose you want."
                )
            )
            return (pose := standing_json()), pose
        except Exception as exc:
            raise user_error(exc, "pose detection") from None
        if not json.loads(pose)["people"]:
            gr.Warning(say("No person found in the image: the editor starts from a standing figure."))
            pose = standing_json()
        return pose, pose

    detect = handler(from_image, {"picture": image, "side": resolution}, progress=False, limited_by=service)
    start.click(detect, [image, resolution], [editor, text], api_visibility="private", **gpu_queue(service))
    # a new picture is read again: an edited pose from the last one would silently win over it
    image.upload(lambda: ("", ""), None, [editor, text], **private)
