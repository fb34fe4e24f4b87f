"""What each API parameter means, in one place: the handlers' docstrings are built from it, and gradio shows them on
the "Use via API" page and as the MCP tools' descriptions an agent reads (`Args:` lines, gradio's format)."""

from __future__ import annotations

import re

from ..conditions import CONDITIONS

PARAMETERS = {
    "image": "The photo or control map, as a file (an MCP client sends a data: URI of a PNG or JPEG).",
    "drawing": "A drawing: a sketchpad value (background, layers, composite), used where image is left out.",
    "pad": "The drawing pad's picture: a PNG as a data: URL (data:image/png;base64,...), black lines on white; "
    "used where no image is uploaded.",
    "pose_json": "A pose as OpenPose JSON ({people: [{pose_keypoints_2d: [x, y, confidence] x 18}], canvas_width, "
    "canvas_height}, in pixels or 0..1; confidence 0 hides a joint), used instead of image; drawn as the map "
    "itself, kept in the result PNGs.",
    "edited_map": "A control map edited by hand, as a PNG data: URL (data:image/png;base64,...): read by the "
    "ControlNet as it is, instead of detecting one from image, when use_edited_map is true; the result PNGs keep it.",
    "use_edited_map": "Use edited_map (true) or detect the map from the image (false, the default).",
    "upload": "A drawing or photo, used instead of the drawing pad (pad, or image as a sketchpad value).",
    "enabled": "Whether this condition is used.",
    "condition": "Which ControlNet reads the picture: one of {conditions}.",
    "preprocessor": "How the picture becomes the control map; 'none' uses it as the map itself.",
    "preprocess_resolution": "The resolution the preprocessor works at, in pixels.",
    "strength": "How strongly the ControlNet steers the picture (0 = off, 1 = as trained).",
    "start": "When the ControlNet starts to steer, as a fraction of the denoising steps (0-1).",
    "end": "When it stops, as a fraction of the denoising steps (0-1); after it the prompt alone finishes.",
    "mode": "balanced, prompt (my prompt is more important), control (ControlNet is more important) or "
    "cfg_resolution (the paper's resolution weighting).",
    "mask": "Optional region mask: the condition applies where it is white.",
    "prompt": "What the picture shows, in words.",
    "negative_prompt": "What it should not show.",
    "guidance_scale": "Classifier-free guidance: how closely the picture follows the prompt.",
    "steps": "Denoising steps.",
    "num_images": "How many images, each with the next seed.",
    "resolution": "The output's longer side in pixels; the picture's aspect is kept.",
    "scheduler": "The sampler of the full-quality path.",
    "seed": "The random seed: the same seed and settings give the same image.",
    "randomize_seed": "Draw a new seed instead of the given one.",
    "speed": "full (the paper's 20-step path) or a few-step speed of the model (its own sampler, steps and "
    "guidance; give steps and guidance_scale too).",
    "residual_maps": "Also record where each of the 13 connections' residuals go, per denoising step (shown under "
    "'Where the residuals go'; off: nothing more is computed).",
    "low_threshold": "Canny's low threshold.",
    "high_threshold": "Canny's high threshold.",
    "xdog_threshold": "The XDoG line detector's threshold.",
}


def describe(name: str) -> str:
    """A parameter's meaning; `image_2` is condition 2's image."""
    base, k = re.fullmatch(r"(.+?)(?:_(\d+))?", name).groups()
    text = PARAMETERS.get(name) or PARAMETERS.get(base)
    if text is not None:
        text = text.replace("{conditions}", ", ".join(CONDITIONS))  # the table as it is when the app is built
    if text is None:  # a preprocessor's own setting (its slider in the tab)
        return f"The preprocessor's {name.replace('_', ' ')} setting."
    return f"Condition {k}: {text[0].lower()}{text[1:]}" if k and name not in PARAMETERS else text


def docstring(summary: str, names: list[str], returns: str) -> str:
    """A handler's docstring in gradio's format: the summary, `Args:` one line per parameter, `Returns:`."""
    args = "\n".join(f"    {n}: {describe(n)}" for n in names)
    return f"{summary}\n\nArgs:\n{args}\n\nReturns:\n    {returns}"


GENERATED = (
    "the images (PNGs that carry their parameters), the control maps used, the parameters as JSON, the seed, "
    "what each ControlNet connection added, and the control check (how well each result follows its map)"
)
