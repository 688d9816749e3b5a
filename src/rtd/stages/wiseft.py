"""DVC stage `wiseft@<end>`: WiSE-FT between the teacher theta_T and a fine-tuned model, per seed.

    python -m rtd.stages.wiseft --end ft    # theta_T -> FT tuned on id_val (the `ft_tuned` row's runs)
    python -m rtd.stages.wiseft --end rtd   # theta_T -> RTD tuned on id_val (`rtd_tuned`: train.lr or rtd_lrs)

For each alpha in `wiseft.alphas`, theta_a = (1 - alpha) theta_T + alpha theta_end is evaluated on
every split. The endpoints are the teacher and the fine-tuned model themselves (``interpolate_weights``
returns them exactly), so their metrics are read from the `evaluate` stage's reports instead of being
computed again. `end_variant` names the end run: FT's lr; for RTD null (RTD at train.lr) or an lr of `rtd_lrs` (arm
`rtd_lr`). The reported alpha is chosen on id_val; the one chosen on ood_val is reported beside it,
labelled as such. No test split takes part in either choice.
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    opts = track_arg(argv, "WiSE-FT curve between the teacher and a fine-tuned model", **{"--end": {"required": True}})
    end, track = opts.end, opts.track

    from ..arms import TUNED, WISEFT_ENDS, run_dir, tuned_choice
    from ..errors import ParamError, RTDError

    params = track_params(track)
    if end not in WISEFT_ENDS:
        raise ParamError(f"unknown WiSE-FT endpoint {end!r}; choose one of {', '.join(WISEFT_ENDS)}")

    from tqdm import tqdm

    from ..evaluate import evaluate_splits, load_eval_splits, rounded
    from ..io import read_json, seed_everything, write_json
    from ..models import backbone_spec, load_model
    from ..tracks import get_track, track_path as P
    from ..wiseft import endpoint_metrics, interpolate_weights, select_alpha

    ep, backbone, alphas = params["eval"], backbone_spec(params, track), params["wiseft"]["alphas"]
    official = get_track(track).official_metrics(params)
    seed_everything(0, params["num_threads"])
    splits = load_eval_splits(track)
    arm, variant = tuned_choice(TUNED[f"{end}_tuned"], params, track)   # the same choice as the report's tuned row
    teacher = load_model(P("models/teacher/model.safetensors", track), backbone)
    theta_0 = {k: v.clone() for k, v in teacher.state_dict().items()}
    teacher_metrics = endpoint_metrics(next(iter(read_json(P("reports/eval/teacher.json", track))["runs"].values())))
    end_runs = read_json(P(f"reports/eval/{arm}.json", track))["runs"].values()
    runs = {}
    for seed in params["seeds"]:
        end_metrics = [endpoint_metrics(r) for r in end_runs if r.get("seed") == seed and r.get("variant") == variant]
        if not end_metrics:
            raise RTDError(f"{P(f'reports/eval/{arm}.json', track)} has no run for seed {seed}: run `dvc repro`")
        theta_1 = load_model(f"{run_dir(arm, seed, variant, track)}/model.safetensors", backbone).state_dict()
        curve = []
        for alpha in tqdm(sorted(alphas), desc=f"wiseft {end} seed {seed}", unit="alpha", leave=False):
            if alpha in (0.0, 1.0):
                m = teacher_metrics if alpha == 0.0 else end_metrics[0]
            else:
                teacher.load_state_dict(interpolate_weights(theta_0, theta_1, alpha))
                # rounded like the endpoints read back, so the choice of alpha compares like with like
                m = rounded(evaluate_splits(teacher, splits["id_test"], splits["ood_val"], splits["ood_test"],
                                            ep["batch_size"], ep["ece_bins"], id_val=splits["id_val"],
                                            official=official))
            curve.append({"alpha": alpha, **m})
        runs[f"seed{seed}"] = {"seed": seed, "curve": curve,
                               "alpha_id_val": select_alpha(curve, "id_val_acc")["alpha"],
                               "alpha_ood_val": select_alpha(curve, "ood_val_acc")["alpha"]}
    write_json(P(f"reports/eval/wiseft_{end}.json", track),
               rounded({"end": end, "end_variant": variant, "alphas": sorted(alphas), "runs": runs}))


if __name__ == "__main__":
    run_stage("wiseft", main)
