"""What a condition is: its preprocessors, their settings and how they are checked (`Condition`, `Preprocessor`,
`Param`). The entries themselves are the table (`table.CONDITIONS`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..errors import UserInputError, check_number, quoted
from .check import Check

Example = tuple[str, str, str]  # (file under assets/examples, prompt, preprocessor)


@dataclass(frozen=True)
class Param:
    """A numeric preprocessor setting, with the bounds the UI shows and the server enforces."""

    name: str
    label: str
    minimum: float
    maximum: float
    step: float
    default: float
    help: str = ""  # its API description; "" gives "The preprocessor's <label> setting."


@dataclass(frozen=True)
class Preprocessor:
    name: str
    label: str
    run: Callable[..., np.ndarray]  # run(image, resolution, detectors, **params) -> map
    params: tuple[str, ...] = ()  # names of the condition's Params this preprocessor reads
    weights: str | None = None  # annotator weights it needs (a detector name), None if it needs none
    from_photo: bool = True  # it detects the map in a picture (False: it reads a map, drawn or ready, as given)


@dataclass(frozen=True)
class Condition:
    name: str
    label: str
    help: str  # one sentence for the tab: what the map is and what to upload
    preprocessors: dict[str, Preprocessor]
    default_preprocessor: str
    check: Check  # how the control check scores a result against the map
    # its ControlNet in each model family a preset loads (models.presets.Preset.family): "sd15" a hub id,
    # "offline" a folder of the embedded model (a family it lacks does not serve the condition)
    checkpoints: dict[str, str]
    params: dict[str, Param] = field(default_factory=dict)
    examples: dict[str, tuple[Example, ...]] = field(default_factory=dict)  # by family; "sd15": any other
    # how its map is edited: "lines" (white on black), "depth" (greys, fill), "keypoints"; "" not by hand (a normal
    # map's colours are directions, a photo is a photo)
    editor: str = "lines"
    drawn: bool = False  # drawn by hand: its tab opens on a drawing pad, with Live
    group: str = ""  # the UI's tab that holds it beside its kin ("": a tab of its own)
    # its ControlNet pools its residuals over the picture (ControlNet 1.1's shuffle): a global control, read on the
    # conditional branch only; the real checkpoint's config says so, and the tiny test model's is made so
    global_control: bool = False

    def examples_for(self, family: str) -> tuple[Example, ...]:
        return self.examples.get(family, self.examples.get("sd15", ()))

    @property
    def reads_pose_json(self) -> bool:
        """Its map is a skeleton edited as keypoints: OpenPose JSON is drawn into its map."""
        return self.editor == "keypoints"

    def preprocessor(self, name: str | None, context: str = "") -> Preprocessor:
        """The named preprocessor (None: the default), or an error naming this condition's."""
        proc = self.preprocessors.get(name or self.default_preprocessor)
        if proc is None:
            raise UserInputError(
                "{context}Unknown preprocessor {name} for {condition}; choose one of: {choices}.",
                context=context,
                name=quoted(name),
                condition=self.name,
                choices=", ".join(self.preprocessors),
            )
        return proc

    def checked_settings(
        self, preprocessor: str | None, given: dict, strict: bool = False, context: str = ""
    ) -> dict[str, float]:
        """The given settings that `preprocessor` reads, each checked against its bounds (defaults not filled in).

        strict (the CLI, where each setting was typed): a setting the condition lacks, or one this preprocessor does
        not read, is an error. Otherwise those are dropped: a tab sends every slider it has, whichever preprocessor
        is chosen."""
        proc = self.preprocessor(preprocessor, context)
        values = {}
        for key, raw in (given or {}).items():
            p = self.params.get(key)
            if p is None or key not in proc.params:
                if not strict:
                    continue
                if p is None:
                    raise UserInputError(
                        "{context}unknown setting {key} (--param); {name} has: {choices}.",
                        context=context,
                        key=quoted(key),
                        name=self.name,
                        choices=", ".join(self.params) or "none",
                    )
                users = [q.name for q in self.preprocessors.values() if key in q.params]
                raise UserInputError(
                    "{context}the {name} preprocessor does not use {key}; it applies to: {choices}.",
                    context=context,
                    name=proc.name,
                    key=quoted(key),
                    choices=", ".join(users),
                )
            values[key] = check_number(
                raw, f"{context}{p.label}" + (f" ({key})" if strict else ""), p.minimum, p.maximum
            )
        return values
