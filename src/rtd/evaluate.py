"""Evaluate a classifier on the ID test split and every OOD domain."""
from __future__ import annotations

import torch

from .data.splits import Split
from .metrics import accuracy, expected_calibration_error, robustness_gap
from .models import Classifier, predict


def evaluate_splits(model: Classifier, id_test: Split, ood_val: Split, ood_test: Split,
                    batch_size: int, ece_bins: int) -> dict:
    """ID accuracy and ECE; OOD accuracy per domain, pooled (over ood_test examples) and worst; the gap."""
    id_logits, _ = predict(model, id_test.images, batch_size)
    id_y = torch.as_tensor(id_test.labels)
    ood_logits, _ = predict(model, ood_test.images, batch_size)
    ood_y = torch.as_tensor(ood_test.labels)
    val_logits, _ = predict(model, ood_val.images, batch_size)

    domains = {}
    for name in ood_test.domain_names:
        mask = torch.as_tensor(ood_test.domain_mask(name))
        domains[name] = accuracy(ood_logits[mask], ood_y[mask])
    id_acc = accuracy(id_logits, id_y)
    ood_acc = accuracy(ood_logits, ood_y)
    worst = min(domains, key=domains.get)
    return {
        "id_acc": id_acc,
        "ood_acc": ood_acc,
        "gap": robustness_gap(id_acc, ood_acc),
        "ood_worst_acc": domains[worst],
        "ood_worst_domain": worst,
        "ood_domain_mean_acc": sum(domains.values()) / len(domains),
        "ood_domains": domains,
        "ood_val_acc": accuracy(val_logits, torch.as_tensor(ood_val.labels)),
        "id_ece": expected_calibration_error(id_logits, id_y, ece_bins),
        "ood_ece": expected_calibration_error(ood_logits, ood_y, ece_bins),
    }


def rounded(obj, digits: int = 6):
    """Round floats in nested dicts so JSON outputs are short and stable."""
    if isinstance(obj, float):
        return round(obj, digits)
    if isinstance(obj, dict):
        return {k: rounded(v, digits) for k, v in obj.items()}
    if isinstance(obj, list):
        return [rounded(v, digits) for v in obj]
    return obj
