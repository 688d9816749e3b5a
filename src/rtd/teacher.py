"""The teacher M_T: pretrained backbone + a linear probe fit on ID training features, or CLIP zero-shot."""
from __future__ import annotations

import numpy as np
import torch


def fit_linear_probe(features: np.ndarray, labels: np.ndarray, c: float, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression on standardised features, folded back into (W, b) on raw features.

    Returns weight (C, d) and bias (C,) such that logits = features @ W.T + b, so the student starts
    from exactly the probe's predictions.
    """
    from sklearn.linear_model import LogisticRegression

    mean = features.mean(axis=0)
    std = features.std(axis=0) + 1e-6
    clf = LogisticRegression(C=c, max_iter=max_iter)
    clf.fit((features - mean) / std, labels)
    weight = clf.coef_ / std
    bias = clf.intercept_ - weight @ mean
    return torch.as_tensor(weight, dtype=torch.float32), torch.as_tensor(bias, dtype=torch.float32)


def zero_shot_head(params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """CLIP's zero-shot head for ``params``' dataset: (normalised prompt embeddings x logit scale, zero bias)."""
    from .clip import load_clip, tokenizer_for, zero_shot_weights
    from .data.wilds_splits import class_names

    from .data.wilds_splits import num_classes
    from .errors import RTDError

    cp, dataset = params["clip"], params["vision"]["dataset"]
    names = class_names(params["vision"], cp)
    if len(names) != num_classes(dataset):
        raise RTDError(f"{dataset} has {num_classes(dataset)} classes but {len(names)} class names were found "
                       f"for the zero-shot prompts: fix `clip.classnames.{dataset}`")
    model = load_clip(cp["model"], cp["pretrained"], cp["cache_dir"]).eval()
    weight = zero_shot_weights(model, names, cp["templates"], tokenizer_for(cp["model"]))
    return weight, torch.zeros(len(weight))
