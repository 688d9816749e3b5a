"""Evaluation metrics as pure functions of logits and labels."""
from __future__ import annotations

import torch


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == labels).double().mean().item() if len(labels) else float("nan")


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al. 2017).

    ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|, with confidence = max softmax probability and
    bin b = (b/n_bins, (b+1)/n_bins] (the first bin also holds confidence 0).
    """
    probs = logits.double().softmax(dim=1)
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    # bin index: ceil(conf * n_bins) - 1, clamped to [0, n_bins - 1]
    bins = (torch.ceil(conf * n_bins) - 1).clamp(0, n_bins - 1).long()
    ece = torch.zeros((), dtype=torch.float64)
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.double().mean() * (correct[mask].mean() - conf[mask].mean()).abs()
    return ece.item()


def robustness_gap(id_acc: float, ood_acc: float) -> float:
    """Delta_rob = A_ID - A_OOD."""
    return id_acc - ood_acc
