"""Metrics against values computed by hand."""
import math

import pytest
import torch

from rtd.metrics import accuracy, expected_calibration_error, robustness_gap


def _logits(*probs):
    return torch.tensor([[math.log(p) for p in row] for row in probs])


def test_ece_by_hand_15_bins():
    # confidences 0.9 (bin (13/15, 14/15]), 0.58 and 0.55 (both in (8/15, 9/15])
    logits = _logits([0.9, 0.1], [0.58, 0.42], [0.55, 0.45])
    labels = torch.tensor([0, 1, 0])
    # bin A: 1 example, acc 1, conf 0.9 -> 1/3 * 0.1
    # bin B: 2 examples, acc 0.5 (one wrong, one right), conf 0.565 -> 2/3 * 0.065
    expected = 0.1 / 3 + 2 / 3 * 0.065
    assert expected_calibration_error(logits, labels, n_bins=15) == pytest.approx(expected, rel=1e-6)


def test_ece_perfectly_calibrated_and_overconfident():
    # two examples at confidence 0.5 (one right, one wrong): calibrated -> 0
    logits = _logits([0.5, 0.5], [0.5, 0.5])
    assert expected_calibration_error(logits, torch.tensor([0, 1])) == pytest.approx(0.0, abs=1e-9)
    # always confident 0.99 and always wrong: ECE = 0.99
    logits = _logits([0.99, 0.01], [0.99, 0.01])
    assert expected_calibration_error(logits, torch.tensor([1, 1])) == pytest.approx(0.99, rel=1e-6)


def test_ece_bin_count_matters():
    logits = _logits([0.9, 0.1], [0.7, 0.3])
    labels = torch.tensor([0, 1])
    # 1 bin: |acc 0.5 - conf 0.8| = 0.3 ; 15 bins: separate bins, 0.5 * 0.1 + 0.5 * 0.7 = 0.4
    assert expected_calibration_error(logits, labels, n_bins=1) == pytest.approx(0.3, rel=1e-6)
    assert expected_calibration_error(logits, labels, n_bins=15) == pytest.approx(0.4, rel=1e-6)


def test_accuracy_and_gap():
    logits = torch.tensor([[2.0, 1.0], [0.0, 1.0], [3.0, 0.0], [0.0, 5.0]])
    assert accuracy(logits, torch.tensor([0, 1, 1, 0])) == pytest.approx(0.5)
    assert robustness_gap(0.95, 0.6) == pytest.approx(0.35)


def test_holm_adjusts_step_down_on_a_hand_example():
    from rtd.stats import holm

    # sorted p: 0.01, 0.02, 0.04 (m = 3) -> 0.03, max(0.03, 0.04) = 0.04, max(0.04, 0.04) = 0.04; None stays None
    out = holm([0.04, None, 0.01, 0.02])
    assert out[1] is None and out[0] == pytest.approx(0.04) and out[2] == pytest.approx(0.03) and out[3] == pytest.approx(0.04)
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])   # capped at 1, monotone
    assert holm([]) == []


def test_report_derives_the_gap_on_the_domain_mean_and_effective_robustness_from_the_trend():
    import math

    from rtd.report import derived_metrics

    run = {"id_acc": 0.9, "ood_domain_mean_acc": 0.6, "id_val_acc": 0.5, "ood_val_acc": 0.7}
    assert derived_metrics(run, None) == pytest.approx({"gap_mean": 0.3})
    # trend logit(ood) = 1 * logit(id) + 0: at id_val 0.5 it predicts 0.5, so ER = 0.7 - 0.5
    out = derived_metrics(run, {"slope": 1.0, "intercept": 0.0, "n_id_val": 100})
    assert out["effective_robustness_val"] == pytest.approx(0.2)
    out = derived_metrics(run, {"slope": 0.0, "intercept": math.log(3), "n_id_val": 100})   # predicts 0.75
    assert out["effective_robustness_val"] == pytest.approx(-0.05)


def test_ece_from_the_reliability_bins_equals_the_direct_sum():
    """ECE is computed from the reliability bins; the direct per-bin sum (Guo et al. 2017) gives the same float."""
    import torch

    from rtd.metrics import expected_calibration_error

    gen = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(500, 7, generator=gen) * 3, torch.randint(0, 7, (500,), generator=gen)
    conf, pred = logits.double().softmax(1).max(1)
    correct = (pred == labels).double()
    bins = (torch.ceil(conf * 15) - 1).clamp(0, 14).long()
    direct = torch.zeros((), dtype=torch.float64)
    for b in range(15):
        m = bins == b
        if m.any():
            direct += m.double().mean() * (correct[m].mean() - conf[m].mean()).abs()
    assert expected_calibration_error(logits, labels, 15) == direct.item()
