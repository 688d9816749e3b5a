"""reports/headline.json: the short DVC metric picked from metrics.json (rtd.headline)."""
from __future__ import annotations

import pytest

from rtd.headline import headline


def _row(id_acc: float, ood: float) -> dict:
    return {"id_acc": id_acc, "ood_domain_mean_acc": ood, "ood_acc": 0.0, "id_ece": 0.1}


def test_headline_picks_the_key_arms_and_the_erosion_figures_by_hand():
    metrics = {
        "vision": {"teacher": _row(0.8, 0.75), "ft": _row(0.99, 0.70123456), "rtd": _row(0.97, 0.72),
                   "wiseft_ft": _row(0.98, 0.705), "lora": _row(0.99, 0.71)},
        "text": {"teacher": _row(0.6, 0.3), "ft": _row(0.7, 0.35)},
        "erosion": {"selected": "0.9", "candidates": {"0.0": {"ood_val_drop": 0.01, "ood_test_mean_drop": 0.02},
                                                      "0.9": {"ood_val_drop": 0.064166, "ood_test_mean_drop": 0.133753}}},
        "significance": {"rtd_vs_ft": {}},
    }
    out = headline(metrics, ["vision", "text"])
    assert out["vision"]["ft"] == {"id": 0.99, "ood": 0.7012}
    assert out["vision"]["ft_ood_loss"] == pytest.approx(0.75 - 0.7012)
    assert set(out["vision"]) == {"teacher", "ft", "rtd", "wiseft_ft", "ft_ood_loss"}   # lora is not a headline arm
    assert out["text"] == {"teacher": {"id": 0.6, "ood": 0.3}, "ft": {"id": 0.7, "ood": 0.35}, "ft_ood_loss": -0.05}
    assert out["erosion"] == {"ood_val_loss": 0.0642, "ood_test_loss": 0.1338}   # the selected candidate's


def test_headline_of_one_track_without_a_study():
    out = headline({"text": {"rtd": _row(0.5, 0.25)}}, ["text"])
    assert out == {"text": {"rtd": {"id": 0.5, "ood": 0.25}}}


def test_the_committed_headline_is_the_metric_and_small():
    """The committed report: the DVC metric is the headline (10-20 numbers), metrics.json a plain output."""
    import json

    import yaml

    from tests.helpers import ROOT

    report = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    assert [next(iter(m)) for m in report["metrics"]] == ["reports/headline.json"]
    assert "reports/metrics.json" in [next(iter(o)) for o in report["outs"]]

    def leaves(node) -> int:
        return sum(leaves(v) for v in node.values()) if isinstance(node, dict) else 1

    assert 10 <= leaves(json.loads((ROOT / "reports/headline.json").read_text())) <= 20
