"""The "Train one yourself" tab: a fresh ControlNet on the offline base, trained here on the synthetic world while
the learner watches its zero convolutions leave 0, the loss, and the probe that shows sudden convergence.

The tab only draws what a trainer reports (the app gives it one: `lab.training.job.Trainer`, or none when training
is off on this server); the run itself, its limits and its one-at-a-time rule live in the trainer.
"""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..errors import DemoError
from .i18n import locale_of, say, t, translate
from .panels import axes, connection_bars, user_error
from .widgets import handler, slider

PROBE_COLOURS = {"matched": "#1f77b4", "shuffled": "#ff7f0e"}
UPDATE_EVERY_S = 0.5  # the tab redraws at most this often (a GPU runs many steps per redraw)
INTRO = (
    "### Train a ControlNet yourself, and watch it converge suddenly\n"
    "**Start** makes a fresh ControlNet from this app's offline base model (a copy of its encoder, every zero "
    "convolution exactly 0) and trains it here, on the synthetic world the offline model learned from (shapes and "
    "figures with their maps and captions), with the project's own training loop. Every few steps it pauses to "
    "draw a few held-out scenes.\n\n"
    "**What to look at, and what the paper predicts:** before the first step the zero-convolution bars are all "
    "0, so the ControlNet adds nothing and the pictures are the base model's; after one step they are not 0 any "
    "more (their gradient never was). For a while the pictures follow the caption only: *matched* (how well they "
    "follow their own map) stays near *shuffled* (the same pictures against another scene's map, what chance "
    "gives). Then, within a few hundred steps, matched jumps: that is the paper's *sudden convergence*."
)
STATES = {
    "starting": "Loading the base model and making the ControlNet",
    "training": "Training",
    "done": "Done",
    "stopped": "Stopped",
    "failed": "Failed",
}


def train_tab(trainer) -> None:
    """The tab's widgets and events; `trainer` None: training is off on this server, and the tab says how to turn
    it on."""
    gr.Markdown(t(INTRO))
    if trainer is None:
        gr.Markdown(
            t(
                "Training is **off on this server** (it is off by default on public hosting: a run takes the machine "
                "for minutes). Run the app on your own machine, where it is on, or set `CONTROLNET_DEMO_TRAINING=1`."
            ),
            elem_id="training-off",
        )
        return
    limits = trainer.limits
    labels = {c.name: c.label for c in CONDITIONS.values()}
    with gr.Row():
        condition = gr.Radio(
            [(t(labels.get(c, c)), c) for c in trainer.conditions], value="canny", label=t("Condition to learn")
        )
        steps = _slider(limits["steps"], "Steps", 50)
        batch = _slider(limits["batch_size"], "Batch size", 1)
        every = _slider(limits["probe_every"], "Probe every (steps)", 1)
    with gr.Row():
        start = gr.Button(t("Start training"), variant="primary", elem_id="train-start")
        stop = gr.Button(t("Stop"), variant="stop", elem_id="train-stop")
    status = gr.HTML(elem_id="train-status")
    with gr.Row():
        norms = gr.BarPlot(
            **axes("connection", "weight norm", "condition"), label=t("Zero-convolution weight norms now"),
            height=240, sort=None, elem_id="train-norms",
        )  # fmt: skip
        loss = gr.LinePlot(**axes("step", "loss"), label=t("Training loss (noise prediction)"), height=240)
    with gr.Row():
        probes = gr.LinePlot(
            **axes("step", "score", "series"),
            color_map=PROBE_COLOURS,
            colors_in_legend=list(PROBE_COLOURS),
            label=t("Probe: matched vs shuffled"),
            height=280,
            elem_id="train-probes",
        )
        samples = gr.Gallery(
            label=t("The latest probe: map, picture"), columns=4, height=280, format="png", elem_id="train-samples"
        )

    def run(condition: str, steps: float, batch_size: float, probe_every: float, request: gr.Request):
        locale = locale_of(request)
        try:
            job = trainer.start(
                _owner(request), condition=condition, steps=steps, batch_size=batch_size, probe_every=probe_every
            )
        except DemoError as exc:
            raise user_error(exc, "training") from None  # handler() puts it in the page's language
        try:
            for snapshot in job.updates(UPDATE_EVERY_S):
                yield _render(snapshot, locale)
        finally:  # the page went away (or the run ended): no run trains on for nobody
            job.stop()

    def halt(request: gr.Request):
        trainer.stop(_owner(request))  # the run's own stream then says "stopped"

    inputs = {"condition": condition, "steps": steps, "batch_size": batch, "probe_every": every}
    start.click(
        handler(run, inputs, progress=False), list(inputs.values()),
        [status, norms, loss, probes, samples],
        api_name="train", api_visibility="undocumented", concurrency_id="training", concurrency_limit=2,
    )  # fmt: skip
    # its own concurrency id: a stop waits behind no other event
    stop.click(
        halt, None, None, api_name="train_stop", api_visibility="undocumented",
        concurrency_id="train-stop", concurrency_limit=4,
    )  # fmt: skip


def _slider(bounds: dict, label: str, step: int):
    return slider(bounds["low"], bounds["high"], value=bounds["default"], step=step, label=t(label))


def _owner(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "unknown"


def _render(s, locale: str):
    import pandas as pd

    return (
        status_html(s, locale),
        connection_bars({s.condition: list(s.norms)}, "weight norm") if s.norms else None,
        pd.DataFrame(s.losses, columns=["step", "loss"]) if s.losses else None,
        pd.DataFrame(
            [(step, v, kind) for step, *both in s.probes for kind, v in zip(("matched", "shuffled"), both)],
            columns=["step", "score", "series"],
        )
        if s.probes
        else None,
        [(image, caption) for prompt, control_map, picture in s.samples for image, caption in
         ((control_map, "map"), (picture, prompt))],
    )  # fmt: skip


def status_html(s, locale: str = "en") -> str:
    """The progress bar and, in words, where the run is and what it has shown so far."""
    lines = [f"<progress value='{s.step}' max='{s.steps}' style='width:100%'></progress>"]
    head = say("<b>{state}</b> · step {step} of {steps} · {seconds} s", locale, state=say(STATES[s.state], locale),
               step=f"{s.step:,}", steps=f"{s.steps:,}", seconds=f"{s.elapsed_s:.0f}")  # fmt: skip
    if s.seconds_per_step and s.state == "training":
        left = (s.steps - s.step) * s.seconds_per_step
        head += say(" · {each} s per step, about {left} left", locale, each=f"{s.seconds_per_step:.2f}",
                    left=_duration(left, locale))  # fmt: skip
    lines.append(head)
    if s.norms_at_start and s.step >= 1 and s.norms:
        lines.append(say("Zero convolutions: largest weight norm {before} before the first step, {now} now.", locale,
                         before=f"{max(s.norms_at_start):.3g}", now=f"{max(s.norms):.3g}"))  # fmt: skip
    if s.jump and s.jump[2] > 0:
        lines.append(say("The largest jump of <i>matched</i> so far: between steps {a} and {b} (+{rise}).", locale,
                         a=f"{s.jump[0]:,}", b=f"{s.jump[1]:,}", rise=f"{s.jump[2]:.2f}"))  # fmt: skip
    if s.converged_at is not None and s.probes and s.probes[-1][0] > s.converged_at:
        lines.append(say("Matched has stayed at least 3× shuffled from step {step} on: it follows its map.", locale,
                         step=f"{s.converged_at:,}"))  # fmt: skip
    if s.message:
        lines.append(f"<span style='color:#b91c1c'>{translate(s.message, locale)}</span>")
    return "<br>".join(lines)


def _duration(seconds: float, locale: str) -> str:
    if seconds >= 90:
        return say("{n} min", locale, n=f"{seconds / 60:.0f}")
    return say("{n} s", locale, n=f"{seconds:.0f}")
