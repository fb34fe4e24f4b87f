"""The denoising engine: request types and control modes, the ControlNet forward, schedulers, previews, the loop."""

from .controlnet import controlnet_forward, embed_condition, unet_forward, zero_convolutions
from .loop import Engine
from .request import CONTROL_MODES, ControlMode, ControlUnit, Request, Result
from .schedulers import SCHEDULERS, make_scheduler

__all__ = [
    "CONTROL_MODES",
    "SCHEDULERS",
    "ControlMode",
    "ControlUnit",
    "Engine",
    "Request",
    "Result",
    "controlnet_forward",
    "embed_condition",
    "make_scheduler",
    "unet_forward",
    "zero_convolutions",
]
