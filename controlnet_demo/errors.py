"""Errors a user caused or can fix, and the one numeric check every loose input goes through.

Every error meant for the user derives from `DemoError`: the UI shows its message as is, the CLI prints it on one
line, and neither logs a traceback for it.
"""

from __future__ import annotations

import math
import reprlib


class DemoError(Exception):
    """An error whose message says what happened and what to do; never a bug."""


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


def check_number(value, name: str, lo: float, hi: float, integer: bool = False) -> float | int:
    """Coerce a loose value (API input may be a string, None or NaN) to a number in [lo, hi], or explain."""
    got = reprlib.repr(value)  # what a client sent, shortened
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number between {lo:g} and {hi:g}; got {got}.") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise UserInputError(f"{name} must be between {lo:g} and {hi:g}; got {got}.")
    if integer:
        if x != int(x):
            raise UserInputError(f"{name} must be a whole number; got {got}.")
        return int(x)
    return x
