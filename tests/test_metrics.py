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
