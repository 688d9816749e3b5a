"""The split structure every benchmark produces: images (N,C,H,W) uint8, labels, domain ids."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import RTDError
from ..io import load_arrays, save_arrays, shard_metadata

SPLITS = ("train", "id_val", "id_test", "ood_val", "ood_test")


@dataclass
class Split:
    images: np.ndarray   # (N, C, H, W) uint8, C in {1, 3}
    labels: np.ndarray   # (N,) int64
    domains: np.ndarray  # (N,) int64 index into domain_names
    domain_names: list[str]
    metadata: np.ndarray | None = None   # (N, k) int64 WILDS metadata (paper configuration), for dataset.eval

    def __len__(self) -> int:
        return len(self.labels)

    def domain_mask(self, name: str) -> np.ndarray:
        return self.domains == self.domain_names.index(name)


def save_split(path: str | Path, split: Split) -> None:
    arrays = {"images": split.images, "labels": split.labels, "domains": split.domains}
    if split.metadata is not None:
        arrays["metadata"] = split.metadata
    save_arrays(path, arrays, metadata={"domain_names": json.dumps(split.domain_names)})


def load_split(path: str | Path) -> Split:
    arrays = load_arrays(path)
    missing = {"images", "labels", "domains"} - set(arrays)
    if missing:
        raise RTDError(f"data shard {path} lacks {sorted(missing)}: rebuild it with `dvc repro data`")
    names = json.loads(shard_metadata(path).get("domain_names", "[]"))
    split = Split(arrays["images"], arrays["labels"], arrays["domains"], names, arrays.get("metadata"))
    if not (len(split.images) == len(split.labels) == len(split.domains)):
        raise RTDError(f"data shard {path} is inconsistent (array lengths differ): rebuild it with `dvc repro data`")
    return split


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N,C,H,W) -> float32 in [0, 1] with 3 channels (grey images are repeated), channels-last.

    Integer token ids (N, L) of the language track pass through unchanged (as int64).

    Channels-last is the layout the models run in: on the CPU it makes EfficientNet's training step
    about 1.7x faster (benchmarks/run.py).
    """
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 and not x.is_floating_point():
        return x.long()  # token ids (the language track): the model embeds them
    x = x.float().div_(255.0)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous(memory_format=torch.channels_last)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float [0, 1] -> uint8 with rounding (the storage format of every shard)."""
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
