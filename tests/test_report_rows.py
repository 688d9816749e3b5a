"""The report's WiSE-FT rows (rtd.report.method_runs): α chosen on id_val, the paper's fixed α = 0.5, and the
oracle-style α chosen on ood_val, each the curve point of its seed."""
from __future__ import annotations

import pytest

from rtd.errors import ParamError
from rtd.report import method_runs


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
