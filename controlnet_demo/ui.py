"""The Gradio app: one tab per condition, a Compose tab and a "How ControlNet works" tab, all generated from
the condition table and all feeding the one shared `Demo` service.

Widget values become a `GenerateSpec` here; everything else (validation, preprocessing, generation, saving)
happens in the service, whose user-facing errors are shown as `gr.Error`.
"""

from __future__ import annotations

import inspect
import logging
import queue
import threading
import types
from pathlib import Path

import gradio as gr
from diffusers.image_processor import VaeImageProcessor

from .conditions import CONDITIONS, Condition
from .engine import CONTROL_MODES, SCHEDULERS
from .errors import GenerationCancelled
from .explain import HOW_IT_WORKS
from .presets import shown
from .service import DEFAULT_NEGATIVE, MAX_SEED, Demo, GenerateSpec, UnitSpec, user_message

log = logging.getLogger(__name__)

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "assets" / "examples"
GPU = "gpu"  # one concurrency id for every event that runs the models: one job on the device at a time
MAX_UNITS = 3
MODE_CHOICES = [(m.label, key) for key, m in CONTROL_MODES.items()]
CSS = ".banner {border: 1px solid #d97706; border-radius: 8px; padding: 4px 12px; background: #fffbeb}"


def _with_fallback(component, fallback):
    """Where gradio's own preprocessing refuses an API value, answer `fallback(component, payload)` instead.

    gradio's refusals name no widget ("Value 0 is less than minimum value 1."), or are an internal report
    ("Could not preprocess input component at index 12 ...", with server paths) that public mode hides. Bound
    to the instance: a subclass would make gradio write a ui.pyi stub beside this module.
    """

    def preprocess(self, payload):
        try:
            return type(self).preprocess(self, payload)
        except Exception:
            return fallback(self, payload)

    component.preprocess = types.MethodType(preprocess, component)
    return component


def _refuse_number(slider: gr.Slider, payload):
    lo, hi = (f"{x:g}" if x != int(x) else str(int(x)) for x in (slider.minimum, slider.maximum))
    raise gr.Error(f"{slider.label} must be a number between {lo} and {hi}; got {payload!r}.", print_exception=False)


def _file_as_is(image: gr.Image, payload):
    return payload.path  # a file gradio cannot open: the service's load_rgb says why, in words


def _drawing_as_is(editor: gr.ImageEditor, payload):
    picture = payload.composite or payload.background
    return {"background": None, "layers": [], "composite": picture.path if picture else None}


def _slider(*args, **kwargs) -> gr.Slider:
    return _with_fallback(gr.Slider(*args, **kwargs), _refuse_number)


def _image_input(*args, **kwargs) -> gr.Image:
    """An image input whose upload reaches the service as it is (type="filepath", image_mode=None): only
    `load_rgb` decodes it, so a 16-bit depth map keeps its range and transparency is composited its way."""
    return _with_fallback(gr.Image(*args, type="filepath", image_mode=None, **kwargs), _file_as_is)


def _on_gpu(fn):
    """On Hugging Face ZeroGPU the GPU function must be wrapped; everywhere else this changes nothing."""
    try:
        import spaces  # type: ignore
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)


def _client(request: gr.Request | None) -> str:
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def stream_generation(demo: Demo, spec: GenerateSpec, progress, client: str = "unknown"):
    """Run one request in a worker thread and yield as it goes: the control maps first, then the result.

    Yielding at every denoising step lets gradio close this generator when the user presses Stop or
    disconnects; closing sets the stop flag and the engine stops at its next step.
    """
    try:
        demo.limiter.check(client)
    except Exception as exc:
        raise gr.Error(user_message(exc), print_exception=False) from None
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def work():
        try:
            request, maps, params = demo.prepare(spec)
            events.put(("maps", (maps, params["seed"])))
            output = demo.run(request, maps, params, on_step=lambda i, n: events.put(("step", (i, n))),
                              should_stop=stop.is_set, on_preview=lambda i, n, images: events.put(("preview", (i, n, images))))
            events.put(("done", output))
        except BaseException as exc:  # handed to the request's own thread; never kills the server
            events.put(("error", exc))

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    seed = gr.skip()
    try:
        while True:
            kind, value = events.get()
            # the seed goes out as a value, not gr.skip(): an update would make gradio rebuild the session's
            # seed slider (an input too) from its constructor arguments, without its `_with_fallback`
            if kind == "maps":
                value, seed = value
                yield gr.skip(), value, gr.skip(), seed, gr.skip()
            elif kind == "step":
                progress(value, desc="Denoising")
                yield gr.skip(), gr.skip(), gr.skip(), seed, gr.skip()
            elif kind == "preview":  # the model's current estimate of the result, in place of the last result
                i, n, images = value
                previews = [(im, f"preview: step {i} of {n}") for im in VaeImageProcessor.numpy_to_pil(images)]
                yield previews, gr.skip(), gr.skip(), seed, gr.skip()
            elif kind == "done":
                yield (value.files, value.maps, value.params, value.params["seed"],
                       connection_bars(value.result.residual_norms))
                return
            else:
                if isinstance(value, GenerationCancelled):
                    return
                if not isinstance(value, (ValueError, RuntimeError)) or type(value).__module__ != "controlnet_demo.errors":
                    log.error("generation failed", exc_info=value)
                raise gr.Error(user_message(value), print_exception=False)
    finally:
        stop.set()


def _common_inputs(demo: Demo):
    """Prompt, guidance and the advanced options every tab shares; returns them in the API's order."""
    preset = demo.preset
    prompt = gr.Textbox(label="Prompt", lines=2, max_length=demo.settings.limits.max_prompt_chars)
    negative = gr.Textbox(label="Negative prompt", value=DEFAULT_NEGATIVE,
                          max_length=demo.settings.limits.max_prompt_chars)
    guidance = _slider(0.0, demo.settings.limits.max_guidance, value=preset.guidance, step=0.1,
                       label="Guidance scale (CFG)")
    with gr.Accordion("Advanced options", open=False):
        with gr.Row():
            steps = _slider(1, demo.settings.limits.max_steps, value=preset.steps, step=1, label="Steps")
            num_images = _slider(1, demo.settings.limits.max_images, value=1, step=1, label="Images")
        r_min, r_max, r_step, r_default = preset.resolution
        with gr.Row():
            resolution = _slider(r_min, r_max, value=r_default, step=r_step, label="Resolution (longer side)")
            scheduler = gr.Dropdown(list(SCHEDULERS), value=SCHEDULERS[0], label="Scheduler")
        with gr.Row():
            seed = _slider(0, MAX_SEED, value=0, step=1, label="Seed")
            randomize = gr.Checkbox(value=True, label="Random seed")
    return prompt, negative, guidance, steps, num_images, resolution, scheduler, seed, randomize


def _unit_controls(cond: Condition | None, demo: Demo):
    """Strength, window and mode for one condition."""
    strength = _slider(0.0, demo.settings.limits.max_strength, value=1.0, step=0.05, label="Control strength")
    with gr.Row():
        start = _slider(0.0, 1.0, value=0.0, step=0.05, label="Control start (fraction of steps)")
        end = _slider(0.0, 1.0, value=1.0, step=0.05, label="Control end")
    mode = gr.Radio(MODE_CHOICES, value="balanced", label="Control mode")
    return strength, start, end, mode


def _outputs():
    # Whole pictures: by default one image is stretched to a full-width square cell, taller than the gallery (so
    # only its top shows), and "cover" crops every non-square image to its square cell.
    shown = dict(format="png", interactive=False, fit_columns=False, object_fit="contain")
    gallery = gr.Gallery(label="Results", columns=2, height=420, **shown)
    maps = gr.Gallery(label="Control map(s) used", columns=3, height=240, **shown)
    params = gr.JSON(label="Parameters (also stored in each PNG)")
    residuals = gr.BarPlot(
        x="connection", y="mean |residual|", color="condition", label="What each ControlNet added",
        caption="Mean magnitude of the residual each ControlNet added to the U-Net's 12 skip connections and its "
                "middle block, averaged over the steps it ran (after strength, mode and mask).",
        height=220, sort=None,
    )
    return gallery, maps, params, residuals


def connection_bars(values: dict[str, list[float]], value_name: str = "mean |residual|"):
    """{series: 13 values} -> the long table a BarPlot reads (connections in the U-Net's order)."""
    import pandas as pd

    # numbered first: the plot orders its x axis alphabetically, and must keep the U-Net's order
    rows = [(f"{i:02d} skip" if i < len(vals) - 1 else f"{i:02d} middle", v, series)
            for series, vals in values.items() for i, v in enumerate(vals)]
    return pd.DataFrame(rows, columns=["connection", value_name, "condition"])


def _spec(prompt, negative, guidance, steps, num_images, resolution, scheduler, seed, randomize, units):
    return GenerateSpec(prompt=prompt, units=units, negative_prompt=negative, steps=steps, guidance_scale=guidance,
                        seed=-1 if randomize else seed, num_images=num_images, resolution=resolution,
                        scheduler=scheduler)


def condition_tab(cond: Condition, demo: Demo):
    upload = None
    with gr.Row():
        with gr.Column():
            gr.Markdown(cond.help)
            if cond.name == "scribble":
                # uploads go to their own input below, so a photo never ends up under the strokes
                image = _with_fallback(gr.Sketchpad(
                    label="Draw here: pick the brush on the left, then draw", type="filepath", format="png", canvas_size=(512, 512), image_mode="RGBA",
                    brush=gr.Brush(colors=["#000000", "#ffffff"], default_size=6, color_mode="fixed"),
                ), _drawing_as_is)
                upload = _image_input(label="…or upload a drawing or photo (used instead of the pad when present)",
                                      sources=("upload", "clipboard"), height=200)
            else:
                image = _image_input(label=f"{cond.label}: photo or control map",
                                     sources=("upload", "clipboard", "webcam"))
            preprocessor = gr.Dropdown([(p.label, p.name) for p in cond.preprocessors.values()],
                                       value=cond.default_preprocessor, label="Preprocessor")
            prep_resolution = _slider(64, 1024, value=demo.preset.detect_resolution, step=64,
                                      label="Preprocessor resolution")
            param_sliders = [_slider(p.minimum, p.maximum, value=p.default, step=p.step, label=p.label,
                                     visible=p.name in cond.preprocessors[cond.default_preprocessor].params)
                             for p in cond.params.values()]
            prompt, negative, guidance, steps, num_images, resolution, scheduler, seed, randomize = _common_inputs(demo)
            strength, start, end, mode = _unit_controls(cond, demo)
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column():
            gallery, maps, params, residuals = _outputs()
    examples = demo.preset.examples.get(cond.name, cond.examples)
    if examples:
        gr.Examples(
            [[str(EXAMPLES_DIR / f), p, pre] for f, p, pre in examples],
            inputs=[upload or image, prompt, preprocessor], label="Examples (click one, then Generate)",
        )
    if param_sliders:  # show only the settings the chosen preprocessor reads
        preprocessor.change(
            lambda name: [gr.update(visible=p in getattr(cond.preprocessors.get(name), "params", ()))
                          for p in cond.params],
            preprocessor, param_sliders, api_visibility="private", queue=False,
        )

    named = {"image": image, "prompt": prompt, "negative_prompt": negative, "preprocessor": preprocessor,
             "preprocess_resolution": prep_resolution, **dict(zip(cond.params, param_sliders)), "strength": strength,
             "start": start, "end": end, "mode": mode, "guidance_scale": guidance, "steps": steps,
             "num_images": num_images, "resolution": resolution, "scheduler": scheduler, "seed": seed,
             "randomize_seed": randomize, **({"upload": upload} if upload is not None else {})}
    names = list(named)

    @_on_gpu
    def generate(*values, progress=gr.Progress(), request: gr.Request | None = None):
        v = dict(zip(names, values))
        picture = v.get("upload") if v.get("upload") is not None else v["image"]
        unit = UnitSpec(cond.name, picture, v["preprocessor"], v["preprocess_resolution"],
                        {p: v[p] for p in cond.params}, v["strength"], v["start"], v["end"], v["mode"])
        spec = _spec(v["prompt"], v["negative_prompt"], v["guidance_scale"], v["steps"], v["num_images"],
                     v["resolution"], v["scheduler"], v["seed"], v["randomize_seed"], [unit])
        yield from stream_generation(demo, spec, progress, _client(request))

    generate.__name__ = cond.name
    _name_api_parameters(generate, names, required=len(names) - (upload is not None))
    event = gr.on([run.click, prompt.submit], generate, list(named.values()), [gallery, maps, params, seed, residuals],
                  api_name=cond.name, concurrency_id=GPU, concurrency_limit=1)
    stop.click(None, cancels=[event], api_visibility="private")


def compose_tab(demo: Demo):
    gr.Markdown("Several conditions at once: each ControlNet reads its own image and their residuals are **added** "
                "(the paper's rule). A mask limits a condition to the white part of the mask image.")
    unit_inputs = []
    with gr.Row():
        with gr.Column():
            for k in range(MAX_UNITS):
                with gr.Accordion(f"Condition {k + 1}", open=k < 2):
                    enabled = gr.Checkbox(value=k < 2, label="Use this condition")
                    condition = gr.Dropdown([(c.label, c.name) for c in CONDITIONS.values()],
                                            value=list(CONDITIONS)[k % len(CONDITIONS)], label="Condition")
                    first = CONDITIONS[condition.value]
                    image = _image_input(label="Photo or control map", sources=("upload", "clipboard"))
                    # any condition's preprocessor may arrive (an API call never sends the condition's change
                    # event that sets this list): the service checks it against the condition
                    preprocessor = gr.Dropdown([(p.label, p.name) for p in first.preprocessors.values()],
                                               value=first.default_preprocessor, label="Preprocessor",
                                               allow_custom_value=True)
                    prep_resolution = _slider(64, 1024, value=demo.preset.detect_resolution, step=64,
                                      label="Preprocessor resolution")
                    strength, start, end, mode = _unit_controls(None, demo)
                    mask = _image_input(label="Region mask (optional: white = apply)", sources=("upload", "clipboard"),
                                        height=160)
                    condition.change(_preprocessor_choices, [condition, preprocessor], preprocessor,
                                     api_visibility="private",
                                     queue=False)
                    unit_inputs += [enabled, condition, image, preprocessor, prep_resolution, strength, start, end,
                                    mode, mask]
            prompt, negative, guidance, steps, num_images, resolution, scheduler, seed, randomize = _common_inputs(demo)
            with gr.Row():
                run = gr.Button("Generate", variant="primary")
                stop = gr.Button("Stop", variant="stop")
        with gr.Column():
            gallery, maps, params, residuals = _outputs()
    per_unit = len(unit_inputs) // MAX_UNITS
    first, second = unit_inputs[:per_unit], unit_inputs[per_unit:2 * per_unit]  # (enabled, condition, image, pre..)
    example = gr.Button("Load an example: a pose and a scribble, composed", size="sm")
    # a button, not gr.Examples: dataset samples whose inputs sit in accordions did not render in gradio 6.31
    example.click(
        lambda: (True, "pose", str(EXAMPLES_DIR / "pose_waving.png"), "none", True, "scribble",
                 str(EXAMPLES_DIR / "scribble_house.png"), "sketch", "a person waving in front of a cottage, watercolor"),
        None, [first[0], first[1], first[2], first[3], second[0], second[1], second[2], second[3], prompt],
        api_visibility="private", queue=False,
    )

    @_on_gpu
    def compose(*values, progress=gr.Progress(), request: gr.Request | None = None):
        units = []
        for k in range(MAX_UNITS):
            (enabled, condition, image, preprocessor, prep_resolution, strength, start, end, mode,
             mask) = values[k * per_unit: (k + 1) * per_unit]
            if enabled:
                units.append(UnitSpec(condition, image, preprocessor, prep_resolution, {}, strength, start, end, mode,
                                      mask))
        spec = _spec(*values[MAX_UNITS * per_unit:], units)
        yield from stream_generation(demo, spec, progress, _client(request))

    unit_names = ["enabled", "condition", "image", "preprocessor", "preprocess_resolution", "strength", "start", "end",
                  "mode", "mask"]
    _name_api_parameters(compose, [f"{n}_{k + 1}" for k in range(MAX_UNITS) for n in unit_names] + [
        "prompt", "negative_prompt", "guidance_scale", "steps", "num_images", "resolution", "scheduler", "seed",
        "randomize_seed"], required=0)
    inputs = [*unit_inputs, prompt, negative, guidance, steps, num_images, resolution, scheduler, seed, randomize]
    event = gr.on([run.click, prompt.submit], compose, inputs, [gallery, maps, params, seed, residuals], api_name="compose",
                  concurrency_id=GPU, concurrency_limit=1)
    stop.click(None, cancels=[event], api_visibility="private")


def _name_api_parameters(fn, names: list[str], required: int | None = None) -> None:
    """Give a *args handler named parameters, so the API page and gradio_client show real names.

    An input whose widget starts empty (an image, the prompt) is required by gradio_client unless its parameter
    has a default: the parameters after the first `required` ones (all when None) get the default None.
    """
    P = inspect.Parameter
    required = len(names) if required is None else required
    params = [P(n, P.POSITIONAL_OR_KEYWORD, **({} if k < required else {"default": None})) for k, n in enumerate(names)]
    params.append(P("progress", P.KEYWORD_ONLY, default=gr.Progress()))
    params.append(P("request", P.KEYWORD_ONLY, default=None, annotation=gr.Request))  # gradio fills it in
    fn.__signature__ = inspect.Signature(params)


def _preprocessor_choices(condition: str, current: str):
    """The new condition's preprocessors; the current choice stays when it fits ('none' fits all, and an
    example that sets condition and preprocessor together must not be overruled)."""
    cond = CONDITIONS.get(condition)
    if cond is None:
        return gr.skip()
    return gr.Dropdown(choices=[(p.label, p.name) for p in cond.preprocessors.values()],
                       value=current if current in cond.preprocessors else cond.default_preprocessor)


def how_tab(demo: Demo):
    gr.Markdown(HOW_IT_WORKS, latex_delimiters=[{"left": "$$", "right": "$$", "display": True},
                                                 {"left": "$", "right": "$", "display": False}])
    gr.Markdown("### Look inside the loaded ControlNets\nThe weight norm of each of the 13 zero convolutions: all "
                "exactly 0 in a freshly made ControlNet, grown during training. (Each generation tab also shows "
                "how large the residuals were that its ControlNet added to your image.)")
    with gr.Row():
        chosen = gr.CheckboxGroup([(c.label, c.name) for c in CONDITIONS.values()], value=["canny"],
                                  label="ControlNets (loaded on first use)")
        inspect_button = gr.Button("Show zero-convolution norms")
    norms = gr.BarPlot(x="connection", y="weight norm", color="condition", label="Zero-convolution weight norms",
                       height=260, sort=None)

    def show(conditions):
        try:
            return connection_bars({c: demo.zero_conv_norms(c) for c in conditions or []}, "weight norm")
        except Exception as exc:
            raise gr.Error(user_message(exc), print_exception=False) from None

    inspect_button.click(show, chosen, norms, api_visibility="private", concurrency_id=GPU)

    curves = demo.training_curves()
    if curves:
        gr.Markdown(
            "### Sudden convergence, measured while training these ControlNets\n"
            "Every few hundred steps training paused to generate held-out scenes with the ControlNet as it was: "
            "**matched** is how well the pictures follow their own condition, **shuffled** the same pictures "
            "scored against another scene's condition (what chance gives). Where the two lines part, the "
            "model has started to obey the condition.\n\n" + "\n".join(
                f"- **{c}**: {curve['steps']:,} steps; the largest jump of the matched score between step "
                f"{curve['largest_jump'][0]:,} and {curve['largest_jump'][1]:,} (+{curve['largest_jump'][2]:.2f}); "
                + (f"passes the evaluation's rule (matched ≥ 3× shuffled) from step {curve['converged_at']:,} on"
                   if curve.get("converged_at") is not None else "not yet steadily above 3× shuffled")
                + _stages_text(curve.get("stages", []))
                for c, curve in curves.items() if curve.get("largest_jump")))
        frame = convergence_frame(curves)
        palette = [PALETTE[k % len(PALETTE)] for k in range(len(curves))]
        colours = {f"{c} {kind}": hex_ for c, (_, dark, light) in zip(curves, palette)
                   for kind, hex_ in (("matched", dark), ("shuffled", light))}
        gr.Markdown("Colours: " + ", ".join(f"**{c}** {name}" for c, (name, _, _) in zip(curves, palette))
                    + " (dark: matched, light: shuffled).")
        gr.LinePlot(frame, x="step", y="score", color="series", color_map=colours, colors_in_legend=list(colours),
                    elem_id="convergence", label="Controllability during training", height=380)


def _stages_text(stages: list) -> str:
    """Where a ControlNet's training went on from an earlier run (`--init`) with other data or another base."""
    text, warp_before = "", 0.0
    for at, warp, base in stages:
        changes = []
        if warp != warp_before:
            changes.append(f"{warp:.0%} of its shapes drawn irregular (`--world-warp`)" if warp else "regular shapes")
        if base:
            changes.append(f"on a further-trained base (`{base}`)")
        if changes:
            text += f"; from step {at:,} on, " + " and ".join(changes)
        warp_before = warp
    return text


# per condition of the convergence plot: (name, matched line, shuffled line)
PALETTE = [("blue", "#1f77b4", "#aec7e8"), ("red", "#d62728", "#ff9896"), ("green", "#2ca02c", "#98df8a"),
           ("purple", "#9467bd", "#c5b0d5")]


def convergence_frame(curves: dict[str, dict]):
    """The probes of every condition's training curve as one long table for gr.LinePlot."""
    import pandas as pd

    rows = [dict(step=step, score=score, series=f"{condition} {kind}")
            for condition, curve in curves.items()
            for step, matched, shuffled in curve["controllability"]
            for kind, score in (("matched", matched), ("shuffled", shuffled))]
    return pd.DataFrame(rows)


def _fast_mode_note(engine) -> str:
    if not engine.compiled:
        return ""
    mode = engine.compile_mode
    same = ("PyTorch's own kernels replayed in CUDA graphs: the images are the exact engine's"
            if mode == "cudagraphs" else "images differ slightly from the exact engine's")
    return f" **Fast mode** (set by the server): compiled with torch.compile, mode `{mode}`; {same}."


def build(demo: Demo) -> gr.Blocks:
    preset = demo.preset
    ttl = demo.settings.cache_ttl_s  # gradio's copies of uploads and results go after ttl, checked every ttl/2
    with gr.Blocks(title="ControlNet demo", delete_cache=(max(1, ttl // 2), ttl)) as blocks:
        gr.Markdown(f"# ControlNet: steer Stable Diffusion with edges, pose, depth and scribbles\n"
                    f"Model: **{preset.title}** (`{shown(preset.base)}`). {demo.resolved.reason}."
                    + _fast_mode_note(demo.engine))
        if preset.banner:
            gr.Markdown(preset.banner, elem_classes="banner", elem_id="offline-banner")
        with gr.Tabs():
            for cond in CONDITIONS.values():
                with gr.Tab(cond.label, id=cond.name):
                    condition_tab(cond, demo)
            with gr.Tab("Compose", id="compose"):
                compose_tab(demo)
            with gr.Tab("How ControlNet works", id="how"):
                how_tab(demo)
    return blocks


def launch(demo: Demo, blocks: gr.Blocks | None = None, **overrides):
    """Queue (bounded, one GPU job at a time) and serve; `overrides` go to `Blocks.launch` (tests use them)."""
    s = demo.settings
    blocks = blocks or build(demo)
    blocks.queue(max_size=s.queue_size, default_concurrency_limit=1)
    kwargs = dict(server_name=s.server_name, server_port=s.server_port, max_file_size=s.max_file_size,
                  show_error=not s.public, enable_monitoring=False, css=CSS, allowed_paths=[str(EXAMPLES_DIR)])
    kwargs.update(overrides)
    return blocks.launch(**kwargs)
