"""The conditions ControlNet can follow, described by one table, and the one validator of what a user asks of them.

A condition (`condition.Condition`) is one entry of `CONDITIONS`: its preprocessors and their settings, its control check, how its map is
edited, its examples and its ControlNet in each model family. The UI tabs and their API endpoints, Compose, the CLI
options, the MCP tools, the presets and the tests are made from the table; nothing else names a condition. Every
check of a condition name, a preprocessor name or a preprocessor setting goes through `condition`,
`Condition.preprocessor` and `Condition.checked_settings`, whoever asks (UI, API, CLI, model overrides).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelUnavailableError, UserInputError, quoted
from . import preprocessors as pre
from .check import (
    Check,
    score_colours,
    score_depth,
    score_edges,
    score_lines,
    score_normals,
    score_pose,
    score_structure,
)
from .condition import Condition, Param, Preprocessor

NONE = Preprocessor("none", "none: my image is already a control map", pre.passthrough, from_photo=False)

LINES, SURFACES, PICTURES = "Edges and lines", "Depth and normals", "Picture to picture"  # the UI's groups

# the caption of the held-out world scene behind assets/examples/world_*.png (the embedded model's examples)
WORLD_CAPTION = (
    "a person in purple standing, a yellow triangle and an orange ring in front of a green ring on a black background"
)

CONDITIONS: dict[str, Condition] = {
    c.name: c
    for c in [
        Condition(
            name="canny",
            label="Canny edges",
            help="Upload a photo: its Canny edges (white on black) steer the layout. Or upload an edge map.",
            preprocessors={
                "canny": Preprocessor(
                    "canny", "Canny (controlnet-aux)", pre.canny, ("low_threshold", "high_threshold")
                ),
                "none": NONE,
            },
            default_preprocessor="canny",
            check=Check("edge F1, 2 px", 0.35, score_edges, lines=True),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_canny", "offline": "controlnet-canny"},
            group=LINES,
            examples={
                "sd15": (
                    ("astronaut.jpg", "an astronaut in an orange suit, studio portrait, best quality", "canny"),
                    ("coffee.jpg", "a cup of coffee on a wooden table, photo", "canny"),
                ),
                "offline": (
                    ("world_picture.png", WORLD_CAPTION, "canny"),
                    ("coffee.jpg", "a yellow circle on a purple background", "canny"),
                ),
            },
            params={
                "low_threshold": Param(
                    "low_threshold", "Canny low threshold", 1, 255, 1, 100, "Canny's low threshold."
                ),
                "high_threshold": Param(
                    "high_threshold", "Canny high threshold", 1, 255, 1, 200, "Canny's high threshold."
                ),
            },
        ),
        Condition(
            name="pose",
            label="Human pose",
            help="Upload a photo of people (OpenPose finds their skeletons) or a ready OpenPose skeleton image.",
            preprocessors={
                "openpose": Preprocessor(
                    "openpose", "OpenPose (controlnet-aux)", pre.aux("openpose"), weights="openpose"
                ),
                "none": NONE,
            },
            default_preprocessor="openpose",
            check=Check("skeleton overlap", 0.3, score_pose, detector="OpenPose"),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_openpose", "offline": "controlnet-pose"},
            examples={
                "sd15": (("pose_waving.png", "a chef waving in a kitchen, best quality", "none"),),
                "offline": (
                    ("world_pose.png", "a person in purple standing on a black background", "none"),
                    ("pose_waving.png", "a person in red waving on a yellow background", "none"),
                ),
            },
            editor="keypoints",
        ),
        Condition(
            name="depth",
            label="Depth",
            help="Upload a photo (MiDaS estimates its depth) or a depth map: near is bright, far is dark.",
            preprocessors={
                "midas": Preprocessor("midas", "MiDaS DPT-Hybrid (controlnet-aux)", pre.aux("midas"), weights="midas"),
                "none": NONE,
            },
            default_preprocessor="midas",
            check=Check("depth rank correlation", 0.3, score_depth, detector="MiDaS"),
            checkpoints={"sd15": "lllyasviel/control_v11f1p_sd15_depth", "offline": "controlnet-depth"},
            group=SURFACES,
            examples={
                "sd15": (("motorcycle_depth.png", "a red motorcycle in a garage, photo", "none"),),
                "offline": (("world_depth.png", WORLD_CAPTION, "none"),),
            },
            editor="depth",
        ),
        Condition(
            name="scribble",
            label="Scribble",
            help="Draw on the pad (dark on light or light on dark, both work), or upload a drawing, or a photo with "
            "the XDoG / HED / PiDiNet preprocessor to extract its lines.",
            preprocessors={
                "sketch": Preprocessor("sketch", "hand drawing (either polarity)", pre.sketch, from_photo=False),
                "xdog": Preprocessor(
                    "xdog", "lines from a photo (XDoG, OpenCV)", pre.scribble_xdog, ("xdog_threshold",)
                ),
                "hed": Preprocessor(
                    "hed", "HED scribble (controlnet-aux)", pre.aux("hed", scribble=True), weights="hed"
                ),
                "pidinet": Preprocessor(
                    "pidinet",
                    "PiDiNet scribble (controlnet-aux)",
                    pre.aux("pidinet", safe=True, scribble=True),
                    weights="pidinet",
                ),
                "none": NONE,
            },
            default_preprocessor="sketch",
            check=Check("line F1, 3 px", 0.4, score_lines, lines=True),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_scribble", "offline": "controlnet-scribble"},
            examples={
                "sd15": (("scribble_house.png", "a cosy cottage with a tree, watercolor", "sketch"),),
                "offline": (
                    ("scribble_house.png", "a purple square and a red triangle on a white background", "sketch"),
                    ("world_scribble.png", WORLD_CAPTION, "none"),
                ),
            },
            params={
                "xdog_threshold": Param(
                    "xdog_threshold", "XDoG threshold", 1, 64, 1, 32, "The XDoG line detector's threshold."
                )
            },
            drawn=True,
        ),
        Condition(
            name="lineart",
            label="Line art",
            help="Upload a photo (its line drawing is extracted) or a line drawing, white lines on black: the lines "
            "fix the outlines, the prompt the rest.",
            preprocessors={
                "lineart": Preprocessor(
                    "lineart", "realistic line art (controlnet-aux)", pre.aux("lineart"), weights="lineart"
                ),
                "lineart_coarse": Preprocessor(
                    "lineart_coarse",
                    "coarse line art (controlnet-aux)",
                    pre.aux("lineart", coarse=True),
                    weights="lineart",
                ),
                "none": NONE,
            },
            default_preprocessor="lineart",
            check=Check("line F1, 3 px", 0.35, score_lines, lines=True),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_lineart", "offline": "controlnet-lineart"},
            examples={
                "sd15": (("cat.jpg", "a cat on a rug, ink drawing coloured with watercolor", "lineart"),),
                "offline": (("world_lineart.png", WORLD_CAPTION, "none"),),
            },
            group=LINES,
        ),
        Condition(
            name="lineart_anime",
            label="Anime line art",
            help="Upload an anime or manga picture (its line drawing is extracted) or a line drawing, white lines on "
            "black: the ControlNet trained on anime line art reads it.",
            preprocessors={
                "lineart_anime": Preprocessor(
                    "lineart_anime",
                    "anime line art (controlnet-aux)",
                    pre.aux("lineart_anime"),
                    weights="lineart_anime",
                ),
                "none": NONE,
            },
            default_preprocessor="lineart_anime",
            check=Check("line F1, 3 px", 0.35, score_lines, lines=True),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15s2_lineart_anime"},
            examples={"sd15": (("astronaut.jpg", "an anime girl in a space suit, best quality", "lineart_anime"),)},
            group=LINES,
        ),
        Condition(
            name="softedge",
            label="Soft edges",
            help="Upload a photo: its soft edges (HED or PiDiNet, grey lines that fade) keep the shapes but not every "
            "detail, looser than Canny. Or upload a soft edge map.",
            preprocessors={
                "pidinet": Preprocessor("pidinet", "PiDiNet (controlnet-aux)", pre.aux("pidinet"), weights="pidinet"),
                "pidinet_safe": Preprocessor(
                    "pidinet_safe",
                    "PiDiNet, safe (fewer grey levels)",
                    pre.aux("pidinet", safe=True),
                    weights="pidinet",
                ),
                "hed": Preprocessor("hed", "HED (controlnet-aux)", pre.aux("hed"), weights="hed"),
                "hed_safe": Preprocessor(
                    "hed_safe", "HED, safe (fewer grey levels)", pre.aux("hed", safe=True), weights="hed"
                ),
                "none": NONE,
            },
            default_preprocessor="pidinet",
            check=Check("line F1, 3 px", 0.3, score_lines, lines=True),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_softedge"},
            examples={"sd15": (("coffee.jpg", "a cup of tea on a wooden table, oil painting", "pidinet"),)},
            group=LINES,
        ),
        Condition(
            name="mlsd",
            label="M-LSD straight lines",
            help="Upload a photo of a room or a building (M-LSD finds its straight lines) or a drawing of straight "
            "white lines on black: walls, windows and furniture follow them.",
            preprocessors={
                "mlsd": Preprocessor(
                    "mlsd",
                    "M-LSD (controlnet-aux)",
                    pre.aux("mlsd", settings={"value_threshold": "thr_v", "distance_threshold": "thr_d"}),
                    ("value_threshold", "distance_threshold"),
                    weights="mlsd",
                ),
                "none": NONE,
            },
            default_preprocessor="mlsd",
            check=Check("line F1, 3 px", 0.3, score_lines, lines=True),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_mlsd"},
            examples={
                "sd15": (("room_lines.png", "a bright living room with a large window, interior photo", "none"),)
            },
            params={
                "value_threshold": Param(
                    "value_threshold",
                    "M-LSD score threshold",
                    0.01,
                    2.0,
                    0.01,
                    0.1,
                    "M-LSD's score threshold: a line is kept above it (higher: fewer lines).",
                ),
                "distance_threshold": Param(
                    "distance_threshold",
                    "M-LSD distance threshold",
                    0.01,
                    20.0,
                    0.01,
                    0.1,
                    "M-LSD's distance threshold: shorter lines are dropped (higher: fewer, longer lines).",
                ),
            },
            group=LINES,
        ),
        Condition(
            name="normal",
            label="Normal map",
            help="Upload a photo (NormalBae estimates which way each surface faces) or a normal map in ScanNet's "
            "colours (a surface facing you is blue-violet): shapes and their lighting follow it.",
            preprocessors={
                "normalbae": Preprocessor(
                    "normalbae", "NormalBae (controlnet-aux)", pre.aux("normalbae"), weights="normalbae"
                ),
                "none": NONE,
            },
            default_preprocessor="normalbae",
            check=Check("normal agreement", 0.5, score_normals, detector="NormalBae"),
            checkpoints={"sd15": "lllyasviel/control_v11p_sd15_normalbae"},
            examples={"sd15": (("motorcycle.jpg", "a chrome motorcycle in a showroom, photo", "normalbae"),)},
            editor="",
            group=SURFACES,
        ),
        Condition(
            name="ip2p",
            label="Instruct pix2pix",
            help='Upload a photo and write what to change as the prompt ("make it winter", "turn it into a '
            'watercolor"): this ControlNet reads the photo itself, not a map of it.',
            preprocessors={"none": Preprocessor("none", "none: the photo itself", pre.passthrough, from_photo=False)},
            default_preprocessor="none",
            check=Check("structure kept (edge F1, 3 px)", 0.2, score_structure),
            checkpoints={"sd15": "lllyasviel/control_v11e_sd15_ip2p"},
            examples={"sd15": (("astronaut.jpg", "make it a watercolor painting", "none"),)},
            editor="",
            group=PICTURES,
        ),
        Condition(
            name="shuffle",
            label="Content shuffle",
            help="Upload a picture whose colours and textures you want: it is shuffled (warped at random), so the "
            "ControlNet passes on its palette and style, not its layout; the prompt says what to draw.",
            preprocessors={
                "shuffle": Preprocessor("shuffle", "content shuffle (controlnet-aux)", pre.shuffle, ("shuffle_seed",)),
                "none": NONE,
            },
            default_preprocessor="shuffle",
            check=Check("colour overlap", 0.5, score_colours),
            checkpoints={"sd15": "lllyasviel/control_v11e_sd15_shuffle"},
            examples={"sd15": (("coffee.jpg", "a cosy cafe interior, oil painting", "shuffle"),)},
            params={
                "shuffle_seed": Param(
                    "shuffle_seed",
                    "Shuffle seed",
                    0,
                    9999,
                    1,
                    0,
                    "The seed of the random warp that shuffles the picture: the same seed, the same map.",
                )
            },
            editor="",
            group=PICTURES,
            global_control=True,
        ),
    ]
}


def condition(name: str, known=None, context: str = "") -> Condition:
    """The table's entry for `name`, or an error naming the known conditions (`known`: a narrower set, e.g. the
    ControlNets a preset serves)."""
    known = list(CONDITIONS if known is None else known)
    if isinstance(name, str) and name in CONDITIONS and name not in known:
        raise UserInputError(
            "The {label} condition is not served by this model{context}; it serves: {choices}.",
            label=CONDITIONS[name].label,
            context=context,
            choices=", ".join(known),
        )
    if name not in CONDITIONS or name not in known:
        raise UserInputError(
            "Unknown condition {name}{context}; choose one of: {choices}.",
            name=quoted(name),
            context=context,
            choices=", ".join(known),
        )
    return CONDITIONS[name]


def detect(
    name: str, image: np.ndarray, preprocessor: str | None = None, resolution: int = 512, detectors=None, **params
) -> np.ndarray:
    """Make the control map for condition `name` from a normalised uint8 RGB image."""
    cond = condition(name)
    proc = cond.preprocessor(preprocessor)
    values = {key: cond.params[key].default for key in proc.params} | cond.checked_settings(proc.name, params)
    if proc.weights and detectors is None:
        raise ModelUnavailableError(
            "The {weights} detector is not configured; upload a ready control map.", weights=proc.weights
        )
    out = proc.run(image, int(resolution), detectors, **values)
    if out.dtype != np.uint8:
        out = np.clip(out, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out)
