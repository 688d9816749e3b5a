"""Evaluation metrics as pure functions of logits and labels."""
from __future__ import annotations

import torch


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return (logits.argmax(dim=1) == labels).double().mean().item() if len(labels) else float("nan")


def reliability_bins(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> list[dict]:
    """Per equal-width confidence bin b = (b/n_bins, (b+1)/n_bins] (the first also holds confidence 0): its count,
    accuracy and mean confidence (None where empty); confidence = the max softmax probability."""
    probs = logits.double().softmax(dim=1)
    conf, pred = probs.max(dim=1)
    correct = (pred == labels).double()
    bins = (torch.ceil(conf * n_bins) - 1).clamp(0, n_bins - 1).long()   # ceil(conf * n_bins) - 1
    out = []
    for b in range(n_bins):
        mask = bins == b
        n = int(mask.sum())
        out.append({"lo": b / n_bins, "hi": (b + 1) / n_bins, "count": n,
                    "acc": float(correct[mask].mean()) if n else None, "conf": float(conf[mask].mean()) if n else None})
    return out


def expected_calibration_error(logits: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> float:
    """ECE with ``n_bins`` equal-width confidence bins (Guo et al. 2017), from ``reliability_bins``:
    ECE = sum_b |B_b|/n * |acc(B_b) - conf(B_b)|."""
    n, ece = len(labels), 0.0
    for b in reliability_bins(logits, labels, n_bins):
        if b["count"]:
            ece += b["count"] / n * abs(b["acc"] - b["conf"])
    return ece


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
