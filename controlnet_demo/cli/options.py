"""The command line's parsing: one-line errors, the per-unit options in command-line order, and the option groups
and help tables generated from the condition table, the control modes and the schedulers."""

from __future__ import annotations

import argparse

from ..conditions import CONDITIONS, condition
from ..engine import CONTROL_MODES, SCHEDULERS
from ..errors import UserInputError
from ..models.presets import PRESETS

PROG = "python -m controlnet_demo"
USER_ERROR = 2  # what argparse uses for a bad command line too
FAILED = 1


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


def scheduler_name(value: str) -> str:
    """Scheduler names, case-insensitively ("euler a" is "Euler a")."""
    for name in SCHEDULERS:
        if value.strip().lower() == name.lower():
            return name
    return value  # argparse's `choices` then names the valid ones


def device_name(value: str) -> str:
    value = value.strip().lower()
    if value == "cpu" or value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit()) or value == "mps":
        return value
    raise argparse.ArgumentTypeError(f"unknown device {value!r}; use cpu, cuda, cuda:N or mps")


def controlnet_source(value: str) -> tuple[str, str]:
    name, sep, source = value.partition("=")
    name = name.strip()
    if not sep or not source.strip():
        raise argparse.ArgumentTypeError(
            f"takes CONDITION=ID_OR_DIR, e.g. canny=lllyasviel/control_v11p_sd15_canny; got {value!r}"
        )
    try:
        condition(name)
    except UserInputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return name, source.strip()


def add_unit_options(parser: argparse.ArgumentParser, full: bool) -> None:
    """The options of one condition; `full` adds the generation-only ones (strength, window, mode, mask)."""
    group = parser.add_argument_group(
        "condition options",
        "--condition starts a condition; the options after it (up to the next --condition) apply to it. Repeat "
        "--condition to compose several conditions."
        if full
        else "--condition NAME, then its --image and options.",
    )
    _unit_option(
        group,
        "--condition",
        key="condition",
        choices=list(CONDITIONS),
        metavar="NAME",
        help=f"the condition: {', '.join(CONDITIONS)}",
    )
    _unit_option(
        group, "--image", key="image", metavar="FILE", help="its photo or ready control map (PNG, JPEG, WebP, ...)"
    )
    _unit_option(
        group,
        "--preprocessor",
        key="preprocessor",
        metavar="NAME",
        help="how the map is made from the image (default: the condition's first; 'none' uses the image "
        "as the map; see the list below)",
    )
    _unit_option(
        group,
        "--preprocess-resolution",
        key="preprocess_resolution",
        type=int,
        metavar="PX",
        help="shorter side the preprocessor runs at (default 512)",
    )
    _unit_option(
        group,
        "--param",
        key="params",
        nargs="+",
        metavar="NAME=VALUE",
        help="a preprocessor setting, e.g. low_threshold=50 (repeatable; see the list below)",
    )
    if full:
        _unit_option(
            group, "--strength", key="strength", type=float, metavar="S", help="control strength (default 1.0)"
        )
        _unit_option(
            group,
            "--start",
            key="start",
            type=float,
            metavar="F",
            help="fraction of the steps where control starts (default 0)",
        )
        _unit_option(
            group,
            "--end",
            key="end",
            type=float,
            metavar="F",
            help="fraction of the steps where control ends (default 1); start < end",
        )
        _unit_option(
            group,
            "--mode",
            key="mode",
            choices=list(CONTROL_MODES),
            metavar="MODE",
            help="control mode (default balanced; see the list below)",
        )
        _unit_option(
            group,
            "--mask",
            key="mask",
            metavar="FILE",
            help="region mask: the condition applies where the mask is white",
        )


def add_model_options(parser: argparse.ArgumentParser, diffusion: bool) -> None:
    group = parser.add_argument_group("models and device")
    if diffusion:
        group.add_argument(
            "--preset",
            choices=["auto", *PRESETS],
            help="auto (default): sd15 when cached or reachable, else offline (the embedded small "
            "model, or tiny random weights when it is not installed); sd15; offline; tiny",
        )
        group.add_argument("--base-model", metavar="ID_OR_DIR", help="base model instead of the preset's")
        group.add_argument(
            "--controlnet",
            type=controlnet_source,
            action="append",
            metavar="CONDITION=ID_OR_DIR",
            help="ControlNet for a condition instead of the preset's (repeatable)",
        )
    group.add_argument(
        "--annotators",
        metavar="ID_OR_DIR",
        help="detector weights for openpose/midas/hed/pidinet (default lllyasviel/Annotators)",
    )
    group.add_argument(
        "--device",
        type=device_name,
        metavar="DEVICE",
        help="cpu, cuda, cuda:N or mps (default: cuda when available, else cpu)",
    )


def tables_epilog(full: bool) -> str:
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
                lines.append(
                    f"        --param {key + '=V':17} {p.label}: {p.minimum:g}..{p.maximum:g}, default {p.default:g}"
                )
    if full:
        lines.append("control modes (--mode):")
        lines += [f"  {key:15} {mode.label}" for key, mode in CONTROL_MODES.items()]
        lines.append(f"schedulers (--scheduler): {', '.join(SCHEDULERS)}")
    return "\n".join(lines)
