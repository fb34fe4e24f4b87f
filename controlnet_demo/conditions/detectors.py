"""controlnet-aux detectors that need weights (OpenPose, MiDaS, HED, PiDiNet, line art, M-LSD, NormalBae), loaded lazily
and kept resident."""

from __future__ import annotations

import importlib
import os
import threading

from ..errors import ModelUnavailableError

# Where each detector's class lives in controlnet-aux, and every weights file its from_pretrained reads from
# lllyasviel/Annotators (or a local folder with the same layout).
DETECTORS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "openpose": (
        "controlnet_aux.open_pose",
        "OpenposeDetector",
        ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"),
    ),
    "midas": ("controlnet_aux.midas", "MidasDetector", ("dpt_hybrid-midas-501f0c75.pt",)),
    "hed": ("controlnet_aux.hed", "HEDdetector", ("ControlNetHED.pth",)),
    "pidinet": ("controlnet_aux.pidi", "PidiNetDetector", ("table5_pidinet.pth",)),
    "lineart": ("controlnet_aux.lineart", "LineartDetector", ("sk_model.pth", "sk_model2.pth")),
    "lineart_anime": ("controlnet_aux.lineart_anime", "LineartAnimeDetector", ("netG.pth",)),
    "mlsd": ("controlnet_aux.mlsd", "MLSDdetector", ("mlsd_large_512_fp32.pth",)),
    "normalbae": ("controlnet_aux.normalbae", "NormalBaeDetector", ("scannet.pt",)),
}


class Detectors:
    """Lazily loaded controlnet-aux detectors, kept resident once loaded.

    `source` is a hub repo id (normally lllyasviel/Annotators) or a local folder with the same files. When
    `online` is False only the local cache is consulted, so a missing file fails at once instead of after
    the hub client's retries.
    """

    def __init__(self, source: str, online: bool, device: str = "cpu"):
        self.source, self.online, self.device = source, online, device
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, name: str):
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load(name)
            return self._loaded[name]

    def load_all(self) -> list[str]:
        """Every detector whose weights are here, loaded onto the device now (ZeroGPU wants that at start-up); the
        names of those that could not be (each says why when it is used)."""
        missing = []
        for name in DETECTORS:
            try:
                self.get(name)
            except ModelUnavailableError:
                missing.append(name)
        return missing

    def _load(self, name: str):
        module, cls_name, filenames = DETECTORS[name]
        source = self.source
        # Every file is found (or fetched) before any model is built: a miss costs nothing and names its file;
        # otherwise from_pretrained would fail late, and MiDaS would try a download of its own.
        for filename in filenames:
            if os.path.isdir(source):
                if not os.path.isfile(os.path.join(source, filename)):
                    raise self._missing(name, filename, "file not in the folder")
                continue
            if os.path.isabs(source) or source.startswith("."):
                raise self._missing(name, filename, "folder not found")
            from huggingface_hub import hf_hub_download

            try:
                hf_hub_download(source, filename, local_files_only=not self.online)
            except Exception as exc:
                raise self._missing(name, filename, type(exc).__name__) from None
        cls = getattr(importlib.import_module(module), cls_name)
        try:
            detector = cls.from_pretrained(source, local_files_only=not self.online)
        except Exception as exc:
            why = f"{type(exc).__name__}: {exc}"
            raise self._missing(name, ", ".join(filenames), why) from None
        return detector.to(self.device) if hasattr(detector, "to") else detector

    def _missing(self, name: str, filename: str, why: str) -> ModelUnavailableError:
        return ModelUnavailableError(
            "The {name} detector needs its weights ({files} from {source}), which are not available here "
            "({why}). Upload a ready control map and choose the preprocessor 'none', pick another preprocessor, "
            "or run the app once with internet access so the weights are cached.",
            name=name,
            files=filename,
            source=self.source,
            why=why,
        )
