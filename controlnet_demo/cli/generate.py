"""`generate` and `detect`: every option maps onto a `UnitSpec` / `GenerateSpec` field and goes through the one
`ControlNetService`, so the CLI validates, preprocesses, generates and saves exactly as the app does.

Composition: each `--condition NAME` starts a new unit, and the per-unit options (`--image`, `--preprocessor`,
`--strength`, ...) apply to the latest `--condition` before them:

    generate --condition pose --image a.png --preprocessor none --condition canny --image b.jpg --end 0.6 ...
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from ..conditions import CONDITIONS
from ..engine import SCHEDULERS
from ..errors import UserInputError, check_number
from ..service import DEFAULT_NEGATIVE, MAX_SEED
from .options import add_model_options, add_unit_options, scheduler_name
from .requests import build_settings, build_spec, check_unit, existing_file, model_warning, unit_label


def configure_generate(p: argparse.ArgumentParser) -> None:
    add_unit_options(p, full=True)
    g = p.add_argument_group("generation")
    g.add_argument("--prompt", help="what to draw (required unless --from-png)")
    g.add_argument("--negative-prompt", metavar="TEXT", help=f"what to avoid (default: {DEFAULT_NEGATIVE!r})")
    g.add_argument("--steps", type=int, metavar="N", help="denoising steps (default: the preset's)")
    g.add_argument("--guidance", type=float, metavar="G", help="guidance scale, CFG (default: the preset's)")
    g.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help=f"seed of the first image, 0..{MAX_SEED}; image k uses S+k (default: random; -1 = random)",
    )
    g.add_argument("--num-images", type=int, metavar="N", help="images to make (default 1)")
    g.add_argument(
        "--resolution",
        type=int,
        metavar="PX",
        help="longer side of the output; the first condition's image sets the aspect (default: the preset's)",
    )
    g.add_argument(
        "--scheduler",
        type=scheduler_name,
        choices=list(SCHEDULERS),
        metavar="NAME",
        help="sampler (default UniPC; see the list below)",
    )
    g.add_argument(
        "--speed",
        metavar="NAME",
        help="full (default: the paper's path, the preset's steps), or a few-step way of the preset with its own "
        "sampler, steps and guidance: lcm (sd15: LCM-LoRA, 4 steps; offline: the LoRA distilled here), hyper (sd15: "
        "Hyper-SD 8 steps), fast (tiny)",
    )
    g.add_argument(
        "--from-png",
        metavar="FILE",
        help="reproduce an image this demo wrote: its stored parameters are the defaults, every option given "
        "overrides them. Give the original images with --image, one per stored condition in order (--condition "
        "may be left out), and --mask for those that had one. The models are never taken from the PNG: pass the "
        "--preset it was made with (a warning names it when it differs)",
    )
    o = p.add_argument_group("output")
    o.add_argument(
        "--out",
        default="outputs",
        metavar="DIR_OR_FILE",
        help="folder for the images (with their parameters in the PNG metadata) and the control maps "
        "(default: ./outputs); or, for one image, a .png file name (its maps go beside it)",
    )
    o.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long (default: no limit)")
    o.add_argument("-q", "--quiet", action="store_true", help="no progress bar or notes, only the result lines")
    add_model_options(p, diffusion=True)


def configure_detect(p: argparse.ArgumentParser) -> None:
    add_unit_options(p, full=False)
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="where to write the control map (PNG); an existing folder gets <image>-<condition>.png",
    )
    add_model_options(p, diffusion=False)


def _note(args, message: str) -> None:
    if not getattr(args, "quiet", False):
        print(message, file=sys.stderr)


def quiet_libraries() -> None:
    """diffusers / transformers warn about things a CLI user can't act on (dtype casts of the tiny model)."""
    import diffusers
    import transformers

    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.set_verbosity_error()


def output_dir(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"--out {path}: can't create the folder ({exc.strerror or exc}).") from None
    return out


def _destination(out: str, num_images) -> tuple[Path, Path | None]:
    """(folder for the images and maps, the file name of the one image or None): `--out` names a folder, or a .png
    file when one image is made."""
    path = Path(out)
    if path.suffix.lower() != ".png" or path.is_dir():
        return path, None
    if num_images not in (None, 1):
        raise UserInputError(
            f"--out {out} names one file, but --num-images {num_images} makes {num_images} images: "
            "give a folder instead (each image gets its own name there)."
        )
    return path.parent, path


def run_generate(args: argparse.Namespace) -> int:
    spec, stored = build_spec(args)
    settings = build_settings(args)  # never from the PNG: a file does not choose the weights loaded
    folder, single = _destination(args.out, spec.num_images)

    from PIL import Image
    from tqdm import tqdm

    from ..service import ControlNetService, Done, Failed, MapsReady, StepDone

    quiet_libraries()
    service = ControlNetService(settings, output_dir=str(folder))
    preset, bar, output = service.preset, None, None
    if stored is not None:  # before any model is loaded, even with -q: the PNG named other models than these
        warning = model_warning(stored, preset, args.from_png)
        if warning:
            print(warning, file=sys.stderr)
    with contextlib.closing(service.generate(spec)) as events:
        try:
            for event in events:
                if isinstance(event, MapsReady):  # every value checked, maps detected, no model loaded yet
                    request = event.prepared.request
                    output_dir(str(folder))
                    _note(args, f"model: {preset.title} [{preset.name}] ({service.resolved.reason})")
                    if preset.name == "tiny":
                        _note(args, "note: the tiny preset is a random model: its images are noise, not pictures.")
                    _note(
                        args,
                        f"seed {request.seed}, {request.width}x{request.height}, {request.steps} steps; "
                        "loading models ...",
                    )
                elif isinstance(event, StepDone):  # the bar starts once the models are loaded: denoising only
                    if bar is None:
                        bar = tqdm(
                            total=event.steps,
                            desc="Denoising",
                            unit="step",
                            file=sys.stderr,
                            disable=args.quiet,
                            dynamic_ncols=True,
                        )
                    bar.update(event.step - bar.n)
                elif isinstance(event, Done):
                    output = event.output
                elif isinstance(event, Failed):
                    raise event.error
        finally:
            if bar is not None:
                bar.close()

    files = [Path(f) for f in output.files]
    if single is not None:
        files = [files[0].replace(single)]
    stem = files[0].stem
    map_files = []
    for k, (control, unit) in enumerate(zip(output.maps, output.params["units"]), start=1):
        path = folder / f"{stem}-map{k}-{unit['condition']}.png"
        Image.fromarray(control).save(path)
        map_files.append(path)
    for path, seed in zip(files, output.params["seeds"]):
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
        raise UserInputError(f"{unit_label(1, unit)} has no --image; give one after --condition.")
    image_path = existing_file(unit["image"], "--image")
    params = check_unit(1, unit, unit["condition"], unit.get("preprocessor"), unit.get("params", {}))
    settings = build_settings(args)
    limits = settings.limits
    resolution = check_number(
        unit.get("preprocess_resolution", 512), "--preprocess-resolution", *limits.preprocess_resolutions, integer=True
    )

    from PIL import Image

    from ..conditions import Detectors, detect
    from ..images import load_rgb
    from ..models.devices import pick_device
    from ..settings import hub_offline

    image = load_rgb(image_path, limits, what=f"{CONDITIONS[unit['condition']].label.lower()} image")
    device, _ = pick_device(settings.device)
    detectors = Detectors(settings.annotators, online=not hub_offline(), device=str(device))
    control = detect(unit["condition"], image, unit.get("preprocessor"), resolution, detectors, **params)

    out = Path(args.out)
    if out.is_dir():
        out = out / f"{Path(image_path).stem}-{unit['condition']}.png"
    elif out.suffix.lower() != ".png":
        raise UserInputError(f"--out {args.out}: give a .png file name (or an existing folder).")
    output_dir(str(out.parent))
    Image.fromarray(control).save(out)
    print(f"map {out} ({control.shape[1]}x{control.shape[0]})")
    return 0
