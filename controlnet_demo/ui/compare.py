"""Compare, in every tab: the result beside the same seed with the ControlNet off (the locked model alone) and a
strength sweep, in one grid; Compose's is the named API endpoint /compare."""

from __future__ import annotations

import contextlib

import gradio as gr

from ..errors import GenerationCancelled, Message, message
from ..service import ControlNetService, GenerateSpec
from ..service.compare import STRENGTHS, compare_specs, label
from ..service.gpu_time import UNREADABLE_S, gpu_seconds
from ..service.specs import Done, Failed, StepDone
from .i18n import locale_of, t, translate
from .panels import user_error
from .widgets import gpu_queue, on_gpu

EXPLAIN = (
    "The same seed and prompt with the ControlNet **off** (strength 0: the locked model alone, which the "
    "ControlNet never changes) and at strengths " + ", ".join(f"{s:g}" for s in STRENGTHS[1:]) + ". What differs "
    "between the images is what the control adds: at 0 the layout is the prompt's own, and it follows the map "
    "more closely as the strength grows."
)
USED = "a grid of PNGs, each captioned, and for each the parameters it used (its strength among them)"


def compare_button() -> gr.Button:
    return gr.Button(t("Compare: ControlNet off and a strength sweep"), size="sm")


def compare_panel():
    """Where the grid goes: an accordion under the results, opened when a comparison runs."""
    with gr.Accordion(t("With and without the ControlNet"), open=False) as box:
        gr.Markdown(t(EXPLAIN))
        grid = gr.Gallery(label=t("Same seed: only the control differs"), columns=5, height=260, format="png")
        used = gr.JSON(label=t("What each image used"))
    return box, grid, used


def caption(strength: float | None) -> Message | str:
    """A variant's caption (service.compare's `label`) as the page shows it: None, the request's own settings."""
    if strength is None or strength == 0:
        return label(strength)  # a text of the catalog, looked up whole
    return message("strength {x}", x=f"{strength:g}")


def _strength(name: str, spec: GenerateSpec) -> float | None:
    """The strength a variant of compare_specs ran at (every unit at it), None for the request as it is."""
    return None if name == label(None) or not spec.units else spec.units[0].strength


def compare_stream(service: ControlNetService, spec: GenerateSpec, progress, client: str, locale: str = "en"):
    """Each variant's request in turn (their steps on one progress bar), the grid growing as each is done."""
    variants = compare_specs(spec)
    shown, used = [], []
    for k, (name, one) in enumerate(variants):
        with contextlib.closing(service.generate(one, client)) as events:
            for event in events:
                if isinstance(event, StepDone):
                    progress((event.step, event.steps), desc=f"{k + 1} of {len(variants)}: {name}")
                    yield gr.skip(), gr.skip(), gr.update(open=True)
                elif isinstance(event, Done):
                    shown.append((event.output.files[0], translate(caption(_strength(name, one)), locale)))
                    used.append({"image": name, **event.output.params})
                    yield list(shown), list(used), gr.update(open=True)
                elif isinstance(event, Failed):
                    if isinstance(event.error, GenerationCancelled):
                        return
                    raise user_error(event.error, "comparison")


def wire_compare(
    service: ControlNetService, button: gr.Button, panel: tuple, form, spec_for, stop: gr.Button, api_name=None
):
    """The Compare button's event for a tab whose inputs (`form`: its fields.Form) build a spec with
    `spec_for(values)`, into `panel` (compare_panel's); public as /`api_name` when given."""
    box, grid, used = panel

    def duration(*values, **_) -> int:  # the sum of its requests' (see widgets.gpu_duration)
        try:
            specs = [one for _, one in compare_specs(spec_for(values))]
        except Exception:
            return UNREADABLE_S
        return sum(gpu_seconds(one, service.preset, service.settings.limits) for one in specs)

    @on_gpu(duration=duration)
    def compare(*values, progress=gr.Progress(), request: gr.Request | None = None):
        yield from compare_stream(service, spec_for(values), progress, None, locale_of(request))

    # a private event still takes its function's name from the API's names: the tabs' must not take "compare"
    compare.__name__ = api_name or "compare_in_tab"
    compare = form.handler(
        compare,
        "Compare: the request's first image beside the same seed with every ControlNet off (strength 0, the locked "
        "model alone) and at strengths " + ", ".join(f"{s:g}" for s in STRENGTHS[1:]) + ", one seed for all.",
        USED,
        limited_by=service,
        jobs=len(STRENGTHS) + 1,
    )
    visibility = {"api_name": api_name} if api_name else {"api_visibility": "private"}
    event = button.click(compare, form.components, [grid, used, box], **visibility, **gpu_queue(service))
    stop.click(None, cancels=[event], api_visibility="private")
    return event
