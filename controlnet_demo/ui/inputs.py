"""The one door for request values. Every input of every event is declared with its kind (`declare`, or by its
widget's type), and its value reaches a handler only through that kind's parser (`parse`): a string is never a path,
a file is a `Path` only when it lies in gradio's upload folder, and anything unreadable is refused in words.

An event's inputs are callable by anyone with any value (a private event too: it is hidden from the docs, not from
callers), so `widgets.handler` parses every value of every event here, and a widget of no known kind fails the build.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from gradio.utils import get_upload_folder

from ..conditions.openpose_json import MAX_JSON_CHARS
from ..errors import UserInputError, message, quoted
from ..images import not_a_picture

MAX_TEXT = 10_000  # a text input without a max_length of its own (a name, a choice)


@dataclass(frozen=True)
class Kind:
    """What an input holds, and how its value is read: `parse(value, component)` -> the value a handler gets."""

    name: str
    parse: Callable


def _file(value, component) -> Path | None:
    """An uploaded file: a Path inside gradio's upload folder. Anything else (a path elsewhere, a URL gradio did not
    fetch, text) gets the refusal a missing file gets, so no caller learns which server paths exist."""
    if value is None or value == "":
        return None
    what = "mask" if "mask" in str(getattr(component, "label", "")).lower() else "image"
    if not isinstance(value, (str, Path)) or len(str(value)) > 4096:
        raise not_a_picture(what)
    try:
        path = Path(value).resolve()  # `..` and symlinks resolved before the folder is checked
    except (ValueError, OSError):  # a NUL byte, a loop of links
        raise not_a_picture(what) from None
    if not path.is_relative_to(Path(get_upload_folder()).resolve()):
        raise not_a_picture(what)
    return path


def _sketch(value, component) -> Path | str | None:
    """A gr.Sketchpad's value: the picture it holds (its composite, else its background) as an uploaded file; a
    drawing sent as a data: URL is read as one too."""
    if isinstance(value, dict):
        picture = value.get("composite") if value.get("composite") is not None else value.get("background")
        return _file(picture, component)
    if isinstance(value, str) and value[:5].lower() == "data:":
        return _drawing(value, component)
    return _file(value, component)


def _drawing(value, component) -> str | None:
    """The drawing pad's value: "" (nothing drawn) or its PNG as a data:image/... URL, which the service decodes."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value[:11].lower() != "data:image/":  # its size: load_rgb's limit, in words
        raise UserInputError(
            "The drawing must be a picture sent as a data:image/png;base64,... URL (what the drawing pad sends); "
            "got {value}.",
            value=quoted(value),
        )
    return value


def _pose(value, component) -> str | None:
    """The pose editor's value: "" (not edited) or OpenPose JSON text, which the service parses."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or not value.lstrip().startswith("{") or len(value) > MAX_JSON_CHARS:
        raise UserInputError(
            'The pose must be OpenPose JSON text (an object with a "people" list); got {value}.', value=quoted(value)
        )
    return value


def _text(value, component) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        value = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    limit = getattr(component, "max_length", None) or MAX_TEXT
    if len(value) > limit:
        raise UserInputError(
            "The {name} is {n} characters; the limit is {limit}.",
            name=message(_label(component)),
            n=f"{len(value):,}",
            limit=f"{limit:,}",
        )
    return value


def _choice(value, component):
    """A choice: the service checks it against what it offers and names them; here only its size is bounded."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return _text(value, component) if isinstance(value, str) else value
    raise UserInputError(
        "{name} must be one of the choices: {choices}; got {value}.",
        name=message(_label(component)),
        choices=offered(component),
        value=quoted(value),
    )


def offered(component) -> str:
    """A choice widget's values, listed for a message ("" for a widget without choices)."""
    return ", ".join(str(c[1] if isinstance(c, tuple) else c) for c in getattr(component, "choices", None) or ())


def _choices(value, component) -> list:
    """Several choices (a checkbox group): at most as many as it offers."""
    if value is None:
        return []
    offered = len(getattr(component, "choices", None) or ()) or 1
    if not isinstance(value, list) or len(value) > offered:
        raise UserInputError(
            "{name} must be a list of the offered choices; got {value}.",
            name=message(_label(component)),
            value=quoted(value),
        )
    return [_choice(v, component) for v in value]


def _example(value, component):
    """A gr.Examples' table: the sample clicked (gradio's preprocessing reads it by its index), or nothing yet."""
    if value is None:
        raise UserInputError("Click an example in the table to load it.")
    return value


def _as_is(value, component):
    """A number: its widget's preprocessing has read it (`widgets.slider`); the service checks its range."""
    return value


def _flag(value, component) -> bool:
    return bool(value) if isinstance(value, (bool, int, float)) or value is None else bool(_text(value, component))


FILE = Kind("file", _file)
SKETCH = Kind("sketch", _sketch)
DRAWING = Kind("drawing", _drawing)
POSE = Kind("pose", _pose)
TEXT = Kind("text", _text)
CHOICE = Kind("choice", _choice)
CHOICES = Kind("choices", _choices)
NUMBER = Kind("number", _as_is)
FLAG = Kind("flag", _flag)

BY_TYPE = {  # the kind of a widget that holds only one kind of value
    gr.Textbox: TEXT,
    gr.Dropdown: CHOICE,
    gr.Radio: CHOICE,
    gr.CheckboxGroup: CHOICES,
    gr.Slider: NUMBER,
    gr.Number: NUMBER,
    gr.Checkbox: FLAG,
    gr.Dataset: Kind("example", _example),
}


def declare(component, kind: Kind):
    """`component`'s values are of `kind` (an image input, a drawing pad, a pose editor: widgets whose type does not
    say what they hold)."""
    component.input_kind = kind
    return component


def kind_of(component) -> Kind:
    kind = getattr(component, "input_kind", None) or BY_TYPE.get(type(component))
    if kind is None:  # a new input must say what it holds before anything can reach a handler through it
        raise TypeError(f"{type(component).__name__} {getattr(component, 'label', '')!r}: declare its input kind")
    return kind


def parse(component, value):
    return kind_of(component).parse(value, component)


def _label(component) -> str:
    from .i18n import english

    return english(getattr(component, "label", None) or "value")
