"""The teacher θ_T's linear probe: fit on ID training features (LP-FT's initialisation, `teacher.head: probe`)."""
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
