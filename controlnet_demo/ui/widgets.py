"""Gradio work-arounds, each pinned by a test: widgets that refuse bad API values in words, uploads that reach the
service undecoded, named API parameters for *args handlers (with the request gradio fills in), and the
ZeroGPU wrapper."""

from __future__ import annotations

import inspect
import reprlib
import types

import gradio as gr

from ..service.gpu_time import DETECT_S, UNREADABLE_S, gpu_seconds
from .i18n import english, translated_error

GPU = "gpu"  # one concurrency id for every event that runs the models: one job per device at a time


def gpu_queue(service) -> dict:
    """An event's arguments that put it in the models' queue: as many at once as the service has engines (gradio
    limits a concurrency id to the lowest limit any of its events sets, so every such event must set it)."""
    return dict(concurrency_id=GPU, concurrency_limit=service.capacity)


def with_fallback(component, fallback):
    """Where gradio's own preprocessing refuses an API value, answer `fallback(component, payload)` instead.

    gradio's refusals name no widget ("Value 0 is less than minimum value 1."), or are an internal report
    ("Could not preprocess input component at index 12 ...", with server paths) that public mode hides. Bound
    to the instance: a subclass would make gradio write a .pyi stub beside this module.
    """

    def preprocess(self, payload):
        try:
            return type(self).preprocess(self, payload)
        except Exception:
            return fallback(self, payload)

    component.preprocess = types.MethodType(preprocess, component)
    return component


class Refused:
    """A value a widget's preprocessing refused, with the words why: `handler` raises them, in the page's language
    (preprocessing happens before gradio hands over the request, so it cannot tell the page's language itself)."""

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"Refused({self.message!r})"


def _refuse_number(slider: gr.Slider, payload) -> Refused:
    lo, hi = (f"{x:g}" if x != int(x) else str(int(x)) for x in (slider.minimum, slider.maximum))
    got = reprlib.repr(payload)  # what a client sent: shortened
    return Refused(f"{english(slider.label)} must be a number between {lo} and {hi}; got {got}.")


def _raise_refused(values, request) -> None:
    for value in values:
        if isinstance(value, Refused):
            raise translated_error(gr.Error(value.message, print_exception=False), request)


def _file_as_is(image: gr.Image, payload):
    return payload.path  # a file gradio cannot open: the service's load_rgb says why, in words


def _drawing_as_is(editor: gr.ImageEditor, payload):
    picture = payload.composite or payload.background
    return {"background": None, "layers": [], "composite": picture.path if picture else None}


def slider(*args, **kwargs) -> gr.Slider:
    return with_fallback(gr.Slider(*args, **kwargs), _refuse_number)


def image_input(*args, **kwargs) -> gr.Image:
    """An image input whose upload reaches the service as it is (type="filepath", image_mode=None): only
    `load_rgb` decodes it, so a 16-bit depth map keeps its range and transparency is composited its way."""
    return with_fallback(gr.Image(*args, type="filepath", image_mode=None, **kwargs), _file_as_is)


def sketchpad(**kwargs) -> gr.Sketchpad:
    """A drawing pad saved as PNG (lossless: the map is read from it), whose unreadable API values reach the
    service as they are."""
    return with_fallback(gr.Sketchpad(type="filepath", format="png", **kwargs), _drawing_as_is)


def on_gpu(fn=None, *, duration=DETECT_S):
    """On Hugging Face ZeroGPU the GPU function must be wrapped, with the seconds it may hold the GPU: a number, or
    a function of fn's own arguments (a request's measured cost, `gpu_duration`); outside ZeroGPU `spaces.GPU`
    returns fn as it is, and without `spaces` nothing changes either."""
    if fn is None:
        return lambda f: on_gpu(f, duration=duration)
    fn.gpu_duration = duration  # what a Space's scheduler is told (kept by `handler`: tests read it)
    try:
        import spaces  # type: ignore
    except ImportError:
        return fn
    return spaces.GPU(duration=duration)(fn)


def gpu_duration(service, spec_of_values):
    """A `spaces.GPU` duration function for a generation handler: `spec_of_values(values)` -> its GenerateSpec
    (cheap: no picture is read), priced by service.gpu_time from the measured per-step times."""

    def duration(*values, **_) -> int:
        try:
            spec = spec_of_values(values)
        except Exception:  # values the handler itself will refuse, in words
            return UNREADABLE_S
        return gpu_seconds(spec, service.preset, service.settings.limits)

    return duration


def client_of(request: gr.Request | None) -> str:
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def handler(fn, names: list[str], required: int | None = None, progress: bool = True):
    """A *args handler `fn(*values, progress=..., request=...)` as gradio must see it: one named parameter per
    input (the API page and gradio_client show real names), then `progress` and `request`, which gradio fills in.

    gradio injects the progress tracker and the gr.Request only into positional parameters, so a keyword-only
    `request` stays None (every user would look like one client). An input whose widget starts empty (an image,
    the prompt) is required by gradio_client unless its parameter has a default: the parameters after the first
    `required` ones (all when None) get the default None.
    """
    P = inspect.Parameter
    n = len(names)
    required = n if required is None else required
    params = [P(x, P.POSITIONAL_OR_KEYWORD, **({} if k < required else {"default": None})) for k, x in enumerate(names)]
    if progress:
        params.append(P("progress", P.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    params.append(P("request", P.POSITIONAL_OR_KEYWORD, default=None))

    extras = ["progress", "request"] if progress else ["request"]

    def split(args):  # gradio passes every input, then what it fills in, by position
        return args[:n], dict(zip(extras, args[n:]))

    # what the handler says to the user, and what the widgets refused (Refused), goes out in the page's language
    if inspect.isgeneratorfunction(fn):

        def wrapper(*args):
            values, extra = split(args)
            _raise_refused(values, extra["request"])
            try:
                yield from fn(*values, **extra)
            except gr.Error as error:
                raise translated_error(error, extra["request"]) from None
    else:

        def wrapper(*args):
            values, extra = split(args)
            _raise_refused(values, extra["request"])
            try:
                return fn(*values, **extra)
            except gr.Error as error:
                raise translated_error(error, extra["request"]) from None

    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__signature__ = inspect.Signature(params)
    wrapper.gpu_duration = getattr(fn, "gpu_duration", None)
    wrapper.__annotations__ = {"request": gr.Request}  # what gradio reads to inject the request
    return wrapper
