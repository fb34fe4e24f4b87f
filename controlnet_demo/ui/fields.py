"""Each endpoint's inputs, declared once. A `Field` is one API parameter: its name, what it means and how its widget
is made. An endpoint's `Form` (its fields, the required ones first) makes the widgets where the layout places them,
and from the same list come the handler's signature (`widgets.handler`: one named parameter per field, the optional
ones defaulting to None), its docstring in gradio's format (`Args:` lines), which gradio shows on the "Use via API"
page and as the MCP tools' descriptions an agent reads, and the values by name that the handler reads.

A field whose widget belongs to a larger editor (the pose editor's JSON, the map editor's picture, the residual
panel's switch) has no widget of its own here: the editor makes it and the form is given it (`Form.add(name,
component)`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import gradio as gr

from ..conditions import CONDITIONS, Param
from ..engine import CONTROL_MODES, SCHEDULERS
from ..models.presets import FULL
from ..service import DEFAULT_NEGATIVE, MAX_SEED, GenerateSpec
from .i18n import t
from .widgets import handler, image_input, slider

MODE_CHOICES = [(t(m.label), key) for key, m in CONTROL_MODES.items()]


@dataclass(frozen=True)
class Field:
    """One input of an endpoint: `widget(service, **kw)` makes its widget (kw: the layout's own arguments, a label,
    its visibility), or None where an editor makes it."""

    name: str
    doc: str
    widget: Callable[..., gr.components.Component] | None = None

    def numbered(self, k: int) -> Field:
        """Condition `k`'s copy of a unit's field in Compose: `image_2` is condition 2's image."""
        return dataclasses.replace(
            self, name=f"{self.name}_{k}", doc=f"Condition {k}: {self.doc[0].lower()}{self.doc[1:]}"
        )


@dataclass(frozen=True)
class _Of:
    """A widget's argument that depends on the service (a limit, the preset's default): `of(service)`."""

    of: Callable


def _made(make, **defaults):
    """A widget maker: `make(**defaults, **kw)`, each default given as `_Of` read from the service."""

    def widget(service, **kw):
        return make(**{k: v.of(service) if isinstance(v, _Of) else v for k, v in defaults.items()} | kw)

    return widget


def _limit(name: str) -> _Of:
    return _Of(lambda service: getattr(service.settings.limits, name))


def _preset(read) -> _Of:
    return _Of(lambda service: read(service.preset))


def speed_choice(service, **kw) -> gr.Radio:
    preset = service.preset
    choices = [(t(f"Full quality ({preset.steps} steps, the paper's path)"), FULL)]
    choices += [(t(f"Fast: {few.label}"), name) for name, few in preset.few_step.items()]
    return gr.Radio(choices, **dict(value=FULL, label=t("Speed"), visible=len(choices) > 1) | kw)


def param_field(p: Param) -> Field:
    """A preprocessor's own setting (the condition table's Param): its slider, with the bounds the server enforces."""
    make = _made(slider, minimum=p.minimum, maximum=p.maximum, value=p.default, step=p.step, label=t(p.label))
    return Field(p.name, p.help or f"The preprocessor's {p.label[0].lower()}{p.label[1:]} setting.", make)


# what every generation shares, in the API's order
PROMPT = Field(
    "prompt",
    "What the picture shows, in words.",
    _made(gr.Textbox, label=t("Prompt"), lines=2, max_length=_limit("max_prompt_chars")),
)
NEGATIVE = Field(
    "negative_prompt",
    "What it should not show.",
    _made(gr.Textbox, label=t("Negative prompt"), value=DEFAULT_NEGATIVE, max_length=_limit("max_prompt_chars")),
)
GUIDANCE = Field(
    "guidance_scale",
    "Classifier-free guidance: how closely the picture follows the prompt.",
    _made(
        slider,
        minimum=0.0,
        maximum=_limit("max_guidance"),
        value=_preset(lambda p: p.guidance),
        step=0.1,
        label=t("Guidance scale (CFG)"),
    ),
)
STEPS = Field(
    "steps",
    "Denoising steps.",
    _made(slider, minimum=1, maximum=_limit("max_steps"), value=_preset(lambda p: p.steps), step=1, label=t("Steps")),
)
NUM_IMAGES = Field(
    "num_images",
    "How many images, each with the next seed.",
    _made(slider, minimum=1, maximum=_limit("max_images"), value=1, step=1, label=t("Images")),
)
RESOLUTION = Field(
    "resolution",
    "The output's longer side in pixels; the picture's aspect is kept.",
    _made(
        slider,
        minimum=_preset(lambda p: p.resolution[0]),
        maximum=_preset(lambda p: p.resolution[1]),
        step=_preset(lambda p: p.resolution[2]),
        value=_preset(lambda p: p.resolution[3]),
        label=t("Resolution (longer side)"),
    ),
)
SCHEDULER = Field(
    "scheduler",
    "The sampler of the full-quality path.",
    _made(gr.Dropdown, choices=list(SCHEDULERS), value=SCHEDULERS[0], label=t("Scheduler")),
)
SEED = Field(
    "seed",
    "The random seed: the same seed and settings give the same image.",
    _made(slider, minimum=0, maximum=MAX_SEED, value=0, step=1, label=t("Seed")),
)
RANDOMIZE = Field(
    "randomize_seed",
    "Draw a new seed instead of the given one.",
    _made(gr.Checkbox, value=True, label=t("Random seed")),
)
SPEED = Field(
    "speed",
    "full (the paper's 20-step path) or a few-step speed of the model (its own sampler, steps and guidance; give "
    "steps and guidance_scale too).",
    speed_choice,
)
COMMON = (PROMPT, NEGATIVE, GUIDANCE, STEPS, NUM_IMAGES, RESOLUTION, SCHEDULER, SEED, RANDOMIZE, SPEED)

# one condition's (a unit's)
IMAGE = Field(
    "image",
    "The photo or control map, as a file (an MCP client sends a data: URI of a PNG or JPEG).",
    _made(image_input, label=t("Photo or control map"), sources=("upload", "clipboard")),
)
SKETCH_IMAGE = dataclasses.replace(  # a drawn condition's tab: its image is the API's sketchpad
    IMAGE,
    doc="A drawing or picture as a sketchpad value (background, layers, composite), or a file; used where no upload "
    "and no pad are given.",
)
DRAWING = Field(
    "drawing",
    "A drawing: a sketchpad value (background, layers, composite), used where image is left out.",
)
PAD = Field(
    "pad",
    "The drawing pad's picture: a PNG as a data: URL (data:image/png;base64,...), black lines on white; used where "
    "no image is uploaded.",
)
UPLOAD = Field(
    "upload",
    "A drawing or photo, used instead of the drawing pad (pad, or image as a sketchpad value).",
    _made(
        image_input,
        label=t("…or upload a drawing or photo (used instead of the pad when present)"),
        sources=("upload", "clipboard"),
        height=200,
    ),
)
POSE_JSON = Field(
    "pose_json",
    "A pose as OpenPose JSON ({people: [{pose_keypoints_2d: [x, y, confidence] x 18}], canvas_width, "
    "canvas_height}, in pixels or 0..1; confidence 0 hides a joint), used instead of image; drawn as the map itself, "
    "kept in the result PNGs.",
)
EDITED_MAP = Field(
    "edited_map",
    "A control map edited by hand, as a PNG data: URL (data:image/png;base64,...): read by the ControlNet as it "
    "is, instead of detecting one from image, when use_edited_map is true; the result PNGs keep it.",
)
USE_EDITED_MAP = Field("use_edited_map", "Use edited_map (true) or detect the map from the image (false, the default).")
ENABLED = Field("enabled", "Whether this condition is used.", _made(gr.Checkbox, label=t("Use this condition")))
CONDITION = Field(
    "condition",
    "Which ControlNet reads the picture: one of {conditions}.",
    lambda service, **kw: gr.Dropdown(
        **dict(choices=[(t(c.label), c.name) for c in CONDITIONS.values()], label=t("Condition")) | kw
    ),
)
PREPROCESSOR = Field(
    "preprocessor",
    "How the picture becomes the control map; 'none' uses it as the map itself.",
    lambda service, condition, **kw: gr.Dropdown(
        **dict(
            choices=[(t(p.label), p.name) for p in condition.preprocessors.values()],
            value=condition.default_preprocessor,
            label=t("Preprocessor"),
        )
        | kw
    ),
)
PREPROCESS_RESOLUTION = Field(
    "preprocess_resolution",
    "The resolution the preprocessor works at, in pixels.",
    _made(
        slider,
        minimum=64,
        maximum=1024,
        value=_preset(lambda p: p.detect_resolution),
        step=64,
        label=t("Preprocessor resolution"),
    ),
)
STRENGTH = Field(
    "strength",
    "How strongly the ControlNet steers the picture (0 = off, 1 = as trained).",
    _made(slider, minimum=0.0, maximum=_limit("max_strength"), value=1.0, step=0.05, label=t("Control strength")),
)
START = Field(
    "start",
    "When the ControlNet starts to steer, as a fraction of the denoising steps (0-1).",
    _made(slider, minimum=0.0, maximum=1.0, value=0.0, step=0.05, label=t("Control start (fraction of steps)")),
)
END = Field(
    "end",
    "When it stops, as a fraction of the denoising steps (0-1); after it the prompt alone finishes.",
    _made(slider, minimum=0.0, maximum=1.0, value=1.0, step=0.05, label=t("Control end")),
)
MODE = Field(
    "mode",
    "balanced, prompt (my prompt is more important), control (ControlNet is more important) or cfg_resolution "
    "(the paper's resolution weighting).",
    _made(gr.Radio, choices=MODE_CHOICES, value="balanced", label=t("Control mode")),
)
MASK = Field(
    "mask",
    "Optional region mask: the condition applies where it is white.",
    _made(image_input, label=t("Region mask (optional: white = apply)"), sources=("upload", "clipboard"), height=160),
)
RESIDUAL_MAPS = Field(
    "residual_maps",
    "Also record where each of the 13 connections' residuals go, per denoising step (shown under 'Where the "
    "residuals go'; off: nothing more is computed).",
)


class Form:
    """An endpoint's fields (`required`, then `optional`: those an API call may leave out) and, once the layout has
    made them, their widgets."""

    def __init__(self, service, required: Iterable[Field], optional: Iterable[Field] = ()):
        self.service = service
        required, optional = list(required), list(optional)
        self.fields = {f.name: f for f in required + optional}
        if len(self.fields) != len(required) + len(optional):
            raise ValueError("an endpoint declares a field twice")
        self.n_required = len(required)
        self.widgets: dict[str, gr.components.Component] = {}

    def add(self, name: str, component=None, **kw):
        """The widget of field `name`: `component` where an editor made it, else made by the field (with `kw`)."""
        if name in self.widgets:
            raise ValueError(f"{name}: its widget is made already")
        field = self.fields[name]  # a widget for no declared field fails the build here
        if component is None and field.widget is None:
            raise ValueError(f"{name}: its editor makes its widget; give it to the form")
        if component is not None and kw:
            raise ValueError(f"{name}: a widget given is made already; {', '.join(kw)} would be lost")
        self.widgets[name] = component if component is not None else field.widget(self.service, **kw)
        return self.widgets[name]

    def __getitem__(self, name: str):
        return self.widgets[name]

    @property
    def named(self) -> dict:
        """API name -> widget, in the API's order; every declared field must have its widget by now."""
        missing = [n for n in self.fields if n not in self.widgets]
        if missing:
            raise ValueError(f"fields without a widget: {', '.join(missing)}")
        return {n: self.widgets[n] for n in self.fields}

    @property
    def components(self) -> list:
        return list(self.named.values())

    def values(self, values) -> dict:
        """A handler's values (in the API's order) by name."""
        return dict(zip(self.fields, values))

    def docstring(self, summary: str, returns: str) -> str:
        """The handler's docstring in gradio's format: the summary, `Args:` one line per field, `Returns:`."""
        served = ", ".join(c for c in CONDITIONS if c in self.service.preset.controlnets)
        args = "\n".join(f"    {f.name}: {f.doc.replace('{conditions}', served)}" for f in self.fields.values())
        return f"{summary}\n\nArgs:\n{args}\n\nReturns:\n    {returns}"

    def handler(self, fn, summary: str, returns: str, **kw):
        """`fn(*values, progress=..., request=...)` as gradio must see it (`widgets.handler`), described."""
        fn.__doc__ = self.docstring(summary, returns)
        return handler(fn, self.named, required=self.n_required, **kw)


def spec_of(v: dict, units) -> GenerateSpec:
    """The common fields' values (by name) and the units as a GenerateSpec (a speed left out: the full path)."""
    return GenerateSpec(
        prompt=v["prompt"],
        units=units,
        negative_prompt=v["negative_prompt"],
        steps=v["steps"],
        guidance_scale=v["guidance_scale"],
        seed=-1 if v["randomize_seed"] else v["seed"],
        num_images=v["num_images"],
        resolution=v["resolution"],
        scheduler=v["scheduler"],
        speed=v.get("speed") or FULL,
        residual_maps=bool(v.get("residual_maps")),
    )


GENERATED = (
    "the images (PNGs that carry their parameters), the control maps used, the parameters as JSON, the seed, "
    "what each ControlNet connection added, and the control check (how well each result follows its map)"
)
