"""Stand-ins for lllyasviel/Annotators: the real controlnet-aux networks with seeded random weights, saved under
the hub repo's file names and in the layout each `from_pretrained` expects, so `Detectors(folder)` runs the real
loading and inference code offline. Weights are stored as float16 (load_state_dict casts them back) to halve the
files; MiDaS DPT-Hybrid and OpenPose are ~120M parameters each, ~250 MB each on disk.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch


def _strip_first(state: dict) -> dict:
    # open_pose/util.transfer looks each weight up without its first name part ("model1_1.conv.weight" -> "conv.weight")
    return {k.split(".", 1)[1]: v for k, v in state.items()}


def _openpose() -> dict[str, dict]:
    from controlnet_aux.open_pose.face import FaceNet
    from controlnet_aux.open_pose.model import bodypose_model, handpose_model

    return {
        "body_pose_model.pth": _strip_first(bodypose_model().state_dict()),
        "hand_pose_model.pth": _strip_first(handpose_model().state_dict()),
        "facenet.pth": FaceNet().state_dict(),
    }


def _midas() -> dict[str, dict]:
    from controlnet_aux.midas.midas.dpt_depth import DPTDepthModel

    # The same construction as controlnet_aux.midas.api.load_model("dpt_hybrid"); the timm backbone is built
    # with pretrained=False there, so nothing is downloaded.
    model = DPTDepthModel(path=None, backbone="vitb_rn50_384", non_negative=True)
    return {"dpt_hybrid-midas-501f0c75.pt": model.state_dict()}


def _hed() -> dict[str, dict]:
    from controlnet_aux.hed import ControlNetHED_Apache2

    return {"ControlNetHED.pth": ControlNetHED_Apache2().state_dict()}


def _pidinet() -> dict[str, dict]:
    from controlnet_aux.pidi.model import pidinet

    # The released checkpoint is a DataParallel training snapshot: {"state_dict": {"module.<name>": tensor}}.
    return {"table5_pidinet.pth": {"state_dict": {f"module.{k}": v for k, v in pidinet().state_dict().items()}}}


def _lineart() -> dict[str, dict]:
    from controlnet_aux.lineart import Generator

    return {name: Generator(3, 1, 3).state_dict() for name in ("sk_model.pth", "sk_model2.pth")}  # fine, coarse


def _lineart_anime() -> dict[str, dict]:
    import functools

    from controlnet_aux.lineart_anime import UnetGenerator
    from torch import nn

    norm = functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False)
    # the released file is a DataParallel snapshot ("module." names), which from_pretrained strips
    state = UnetGenerator(3, 1, 8, 64, norm_layer=norm, use_dropout=False).state_dict()
    return {"netG.pth": {f"module.{k}": v for k, v in state.items()}}


def _mlsd() -> dict[str, dict]:
    from controlnet_aux.mlsd.models.mbv2_mlsd_large import MobileV2_MLSD_Large

    return {"mlsd_large_512_fp32.pth": MobileV2_MLSD_Large().state_dict()}


def _normalbae() -> dict[str, dict]:
    import types

    from controlnet_aux.normalbae.nets.NNET import NNET

    # NormalBaeDetector.from_pretrained's construction (its EfficientNet from controlnet-aux's own copy, untrained);
    # the released file is a training snapshot: {"model": {"module.<name>": tensor}}
    args = types.SimpleNamespace(mode="client", architecture="BN", pretrained="scannet", sampling_ratio=0.4)
    args.importance_ratio = 0.7
    return {"scannet.pt": {"model": {f"module.{k}": v for k, v in NNET(args).state_dict().items()}}}


BUILDERS: dict[str, Callable[[], dict[str, dict]]] = {
    "openpose": _openpose,
    "midas": _midas,
    "hed": _hed,
    "pidinet": _pidinet,
    "lineart": _lineart,
    "lineart_anime": _lineart_anime,
    "mlsd": _mlsd,
    "normalbae": _normalbae,
}


def _half(obj):
    if isinstance(obj, dict):
        return {k: _half(v) for k, v in obj.items()}
    return obj.half() if torch.is_tensor(obj) and obj.is_floating_point() else obj


def write_random_annotators(folder: Path, detector: str, seed: int = 0) -> list[Path]:
    """Write `detector`'s weight files (seeded random init) into `folder`; returns their paths."""
    torch.manual_seed(seed)
    paths = []
    for filename, state in BUILDERS[detector]().items():
        torch.save(_half(state), folder / filename)
        paths.append(folder / filename)
    return paths
