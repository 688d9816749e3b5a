"""DVC stage `evaluate@<method>`: metrics of one trained model (or the teacher) on ID and OOD splits.

    python -m rtd.stages.evaluate --method ft
"""
from __future__ import annotations

import argparse

from .common import run_stage


def main(argv: list[str] | None = None) -> None:
    from ..config import METHODS, load_params
    from ..data.splits import load_split
    from ..errors import ParamError
    from ..evaluate import evaluate_splits, rounded
    from ..io import read_json, seed_everything, write_json
    from ..models import load_model

    parser = argparse.ArgumentParser(description="evaluate one method")
    parser.add_argument("--method", required=True)
    name = parser.parse_args(argv).method
    if name != "teacher" and name not in METHODS:
        raise ParamError(f"unknown method {name!r}; choose teacher or one of {', '.join(METHODS)}")
    params = load_params()
    ep = params["eval"]
    seed_everything(0, params["num_threads"])
    model = load_model(f"models/{name}/model.safetensors", params["teacher"]["backbone"])
    splits = {s: load_split(f"data/vision/{s}.safetensors") for s in ("id_test", "ood_val", "ood_test")}
    metrics = evaluate_splits(model, splits["id_test"], splits["ood_val"], splits["ood_test"], ep["batch_size"], ep["ece_bins"])
    if name == "teacher":
        # the probe (head) is the only part trained; it is fit by L-BFGS on cached features, not by SGD steps
        metrics.update(trainable_params=sum(p.numel() for p in model.head.parameters()), flops_per_step=None)
    else:
        stats = read_json(f"models/{name}/train_stats.json")
        metrics.update({k: stats[k] for k in ("trainable_params", "flops_per_step", "best_epoch", "epochs_run")})
    write_json(f"reports/eval/{name}.json", rounded(metrics))


if __name__ == "__main__":
    run_stage("evaluate", main)
