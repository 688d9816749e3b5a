"""DVC stage `evaluate@<arm>`: metrics of every run of one arm (all seeds, all variants) on ID and OOD.

    python -m rtd.stages.evaluate --arm ft       # -> reports/eval/ft.json
    python -m rtd.stages.evaluate --arm teacher
"""
from __future__ import annotations

import argparse

from .common import run_stage


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="evaluate every run of one arm")
    parser.add_argument("--arm", required=True)
    arm = parser.parse_args(argv).arm

    from ..arms import TRAINED, run_dir, variant_values
    from ..config import load_params
    from ..errors import ParamError

    params = load_params()
    if arm != "teacher" and arm not in TRAINED:
        raise ParamError(f"unknown arm {arm!r}; choose teacher or one of {', '.join(TRAINED)}")

    from ..evaluate import evaluate_splits, load_eval_splits, rounded
    from ..io import read_json, seed_everything, write_json
    from ..models import backbone_spec, load_model

    ep, backbone = params["eval"], backbone_spec(params)
    seed_everything(0, params["num_threads"])
    splits = load_eval_splits()
    if arm == "teacher":
        dirs = {"teacher": ("models/teacher", None, None)}
    else:
        dirs = {run_dir(arm, seed, v).removeprefix(f"models/{arm}/"): (run_dir(arm, seed, v), seed, v)
                for v in variant_values(TRAINED[arm], params) for seed in params["seeds"]}
    runs = {}
    for name, (path, seed, variant) in dirs.items():
        model = load_model(f"{path}/model.safetensors", backbone)
        m = evaluate_splits(model, splits["id_test"], splits["ood_val"], splits["ood_test"], ep["batch_size"],
                            ep["ece_bins"], id_val=splits["id_val"], vision=params["vision"])
        if arm == "teacher":
            # only the probe (head) is trained, by L-BFGS on cached features, not by SGD steps
            m.update(trainable_params=sum(p.numel() for p in model.head.parameters()), flops_per_step=None)
        else:
            stats = read_json(f"{path}/train_stats.json")
            m.update({k: stats[k] for k in ("trainable_params", "flops_per_step", "best_epoch", "epochs_run")})
            m.update(seed=seed, variant=variant, best_id_val_acc=stats["best_id_val_acc"])
        runs[name] = m
    write_json(f"reports/eval/{arm}.json", rounded({"arm": arm, "runs": runs}))


if __name__ == "__main__":
    run_stage("evaluate", main)
