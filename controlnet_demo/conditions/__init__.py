"""What ControlNet can follow: the condition table, its preprocessors and the detectors they use."""

from .detectors import DETECTORS, Detectors
from .table import CONDITIONS, Condition, Param, Preprocessor, condition, detect

__all__ = ["CONDITIONS", "DETECTORS", "Condition", "Detectors", "Param", "Preprocessor", "condition", "detect"]
