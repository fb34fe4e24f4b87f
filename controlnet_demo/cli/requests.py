"""From the parsed command line to what the service takes: a `GenerateSpec` (fresh, or rebuilt from a PNG's stored
parameters with the options given on top) and the `Settings` (the environment's, with the model and device
options on top). Every check of a unit goes through the condition table.

A PNG is data: its parameters may set the prompt, seeds, conditions, preprocessors and strengths, never which
weights are loaded. The models come from the command line and the environment only; `model_warning` says so in a
line when the PNG names others. Files given on the command line reach the service as `pathlib.Path` (a `str` is
never opened as a path there)."""

from __future__ import annotations

import argparse
import dataclasses
import math
from pathlib import Path

from ..conditions import CONDITIONS, condition
from ..errors import UserInputError
from ..models.presets import PRESETS, Preset
from ..paths import shown
from ..settings import Settings

# the per-unit options that set the UnitSpec field of the same name as given (`condition`, `params` aside)
UNIT_FIELDS = ("image", "preprocessor", "preprocess_resolution", "strength", "start", "end", "mode", "mask")


def unit_label(k: int, unit: dict) -> str:
    return f"condition {k}" + (f" ({unit['condition']})" if unit.get("condition") else "")


def existing_file(path: str | Path, option: str) -> Path:
    """The file the command line names, as a Path: what the service opens as a file (a str it never does)."""
    if not Path(path).is_file():
        raise UserInputError(f"{option} {path}: no such file.")
    return Path(path)


def check_unit(
    k: int, unit: dict, name: str, preprocessor: str | None, params: dict, stored: dict | None = None
) -> dict:
    """Preprocessor and settings of one unit against the condition table; returns the numeric params.

    `stored` are the settings of a reproduced PNG: those the (possibly overridden) preprocessor does not read
    are dropped, while a `--param` the preprocessor does not read is an error.
    """
    cond, context = condition(name), f"{unit_label(k, unit)}: "
    proc = cond.preprocessor(preprocessor, context)
    return {
        **cond.checked_settings(proc.name, stored or {}),
        **cond.checked_settings(proc.name, params, strict=True, context=context),
    }


def _unit_overrides(k: int, unit: dict) -> dict:
    """The UnitSpec fields a command-line unit sets (files checked, settings parsed later)."""
    out = {key: unit[key] for key in UNIT_FIELDS if key in unit}
    for key, option in (("image", "--image"), ("mask", "--mask")):
        if key in out:
            out[key] = existing_file(out[key], f"{unit_label(k, unit)}: {option}")
    return out


def _fresh_units(units: list[dict]):
    from ..service import UnitSpec

    if not units:
        raise UserInputError("Give at least one --condition NAME --image FILE.")
    specs = []
    for k, unit in enumerate(units, start=1):
        if "condition" not in unit:
            raise UserInputError(
                f"--image {unit['image']} has no --condition of its own: put --condition NAME "
                "before each --image (one image per condition)."
            )
        if "image" not in unit:
            raise UserInputError(f"{unit_label(k, unit)} has no --image; give one after its --condition.")
        fields = _unit_overrides(k, unit)
        fields["params"] = check_unit(k, unit, unit["condition"], fields.get("preprocessor"), unit.get("params", {}))
        specs.append(UnitSpec(condition=unit["condition"], **fields))
    return specs


def _stored_parameters(path: str) -> dict:
    from ..service import read_parameters

    try:
        params = read_parameters(existing_file(path, "--from-png"))
        units = params["units"]
        if not isinstance(units, list) or not all(
            isinstance(u, dict) and u.get("condition") in CONDITIONS for u in units
        ):
            raise ValueError("bad units")
    except Exception:
        raise UserInputError(
            f"--from-png {path}: no parameters of this demo in it (only PNGs the demo wrote carry them)."
        ) from None
    return params


def _reproduced_units(params: dict, units: list[dict], path: str):
    """The stored units with the command line's on top: one --image per unit, in order; a unit whose edited map
    the PNG keeps (an edited map, a pose JSON) needs none, so those may all be left out."""
    from ..service import read_maps, spec_from_parameters

    try:
        stored, kept = params["units"], read_maps(Path(path))
        needing = [k for k, old in enumerate(stored) if old.get("edited_map") not in kept]
    except (ValueError, TypeError):  # a damaged maps chunk, an edited_map key that is no string
        raise UserInputError(f"--from-png {path}: its stored control maps are damaged.") from None
    if len(units) == len(stored):
        given = dict(enumerate(units))
    elif len(units) == len(needing):
        given = dict(zip(needing, units))
    else:
        names = ", ".join(u["condition"] for u in stored)
        keeps = [str(k + 1) for k in range(len(stored)) if k not in needing]
        raise UserInputError(
            f"{path} was made with {len(stored)} condition(s) ({names}): give their original "
            f"images with --image, one each in that order; got {len(units)}."
            + (f" Condition(s) {', '.join(keeps)} keep their edited map in the PNG: leave them out." if keeps else "")
        )
    overrides = []
    for k, old in enumerate(stored, start=1):
        unit = given.get(k - 1)
        if unit is None:  # the map as it was edited, from the PNG
            if old.get("mask"):
                raise UserInputError(
                    f"Condition {k} of {path} used a region mask: give every condition's --image, and its --mask."
                )
            overrides.append({"image": kept[old["edited_map"]]})
            continue
        if unit.get("condition", old["condition"]) != old["condition"]:
            raise UserInputError(f"Condition {k} of {path} is {old['condition']}, not {unit['condition']}.")
        unit = {**unit, "condition": old["condition"]}
        if "image" not in unit:
            raise UserInputError(f"{unit_label(k, unit)} has no --image: give the original image it was made from.")
        fields = _unit_overrides(k, unit)
        if old.get("mask") and "mask" not in fields:
            raise UserInputError(
                f"{unit_label(k, unit)} of {path} used a region mask: give it with --mask after its --image."
            )
        fields["params"] = check_unit(
            k,
            unit,
            old["condition"],
            fields.get("preprocessor", old["preprocessor"]),
            unit.get("params", {}),
            stored=old.get("params") or {},
        )
        overrides.append(fields)
    try:
        spec = spec_from_parameters(params, [f["image"] for f in overrides])
    except (KeyError, TypeError):
        raise UserInputError(f"--from-png {path}: its stored parameters are incomplete.") from None
    spec.units = [dataclasses.replace(u, **f) for u, f in zip(spec.units, overrides)]
    return spec


GLOBAL_FIELDS = {  # option dest -> GenerateSpec field
    "prompt": "prompt",
    "negative_prompt": "negative_prompt",
    "steps": "steps",
    "guidance": "guidance_scale",
    "seed": "seed",
    "num_images": "num_images",
    "resolution": "resolution",
    "scheduler": "scheduler",
    "speed": "speed",
}


def build_spec(args: argparse.Namespace):
    """The GenerateSpec the command line asks for, and the stored parameters when it reproduces a PNG."""
    from ..service import GenerateSpec

    given = {
        field_name: getattr(args, dest) for dest, field_name in GLOBAL_FIELDS.items() if getattr(args, dest) is not None
    }
    units = args.units or []
    if args.from_png:
        stored = _stored_parameters(args.from_png)
        spec = _reproduced_units(stored, units, args.from_png)
        return dataclasses.replace(spec, **given), stored
    if "prompt" not in given:
        raise UserInputError("Give a --prompt (or reproduce an earlier image with --from-png).")
    return GenerateSpec(units=_fresh_units(units), **given), None


def build_settings(args: argparse.Namespace) -> Settings:
    """Settings from the environment, with the command line's model and device options on top. Never from a
    reproduced PNG: a file does not choose the weights this process loads (see `model_warning`)."""
    base = Settings.from_env()
    overrides: dict = {}
    preset = getattr(args, "preset", None)
    base_model = getattr(args, "base_model", None)
    controlnets = dict(getattr(args, "controlnet", None) or [])
    if preset is not None:
        overrides["preset"] = preset
    if base_model is not None:
        overrides["base_model"] = base_model
    if controlnets:
        overrides["controlnets"] = {**base.controlnets, **controlnets}
    if args.annotators is not None:
        overrides["annotators"] = args.annotators
    if args.device is not None:
        overrides["device"] = args.device
    if hasattr(args, "timeout"):  # the CLI is no server: no deadline unless asked for
        if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
            raise UserInputError(f"--timeout must be a positive number of seconds; got {args.timeout:g}.")
        overrides["request_timeout_s"] = math.inf if args.timeout is None else args.timeout
    settings = Settings.from_env(**overrides)
    check_device(settings.device)
    return settings


def _printable(value, limit: int = 200) -> str:
    """A value read from a file, safe to print on one line: no control characters (terminal escapes, newlines)."""
    text = "".join(c if c.isprintable() else "?" for c in str(value))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_warning(stored: dict, preset: Preset, path: str) -> str | None:
    """One line when the PNG names other models than `preset` (the resolved one this run loads), else None.

    The PNG's names are only compared and printed (made printable): never looked up, opened or loaded. A model
    that follows from the PNG's preset is not listed again beside it."""
    theirs, ours = [], []
    stored_preset = stored.get("preset")
    own = PRESETS.get(stored_preset) if isinstance(stored_preset, str) else None
    other_preset = stored_preset is not None and stored_preset != preset.name
    if other_preset:
        theirs.append(f"the {_printable(stored_preset)} preset")
        ours.append(f"the {preset.name} preset")

    def compare(what: str, stored_source, our_source: str, own_source: str | None) -> None:
        if not stored_source or stored_source == shown(our_source):
            return
        if other_preset and own_source is not None and stored_source == shown(own_source):
            return  # the PNG preset's own model: named by the preset already
        theirs.append(f"{what} {_printable(stored_source)}")
        ours.append(f"{what} {shown(our_source)}")

    compare("base model", stored.get("base_model"), preset.base, own.base if own else None)
    for unit in stored.get("units") or []:
        cond = unit.get("condition")
        if cond in preset.controlnets:
            own_cn = own.controlnets.get(cond) if own else None
            compare(f"{cond} ControlNet", unit.get("model"), preset.controlnets[cond], own_cn)
    if not theirs:
        return None
    advice = f"pass --preset {stored_preset} to reproduce it" if other_preset and own else "the pixels will differ"
    return (
        f"warning: {_printable(path, 10_000)} was made with {', '.join(theirs)}; using {', '.join(ours)} (models are "
        f"never taken from a file; choose them with --preset, --base-model, --controlnet): {advice}."
    )


def check_device(device: str | None) -> None:
    if device is None or device == "cpu":
        return
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError(f"--device {device}: no CUDA GPU is available here; use --device cpu.")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise UserInputError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s).")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserInputError("--device mps: MPS is not available here; use --device cpu.")
