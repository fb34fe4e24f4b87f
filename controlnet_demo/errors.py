"""Errors a user caused or can fix; the UI shows their message as is, without a traceback."""


class UserInputError(ValueError):
    """The request or an uploaded file is not usable; the message says what to do instead."""


class ModelUnavailableError(RuntimeError):
    """Weights a feature needs are neither cached nor downloadable; the message names them and the way out."""


class GenerationCancelled(RuntimeError):
    """The user pressed Stop or went away; the denoising loop stopped early."""


class GenerationTimeout(RuntimeError):
    """A request ran past the server's deadline."""
