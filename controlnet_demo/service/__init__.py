"""The one service the UI and the CLI call: specs in, typed events out, PNGs with their parameters written."""

from .files import read_maps, read_parameters, spec_from_parameters
from .messages import user_message
from .service import ControlNetService
from .specs import (
    DEFAULT_NEGATIVE,
    MAX_SEED,
    Done,
    Event,
    Failed,
    GenerateSpec,
    ImagesReady,
    MapsReady,
    Output,
    Prepared,
    PreviewReady,
    StepDone,
    UnitSpec,
    final_output,
)

__all__ = [
    "DEFAULT_NEGATIVE",
    "MAX_SEED",
    "ControlNetService",
    "Done",
    "Event",
    "Failed",
    "GenerateSpec",
    "MapsReady",
    "Output",
    "Prepared",
    "ImagesReady",
    "PreviewReady",
    "StepDone",
    "UnitSpec",
    "final_output",
    "read_maps",
    "read_parameters",
    "spec_from_parameters",
    "user_message",
]
