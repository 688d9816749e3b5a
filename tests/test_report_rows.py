"""The report's WiSE-FT rows (rtd.report.method_runs): α chosen on id_val, the paper's fixed α = 0.5, and the
oracle-style α chosen on ood_val, each the curve point of its seed."""
from __future__ import annotations

import pytest

from rtd.errors import ParamError
from rtd.report import method_runs, tuning_markdown


def _curve(scores: dict[float, float]) -> list[dict]:
    return [{"alpha": a, "id_acc": s, "ood_acc": 1 - s} for a, s in sorted(scores.items())]


def _evals(alphas: list[float]) -> dict:
    runs = {f"seed{s}": {"seed": s, "curve": _curve({a: round(0.5 + 0.1 * a + 0.01 * s, 4) for a in alphas}),
                         "alpha_id_val": 1.0, "alpha_ood_val": 0.0} for s in (0, 1)}
    return {"teacher": {"runs": {"seed0": {"id_acc": 0.5}}}, "wiseft_ft": {"alphas": alphas, "runs": runs}}


def test_wiseft_rows_take_each_seeds_point_at_its_alpha():
    rows = method_runs(["wiseft_ft"], _evals([0.0, 0.5, 1.0]), params={})
    assert set(rows) == {"teacher", "wiseft_ft", "wiseft_ft@0.5", "wiseft_ft_oodval"}
    assert [r["id_acc"] for r in rows["wiseft_ft"]["runs"]] == [0.6, 0.61]        # α = 1 (chosen on id_val)
    assert [r["id_acc"] for r in rows["wiseft_ft@0.5"]["runs"]] == [0.55, 0.56]   # α = 0.5 on every seed
    assert [r["id_acc"] for r in rows["wiseft_ft_oodval"]["runs"]] == [0.5, 0.51]
    assert rows["wiseft_ft@0.5"]["seeds"] == [0, 1]
    assert "α = 0.5 fixed" in rows["wiseft_ft@0.5"]["label"]


def test_a_grid_without_the_fixed_alpha_is_a_clear_error():
    with pytest.raises(ParamError, match="must include 0.5"):
        method_runs(["wiseft_ft"], _evals([0.0, 0.25, 1.0]), params={})


def _runs(arm: str, scores: dict) -> dict:
    """Eval runs of ``arm``: {variant: [best id_val acc per seed]} (variant None: an arm without a sweep)."""
    return {"runs": {f"{arm}{v}-seed{s}": {"seed": s, "variant": v, "best_id_val_acc": acc, "id_acc": acc}
                     for v, accs in scores.items() for s, acc in enumerate(accs)}}


def test_a_tuned_row_takes_the_best_mean_id_val_configuration_of_its_arms():
    params = {"ft_lrs": [1e-4, 3e-4], "lora_lrs": [3e-3], "rtd_lrs": [3e-4], "lambda_ar": 0.1,
              "lambda_ar_sweep": [1.0, 10.0], "train": {"lr": 1e-4}, "lora": {"lr": 1e-3}}
    evals = {"teacher": {"runs": {"seed0": {"id_acc": 0.5}}},
             "ft": _runs("ft", {1e-4: [0.8, 0.9], 3e-4: [0.9, 0.85]}),        # means 0.85 / 0.875
             "lora": _runs("lora", {None: [0.7, 0.7]}), "lora_lr": _runs("lora_lr", {3e-3: [0.7, 0.7]}),   # a tie
             "rtd": _runs("rtd", {None: [0.8, 0.8]}), "rtd_lr": _runs("rtd_lr", {3e-4: [0.95, 0.95]}),
             "rtd_ar": _runs("rtd_ar", {1.0: [0.9, 0.7], 10.0: [0.81, 0.8]})}  # 0.8 / 0.805: beats rtd's 0.8
    rows = method_runs(["ft", "ft_tuned", "lora_tuned", "rtd_tuned", "rtd_ar_tuned"], evals, params)
    assert rows["ft"]["variant"] == 1e-4 and [r["seed"] for r in rows["ft"]["runs"]] == [0, 1]
    assert rows["ft_tuned"]["variant"] == 3e-4 and rows["ft_tuned"]["label"].endswith("(lr = 0.0003)")
    assert rows["lora_tuned"]["arm"] == "lora" and rows["lora_tuned"]["label"].endswith("(lr = 0.001)")   # first listed
    assert rows["rtd_tuned"]["arm"] == "rtd_lr" and rows["rtd_tuned"]["variant"] == 3e-4
    assert rows["rtd_ar_tuned"]["arm"] == "rtd_ar" and rows["rtd_ar_tuned"]["variant"] == 10.0
    assert [r["id_acc"] for r in rows["rtd_ar_tuned"]["runs"]] == [0.81, 0.8]
    table = tuning_markdown(rows, ["ft", "ft_tuned", "lora", "lora_tuned", "sdft", "rtd_ar_tuned"])
    assert "| ft_tuned | lr = 0.0001: 85.0 · lr = 0.0003: 87.5 | lr = 0.0003 |" in table
    assert "| rtd_ar_tuned | λ_AR = 0.1: 80.0 · λ_AR = 1: 80.0 · λ_AR = 10: 80.5 | λ_AR = 10 |" in table
    assert "no grid): `sdft`." in table   # an arm run at one setting is named as such
    params["rtd_lrs"] = []   # the rest of the grid switched off: RTD at train.lr is the only candidate
    rows = method_runs(["rtd_tuned"], {k: v for k, v in evals.items() if k != "rtd_lr"}, params)
    assert rows["rtd_tuned"]["arm"] == "rtd" and rows["rtd_tuned"]["variant"] is None
    assert rows["rtd_tuned"]["label"] == "RTD, a grid of one: not tuned on this track (lr = 0.0001)"


def test_wiseft_and_the_report_choose_the_same_tuned_run(tmp_path, monkeypatch):
    """`arms.tuned_choice` (the WiSE-FT stage: θ_T → the tuned run, read from train_stats.json) picks what the
    report's tuned row picks from the evaluations; a switched-off grid leaves the arm's own run."""
    import json

    from rtd.arms import TUNED, run_dir, tuned_choice

    monkeypatch.chdir(tmp_path)
    params = {"seeds": [0, 1], "ft_lrs": [1e-4, 3e-4], "rtd_lrs": [3e-5, 3e-4], "train": {"lr": 1e-4}}
    scores = {("rtd", None): [0.9, 0.8], ("rtd_lr", 3e-5): [0.8, 0.8], ("rtd_lr", 3e-4): [0.9, 0.85]}
    for (arm, v), accs in scores.items():
        for seed, acc in enumerate(accs):
            run = tmp_path / run_dir(arm, seed, v)
            run.mkdir(parents=True)
            (run / "train_stats.json").write_text(json.dumps({"best_id_val_acc": acc}))
    assert run_dir("rtd_lr", 0, 3e-4) == "models/rtd_lr/lr0.0003/seed0"
    assert tuned_choice(TUNED["rtd_tuned"], params) == ("rtd_lr", 3e-4)
    evals = {"teacher": {"runs": {"seed0": {"id_acc": 0.5}}}, "rtd": _runs("rtd", {None: scores[("rtd", None)]}),
             "rtd_lr": _runs("rtd_lr", {v: accs for (a, v), accs in scores.items() if a == "rtd_lr"})}
    row = method_runs(["rtd_tuned"], evals, params)["rtd_tuned"]
    assert (row["arm"], row["variant"]) == ("rtd_lr", 3e-4)
    assert tuned_choice(TUNED["rtd_tuned"], {**params, "rtd_lrs": []}) == ("rtd", None)
