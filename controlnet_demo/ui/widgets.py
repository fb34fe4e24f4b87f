"""Gradio work-arounds, each pinned by a test: widgets that refuse bad API values in words, uploads that reach the
service undecoded, named API parameters for *args handlers (with the request gradio fills in), and the
ZeroGPU wrapper."""

from __future__ import annotations

import contextvars
import inspect
import logging
import time
import types
import typing

import gradio as gr
from gradio.exceptions import InvalidPathError
from pydantic import ValidationError

from ..errors import DemoError, message, quoted
from ..images import not_a_picture
from ..service.gpu_time import DETECT_S, UNREADABLE_S, gpu_seconds
from .i18n import english, in_words, message_error, translated_error
from .inputs import FILE, SKETCH, declare, kind_of, offered, parse
from .public import LIGHT_ID, client_address

log = logging.getLogger(__name__)

GPU = "gpu"  # one concurrency id for every event that runs the models: one job per device at a time


def gpu_queue(service) -> dict:
    """An event's arguments that put it in the models' queue: as many at once as the service has engines (gradio
    limits a concurrency id to the lowest limit any of its events sets, so every such event must set it)."""
    return dict(concurrency_id=GPU, concurrency_limit=service.capacity)


_REQUEST: contextvars.ContextVar = contextvars.ContextVar("request", default=None)  # the event's, while gradio reads it

LIGHT = dict(concurrency_id=LIGHT_ID, concurrency_limit=4, show_progress="hidden")
"""An event's arguments for cheap work that runs no model (a dropdown's choices, the page's texts): queued, so the
queue's size and each client's cap apply to it too, four at once, apart from the models' queue."""


def with_fallback(component, fallback):
    """Where gradio's own preprocessing refuses an API value, answer `fallback(component, payload)` instead.

    gradio's refusals name no widget ("Value 0 is less than minimum value 1."), echo what a client sent whole, or
    are an internal report ("Could not preprocess input component at index 12 ...", with server paths) that public
    mode hides. Bound to the instance: a subclass would make gradio write a .pyi stub beside this module. A component
    given a fallback keeps its first one.
    """
    if getattr(component, "has_fallback", False):
        return component

    def preprocess(self, payload):
        try:
            return type(self).preprocess(self, payload)
        except Exception:
            return fallback(self, payload)

    component.preprocess = types.MethodType(preprocess, component)
    component.has_fallback = True
    return component


def unfetched(component):
    """gradio fetches an http(s) URL sent as a file input's path into its cache; here it is left unfetched, and
    the input's parser refuses it like any path outside the upload folder (`inputs.FILE`)."""
    fetch = component.async_move_resource_to_block_cache

    async def move(self, url_or_file_path):
        if isinstance(url_or_file_path, str) and url_or_file_path.lower().startswith(("http://", "https://")):
            return url_or_file_path
        return await fetch(url_or_file_path)

    component.async_move_resource_to_block_cache = types.MethodType(move, component)
    return component


class Refused:
    """A value a widget's preprocessing refused, with the words why: `handler` raises them, in the page's language
    (preprocessing happens before gradio hands over the request, so it cannot tell the page's language itself)."""

    def __init__(self, message):  # an errors.Message
        self.message = message

    def __repr__(self) -> str:
        return f"Refused({str(self.message)!r})"


def _refuse_number(slider: gr.Slider, payload) -> Refused:
    lo, hi = (f"{x:g}" if x != int(x) else str(int(x)) for x in (slider.minimum, slider.maximum))
    return Refused(
        message(
            "{name} must be a number between {lo} and {hi}; got {value}.",
            name=english(slider.label),
            lo=lo,
            hi=hi,
            value=quoted(payload),  # what a client sent: shortened
        )
    )


def _raise_refused(values, request) -> None:
    for value in values:
        if isinstance(value, Refused):
            raise translated_error(message_error(value.message), request)


def _file_as_is(image: gr.Image, payload):
    return payload.path  # a file gradio cannot open: its parser or the service's load_rgb says why, in words


def _drawing_as_is(editor: gr.ImageEditor, payload):
    picture = payload.composite or payload.background
    return {"background": None, "layers": [], "composite": picture.path if picture else None}


def _refuse_value(component, payload) -> Refused:
    """gradio's own refusal of a value (a choice not offered, a number that is not one), in words."""
    name, got = english(component.label), quoted(payload)
    listed = offered(component)
    if listed:
        return Refused(
            message("{name} must be one of the choices: {choices}; got {value}.", name=name, choices=listed, value=got)
        )
    return Refused(message("{name} could not be read; got {value}.", name=name, value=got))


def slider(*args, **kwargs) -> gr.Slider:
    return with_fallback(gr.Slider(*args, **kwargs), _refuse_number)


def image_input(*args, **kwargs) -> gr.Image:
    """An image input whose upload reaches the service as it is (type="filepath", image_mode=None): only
    `load_rgb` decodes it, so a 16-bit depth map keeps its range and transparency is composited its way."""
    image = gr.Image(*args, type="filepath", image_mode=None, **kwargs)
    return declare(unfetched(with_fallback(image, _file_as_is)), FILE)


def sketchpad(**kwargs) -> gr.Sketchpad:
    """A drawing pad saved as PNG (lossless: the map is read from it), whose unreadable API values reach the
    service as they are."""
    pad = gr.Sketchpad(type="filepath", format="png", **kwargs)
    return declare(unfetched(with_fallback(pad, _drawing_as_is)), SKETCH)


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


def client_of(request: gr.Request | None, settings) -> str:
    """The visitor a request comes from (`public.client_address`: behind a Space's proxy, the address it forwards)."""
    return client_address(request, settings.behind_proxy)


def handler(fn, inputs: dict, required: int | None = None, progress: bool = True, *, limited_by=None, jobs: int = 1):
    """A *args handler `fn(*values, progress=..., request=...)` as gradio must see it: one named parameter per
    input (`inputs`: API name -> component; the API page and gradio_client show the names), then `progress` and
    `request`, which gradio fills in. Every value reaches `fn` through its input's parser (`inputs.parse`, by the
    kind its component declares): the one door for request values.

    gradio injects the progress tracker and the gr.Request only into positional parameters, so a keyword-only
    `request` stays None (every user would look like one client). An input whose widget starts empty (an image,
    the prompt) is required by gradio_client unless its parameter has a default: the parameters after the first
    `required` ones (all when None) get the default None.

    `limited_by` (the service): each call counts `jobs` generations against the client's rate limit, here, in the
    server's own process: on ZeroGPU the function runs in a forked worker, whose counts would be lost.
    """
    names, components = list(inputs), _guarded(list(inputs.values()))
    P = inspect.Parameter
    n = len(names)
    required = n if required is None else required
    params = [P(x, P.POSITIONAL_OR_KEYWORD, **({} if k < required else {"default": None})) for k, x in enumerate(names)]
    if progress:
        params.append(P("progress", P.POSITIONAL_OR_KEYWORD, default=gr.Progress()))
    params.append(P("request", P.POSITIONAL_OR_KEYWORD, default=None))

    extras = ["progress", "request"] if progress else ["request"]

    def split(args):  # gradio passes every input, then what it fills in, by position; each value is parsed
        values, extra = args[:n], dict(zip(extras, args[n:]))

        def limit():
            if limited_by is not None:
                limited_by.limiter.check(client_of(extra["request"], limited_by.settings), cost=jobs)

        return _through_door(components, values, extra["request"], then=limit), extra

    # what the handler says to the user, and what the widgets refused (Refused), goes out in the page's language
    if inspect.isgeneratorfunction(fn):

        def wrapper(*args):
            values, extra = split(args)
            try:
                yield from fn(*values, **extra)
            except gr.Error as error:
                raise translated_error(error, extra["request"]) from None
    else:

        def wrapper(*args):
            values, extra = split(args)
            try:
                return fn(*values, **extra)
            except gr.Error as error:
                raise translated_error(error, extra["request"]) from None

    wrapper.__name__ = wrapper.__qualname__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    wrapper.__signature__ = inspect.Signature(params)
    wrapper.gpu_duration = getattr(fn, "gpu_duration", None)
    wrapper.jobs = jobs  # what one call is for the per-client cap (public.cap_per_client)
    wrapper.__annotations__ = {"request": gr.Request}  # what gradio reads to inject the request
    return wrapper


def patient(url_ok, wait_s: float = 60.0):
    """`url_ok(url)` asked again until it says yes, for up to `wait_s`."""

    def ok(url: str) -> bool:
        deadline = time.monotonic() + wait_s
        while not url_ok(url):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    ok.patient, ok.wrapped = True, url_ok
    return ok


def patient_startup_check() -> None:
    """gradio's launch asks its new server once whether it answers (`networking.url_ok`: a HEAD request with a 3 s
    timeout, and a timeout ends the check at once), then refuses to start ("When localhost is not accessible, a
    shareable link must be created"). On a busy machine the first answer can take longer: asked again until the
    server answers, for up to a minute (a server that never answers still fails then). Idempotent."""
    from gradio import networking

    if not getattr(networking.url_ok, "patient", False):
        networking.url_ok = patient(networking.url_ok)


def seal(blocks) -> None:
    """After the build: the API's description names every input and output in words (`i18n.in_words`); the functions
    of gradio's own events (a gr.Examples' loader) get the same door as `handler`'s
    (each input parsed by its kind, gradio's refusals in words), every event that runs a function is queued with a
    concurrency limit (`LIGHT` where it set none): a private event is callable by anyone all the same; and what gradio
    refuses before any widget sees it (a file value that is not one, a path outside its upload folder) is answered in
    words, the words a missing file gets."""
    process, preprocess = blocks.process_api, blocks.preprocess_data

    async def process_api(self, block_fn, inputs, state=None, request=None, *args, **kwargs):
        token = _REQUEST.set(request[0] if isinstance(request, list) else request)  # for preprocess_data's words
        try:
            return await process(block_fn, inputs, state, request, *args, **kwargs)
        finally:
            _REQUEST.reset(token)

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        try:
            return await preprocess(block_fn, inputs, state, explicit_call)
        except gr.Error:
            raise
        except (InvalidPathError, ValidationError):  # a file value that is not one, a path outside the upload folder
            text = not_a_picture("image").message
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            log.debug("gradio could not read an event's values: %r", exc)
            text = message("The request's values could not be read: send them as the API page describes.")
        raise translated_error(message_error(text), _REQUEST.get(None)) from None

    api_info = blocks.get_api_info

    def get_api_info(self, *args, **kwargs):
        return in_words(api_info(*args, **kwargs))

    blocks.process_api = types.MethodType(process_api, blocks)
    blocks.preprocess_data = types.MethodType(preprocess_data, blocks)
    blocks.get_api_info = types.MethodType(get_api_info, blocks)
    for fn in blocks.fns.values():
        if fn.fn is None:
            continue
        if not hasattr(fn.fn, "jobs"):  # not made by handler
            fn.fn = _sealed(fn.fn, list(fn.inputs))
        if not fn.queue:
            fn.queue, fn.concurrency_id, fn.concurrency_limit = (
                True,
                LIGHT["concurrency_id"],
                LIGHT["concurrency_limit"],
            )


def _guarded(components: list) -> list:
    """The inputs of an event: each of a known kind (else the build fails), gradio's own refusals in words."""
    for component in components:
        kind_of(component)
        with_fallback(component, _refuse_value)
    return components


def _through_door(components: list, values, request, then=None) -> list:
    """The values of `components` parsed by their kinds (and `then()` run), or the refusal raised in the page's
    language: what the widgets refused first, then what a parser refuses."""
    _raise_refused(values, request)
    try:
        parsed = [parse(c, v) for c, v in zip(components, values)]
        if then is not None:
            then()
        return parsed
    except DemoError as exc:
        from .panels import user_error  # (panels builds on these widgets)

        raise translated_error(user_error(exc, "input"), request) from None


def _sealed(fn, components: list):
    """gradio's own function `fn` (a plain one: a gr.Examples' loader) behind the door: its values parsed first."""
    components = _guarded(components)

    def wrapper(*values):
        parsed = _through_door(components, values[: len(components)], _REQUEST.get(None))
        return fn(*parsed, *values[len(components) :])

    wrapper.__name__ = wrapper.__qualname__ = getattr(fn, "__name__", "event")
    wrapper.__signature__ = inspect.signature(fn)
    try:  # what gradio reads to fill in a gr.Request parameter
        wrapper.__annotations__ = typing.get_type_hints(fn)
    except Exception:
        wrapper.__annotations__ = dict(getattr(fn, "__annotations__", {}))
    wrapper.jobs = 1
    return wrapper
