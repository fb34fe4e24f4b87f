"""A synthetic "small world" to train the small model and its ControlNets on, and to measure them: scenes
(`scenes`), their pictures, maps and captions (`render`), pictures read back (`analysis`), datasets (`datasets`)."""

from .analysis import Analysis, analyse, colour_index, expected_objects, shape_features, shape_of
from .datasets import DatasetFolder, read_rgb, write_dataset
from .render import MAPS, Example, canny_map, caption, depth_map, example, labels, pose_map, render, scribble_map
from .scenes import (
    BODY,
    COLOURS,
    DEFAULT,
    KEYPOINTS,
    LIMBS,
    OBJECT_COLOURS,
    POSES,
    SHAPES,
    K,
    Person,
    Scene,
    Shape,
    WorldConfig,
    sample_scene,
)

__all__ = [
    "BODY",
    "COLOURS",
    "DEFAULT",
    "KEYPOINTS",
    "LIMBS",
    "MAPS",
    "OBJECT_COLOURS",
    "POSES",
    "SHAPES",
    "Analysis",
    "DatasetFolder",
    "Example",
    "K",
    "Person",
    "Scene",
    "Shape",
    "WorldConfig",
    "analyse",
    "canny_map",
    "caption",
    "colour_index",
    "depth_map",
    "example",
    "expected_objects",
    "labels",
    "pose_map",
    "read_rgb",
    "render",
    "sample_scene",
    "scribble_map",
    "shape_features",
    "shape_of",
    "write_dataset",
]
