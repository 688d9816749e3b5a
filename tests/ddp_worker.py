"""One rank of the DDP equivalence test (tests/test_distributed.py): RTD for one step of a global batch.

    WORLD_SIZE=2 RANK=r MASTER_ADDR=127.0.0.1 MASTER_PORT=p python tests/ddp_worker.py OUT.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rtd.data.splits import Split  # noqa: E402
from rtd.distributed import World, close, init_world  # noqa: E402
from rtd.methods import RTD  # noqa: E402
from rtd.models import Classifier  # noqa: E402
from rtd.train import OODSet, train  # noqa: E402

TP = {"epochs": 1, "patience": 1, "batch_size": 8, "lr": 1e-2, "weight_decay": 0.01, "warmup_steps": 0,
      "grad_clip": 0.0, "bn_policy": "frozen", "drop_connect": 0.0, "eval_batch_size": 4, "checkpoint_every": 100,
      "device": "cpu", "precision": "fp32", "grad_accum": 1}


def _model(seed: int) -> Classifier:
    torch.manual_seed(seed)
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return Classifier(backbone, 4, num_classes=3)


def run(world: World, grad_accum: int = 1) -> dict:
    """Train a toy student with RTD (KD and AR against an online teacher) on one global batch of 8."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 3, 6, 6), dtype=np.uint8)
    split = Split(images, rng.integers(0, 3, 8).astype(np.int64), np.zeros(8, dtype=np.int64), ["id"])
    ood = OODSet(255 - images, np.arange(8))
    student, teacher = _model(0), _model(1)
    result = train(student, RTD(1.0, 0.5, 2.0, False), split, split, split, {**TP, "grad_accum": grad_accum}, seed=0,
                   rho=1.0, ood=ood, online_teacher=teacher, progress=False, world=world)
    row = result.log[0]
    return {"terms": {k: row[k] for k in ("task", "kd", "ar", "total")},
            "weights": torch.cat([p.detach().flatten() for p in result.model.parameters()]).tolist()}


if __name__ == "__main__":
    world = init_world("cpu")
    out = run(world)
    close(world)
    Path(sys.argv[1]).with_suffix(f".rank{world.rank}.json").write_text(json.dumps(out))
