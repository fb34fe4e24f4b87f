"""The training stream: example i of a run depends only on (seed, i), made here or by worker processes ahead of
the loop, so a resumed run sees exactly the batches it would have seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import UserInputError
from .. import world
from .config import TrainConfig


def _square(image: np.ndarray, size: int) -> np.ndarray:
    """Centre crop to a square, then area-resize to size x size. (size, size, 3) uint8"""
    import cv2

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    image = image[top : top + s, left : left + s]
    return image if s == size else cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class ImageFolder:
    """Every picture in a folder, prompt-less: enough to train the VAE on one's own images."""

    SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")

    def __init__(self, folder: Path):
        self.files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in self.SUFFIXES)
        if not self.files:
            raise UserInputError(f"{folder} holds no images ({', '.join(self.SUFFIXES)}).")

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        return world.read_rgb(self.files[i]), None, ""


class Examples:
    """The training stream. Example i depends only on (seed, i): world example i (as `world.write_dataset(seed)`
    writes it), or item i of a seeded shuffle of the folder, a new shuffle each epoch."""

    def __init__(self, config: TrainConfig, with_condition: bool):
        self.seed, self.size = config.seed, config.resolution
        self.world = world.WorldConfig(warp=config.world_warp)
        self.condition = config.condition if with_condition else None
        self.dataset = None
        if config.data is not None:
            folder = Path(config.data)
            if not folder.is_dir():
                raise UserInputError(f"--data {folder}: no such folder.")
            try:
                self.dataset = world.DatasetFolder(folder, config.condition)
            except (FileNotFoundError, KeyError) as exc:
                if with_condition:
                    raise UserInputError(f"--data {folder}: {exc.args[0]}") from None
                self.dataset = ImageFolder(folder)
        elif with_condition and self.condition not in world.MAPS:
            raise UserInputError(
                f"The world has no {self.condition!r} maps; choose from {', '.join(world.MAPS)} "
                "or give a dataset with --data."
            )
        self._epoch, self._order = -1, None

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray | None, str]:
        if self.dataset is None:
            ex = world.example(
                np.random.default_rng([self.seed, i]),
                self.size,
                self.world,
                maps=(self.condition,) if self.condition else (),
            )
            return ex.image, ex.maps.get(self.condition), ex.prompt
        epoch, k = divmod(i, len(self.dataset))
        if epoch != self._epoch:
            self._epoch, self._order = epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.dataset))
        image, condition, prompt = self.dataset[int(self._order[k])]
        return _square(image, self.size), None if condition is None else _square(condition, self.size), prompt

    def arrays(self, step: int, batch_size: int) -> dict:
        """Batch `step` as made on the CPU: images and conditions (B, S, S, 3) uint8 (conditions None without
        one), prompts."""
        images, conditions, prompts = zip(*(self[step * batch_size + j] for j in range(batch_size)))
        return dict(
            images=np.stack(images), prompts=list(prompts), conditions=np.stack(conditions) if self.condition else None
        )

    @staticmethod
    def on_device(arrays: dict, device: torch.device) -> dict:
        """pixels (B, 3, S, S) in [-1, 1], condition (B, 3, S, S) in [0, 1] or None, prompts."""
        as_tensor = lambda a: torch.as_tensor(a).permute(0, 3, 1, 2).float().to(device)  # noqa: E731
        return dict(
            pixels=as_tensor(arrays["images"]) / 127.5 - 1,
            prompts=arrays["prompts"],
            condition=None if arrays["conditions"] is None else as_tensor(arrays["conditions"]) / 255,
        )

    def batch(self, step: int, batch_size: int, device: torch.device) -> dict:
        return self.on_device(self.arrays(step, batch_size), device)


class _Batches(torch.utils.data.Dataset):
    """Item `step` is batch `step` of the stream: a DataLoader's workers make them ahead of the loop, each one
    the same as the loop would make itself (a batch depends only on the seed and the step)."""

    def __init__(self, data: Examples, batch_size: int):
        self.data, self.batch_size = data, batch_size

    def __getitem__(self, step: int) -> dict:
        return self.data.arrays(step, self.batch_size)


def shard(start: int, stop: int, process: int = 0, processes: int = 1) -> range:
    """The stream's batches that one of `processes` training processes reads for micro-steps start .. stop - 1:
    every process's k-th, so a micro-step of N processes reads the examples one process would read with N times
    the batch, each process its own contiguous share."""
    return range(start * processes + process, stop * processes + process, processes)


def batches(data: Examples, config: TrainConfig, start: int, stop: int, process: int = 0, processes: int = 1):
    """This process's batches for micro-steps start .. stop - 1 (`shard`) as CPU arrays, made by `config.workers`
    processes (0: here, one by one)."""
    steps = shard(start, stop, process, processes)
    if config.workers == 0:
        return (data.arrays(index, config.batch_size) for index in steps)
    return iter(
        torch.utils.data.DataLoader(
            _Batches(data, config.batch_size),
            batch_size=None,
            sampler=steps,
            num_workers=config.workers,
            collate_fn=_as_made,
            prefetch_factor=4,
        )
    )


def _as_made(batch: dict) -> dict:  # the DataLoader's collate: the arrays as Examples made them
    return batch
