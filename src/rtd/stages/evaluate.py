"""DVC stage `evaluate@<arm>`: metrics of every run of one arm (all seeds, all variants) on ID and OOD.

    python -m rtd.stages.evaluate --arm ft       # -> reports/eval/ft.json
    python -m rtd.stages.evaluate --arm teacher
    python -m rtd.stages.evaluate --arm rtd --track text   # -> reports/text/eval/rtd.json
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    opts = track_arg(argv, "evaluate every run of one arm", **{"--arm": {"required": True}})
    arm, track = opts.arm, opts.track

    from ..arms import TRAINED, run_dir, variant_values
    from ..errors import ParamError

    params = track_params(track)
    if arm != "teacher" and arm not in TRAINED:
        raise ParamError(f"unknown arm {arm!r}; choose teacher or one of {', '.join(TRAINED)}")

    from ..evaluate import evaluate_splits, load_eval_splits, rounded
    from ..io import read_json, seed_everything, write_json
    from ..models import backbone_spec, load_model
    from ..tracks import get_track, track_path as P

    ep, backbone = params["eval"], backbone_spec(params, track)
    official = get_track(track).official_metrics(params)
    seed_everything(0, params["num_threads"])
    splits = load_eval_splits(track)
    if arm == "teacher":
        dirs = {"teacher": (P("models/teacher", track), None, None)}
    else:
        dirs = {run_dir(arm, seed, v).removeprefix(f"models/{arm}/"): (run_dir(arm, seed, v, track), seed, v)
                for v in variant_values(TRAINED[arm], params) for seed in params["seeds"]}
    runs = {}
    for name, (path, seed, variant) in dirs.items():
        model = load_model(f"{path}/model.safetensors", backbone)
        m = evaluate_splits(model, splits["id_test"], splits["ood_val"], splits["ood_test"], ep["batch_size"],
                            ep["ece_bins"], id_val=splits["id_val"],
                            official=official)
        if arm == "teacher":
            # only the probe (head) is trained, by L-BFGS on cached features, not by SGD steps
            m.update(trainable_params=sum(p.numel() for p in model.head.parameters()), flops_per_step=None)
        else:
            stats = read_json(f"{path}/train_stats.json")
            m.update({k: stats[k] for k in ("trainable_params", "flops_per_step", "best_epoch", "epochs_run")})
            m.update(seed=seed, variant=variant, best_id_val_acc=stats["best_id_val_acc"])
        runs[name] = m
    write_json(P(f"reports/eval/{arm}.json", track), rounded({"arm": arm, "runs": runs}))


if __name__ == "__main__":
    run_stage("evaluate", main)
