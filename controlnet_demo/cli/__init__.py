"""The command line: `python -m controlnet_demo generate | detect | train | evaluate` (also `controlnet-demo ...`).

Subcommands live in `COMMANDS` (name -> `Command`): adding one is adding an entry with a function that adds its
options to an argparse parser and a function that runs the parsed namespace and returns an exit code. Errors a user
can fix print one line and exit 2; a bug keeps its traceback, which is what a CLI user needs to report it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DemoError, GenerationTimeout
from .evaluate import configure_evaluate, evaluate_epilog, run_evaluate
from .generate import configure_detect, configure_generate, run_detect, run_generate
from .options import FAILED, PROG, USER_ERROR, Formatter, Parser, tables_epilog
from .train import configure_train, train_epilog


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
        configure=configure_generate,
        run=run_generate,
        epilog=lambda: tables_epilog(full=True),
    ),
    "detect": Command(
        help="write a condition's control map only (no diffusion model is loaded)",
        description="Make the control map of one condition from an image and write it as a PNG.",
        configure=configure_detect,
        run=run_detect,
        epilog=lambda: tables_epilog(full=False),
    ),
    "train": Command(
        help="train a VAE, a small base model or a ControlNet (the paper's recipe); export a pipeline",
        description="Train the small SD-architecture model family on the synthetic world (or a dataset folder), "
        "or a ControlNet for any SD1.5-style base; `train KIND --help` lists each kind's options.",
        configure=configure_train,
        run=lambda args: args.train(args),
        epilog=train_epilog,
    ),
    "evaluate": Command(
        help="measure how well a model's ControlNets follow their maps and prompts, on held-out synthetic scenes",
        description="Score a pipeline folder (the embedded model by default) on held-out scenes of the synthetic "
        "world: per condition matched vs shuffled maps, and prompt adherence. Prints a Markdown table.",
        configure=configure_evaluate,
        run=run_evaluate,
        epilog=evaluate_epilog,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        formatter_class=Formatter,
        description="ControlNet demo: generate images steered by edges, pose, depth or scribbles, or "
        "make control maps. Settings also come from CONTROLNET_DEMO_* environment "
        "variables; options override them.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=Parser)
    for name, command in COMMANDS.items():
        p = sub.add_parser(
            name,
            help=command.help,
            description=command.description,
            epilog=command.epilog() if command.epilog else None,
            formatter_class=Formatter,
        )
        command.configure(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except GenerationTimeout as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return FAILED
    except DemoError as exc:
        print(f"{PROG} {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        import torch

        if isinstance(exc, torch.OutOfMemoryError):
            from ..service import user_message

            print(f"{PROG} {args.command}: error: {_one_line(user_message(exc))}", file=sys.stderr)
            return FAILED
        raise  # a bug: the traceback is what a CLI user needs to report it


def _one_line(message) -> str:
    return " ".join(str(message).split())
