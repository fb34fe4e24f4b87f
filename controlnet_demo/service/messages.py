"""What a failed request tells its user: a DemoError's own message, or a sentence in place of an unexpected error
(whose traceback goes to the server log only)."""

from __future__ import annotations

import torch

from ..errors import DemoError, Message, message


def user_message(exc: BaseException) -> str:
    """What to tell the user about a failed request, in English (the traceback goes to the server log only)."""
    return str(user_message_of(exc))


def user_message_of(exc: BaseException):
    """`user_message` as a `Message` (errors.py), which the UI shows in the page's language."""
    if isinstance(exc, DemoError):
        return exc.message
    if isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower():
        return Message(
            "Out of memory for this request. Try a lower resolution, fewer images or fewer conditions; the "
            "server is fine and the next request will work."
        )
    return message(
        "Generation failed unexpectedly ({kind}). Nothing else is affected: try again, and if it keeps failing, "
        "report the parameters.",
        kind=type(exc).__name__,
    )
