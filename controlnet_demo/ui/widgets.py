"""Gradio work-arounds, each pinned by a test: widgets that refuse bad API values in words, uploads that reach the
service undecoded, named API parameters for *args handlers, and the ZeroGPU wrapper."""

from __future__ import annotations

import inspect
import types

import gradio as gr

GPU = "gpu"  # one concurrency id for every event that runs the models: one job on the device at a time


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


def _refuse_number(slider: gr.Slider, payload):
    lo, hi = (f"{x:g}" if x != int(x) else str(int(x)) for x in (slider.minimum, slider.maximum))
    raise gr.Error(f"{slider.label} must be a number between {lo} and {hi}; got {payload!r}.", print_exception=False)


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


def on_gpu(fn):
    """On Hugging Face ZeroGPU the GPU function must be wrapped; everywhere else this changes nothing."""
    try:
        import spaces  # type: ignore
    except ImportError:
        return fn
    return spaces.GPU(duration=120)(fn)


def client_of(request: gr.Request | None) -> str:
    return getattr(getattr(request, "client", None), "host", None) or "unknown"


def name_api_parameters(fn, names: list[str], required: int | None = None) -> None:
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
