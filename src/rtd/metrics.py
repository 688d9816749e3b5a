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


def aggregate_runs(runs: list[dict]) -> dict:
    """Mean over runs of every numeric entry, with the sample std (ddof = 1) under ``<key>_std``.

    Nested dicts (e.g. per-domain accuracies) are aggregated the same way; non-numeric entries are
    kept when every run agrees and dropped otherwise. ``n_runs`` counts the runs. With one run the
    std is None.
    """
    if not runs:
        raise ValueError("no runs to aggregate")
    out: dict = {"n_runs": len(runs)}
    for key in runs[0]:
        values = [r.get(key) for r in runs]
        if all(isinstance(v, dict) for v in values):
            agg = aggregate_runs(values)
            agg.pop("n_runs")
            out[key] = {k: v for k, v in agg.items() if not k.endswith("_std")}
            out[f"{key}_std"] = {k[:-4]: v for k, v in agg.items() if k.endswith("_std")}
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            mean = sum(values) / len(values)
            out[key] = mean
            out[f"{key}_std"] = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else None
        elif all(v == values[0] for v in values):
            out[key] = values[0]
    return out


def paired_ttest(a: list[float], b: list[float]) -> dict:
    """Paired t-test of mean(a - b) = 0 over matched seeds: mean difference, t, two-sided p."""
    from scipy import stats

    if len(a) != len(b):
        raise ValueError(f"paired samples differ in length: {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    out = {"n": len(diffs), "mean_diff": sum(diffs) / len(diffs) if diffs else float("nan"), "t": None, "p": None}
    if len(diffs) >= 2:
        if all(d == diffs[0] for d in diffs):   # zero variance: t is undefined (or infinite)
            return out
        res = stats.ttest_rel(a, b)
        out.update(t=float(res.statistic), p=float(res.pvalue))
    return out
