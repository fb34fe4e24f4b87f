"""What every generation tab has: the shared inputs, the outputs, and the stream of service events that fills them."""

from __future__ import annotations

import contextlib
import logging

import gradio as gr
from diffusers.image_processor import VaeImageProcessor

from ..errors import DemoError, GenerationCancelled, message
from ..service import ControlNetService, GenerateSpec
from ..service.messages import user_message_of
from ..service.specs import Done, Failed, ImagesReady, MapsReady, PreviewReady, StepDone
from .i18n import message_error, say, t, translate
from .residual_maps import residual_updates
from .widgets import LIGHT, handler

log = logging.getLogger(__name__)


def stream(service: ControlNetService, spec: GenerateSpec, progress, client: str, locale: str = "en"):
    """The request's events as output updates: the control maps first, then previews, then the result (and, when
    asked for, where the residuals went: residual_maps.residual_panel's three outputs).

    Yielding at every denoising step lets gradio close this generator when the user presses Stop or disconnects;
    closing the service's stream stops the engine at its next step.
    """
    seed = gr.skip()
    keep = (gr.skip(),) * 3  # the residual panel's, until the result

    def outputs(gallery=gr.skip(), maps=gr.skip(), params=gr.skip(), bars=gr.skip(), check=gr.skip(), panel=keep):
        return gallery, maps, params, seed, bars, check, *panel

    with contextlib.closing(service.generate(spec, client)) as events:
        for event in events:
            # the seed goes out as a value, not gr.skip(): an update would make gradio rebuild the session's
            # seed slider (an input too) from its constructor arguments, without its `with_fallback`
            if isinstance(event, MapsReady):
                seed = event.prepared.params["seed"]
                yield outputs(maps=list(event.prepared.maps))
            elif isinstance(event, StepDone):
                progress((event.step, event.steps), desc="Denoising")
                yield outputs()
            elif isinstance(event, PreviewReady):  # the model's current estimate, in place of the last result
                caption = say("preview: step {step} of {steps}", locale, step=event.step, steps=event.steps)
                previews = [(im, caption) for im in VaeImageProcessor.numpy_to_pil(event.images)]
                yield outputs(gallery=previews)
            elif isinstance(event, ImagesReady):  # the result, while the control check runs; its PNGs follow
                images = VaeImageProcessor.numpy_to_pil(event.images)
                yield outputs(gallery=images, check=say("checking the control…", locale))
            elif isinstance(event, Done):
                out = event.output
                seed = out.params["seed"]
                yield outputs(
                    out.files,
                    list(out.maps),
                    out.params,
                    connection_bars(out.result.residual_norms),
                    check_text(out.checks, locale),
                    residual_updates(out),
                )
            elif isinstance(event, Failed):
                if isinstance(event.error, GenerationCancelled):
                    return
                raise user_error(event.error, "generation")


def user_error(exc: BaseException, what: str) -> gr.Error:
    """The error to show the user, in words (in English; it keeps its `Message`, which the handler shows in the
    page's language); an unexpected one (not a DemoError) is logged with its traceback."""
    if not isinstance(exc, DemoError):
        log.error("%s failed", what, exc_info=exc)
    return message_error(user_message_of(exc))


def common_inputs(form):
    """Prompt, guidance and the advanced options every tab shares (`fields.COMMON`), made in `form`."""
    preset = form.service.preset
    add = form.add
    prompt = add("prompt")
    add("negative_prompt")
    guidance = add("guidance_scale")
    speed = add("speed")
    with gr.Accordion(t("Advanced options"), open=False):
        with gr.Row():
            steps = add("steps")
            add("num_images")
        with gr.Row():
            add("resolution")
            scheduler = add("scheduler")
        with gr.Row():
            add("seed")
            add("randomize_seed")
    # a few-step speed brings its own steps, guidance and sampler (values, not updates: see `stream` on sliders)
    speed.change(
        handler(lambda name, request=None: speed_defaults(preset, name), {"speed": speed}, progress=False),
        speed,
        [steps, guidance, scheduler],
        api_visibility="private",
        **LIGHT,
    )
    return prompt


def speed_defaults(preset, name: str):
    few = preset.few_step.get(name)
    if few is None:
        return preset.steps, preset.guidance, gr.update(interactive=True)
    return few.steps, few.guidance, gr.update(interactive=False)


def check_text(checks, locale: str = "en") -> str:
    """The control check as a line per condition: its score, and the warning when the result does not follow."""
    lines = []
    for k, c in enumerate(checks, start=1):
        values = dict(
            name=f"{k}. {c.condition}",
            metric=c.metric,  # a text of the catalog, looked up whole
            score="" if c.score is None else f"{c.score:.2f}",
            threshold=f"{c.threshold:g}",
            warning=c.warning or "",  # a Message (or a text)
        )
        if c.score is None:
            template = "- {name}: {warning}"
        elif c.warning is None:
            template = "- {name}: follows its map ({metric} {score}, threshold {threshold})"
        else:
            template = "- ⚠️ **{name}: does not follow its map** ({metric} {score} < {threshold}). {warning}"
        lines.append(translate(message(template, **values), locale))
    head = say("**Control check** (the condition detected again on the result)", locale)
    return head + "\n" + "\n".join(lines) if lines else ""


def unit_controls(form, suffix: str = ""):
    """Strength, window and mode for one condition (`suffix`: a Compose unit's number, `_2`)."""
    form.add(f"strength{suffix}")
    with gr.Row():
        form.add(f"start{suffix}")
        form.add(f"end{suffix}")
    form.add(f"mode{suffix}")


def outputs():
    # Whole pictures: by default one image is stretched to a full-width square cell, taller than the gallery (so
    # only its top shows), and "cover" crops every non-square image to its square cell.
    shown = dict(format="png", interactive=False, fit_columns=False, object_fit="contain")
    gallery = gr.Gallery(label=t("Results"), columns=2, height=420, **shown)
    maps = gr.Gallery(label=t("Control map(s) used"), columns=3, height=240, **shown)
    params = gr.JSON(label=t("Parameters (also stored in each PNG)"))
    residuals = gr.BarPlot(
        **axes("connection", "mean |residual|", "condition"),
        label=t("What each ControlNet added"),
        caption=t(
            "Mean magnitude of the residual each ControlNet added to the U-Net's 12 skip connections and its "
            "middle block, averaged over the steps it ran (after strength, mode and mask)."
        ),
        height=220,
        sort=None,
    )
    check = gr.Markdown(label=t("Control check"), elem_id="control-check")
    return gallery, maps, params, residuals, check


def axes(x: str, y: str, color: str | None = None) -> dict:
    """A plot's columns (English names, as its data has them), registered as texts: gradio's page does not
    translate a plot's titles, so the server writes them in the page's language at each load (`plot_titles`)."""
    for name in (x, y, color):
        if name is not None:
            t(name)
    return dict(x=x, y=y) | ({} if color is None else dict(color=color))


def plot_titles(plot, locale: str):
    """An update of `plot` (a gr.LinePlot or gr.BarPlot) that titles its axes and legend in `locale`."""
    titles = dict(x_title=say(plot.x, locale), y_title=say(plot.y, locale))
    if plot.color:
        titles["color_title"] = say(plot.color, locale)
    return gr.update(**titles)


def connection_bars(values: dict[str, list[float]], value_name: str = "mean |residual|"):
    """{series: 13 values} -> the long table a BarPlot reads (connections in the U-Net's order)."""
    import pandas as pd

    # numbered first: the plot orders its x axis alphabetically, and must keep the U-Net's order
    rows = [
        (f"{i:02d} skip" if i < len(vals) - 1 else f"{i:02d} middle", v, series)
        for series, vals in values.items()
        for i, v in enumerate(vals)
    ]
    return pd.DataFrame(rows, columns=["connection", value_name, "condition"])


def run_buttons():
    with gr.Row():
        run = gr.Button(t("Generate"), variant="primary")
        stop = gr.Button(t("Stop"), variant="stop")
    return run, stop
