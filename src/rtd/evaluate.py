"""Evaluate a classifier on the ID test split and every OOD domain."""
from __future__ import annotations

from typing import Callable

import torch

from .data.splits import Split
from .metrics import accuracy, expected_calibration_error, robustness_gap
from .models import Classifier, predict


def evaluate_splits(model: Classifier, id_test: Split, ood_val: Split, ood_test: Split,
                    batch_size: int, ece_bins: int, id_val: Split | None = None,
                    official: tuple[str, Callable] | None = None) -> dict:
    """ID accuracy and ECE; OOD accuracy per domain, pooled (over ood_test examples) and worst; the gap.

    With ``id_val``, its accuracy too (`id_val_acc`, for model selection such as WiSE-FT's alpha).
    With ``official`` = (name, f) from ``Track.official_metrics`` (WILDS in the paper configuration), also the
    dataset's official metrics f(logits, split) on id_test and ood_test, under ``name``.
    """
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
    extra = {}
    if official is not None:
        key, metrics = official
        extra[key] = {name: metrics(logits, split)
                      for name, logits, split in (("id_test", id_logits, id_test), ("ood_test", ood_logits, ood_test))}
    if id_val is not None:
        extra["id_val_acc"] = accuracy(predict(model, id_val.images, batch_size)[0], torch.as_tensor(id_val.labels))
    return {
        **extra,
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


EVAL_SPLITS = ("id_val", "id_test", "ood_val", "ood_test")


def load_eval_splits(track: str | None = None) -> dict[str, Split]:
    """The evaluation splits of ``track`` (default: the base track)."""
    from .data.splits import load_split
    from .tracks import BASE, track_path

    track = track or BASE
    return {s: load_split(track_path(f"data/vision/{s}.safetensors", track)) for s in EVAL_SPLITS}
