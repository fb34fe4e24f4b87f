"""The command line: `python -m controlnet_demo generate | detect | train`, generated from the same tables as the UI.

Every option maps onto a `UnitSpec` / `GenerateSpec` field and goes through the one shared `Demo` service,
so the CLI validates, preprocesses, generates and saves exactly as the app does.

Composition: each `--condition NAME` starts a new unit, and the per-unit options (`--image`, `--preprocessor`,
`--strength`, ...) apply to the latest `--condition` before them:

    generate --condition pose --image a.png --preprocessor none --condition canny --image b.jpg --end 0.6 ...

Subcommands live in `COMMANDS` (name -> `Command`): adding one is adding an entry with a function that adds its
options to an argparse parser and a function that runs the parsed namespace and returns an exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import training
from .conditions import CONDITIONS
from .engine import CONTROL_MODES, SCHEDULERS
from .errors import GenerationTimeout, ModelUnavailableError, UserInputError
from .presets import PRESETS
from .service import DEFAULT_NEGATIVE, MAX_SEED, number
from .settings import Settings

PROG = "python -m controlnet_demo"
USER_ERROR = 2  # what argparse uses for a bad command line too
FAILED = 1

# the per-unit options that set the UnitSpec field of the same name as given (`condition`, `params` aside)
UNIT_FIELDS = ("image", "preprocessor", "preprocess_resolution", "strength", "start", "end", "mode", "mask")


# --- argument parsing ---------------------------------------------------------------------------------------


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: `PROG CMD: error: ...` and exit 2, no usage block."""

    def error(self, message: str):
        self.exit(USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")


class Formatter(argparse.HelpFormatter):
    """Wraps one-paragraph texts; keeps multi-line ones (the tables and examples of the epilog) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


class UnitAction(argparse.Action):
    """Collects the per-unit options into `namespace.units`, a list of dicts in command-line order.

    `--condition` opens a unit; every other per-unit option sets a key of the latest unit. An `--image` that
    finds no open unit, or one that already has an image, opens a unit of its own with no condition: that is
    how `--from-png` takes one image per stored unit, and it is an error everywhere else.
    """

    def __call__(self, parser, namespace, values, option_string=None):
        units = getattr(namespace, "units", None)
        if units is None:
            units = []
            namespace.units = units
        key = self.unit_key
        if key == "condition":
            units.append({"condition": values, "_opened_by": option_string})
            return
        if key == "image" and (not units or "image" in units[-1]):
            units.append({"image": values, "_opened_by": option_string})
            return
        if not units:
            parser.error(f"{option_string} must follow the --condition it applies to")
        unit = units[-1]
        label = f"condition {len(units)}" + (f" ({unit['condition']})" if "condition" in unit else "")
        if key == "params":
            params = unit.setdefault("params", {})
            for item in values:
                name, sep, value = item.partition("=")
                name = name.strip().replace("-", "_")
                if not sep or not name:
                    parser.error(f"{option_string} takes NAME=VALUE, e.g. low_threshold=50; got {item!r}")
                if name in params:
                    parser.error(f"{option_string} {name} is given twice for {label}")
                params[name] = value.strip()
            return
        if key in unit:
            parser.error(f"{option_string} is given twice for {label}; each --condition takes it once")
        unit[key] = values


def _unit_option(group, *flags: str, key: str, **kwargs):
    action = group.add_argument(*flags, action=UnitAction, dest="units", default=None, **kwargs)
    action.unit_key = key
    return action


def _scheduler(value: str) -> str:
    """Scheduler names, case-insensitively ("euler a" is "Euler a")."""
    for name in SCHEDULERS:
        if value.strip().lower() == name.lower():
            return name
    return value  # argparse's `choices` then names the valid ones


def _device(value: str) -> str:
    value = value.strip().lower()
    if value == "cpu" or value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()) or value == "mps":
        return value
    raise argparse.ArgumentTypeError(f"unknown device {value!r}; use cpu, cuda, cuda:N or mps")


def _controlnet(value: str) -> tuple[str, str]:
    condition, sep, source = value.partition("=")
    condition = condition.strip()
    if not sep or not source.strip():
        raise argparse.ArgumentTypeError(f"takes CONDITION=ID_OR_DIR, e.g. canny=lllyasviel/control_v11p_sd15_canny; "
                                         f"got {value!r}")
    if condition not in CONDITIONS:
        raise argparse.ArgumentTypeError(f"unknown condition {condition!r}; choose from {', '.join(CONDITIONS)}")
    return condition, source.strip()


def _add_unit_options(parser: argparse.ArgumentParser, full: bool) -> None:
    """The options of one condition; `full` adds the generation-only ones (strength, window, mode, mask)."""
    group = parser.add_argument_group(
        "condition options",
        "--condition starts a condition; the options after it (up to the next --condition) apply to it. Repeat "
        "--condition to compose several conditions." if full else "--condition NAME, then its --image and options.",
    )
    _unit_option(group, "--condition", key="condition", choices=list(CONDITIONS), metavar="NAME",
                 help=f"the condition: {', '.join(CONDITIONS)}")
    _unit_option(group, "--image", key="image", metavar="FILE",
                 help="its photo or ready control map (PNG, JPEG, WebP, ...)")
    _unit_option(group, "--preprocessor", key="preprocessor", metavar="NAME",
                 help="how the map is made from the image (default: the condition's first; 'none' uses the image "
                      "as the map; see the list below)")
    _unit_option(group, "--preprocess-resolution", key="preprocess_resolution", type=int, metavar="PX",
                 help="shorter side the preprocessor runs at (default 512)")
    _unit_option(group, "--param", key="params", nargs="+", metavar="NAME=VALUE",
                 help="a preprocessor setting, e.g. low_threshold=50 (repeatable; see the list below)")
    if full:
        _unit_option(group, "--strength", key="strength", type=float, metavar="S",
                     help="control strength (default 1.0)")
        _unit_option(group, "--start", key="start", type=float, metavar="F",
                     help="fraction of the steps where control starts (default 0)")
        _unit_option(group, "--end", key="end", type=float, metavar="F",
                     help="fraction of the steps where control ends (default 1); start < end")
        _unit_option(group, "--mode", key="mode", choices=list(CONTROL_MODES), metavar="MODE",
                     help="control mode (default balanced; see the list below)")
        _unit_option(group, "--mask", key="mask", metavar="FILE",
                     help="region mask: the condition applies where the mask is white")


def _add_model_options(parser: argparse.ArgumentParser, diffusion: bool) -> None:
    group = parser.add_argument_group("models and device")
    if diffusion:
        group.add_argument("--preset", choices=["auto", *PRESETS],
                           help="auto (default): sd15 when cached or reachable, else offline (a tiny random "
                                "model: its images are noise); sd15; offline")
        group.add_argument("--base-model", metavar="ID_OR_DIR", help="base model instead of the preset's")
        group.add_argument("--controlnet", type=_controlnet, action="append", metavar="CONDITION=ID_OR_DIR",
                           help="ControlNet for a condition instead of the preset's (repeatable)")
    group.add_argument("--annotators", metavar="ID_OR_DIR",
                       help="detector weights for openpose/midas/hed/pidinet (default lllyasviel/Annotators)")
    group.add_argument("--device", type=_device, metavar="DEVICE",
                       help="cpu, cuda, cuda:N or mps (default: cuda when available, else cpu)")


def _tables_epilog(full: bool) -> str:
    """The conditions, their preprocessors and settings (and the modes and schedulers), from the tables."""
    lines = []
    if full:
        a = "assets/examples/"
        lines += [
            "examples:",
            f"  {PROG} generate \\",
            f"      --condition canny --image {a}astronaut.jpg --param low_threshold=50 \\",
            '      --prompt "an astronaut, studio portrait" --steps 20 --seed 7 --out out',
            f"  {PROG} generate \\",
            f"      --condition pose --image {a}pose_waving.png --preprocessor none \\",
            f"      --condition scribble --image {a}scribble_house.png --strength 0.6 --end 0.6 \\",
            '      --prompt "a chef waving in front of a cottage"',
            "  # the settings and seed stored in a PNG it wrote, with 30 steps instead:",
            f"  {PROG} generate --from-png out/IMAGE.png --image {a}astronaut.jpg --steps 30",
            "",
        ]
    lines += ["conditions (--condition), their preprocessors (--preprocessor, * = default) and settings (--param):"]
    for cond in CONDITIONS.values():
        lines.append(f"  {cond.name:9} {cond.label}")
        for proc in cond.preprocessors.values():
            star = "*" if proc.name == cond.default_preprocessor else " "
            needs = f" [needs {proc.weights} weights]" if proc.weights else ""
            lines.append(f"    {star}{proc.name:9} {proc.label}{needs}")
            for key in proc.params:
                p = cond.params[key]
                lines.append(f"        --param {key + '=V':17} {p.label}: {p.minimum:g}..{p.maximum:g}, "
                             f"default {p.default:g}")
    if full:
        lines.append("control modes (--mode):")
        lines += [f"  {key:15} {mode.label}" for key, mode in CONTROL_MODES.items()]
        lines.append(f"schedulers (--scheduler): {', '.join(SCHEDULERS)}")
    return "\n".join(lines)


def _configure_generate(p: argparse.ArgumentParser) -> None:
    _add_unit_options(p, full=True)
    g = p.add_argument_group("generation")
    g.add_argument("--prompt", help="what to draw (required unless --from-png)")
    g.add_argument("--negative-prompt", metavar="TEXT", help=f"what to avoid (default: {DEFAULT_NEGATIVE!r})")
    g.add_argument("--steps", type=int, metavar="N", help="denoising steps (default: the preset's)")
    g.add_argument("--guidance", type=float, metavar="G", help="guidance scale, CFG (default: the preset's)")
    g.add_argument("--seed", type=int, metavar="S",
                   help=f"seed of the first image, 0..{MAX_SEED}; image k uses S+k (default: random; -1 = random)")
    g.add_argument("--num-images", type=int, metavar="N", help="images to make (default 1)")
    g.add_argument("--resolution", type=int, metavar="PX",
                   help="longer side of the output; the first condition's image sets the aspect (default: the "
                        "preset's)")
    g.add_argument("--scheduler", type=_scheduler, choices=list(SCHEDULERS), metavar="NAME",
                   help="sampler (default UniPC; see the list below)")
    g.add_argument("--from-png", metavar="FILE",
                   help="reproduce an image this demo wrote: its stored parameters (and model preset) are the "
                        "defaults, every option given overrides them. Give the original images with --image, one "
                        "per stored condition in order (--condition may be left out), and --mask for those that "
                        "had one")
    o = p.add_argument_group("output")
    o.add_argument("--out", default="outputs", metavar="DIR",
                   help="folder for the images (with their parameters in the PNG metadata) and the control maps "
                        "(default: ./outputs)")
    o.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long (default: no limit)")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes, only the result lines")
    _add_model_options(p, diffusion=True)


def _configure_detect(p: argparse.ArgumentParser) -> None:
    _add_unit_options(p, full=False)
    p.add_argument("--out", required=True, metavar="FILE",
                   help="where to write the control map (PNG); an existing folder gets <image>-<condition>.png")
    _add_model_options(p, diffusion=False)


# --- turning the parsed units into specs ------------------------------------------------------------------


def _label(k: int, unit: dict) -> str:
    return f"condition {k}" + (f" ({unit['condition']})" if unit.get("condition") else "")


def _existing_file(path: str, option: str) -> str:
    if not Path(path).is_file():
        raise UserInputError(f"{option} {path}: no such file.")
    return path


def _check_unit(k: int, unit: dict, condition: str, preprocessor: str | None, params: dict,
                stored: dict | None = None) -> dict:
    """Preprocessor and settings of one unit against the condition table; returns the numeric params.

    `stored` are the settings of a reproduced PNG: those the (possibly overridden) preprocessor does not read
    are dropped, while a `--param` the preprocessor does not read is an error.
    """
    cond = CONDITIONS[condition]
    name = preprocessor or cond.default_preprocessor
    proc = cond.preprocessors.get(name)
    if proc is None:
        raise UserInputError(f"{_label(k, unit)}: unknown preprocessor {name!r}; choose one of: "
                             f"{', '.join(cond.preprocessors)}.")
    params = {**{key: v for key, v in (stored or {}).items() if key in proc.params}, **params}
    values = {}
    for key, raw in params.items():
        p = cond.params.get(key)
        if p is None:
            known = ", ".join(cond.params) or "none"
            raise UserInputError(f"{_label(k, unit)}: unknown setting {key!r} (--param); {condition} has: {known}.")
        if key not in proc.params:
            users = [q.name for q in cond.preprocessors.values() if key in q.params]
            raise UserInputError(f"{_label(k, unit)}: the {name} preprocessor does not use {key}; it applies to: "
                                 f"{', '.join(users)}.")
        values[key] = number(raw, f"{_label(k, unit)}: {p.label} ({key})", p.minimum, p.maximum)
    return values


def _unit_overrides(k: int, unit: dict) -> dict:
    """The UnitSpec fields a command-line unit sets (files checked, settings parsed later)."""
    out = {key: unit[key] for key in UNIT_FIELDS if key in unit}
    for key, option in (("image", "--image"), ("mask", "--mask")):
        if key in out:
            _existing_file(out[key], f"{_label(k, unit)}: {option}")
    return out


def _fresh_units(units: list[dict]):
    from .service import UnitSpec

    if not units:
        raise UserInputError("Give at least one --condition NAME --image FILE.")
    specs = []
    for k, unit in enumerate(units, start=1):
        if "condition" not in unit:
            raise UserInputError(f"--image {unit['image']} has no --condition of its own: put --condition NAME "
                                 "before each --image (one image per condition).")
        if "image" not in unit:
            raise UserInputError(f"{_label(k, unit)} has no --image; give one after its --condition.")
        fields = _unit_overrides(k, unit)
        fields["params"] = _check_unit(k, unit, unit["condition"], fields.get("preprocessor"),
                                       unit.get("params", {}))
        specs.append(UnitSpec(condition=unit["condition"], **fields))
    return specs


def _stored_parameters(path: str) -> dict:
    from .service import read_parameters

    _existing_file(path, "--from-png")
    try:
        params = read_parameters(path)
        units = params["units"]
        if not isinstance(units, list) or not all(isinstance(u, dict) and u.get("condition") in CONDITIONS
                                                  for u in units):
            raise ValueError("bad units")
    except Exception:
        raise UserInputError(f"--from-png {path}: no parameters of this demo in it (only PNGs the demo wrote "
                             "carry them).") from None
    return params


def _reproduced_units(params: dict, units: list[dict], path: str):
    from .service import spec_from_parameters

    stored = params["units"]
    if len(units) != len(stored):
        names = ", ".join(u["condition"] for u in stored)
        raise UserInputError(f"{path} was made with {len(stored)} condition(s) ({names}): give their original "
                             f"images with --image, one each in that order; got {len(units)}.")
    overrides = []
    for k, (unit, old) in enumerate(zip(units, stored), start=1):
        if unit.get("condition", old["condition"]) != old["condition"]:
            raise UserInputError(f"Condition {k} of {path} is {old['condition']}, not {unit['condition']}.")
        unit = {**unit, "condition": old["condition"]}
        if "image" not in unit:
            raise UserInputError(f"{_label(k, unit)} has no --image: give the original image it was made from.")
        fields = _unit_overrides(k, unit)
        if old.get("mask") and "mask" not in fields:
            raise UserInputError(f"{_label(k, unit)} of {path} used a region mask: give it with --mask after its "
                                 "--image.")
        fields["params"] = _check_unit(k, unit, old["condition"], fields.get("preprocessor", old["preprocessor"]),
                                       unit.get("params", {}), stored=old.get("params") or {})
        overrides.append(fields)
    try:
        spec = spec_from_parameters(params, [f["image"] for f in overrides])
    except (KeyError, TypeError):
        raise UserInputError(f"--from-png {path}: its stored parameters are incomplete.") from None
    spec.units = [dataclasses.replace(u, **f) for u, f in zip(spec.units, overrides)]
    return spec


GLOBAL_FIELDS = {  # option dest -> GenerateSpec field
    "prompt": "prompt", "negative_prompt": "negative_prompt", "steps": "steps", "guidance": "guidance_scale",
    "seed": "seed", "num_images": "num_images", "resolution": "resolution", "scheduler": "scheduler",
}


def build_spec(args: argparse.Namespace):
    """The GenerateSpec the command line asks for, and the stored parameters when it reproduces a PNG."""
    from .service import GenerateSpec

    given = {field_name: getattr(args, dest) for dest, field_name in GLOBAL_FIELDS.items()
             if getattr(args, dest) is not None}
    units = args.units or []
    if args.from_png:
        stored = _stored_parameters(args.from_png)
        spec = _reproduced_units(stored, units, args.from_png)
        return dataclasses.replace(spec, **given), stored
    if "prompt" not in given:
        raise UserInputError("Give a --prompt (or reproduce an earlier image with --from-png).")
    return GenerateSpec(units=_fresh_units(units), **given), None


def build_settings(args: argparse.Namespace, stored: dict | None = None) -> Settings:
    """Settings from the environment, with the command line's model and device options on top."""
    base = Settings.from_env()
    overrides: dict = {}
    preset = getattr(args, "preset", None)
    base_model = getattr(args, "base_model", None)
    controlnets = dict(getattr(args, "controlnet", None) or [])
    if stored is not None and preset is None and base_model is None and not controlnets:
        # reproduce on the models the PNG was made with, unless the command line names others
        preset = stored.get("preset")
        if preset in PRESETS:
            if stored.get("base_model") and stored["base_model"] != PRESETS[preset].base:
                base_model = stored["base_model"]
            controlnets = {u["condition"]: u["model"] for u in stored["units"]
                           if u.get("model") and u["model"] != PRESETS[preset].controlnets.get(u["condition"])}
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
    _check_device(settings.device)
    return settings


def _check_device(device: str | None) -> None:
    if device is None or device == "cpu":
        return
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UserInputError(f"--device {device}: no CUDA GPU is available here; use --device cpu.")
    if device.startswith("cuda:") and int(device[5:]) >= torch.cuda.device_count():
        raise UserInputError(f"--device {device}: there are only {torch.cuda.device_count()} CUDA device(s).")
    if device == "mps" and not torch.backends.mps.is_available():
        raise UserInputError("--device mps: MPS is not available here; use --device cpu.")


# --- commands ---------------------------------------------------------------------------------------------


def _note(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def _quiet_libraries() -> None:
    """diffusers / transformers warn about things a CLI user can't act on (dtype casts of the tiny model)."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()


def _output_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"--out {path}: can't create the folder ({exc.strerror or exc}).") from None
    return out


def run_generate(args: argparse.Namespace) -> int:
    spec, stored = build_spec(args)
    settings = build_settings(args, stored)

    from PIL import Image
    from tqdm import tqdm

    from .service import Demo

    _quiet_libraries()
    try:
        demo = Demo(settings, output_dir=args.out)
    except ModelUnavailableError as exc:
        if stored is None or args.preset is not None:
            raise
        raise ModelUnavailableError(f"{exc} {args.from_png} was made with the {stored.get('preset')} preset; "
                                    "to run its parameters on another, pass --preset.") from None

    request, maps, params = demo.prepare(spec)  # every value checked, maps detected, before any model loads
    out = _output_dir(args.out)
    _note(args, f"model: {demo.preset.title} [{demo.preset.name}] ({demo.resolved.reason})")
    if demo.preset.name == "tiny":
        _note(args, "note: the tiny preset is a random model: its images are noise, not pictures.")
    if stored is not None and stored.get("preset") not in (None, demo.preset.name):
        _note(args, f"note: {args.from_png} was made with the {stored['preset']} preset, this run uses "
                    f"{demo.preset.name}: the pixels will differ.")
    _note(args, "loading models ...")
    for unit in request.units:  # loads the base model too; the progress bar then shows denoising only
        demo.store.controlnet(unit.condition)
    _note(args, f"seed {request.seed}, {request.width}x{request.height}, {request.steps} steps")
    bar = tqdm(total=request.steps, desc="Denoising", unit="step", file=sys.stderr, disable=args.quiet,
               dynamic_ncols=True)

    def on_step(i: int, n: int) -> None:
        if bar.total != n:
            bar.total = n
        bar.update(i - bar.n)

    try:
        output = demo.run(request, maps, params, on_step=on_step)
    finally:
        bar.close()

    stem = Path(output.files[0]).stem
    map_files = []
    for k, (control, unit) in enumerate(zip(output.maps, output.params["units"]), start=1):
        path = out / f"{stem}-map{k}-{unit['condition']}.png"
        Image.fromarray(control).save(path)
        map_files.append(path)
    for path, seed in zip(output.files, output.params["seeds"]):
        print(f"image {path} (seed {seed})")
    for path in map_files:
        print(f"map {path}")
    print(f"seed {output.params['seed']}")
    return 0


def run_detect(args: argparse.Namespace) -> int:
    units = args.units or []
    if len(units) != 1 or "condition" not in units[0]:
        raise UserInputError("detect takes one --condition NAME and its --image FILE.")
    unit = units[0]
    if "image" not in unit:
        raise UserInputError(f"{_label(1, unit)} has no --image; give one after --condition.")
    image_path = _existing_file(unit["image"], "--image")
    params = _check_unit(1, unit, unit["condition"], unit.get("preprocessor"), unit.get("params", {}))
    settings = build_settings(args)
    limits = settings.limits
    resolution = number(unit.get("preprocess_resolution", 512), "--preprocess-resolution",
                        *limits.preprocess_resolutions, integer=True)

    from PIL import Image

    from .conditions import Detectors, detect
    from .images import load_rgb
    from .models import pick_device
    from .settings import hub_offline

    image = load_rgb(image_path, limits, what=f"{CONDITIONS[unit['condition']].label.lower()} image")
    device, _ = pick_device(settings.device)
    detectors = Detectors(settings.annotators, online=not hub_offline(), device=str(device))
    control = detect(unit["condition"], image, unit.get("preprocessor"), resolution, detectors, **params)

    out = Path(args.out)
    if out.is_dir():
        out = out / f"{Path(image_path).stem}-{unit['condition']}.png"
    elif out.suffix.lower() != ".png":
        raise UserInputError(f"--out {args.out}: give a .png file name (or an existing folder).")
    _output_dir(str(out.parent))
    Image.fromarray(control).save(out)
    print(f"map {out} ({control.shape[1]}x{control.shape[0]})")
    return 0


# --- train -------------------------------------------------------------------------------------------------


def _default(name: str):
    return training.TrainConfig.__dataclass_fields__[name].default  # the one place the defaults live


def _model_size_option(g) -> None:
    g.add_argument("--model-size", choices=list(training.MODEL_CONFIGS),
                   help=f"sizes of the model built from scratch (default {_default('model_size')}; tiny is for tests)")


def _train_vae_options(g) -> None:
    _model_size_option(g)


def _train_base_options(g) -> None:
    _model_size_option(g)
    g.add_argument("--vae", required=True, metavar="DIR", help="the locked VAE, a folder `train vae` wrote")
    g.add_argument("--init", metavar="DIR",
                   help="start from this pipeline folder's U-Net and text encoder (a fresh optimizer), e.g. to "
                        "continue a model exported by an earlier session; default: random weights")
    g.add_argument("--prompt-dropout", type=float, metavar="SHARE",
                   help=f"share of empty prompts, so guidance (CFG) works (default {_default('prompt_dropout')})")
    g.add_argument("--v-prediction", action="store_true", default=None,
                   help="v-prediction on betas rescaled to zero terminal SNR, trailing timesteps: no mean-colour "
                        "bias on flat backgrounds (the exported scheduler keeps these settings)")


def _train_controlnet_options(g) -> None:
    g.add_argument("--base", required=True, metavar="ID_OR_DIR",
                   help="the locked base: a folder `train base` wrote, or SD1.5 (a hub id or diffusers folder)")
    g.add_argument("--condition", metavar="NAME",
                   help=f"the world's map to learn: {', '.join(training.world.CONDITIONS)} (default "
                        f"{_default('condition')}); with --data, a label for the dataset's condition images")
    g.add_argument("--empty-prompt-share", type=float, metavar="SHARE",
                   help=f"share of prompts replaced by '' (default {_default('empty_prompt_share')}, the paper's)")
    g.add_argument("--eval-every", type=int, metavar="N",
                   help="on world data: log controllability on held-out scenes to metrics.jsonl every N steps "
                        "(the sudden-convergence curve; default 0 = never)")
    g.add_argument("--eval-samples", type=int, metavar="N",
                   help=f"held-out scenes per measurement (default {_default('eval_samples')})")
    g.add_argument("--init", metavar="DIR",
                   help="start from this ControlNet folder (a fresh optimizer), e.g. to go on training it on "
                        "--world-warp scenes; default: a copy of the base U-Net's encoder")


TRAIN_KINDS = {  # kind -> (help, its own options)
    "vae": ("train the autoencoder (L1 + L2 reconstruction, light KL) from scratch", _train_vae_options),
    "base": ("train the text-to-image model (U-Net and text encoder) from scratch, the VAE locked",
             _train_base_options),
    "controlnet": ("train a ControlNet, the paper's recipe: the base locked, a trainable copy, zero convolutions",
                   _train_controlnet_options),
}


def _configure_train(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="kind", metavar="KIND", required=True, parser_class=Parser)
    for kind, (text, own_options) in TRAIN_KINDS.items():
        k = sub.add_parser(kind, help=text, description=text[0].upper() + text[1:] + ".", formatter_class=Formatter)
        own_options(k.add_argument_group(f"{kind} options"))
        g = k.add_argument_group("data and run")
        g.add_argument("--out", required=True, metavar="DIR",
                       help="the model (diffusers layout), checkpoints/ and metrics.jsonl go here")
        g.add_argument("--data", metavar="FOLDER",
                       help="a dataset: prompts.jsonl (world.write_dataset) or fill50k's prompt.json layout"
                            + (", or any folder of images" if kind == "vae" else "")
                            + " (default: world examples made on the fly)")
        g.add_argument("--world-warp", type=float, metavar="SHARE",
                       help="world data: share of shapes drawn irregular (stretched, sheared, bumpy), so a "
                            f"ControlNet learns outlines beyond the five kinds (default {_default('world_warp')})")
        g.add_argument("--resolution", type=int, metavar="PX",
                       help=f"images are centre-cropped and resized to PX x PX (default {_default('resolution')})")
        g.add_argument("--steps", type=int, metavar="N", help=f"optimizer steps (default {_default('steps')})")
        g.add_argument("--batch-size", type=int, metavar="N", help=f"default {_default('batch_size')}")
        g.add_argument("--lr", type=float, metavar="LR",
                       help=f"AdamW learning rate (default {training.TASKS[kind].lr:g})")
        g.add_argument("--seed", type=int, metavar="S",
                       help=f"initial weights, data order and noise (default {_default('seed')})")
        g.add_argument("--checkpoint-every", type=int, metavar="N",
                       help=f"steps between checkpoints (default {_default('checkpoint_every')})")
        g.add_argument("--resume", action="store_true", default=None,
                       help="continue exactly from the latest checkpoint in --out (weights, optimizer, step)")
        g.add_argument("--mixed-precision", choices=training.MIXED_PRECISIONS,
                       help="autocast on GPU: fp16 (with loss scaling) or bf16 (default no)")
        g.add_argument("--gradient-checkpointing", action="store_true", default=None,
                       help="recompute activations in the backward pass: less memory, ~30 %% slower")
        g.add_argument("--device", type=_device, metavar="DEVICE",
                       help="cpu, cuda, cuda:N or mps (default: cuda when available, else cpu)")
        g.add_argument("--workers", type=int, metavar="N",
                       help="processes making the batches ahead of the loop, e.g. to keep a GPU fed; the same "
                            f"batches as without (default {_default('workers')}: the loop makes them)")
        g.add_argument("--max-minutes", type=float, metavar="M",
                       help="stop after M minutes with a checkpoint and the model as it is; the same command "
                            "with --resume goes on (default: run all --steps)")
        g.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        k.set_defaults(train=run_train_kind)
    e = sub.add_parser("export", help="assemble a StableDiffusionPipeline folder with its ControlNets",
                       description="Assemble a StableDiffusionPipeline folder (DDIM scheduler, no safety checker) "
                                   "with each ControlNet in controlnet-<condition>/ beside it, loadable with "
                                   "StableDiffusionControlNetPipeline.from_pretrained(FOLDER, controlnet=...).",
                       formatter_class=Formatter)
    e.add_argument("--base", required=True, metavar="ID_OR_DIR", help="the base pipeline (`train base` output)")
    e.add_argument("--vae", metavar="DIR", help="a VAE to use instead of the base's")
    e.add_argument("--controlnet", type=_controlnet, action="append", metavar="CONDITION=DIR",
                   help="a trained ControlNet (repeatable)")
    e.add_argument("--out", required=True, metavar="FOLDER", help="where to write the pipeline")
    e.add_argument("--dtype", choices=list(training.DTYPES), default="fp16", help="weights' type (default fp16)")
    e.set_defaults(train=run_export)


def _train_epilog() -> str:
    return "\n".join([
        "examples:",
        "  # the small world on 2 CPU cores: about 25 min, 1.5 h, then 25 min per condition",
        f"  {PROG} train vae --out runs/vae --steps 2000",
        f"  {PROG} train base --vae runs/vae --out runs/base --steps 10000",
        f"  {PROG} train controlnet --condition canny --base runs/base --out runs/canny --steps 3000",
        f"  {PROG} train export --base runs/base --controlnet canny=runs/canny --out runs/pipeline",
        "  # SD1.5 on a GPU, the paper's recipe on your own fill50k-style folder (prompt.json, source/, target/)",
        f"  {PROG} train controlnet --base stable-diffusion-v1-5/stable-diffusion-v1-5 --data fill50k \\",
        "      --resolution 512 --batch-size 4 --lr 1e-5 --mixed-precision fp16 --gradient-checkpointing --out runs/fill50k",
        "  # after an interruption: the same command with --resume",
    ])


def run_train_kind(args: argparse.Namespace) -> int:
    _check_device(args.device)
    _quiet_libraries()
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(training.TrainConfig)
             if getattr(args, f.name, None) is not None}
    out = training.train(training.TrainConfig(**given), progress=not args.quiet)
    print(f"model {out}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    _quiet_libraries()
    out = training.export(args.base, _output_dir(args.out), dict(args.controlnet or []), args.vae, args.dtype)
    print(f"pipeline {out}")
    return 0


@dataclass(frozen=True)
class Command:
    help: str
    description: str
    configure: Callable[[argparse.ArgumentParser], None]  # adds the command's options
    run: Callable[[argparse.Namespace], int]  # returns the exit code
    epilog: Callable[[], str] | None = None


COMMANDS: dict[str, Command] = {
    "generate": Command(
        help="generate images steered by one or more conditions",
        description="Generate images with ControlNet. Writes the PNGs (their parameters in the metadata) and the "
                    "control maps to --out, and prints their paths and the seed.",
        configure=_configure_generate, run=run_generate, epilog=lambda: _tables_epilog(full=True),
    ),
    "detect": Command(
        help="write a condition's control map only (no diffusion model is loaded)",
        description="Make the control map of one condition from an image and write it as a PNG.",
        configure=_configure_detect, run=run_detect, epilog=lambda: _tables_epilog(full=False),
    ),
    "train": Command(
        help="train a VAE, a small base model or a ControlNet (the paper's recipe); export a pipeline",
        description="Train the small SD-architecture model family on the synthetic world (or a dataset folder), "
                    "or a ControlNet for any SD1.5-style base; `train KIND --help` lists each kind's options.",
        configure=_configure_train, run=lambda args: args.train(args), epilog=_train_epilog,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, formatter_class=Formatter,
                    description="ControlNet demo: generate images steered by edges, pose, depth or scribbles, or "
                                "make control maps. Settings also come from CONTROLNET_DEMO_* environment "
                                "variables; options override them.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.description,
                           epilog=command.epilog() if command.epilog else None, formatter_class=Formatter)
        command.configure(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UserInputError, ModelUnavailableError) as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return USER_ERROR
    except GenerationTimeout as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return FAILED
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            from .service import user_message

            print(f"{PROG} {args.command}: error: {_one_line(user_message(exc))}", file=sys.stderr)
            return FAILED
        raise  # a bug: the traceback is what a CLI user needs to report it


def _one_line(message) -> str:
    return " ".join(str(message).split())
