"""Errors a user caused or can fix, and the one numeric check every loose input goes through.

Every error meant for the user derives from `DemoError`: the UI shows its message as is, the CLI prints it on one
line, and neither logs a traceback for it.
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Message:
    """A text for the user, kept as its English template (the catalogs' key: its id) and its values until it is
    shown: the UI translates the template by looking it up and puts the values back, each a `Message` of its own, a
    text looked up whole, or a value as it is (a client's value, shortened with `quoted`). Nothing is ever matched
    against the templates, so no crafted value can make showing a message slow."""

    template: str
    values: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return self.template.format(**self.values) if self.values else self.template


def message(template: str, /, **values) -> Message:
    return Message(template, values)


def quoted(value) -> str:
    """A value a client sent, as a message shows it: its repr, shortened by reprlib (at most about 40 characters),
    so no client text reaches a message whole."""
    return reprlib.repr(value)


class DemoError(Exception):
    """An error whose message says what happened and what to do; never a bug. Raised with the message's English
    template and its values (`UserInputError("Steps must be ... got {value}.", value=...)`); `str()` is the English,
    `.message` the `Message` the UI translates."""

    def __init__(self, template: str = "", /, **values):
        self.message = Message(str(template), values)
        super().__init__(str(self.message))

    def __reduce__(self):  # pickled (a Ray replica's error) with its template and values, not the English alone
        return _rebuilt, (type(self), self.message)


def _rebuilt(kind: type, message: Message) -> DemoError:
    return kind(message.template, **message.values)


class UserInputError(DemoError, ValueError):
    """The request or an uploaded file is not usable; the message says what to do instead."""


class EmptyDrawingError(UserInputError):
    """A drawing with no strokes: nothing to follow yet (the live canvas waits for the first stroke quietly)."""


class ModelUnavailableError(DemoError, RuntimeError):
    """Weights a feature needs are neither cached nor downloadable; the message names them and the way out."""


class ModelMismatchError(ModelUnavailableError):
    """Two models that must work together do not fit (a ControlNet made for another base); the message names both."""


class GenerationCancelled(DemoError, RuntimeError):
    """The user pressed Stop or went away; the denoising loop stopped early."""


class GenerationTimeout(DemoError, RuntimeError):
    """A request ran past the server's deadline."""


class WorkerLost(DemoError, RuntimeError):
    """The remote replica running a request died, and so did the retry (Ray Serve)."""


def check_number(value, name, lo: float, hi: float, integer: bool = False) -> float | int:
    """Coerce a loose value (API input may be a string, None or NaN) to a number in [lo, hi], or explain. `name`: the
    value's name as the message shows it (a text, or a `Message` such as "Condition 2: start")."""
    bounds = dict(name=name, lo=f"{lo:g}", hi=f"{hi:g}", value=quoted(value))  # what a client sent, shortened
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserInputError("{name} must be a number between {lo} and {hi}; got {value}.", **bounds) from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise UserInputError("{name} must be between {lo} and {hi}; got {value}.", **bounds)
    if integer:
        if x != int(x):
            raise UserInputError("{name} must be a whole number; got {value}.", name=name, value=quoted(value))
        return int(x)
    return x
