"""What ControlNet can follow: the condition table, its preprocessors and the detectors they use."""

from .condition import Condition, Param, Preprocessor
from .detectors import DETECTORS, Detectors
from .table import CONDITIONS, condition, detect

__all__ = ["CONDITIONS", "DETECTORS", "Condition", "Detectors", "Param", "Preprocessor", "condition", "detect"]
