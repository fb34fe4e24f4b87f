"""The Gradio app: one tab per condition, a Compose tab and a "How ControlNet works" tab, all generated from
the condition table and all feeding the one `ControlNetService`.

Widget values become a `GenerateSpec` in the tabs; everything else (validation, preprocessing, generation, saving)
happens in the service, whose events the tabs stream and whose user-facing errors they show as `gr.Error`.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import gradio as gr
from gradio.components.native_plot import NativePlot
from gradio.utils import get_upload_folder
from starlette.middleware import Middleware

from ..conditions import CONDITIONS
from ..errors import message
from ..models.curves import quality_line
from ..paths import EXAMPLES_DIR, shown
from ..service import ControlNetService
from .compose_tab import compose_tab
from .condition_tab import condition_tab
from .detect import detect_endpoint
from .how_tab import how_tab
from .i18n import head, i18n, locale_of, t_marked, translate
from .live import live_endpoint
from .map_editor import MAP_KIND_CSS
from .panels import plot_titles
from .public import BodyLimit, cap_per_client
from .train_tab import train_tab
from .widgets import LIGHT, patient_startup_check, seal

CSS = (
    ".relocalize {display: none !important}"  # the button the page clicks on a language switch
    " .banner {border: 1px solid #d97706; border-radius: 8px; padding: 4px 12px; background: #fffbeb}" + MAP_KIND_CSS
)


def _fast_mode_note(mode: str | None) -> str:
    if mode is None:
        return ""
    same = (
        "PyTorch's own kernels replayed in CUDA graphs: the images are the exact engine's"
        if mode == "cudagraphs"
        else "images differ slightly from the exact engine's"
    )
    return f" **Fast mode** (set by the server): compiled with torch.compile, mode `{mode}`; {same}."


def banner(service: ControlNetService, locale: str = "en") -> str | None:
    """The preset's banner, with what its model's shipped evaluation measured."""
    text, scores = service.preset.banner, service.evaluation()
    if not text:
        return None
    text = translate(text, locale)
    return text + " " + translate(quality_line(scores), locale) if scores else text


def header(service: ControlNetService, locale: str = "en") -> str:
    preset = service.preset
    model = translate(
        message(
            "Model: **{title}** (`{base}`). {reason}.",
            title=preset.title,
            base=shown(preset.base),
            reason=service.resolved.reason,
        ),
        locale,
    )
    title = translate(
        "ControlNet: steer Stable Diffusion with edges, lines, pose, depth, normals, scribbles and pictures", locale
    )
    return f"# {title}\n{model}" + _fast_mode_note(service.compile_mode)


def groups() -> dict[str, list]:
    """The condition table's entries by the tab that holds them (`Condition.group`: kin side by side; "" a tab of
    its own), in the table's order of their first members."""
    held: dict[str, list] = {}
    for cond in CONDITIONS.values():
        held.setdefault(cond.group or cond.name, []).append(cond)
    return held


def build(service: ControlNetService, trainer=None) -> gr.Blocks:
    """The app's Blocks; `trainer` runs the "Train one yourself" tab's runs (None: training is off here)."""
    ttl = service.settings.cache_ttl_s  # gradio's copies of uploads and results go after ttl, checked every ttl/2
    # the results written where gradio serves them from: each file written once, never copied
    service.files.move_to(Path(get_upload_folder()) / f"controlnet_demo-{secrets.token_hex(8)}")
    with gr.Blocks(title="ControlNet demo", delete_cache=(max(1, ttl // 2), ttl)) as blocks:
        top = [gr.Markdown(header(service), elem_id="header")]
        if banner(service):
            top.append(gr.Markdown(banner(service), elem_classes="banner", elem_id="offline-banner"))
        with gr.Tabs():  # the tabs' names t_marked: the page's script renames them too on a language switch
            for group, conditions in groups().items():
                if len(conditions) == 1:  # a tab of its own
                    with gr.Tab(t_marked(conditions[0].label), id=conditions[0].name):
                        condition_tab(conditions[0], service)
                    continue
                with gr.Tab(t_marked(group), id=f"group-{conditions[0].name}"), gr.Tabs():
                    for cond in conditions:
                        with gr.Tab(t_marked(cond.label), id=cond.name):
                            condition_tab(cond, service)
            with gr.Tab(t_marked("Compose"), id="compose"):
                compose_tab(service)
            with gr.Tab(t_marked("How ControlNet works"), id="how"):
                localized = how_tab(service)
            with gr.Tab(t_marked("Train one yourself"), id="train"):
                train_tab(trainer)
        live_endpoint(service)
        detect_endpoint(service)

        plots = [b for b in blocks.blocks.values() if isinstance(b, NativePlot)]  # their titles: panels.axes

        def in_the_pages_language(request: gr.Request):  # what the server writes, at each page load
            locale = locale_of(request)
            texts = [header(service, locale), *([banner(service, locale)] if len(top) > 1 else [])]
            return *texts, *(render(locale) for _, render in localized), *(plot_titles(p, locale) for p in plots)

        outputs = [*top, *(component for component, _ in localized), *plots]
        blocks.load(in_the_pages_language, None, outputs, api_visibility="private", **LIGHT)
        # and again when the page's language changes (gradio's Settings): the page's script clicks it (i18n.head)
        again = gr.Button("relocalize", elem_id="relocalize", elem_classes="relocalize")
        again.click(in_the_pages_language, None, outputs, api_visibility="private", **LIGHT)
    seal(blocks)  # every event through the door, queued
    return blocks


def launch(service: ControlNetService, blocks: gr.Blocks | None = None, trainer=None, **overrides):
    """Queue (bounded, one GPU job at a time) and serve; `overrides` go to `Blocks.launch` (tests use them)."""
    s = service.settings
    blocks = blocks or build(service, trainer)
    patient_startup_check()  # a busy machine's first answer may take longer than gradio's one try
    # api_open=False: gradio's direct POST routes (off a Space they are open) would run any event, a private one too,
    # around the queue, its limits and the per-client cap
    blocks.queue(max_size=s.queue_size, default_concurrency_limit=1, api_open=False)
    cap_per_client(blocks, s.jobs_per_client, s.behind_proxy)
    kwargs = dict(
        server_name=s.server_name,
        server_port=s.server_port,
        max_file_size=s.max_file_size,
        show_error=not s.public,
        enable_monitoring=False,
        css=CSS,
        head=head(),  # after the build: the marked texts are known then
        i18n=i18n(),  # every text the built UI registered, in each language
        allowed_paths=[str(EXAMPLES_DIR)],
        mcp_server=s.mcp,  # the named endpoints as MCP tools, at /gradio_api/mcp/ (docs/using-the-app.md)
        app_kwargs={"middleware": [Middleware(BodyLimit, max_bytes=s.max_request_mb * 2**20)]},
        state_session_capacity=s.sessions,
    )
    kwargs.update(overrides)
    return blocks.launch(**kwargs)
