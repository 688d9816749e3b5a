"""DVC stage `ood`: the fixed OOD-style set D_OOD from the ID training images."""
from __future__ import annotations

from .common import run_stage


def main() -> None:
    import json

    from ..config import load_params
    from ..data.splits import load_split
    from ..io import save_arrays, seed_everything
    from ..models import backbone_spec, load_model
    from ..ood.vision import generate_ood

    params = load_params()
    ood = params["ood"]
    seed_everything(ood["seed"], params["num_threads"])
    train = load_split("data/vision/train.safetensors")
    teacher = load_model("models/teacher/model.safetensors", backbone_spec(params)) if "pgd" in ood["transforms"] else None
    arrays = generate_ood(train.images, train.labels, ood, teacher)
    save_arrays("data/vision/ood/train_ood.safetensors", arrays,
                metadata={"transform_names": json.dumps(list(ood["transforms"]))})


if __name__ == "__main__":
    run_stage("ood", main)
