"""The "How ControlNet works" tab: docs/how-controlnet-works.md, the loaded ControlNets' zero convolutions, and
what ships measured with the model (its training curves and evaluation)."""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..errors import Message, message
from ..paths import DOCS_DIR, PAPER_FIGURES
from ..service import ControlNetService
from .i18n import say, t, t_document, translate
from .panels import axes, connection_bars, user_error
from .widgets import gpu_queue, handler

HOW_IT_WORKS = DOCS_DIR / "how-controlnet-works.md"
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
# per condition of the convergence plot: (name, matched line, shuffled line)
PALETTE = [
    ("blue", "#1f77b4", "#aec7e8"),
    ("red", "#d62728", "#ff9896"),
    ("green", "#2ca02c", "#98df8a"),
    ("purple", "#9467bd", "#c5b0d5"),
]


def how_tab(service: ControlNetService) -> list:
    """The tab's widgets; returns what the server writes in it at each page load, in the page's language:
    (Markdown component, render(locale)) pairs (the figures read from the shipped files)."""
    localized = []

    def server_text(render, **kwargs) -> None:
        localized.append((gr.Markdown(render("en"), **kwargs), render))

    gr.Markdown(_how_it_works(), latex_delimiters=LATEX)
    gr.Markdown(
        t(
            "### Look inside the loaded ControlNets\nThe weight norm of each of the 13 zero convolutions. "
            "**What the paper predicts:** a freshly made ControlNet's are all exactly 0, so at first it adds "
            "nothing and the locked model's pictures stay as good as they were; the gradient on those weights is not "
            "0, so from the first training step they grow. A trained ControlNet's bars are what it learned to add. "
            "(Each generation tab shows what its ControlNet added to your image, and, under *Where the residuals "
            "go*, where.)"
        )
    )
    with gr.Row():
        chosen = gr.CheckboxGroup(
            [(t(c.label), c.name) for c in CONDITIONS.values()],
            value=["canny"],
            label=t("ControlNets (loaded on first use)"),
        )
        inspect_button = gr.Button(t("Show zero-convolution norms"))
    norms = gr.BarPlot(
        **axes("connection", "weight norm", "condition"),
        label=t("Zero-convolution weight norms"),
        height=260,
        sort=None,
    )

    def show(conditions, request: gr.Request):
        try:
            return connection_bars({c: service.zero_conv_norms(c) for c in conditions or []}, "weight norm")
        except Exception as exc:
            raise user_error(exc, "zero-convolution norms") from None  # handler() puts it in the page's language

    inspect_button.click(
        handler(show, {"conditions": chosen}, progress=False), chosen, norms, api_visibility="private",
        **gpu_queue(service),
    )  # fmt: skip
    scores = service.evaluation()
    if scores:
        gr.Markdown(t(EVALUATION))
        server_text(lambda locale: evaluation_table(scores, locale))
    curves = service.training_curves()
    if curves:
        _convergence(curves, server_text)
    if paper_table(curves, scores):
        gr.Markdown(t(PAPERS))
        server_text(lambda locale: paper_table(curves, scores, locale), elem_id="paper-table")
    return localized


EVALUATION = (
    "### How well this model follows its conditions\n"
    "Each ControlNet drew held-out scenes it never trained on; the condition was then detected again on each picture "
    "and compared with the map it was given (**matched**) and with another scene's map (**shuffled**: what chance "
    "gives). **What to look at:** the ratio; from 3× on, the pictures follow their maps. **What the paper "
    "predicts:** control without damage: the locked model still draws what the prompt asks (the last column)."
)
PAPERS = (
    "### The papers' numbers beside ours\n"
    "The paper measured SD1.5 on real photos with large GPUs; most of what this project measured is its small "
    "offline model on its synthetic world, on 2 CPU cores. **What to look at:** the shape, not the size: a modest extra cost to "
    "train the copy, a sudden jump in controllability, then pictures that follow their maps."
)


def _how_it_works():
    try:
        return t_document(HOW_IT_WORKS)  # and docs/how-controlnet-works.<locale>.md
    except OSError:  # an installed copy without the checkout's docs/: the tab still opens
        return "The method, step by step, is in docs/how-controlnet-works.md of the project's repository."


def evaluation_table(scores: dict, locale: str = "en") -> str:
    """The shipped evaluation as a Markdown table: per condition matched, chance and their ratio."""
    rows = [
        say("| Condition | Metric | Matched | Shuffled (chance) | Ratio | Main object right |", locale),
        "|---|---|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {c} | {translate(r['metric'], locale)} | {r['matched']:.2f} | {r['shuffled']:.2f} | {r['ratio']:.1f}× | "
        f"{100 * r['prompt_main']:.0f} % |"
        for c, r in scores["conditions"].items()
    ]
    line = say(
        "{n} held-out scenes per condition, {steps} steps, guidance {guidance}; prompt adherence over all: {pct} %.",
        locale,
        n=scores["n"],
        steps=scores["steps"],
        guidance=f"{scores['guidance']:g}",
        pct=f"{100 * scores['prompt_main']:.1f}",
    )
    return "\n".join(rows) + "\n\n" + line


def _convergence(curves: dict[str, dict], server_text) -> None:
    gr.Markdown(
        t(
            "### Sudden convergence, measured while training these ControlNets\n"
            "Every few hundred steps training paused to generate held-out scenes with the ControlNet as it was: "
            "**matched** is how well the pictures follow their own condition, **shuffled** the same pictures "
            "scored against another scene's condition (what chance gives). Where the two lines part, the "
            "model has started to obey the condition. **What the paper predicts:** *sudden convergence*, not a "
            "slow drift: at some step (often below 10K steps at batch 4 in the paper) the model abruptly starts to "
            "follow its condition, and thanks to the zero convolutions its pictures are good all along. To watch it "
            "happen, train one in the *Train one yourself* tab."
        )
    )
    server_text(lambda locale: convergence_lines(curves, locale))
    frame = convergence_frame(curves)
    palette = [PALETTE[k % len(PALETTE)] for k in range(len(curves))]
    colours = {
        f"{c} {kind}": hex_
        for c, (_, dark, light) in zip(curves, palette)
        for kind, hex_ in (("matched", dark), ("shuffled", light))
    }
    server_text(
        lambda locale: say(
            "Colours: {colours} (dark: matched, light: shuffled).",
            locale,
            colours=", ".join(f"**{c}** {say(name, locale)}" for c, (name, _, _) in zip(curves, palette)),
        )
    )
    gr.LinePlot(
        frame,
        **axes("step", "score", "series"),
        color_map=colours,
        colors_in_legend=list(colours),
        elem_id="convergence",
        label=t("Controllability during training"),
        height=380,
    )


def convergence_lines(curves: dict[str, dict], locale: str = "en") -> str:
    """A line per shipped ControlNet: its steps, the largest jump of its probes and from when it passes the rule."""
    lines = []
    for c, curve in curves.items():
        if not curve.get("largest_jump"):
            continue
        a, b, rise = curve["largest_jump"]
        passes = (
            say("passes the evaluation's rule (matched ≥ 3× shuffled) from step {step} on", locale,
                step=f"{curve['converged_at']:,}")
            if curve.get("converged_at") is not None
            else say("not yet steadily above 3× shuffled", locale)
        )  # fmt: skip
        line = say("- **{c}**: {steps} steps; the largest jump of the matched score between step {a} and {b} "
                   "(+{rise}); {passes}", locale, c=c, steps=f"{curve['steps']:,}", a=f"{a:,}", b=f"{b:,}",
                   rise=f"{rise:.2f}", passes=passes)  # fmt: skip
        lines.append(line + stages_text(curve.get("stages", []), locale))
    return "\n".join(lines)


def paper_table(curves: dict[str, dict], scores: dict | None, locale: str = "en") -> str | None:
    """assets/paper-figures.json as a table: each figure of the ControlNet paper and ControlNet++ with its source,
    beside this project's measurement of it (the shipped curves and evaluation filled in where a row asks)."""
    import json

    try:
        rows = json.loads(PAPER_FIGURES.read_text(encoding="utf-8"))["rows"]
    except (OSError, ValueError, KeyError):  # an installed copy without assets/: the tab opens without the table
        return None
    jumps = "; ".join(
        say("{c}: steps {a}–{b}", locale, c=c, a=f"{curve['largest_jump'][0]:,}", b=f"{curve['largest_jump'][1]:,}")
        for c, curve in curves.items()
        if curve.get("largest_jump")
    )
    conditions = (scores or {}).get("conditions", {})
    pp = conditions.get("canny", {}).get("controlnet_pp_f1")
    own = ", ".join(
        f"{c} {translate(r['metric'], locale)} {r['matched']:.2f} vs {r['shuffled']:.2f}" for c, r in conditions.items()
    )
    pp_text = "the offline model on its 64 px world, canny F1 by ControlNet++'s definition {pp}"
    measured = {
        "curves": jumps and say("the shipped ControlNets' largest jump: {jumps} (batch 32)", locale, jumps=jumps),
        "evaluation": "; ".join(
            filter(
                None,
                [
                    pp is not None and say(pp_text, locale, pp=f"{pp:.2f}"),
                    own and say("by its own metrics, matched vs shuffled: {own}", locale, own=own),
                ],
            )
        ),
    }
    lines = [say("| | reported | source | measured here | how |", locale), "|---|---|---|---|---|"]
    for row in rows:
        ours = "; ".join(filter(None, [measured.get(row.get("measured"), ""), translate(row["ours"], locale)]))
        how = f"`{row['ours_source']}`" if row["ours_source"] else ""
        cells = (translate(row[k], locale) for k in ("what", "paper", "paper_source"))
        lines.append(f"| {' | '.join(cells)} | {ours} | {how} |")
    return "\n".join(lines)


def stages_text(stages: list, locale: str = "en") -> str:
    """Where a ControlNet's training went on from an earlier stage with other data or another base, said for a
    learner (no run folders, no command-line flags), in `locale`."""
    return "".join(translate(clause, locale) for clause in stage_clauses(stages))


def stage_clauses(stages: list) -> list[Message]:
    """stages_text's clauses, "; from step N on, ..." each, as messages."""
    clauses, warp_before = [], 0.0
    for at, warp, base in stages:
        warped = warp != warp_before
        step = f"{at:,}"
        if warped and warp and base:
            template = (
                "; from step {at} on, on scenes with {warp} of their shapes drawn irregular and on top of a base "
                "model trained further"
            )
        elif warped and warp:
            template = "; from step {at} on, on scenes with {warp} of their shapes drawn irregular"
        elif warped and base:
            template = "; from step {at} on, on regular shapes and on top of a base model trained further"
        elif warped:
            template = "; from step {at} on, on regular shapes"
        elif base:
            template = "; from step {at} on, on top of a base model trained further"
        else:
            template = None
        if template:
            clauses.append(message(template, at=step, warp=f"{warp:.0%}"))
        warp_before = warp
    return clauses


def convergence_frame(curves: dict[str, dict]):
    """The probes of every condition's training curve as one long table for gr.LinePlot."""
    import pandas as pd

    rows = [
        dict(step=step, score=score, series=f"{condition} {kind}")
        for condition, curve in curves.items()
        for step, matched, shuffled in curve["controllability"]
        for kind, score in (("matched", matched), ("shuffled", shuffled))
    ]
    return pd.DataFrame(rows)
