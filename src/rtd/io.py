"""Atomic, deterministic file output and seeding helpers.

Every output is written to a temporary file in the same folder and renamed into place, so an
interrupted stage never leaves a partial file that DVC could cache. Nothing written carries a
timestamp, so reruns are byte-identical.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; outputs get the usual permissions
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON with sorted keys and a trailing newline (stable bytes across runs)."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON output; a missing or corrupted file raises an RTDError naming the fix."""
    from .errors import RTDError

    path = Path(path)
    if not path.is_file():
        raise RTDError(f"{path} is missing: run `dvc repro` (or `dvc pull`) to produce it")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise RTDError(f"{path} is corrupted ({exc}): delete it and run `dvc repro`") from exc


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Save named numpy arrays as one safetensors shard (deterministic bytes, no pickle)."""
    from safetensors.numpy import save_file

    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in arrays.items()}, str(tmp), metadata=metadata)


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Load a safetensors shard; a missing or truncated shard raises an RTDError naming the fix."""
    from safetensors.numpy import load_file

    from .errors import RTDError

    path = Path(path)
    if not path.is_file():
        raise RTDError(f"data shard {path} is missing: run `dvc repro` (or `dvc pull`) to rebuild it")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error types for truncated headers/data
        raise RTDError(
            f"data shard {path} is unreadable ({exc}); it is truncated or corrupted: delete it and run `dvc repro`"
        ) from exc


def shard_metadata(path: str | os.PathLike) -> dict[str, str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as f:
        return dict(f.metadata() or {})


def seed_everything(seed: int, num_threads: int) -> None:
    """Seed Python, numpy and torch and fix the thread count (CPU results depend on it)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(num_threads)
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        # what torch.use_deterministic_algorithms does, minus importing torch._inductor (about 1 s per stage)
        # to set a flag only torch.compile reads; nothing here compiles
        set_flag(True, warn_only=True)
    set_fill_uninitialized(False)


def set_fill_uninitialized(fill: bool) -> None:
    """Whether deterministic mode fills every new tensor (torch.empty) with NaN.

    Torch does so to expose reads of uninitialised memory; on the CPU it costs 10-20 % of a training step
    (README, Cost). No op of this project reads uninitialised memory: with the fill off, forced reruns of the
    stages reproduce the outputs made with it on byte for byte.
    """
    import torch

    torch._C._set_deterministic_fill_uninitialized_memory(fill)
