"""The "How ControlNet works" tab: docs/how-controlnet-works.md, the loaded ControlNets' zero convolutions, and
what ships measured with the model (its training curves and evaluation)."""

from __future__ import annotations

import gradio as gr

from ..conditions import CONDITIONS
from ..paths import DOCS_DIR, PAPER_FIGURES
from ..service import ControlNetService, user_message
from .i18n import t, t_document
from .panels import connection_bars
from .widgets import gpu_queue

HOW_IT_WORKS = DOCS_DIR / "how-controlnet-works.md"
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
# per condition of the convergence plot: (name, matched line, shuffled line)
PALETTE = [
    ("blue", "#1f77b4", "#aec7e8"),
    ("red", "#d62728", "#ff9896"),
    ("green", "#2ca02c", "#98df8a"),
    ("purple", "#9467bd", "#c5b0d5"),
]


def how_tab(service: ControlNetService):
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
        x="connection",
        y="weight norm",
        color="condition",
        label=t("Zero-convolution weight norms"),
        height=260,
        sort=None,
    )

    def show(conditions):
        try:
            return connection_bars({c: service.zero_conv_norms(c) for c in conditions or []}, "weight norm")
        except Exception as exc:
            raise gr.Error(user_message(exc), print_exception=False) from None

    inspect_button.click(show, chosen, norms, api_visibility="private", **gpu_queue(service))
    scores = service.evaluation()
    if scores:
        gr.Markdown("### How well this model follows its conditions\n" + evaluation_table(scores))
    curves = service.training_curves()
    if curves:
        _convergence(curves)
    table = paper_table(curves, scores)
    if table:
        gr.Markdown(t("### The papers' numbers beside ours"))
        gr.Markdown(table, elem_id="paper-table")


def _how_it_works():
    try:
        return t_document(HOW_IT_WORKS)  # and docs/how-controlnet-works.<locale>.md
    except OSError:  # an installed copy without the checkout's docs/: the tab still opens
        return "The method, step by step, is in docs/how-controlnet-works.md of the project's repository."


def evaluation_table(scores: dict) -> str:
    """The shipped evaluation as a Markdown table: per condition matched, chance and their ratio."""
    rows = [
        "| Condition | Metric | Matched | Shuffled (chance) | Ratio | Main object right |",
        "|---|---|---:|---:|---:|---:|",
    ]
    rows += [
        f"| {c} | {r['metric']} | {r['matched']:.2f} | {r['shuffled']:.2f} | {r['ratio']:.1f}× | "
        f"{100 * r['prompt_main']:.0f} % |"
        for c, r in scores["conditions"].items()
    ]
    return "\n".join(rows) + (
        f"\n\n{scores['n']} held-out scenes per condition, {scores['steps']} steps, guidance "
        f"{scores['guidance']:g}; prompt adherence over all: {100 * scores['prompt_main']:.1f} %."
    )


def _convergence(curves: dict[str, dict]) -> None:
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
    gr.Markdown(
        "\n".join(
            f"- **{c}**: {curve['steps']:,} steps; the largest jump of the matched score between step "
            f"{curve['largest_jump'][0]:,} and {curve['largest_jump'][1]:,} (+{curve['largest_jump'][2]:.2f}); "
            + (
                f"passes the evaluation's rule (matched ≥ 3× shuffled) from step {curve['converged_at']:,} on"
                if curve.get("converged_at") is not None
                else "not yet steadily above 3× shuffled"
            )
            + stages_text(curve.get("stages", []))
            for c, curve in curves.items()
            if curve.get("largest_jump")
        )
    )
    frame = convergence_frame(curves)
    palette = [PALETTE[k % len(PALETTE)] for k in range(len(curves))]
    colours = {
        f"{c} {kind}": hex_
        for c, (_, dark, light) in zip(curves, palette)
        for kind, hex_ in (("matched", dark), ("shuffled", light))
    }
    gr.Markdown(
        "Colours: "
        + ", ".join(f"**{c}** {name}" for c, (name, _, _) in zip(curves, palette))
        + " (dark: matched, light: shuffled)."
    )
    gr.LinePlot(
        frame,
        x="step",
        y="score",
        color="series",
        color_map=colours,
        colors_in_legend=list(colours),
        elem_id="convergence",
        label=t("Controllability during training"),
        height=380,
    )


def paper_table(curves: dict[str, dict], scores: dict | None) -> str | None:
    """assets/paper-figures.json as a table: each figure of the ControlNet paper and ControlNet++ with its source,
    beside this project's measurement of it (the shipped curves and evaluation filled in where a row asks)."""
    import json

    try:
        rows = json.loads(PAPER_FIGURES.read_text(encoding="utf-8"))["rows"]
    except (OSError, ValueError, KeyError):  # an installed copy without assets/: the tab opens without the table
        return None
    jumps = "; ".join(
        f"{c}: steps {curve['largest_jump'][0]:,}–{curve['largest_jump'][1]:,}"
        for c, curve in curves.items()
        if curve.get("largest_jump")
    )
    conditions = (scores or {}).get("conditions", {})
    pp = conditions.get("canny", {}).get("controlnet_pp_f1")
    own = ", ".join(f"{c} {r['metric']} {r['matched']:.2f} vs {r['shuffled']:.2f}" for c, r in conditions.items())
    measured = {
        "curves": jumps and f"the shipped ControlNets' largest jump: {jumps} (batch 32)",
        "evaluation": "; ".join(
            filter(
                None,
                [
                    pp is not None
                    and f"the offline model on its 64 px world, canny F1 by ControlNet++'s definition {pp:.2f}",
                    own and f"by its own metrics, matched vs shuffled: {own}",
                ],
            )
        ),
    }
    lines = ["| | reported | source | measured here | how |", "|---|---|---|---|---|"]
    for row in rows:
        ours = "; ".join(filter(None, [measured.get(row.get("measured"), ""), row["ours"]]))
        how = f"`{row['ours_source']}`" if row["ours_source"] else ""
        lines.append(f"| {row['what']} | {row['paper']} | {row['paper_source']} | {ours} | {how} |")
    return "\n".join(lines)


def stages_text(stages: list) -> str:
    """Where a ControlNet's training went on from an earlier stage with other data or another base, said for a
    learner (no run folders, no command-line flags)."""
    text, warp_before = "", 0.0
    for at, warp, base in stages:
        changes = []
        if warp != warp_before:
            changes.append(
                f"on scenes with {warp:.0%} of their shapes drawn irregular" if warp else "on regular shapes"
            )
        if base:
            changes.append("on top of a base model trained further")
        if changes:
            text += f"; from step {at:,} on, " + " and ".join(changes)
        warp_before = warp
    return text


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
