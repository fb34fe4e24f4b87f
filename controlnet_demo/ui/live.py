"""Live drawing: the picture follows the pen. The Scribble tab's Live switch, and the /live API endpoint.

Every stroke asks for one frame in the preset's live speed (few-step) at a fixed seed; the service's live lane keeps
one frame per client waiting and runs frames behind any full-quality job (`service.live`). A frame is a plain
request to the same engine as the tabs: the same validation, maps, PNG with its parameters and control check.
"""

from __future__ import annotations

import logging

import gradio as gr

from ..conditions import CONDITIONS
from ..errors import EmptyDrawingError, Message
from ..service import ControlNetService, GenerateSpec, UnitSpec
from ..service.gpu_time import gpu_seconds
from ..service.specs import editor_image, unit_from
from .fields import (
    COMMON,
    CONDITION,
    DRAWING,
    END,
    IMAGE,
    MODE,
    MODE_CHOICES,
    NEGATIVE,
    PAD,
    PREPROCESSOR,
    PROMPT,
    SEED,
    START,
    STRENGTH,
    Form,
)
from .i18n import locale_of, translate
from .inputs import DRAWING as DRAWING_INPUT
from .inputs import declare
from .panels import check_text, user_error
from .widgets import client_of, handler, on_gpu, sketchpad

log = logging.getLogger(__name__)

LIVE = "live"  # the live frames' concurrency id: apart from the GPU queue, bounded by the service's lane
DRAWN = next((c.name for c in CONDITIONS.values() if c.drawn), next(iter(CONDITIONS)))  # /live's default condition


def session_of(request: gr.Request | None, settings) -> str:
    """The live lane's client: one browser tab or API client (a session) on one host."""
    return f"{client_of(request, settings)}/{getattr(request, 'session_hash', None)}"


def live_spec(service: ControlNetService, prompt, negative, seed, units: list[UnitSpec]) -> GenerateSpec:
    """One frame: the preset's live speed with its own steps and guidance, one image, the given seed."""
    return GenerateSpec(
        prompt=prompt,
        units=units,
        negative_prompt=negative or "",
        seed=0 if seed is None else seed,
        speed=service.preset.live_speed,
    )


def live_seconds(service: ControlNetService) -> int:
    """What a frame may hold the GPU: the live speed's steps, one image, every condition the UI allows."""
    units = [UnitSpec(DRAWN, None)] * service.settings.limits.max_units
    return gpu_seconds(live_spec(service, "", "", 0, units), service.preset, service.settings.limits)


def run_frame(
    service: ControlNetService, spec: GenerateSpec, request: gr.Request | None, empty_ok: bool = False, check=True
):
    """The frame's Output, or None when a newer one replaced it (or, with empty_ok, the drawing has no strokes
    yet); errors as gr.Error in words, the unexpected ones logged. `check` False: no control check (the page's
    frames are checked when the drawing pauses: `live_switch`)."""
    try:
        return service.live(spec, session_of(request, service.settings), check=check)
    except Exception as exc:
        if empty_ok and isinstance(exc, EmptyDrawingError):  # a cleared canvas: nothing to draw from yet
            return None
        raise user_error(exc, "live frame") from None


def live_endpoint(service: ControlNetService) -> None:
    """/live: an image or a drawing (the pad's PNG as a data: URL, or a sketchpad's value), a prompt, the condition
    and the unit's controls in; one image out."""
    fields = [IMAGE, DRAWING, PROMPT, CONDITION, PREPROCESSOR, STRENGTH, START, END, MODE, SEED, NEGATIVE, PAD]
    form = Form(service, (), fields)
    with gr.Column(visible=False):
        given = {  # the endpoint's own widgets, where a tab's would differ: any whole seed, any mode name (the
            # service names the offered ones), prompts up to the parser's bound (the service says the limit)
            "image": dict(sources=None),
            "drawing": lambda: sketchpad(label="drawing"),
            "prompt": dict(max_length=None),
            "condition": dict(choices=list(CONDITIONS), value=DRAWN, allow_custom_value=True),
            "preprocessor": lambda: gr.Textbox(label="preprocessor"),
            "mode": lambda: gr.Dropdown(MODE_CHOICES, value="balanced", label="mode", allow_custom_value=True),
            "seed": lambda: gr.Number(value=0, precision=0, label="seed"),
            "negative_prompt": dict(value=None, max_length=None),  # left out: none (the frames' default)
            "pad": lambda: declare(gr.Textbox(label="pad"), DRAWING_INPUT),  # the pad's PNG as a data: URL
        }
        for name in form.fields:  # in the API's order
            made = given.get(name, {})
            if isinstance(made, dict):  # the field's widget, with these arguments
                form.add(name, label=name, **made)
            else:  # a widget of its own
                form.add(name, made())
        out = gr.Image(label="frame", format="png")
        trigger = gr.Button("live")

    @on_gpu(duration=live_seconds(service))
    def live(*values, request: gr.Request | None = None):
        v = form.values(values)
        unit = unit_from(v, condition=v["condition"], resolution=service.preset.detect_resolution)
        output = run_frame(service, live_spec(service, v["prompt"], v["negative_prompt"], v["seed"], [unit]), request)
        # a replaced frame: the last one stands
        return gr.skip() if output is None else output.files[0]

    live = form.handler(
        live,
        "One quick image in the model's few-step speed (what the live canvas shows at each stroke): a picture or "
        "a drawing, a prompt and one condition's controls in.",
        "one PNG that carries its parameters and its control check",
        progress=False,
    )
    trigger.click(
        live,
        form.components,
        out,
        api_name="live",
        concurrency_id=LIVE,
        concurrency_limit=service.settings.queue_size,  # the lane's bound: a frame waits there, on a thread
    )


WAITING = Message(
    "**Live** is on: it draws once every condition in use has a picture (upload one, draw it, or untick it)."
)
PAUSE_S = 0.5  # no newer frame asked for this long after one was drawn: the drawing paused, the frame is checked


def live_switch(
    service: ControlNetService, live: gr.Checkbox, pads: list, named: dict, outputs: list, units_of
) -> None:
    """While the `live` checkbox is on, every stroke on one of the drawing `pads` makes a frame.

    named: the tab's API names -> components, of which a frame reads the units' and the prompt, negative prompt
    and seed (the live speed brings the rest); units_of(values) builds the frame's UnitSpecs from them; outputs:
    (gallery, maps, params, check). A unit with no picture yet makes no frame: the check line says what Live
    waits for. A frame comes without its control check (the detectors would cost more than the frame on a GPU):
    the frame's event is followed by one that checks the session's last frame once the drawing pauses."""
    common = {f.name for f in COMMON} - {"prompt", "negative_prompt", "seed"}  # the live speed brings these
    inputs = {n: c for n, c in named.items() if n not in common}
    names = list(inputs)

    @on_gpu(duration=live_seconds(service))
    def frame(on, *values, request: gr.Request | None = None):
        skip = (gr.skip(),) * len(outputs)
        if not on:
            return skip
        v = dict(zip(names, values))
        units = units_of(v)
        if not units or any(editor_image(u.image) is None for u in units):
            return *skip[:-1], translate(WAITING, locale_of(request))
        spec = live_spec(service, v["prompt"], v["negative_prompt"], v["seed"], units)
        # on ZeroGPU each call runs in a worker process of its own, which keeps no frame for later: checked at once
        output = run_frame(service, spec, request, empty_ok=True, check=service.settings.zero_gpu)
        if output is None:  # a newer stroke replaced this frame (its own frame follows), or nothing drawn yet
            return skip
        # not checked yet (a check line says so), or checked on its own server (a Ray replica)
        return output.files, list(output.maps), output.params, check_text(output.checks, locale_of(request))

    def check_when_paused(on, request: gr.Request | None = None):
        try:
            checks = service.check_paused(session_of(request, service.settings), PAUSE_S) if on else None
        except Exception:  # the frame is shown; its check line stays as it is
            log.exception("the control check of a live frame failed")
            return gr.skip()
        return gr.skip() if checks is None else check_text(checks, locale_of(request))

    frame = handler(frame, {"on": live, **inputs}, progress=False)
    drawn = gr.on(
        [*(pad.input for pad in pads), live.change],
        frame,
        [live, *inputs.values()],
        outputs,
        trigger_mode="always_last",
        concurrency_id=LIVE,
        concurrency_limit=service.settings.queue_size,  # the lane's bound: a frame waits there, on a thread
        api_visibility="private",
        show_progress="hidden",
    )
    drawn.then(
        handler(check_when_paused, {"on": live}, progress=False),
        live,
        outputs[-1],
        concurrency_id=f"{LIVE}-check",
        concurrency_limit=service.settings.queue_size,  # each waits for the pause on a thread, then for its turn
        api_visibility="private",
        show_progress="hidden",
    )
