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


def build_teacher(params: dict, track: str, train, id_val, manifest: dict | None = None) -> dict:
    """θ_T of ``track`` on these splits, as the `teacher` stage builds it: the track's initial model (or the backbone)
    with the track's head (``Track.teacher_head``; ``manifest``: the data's, where the head needs it) or else the
    linear probe on the ID train features. Returns {model, weight, bias (its head), probe_weight, probe_bias, kind, extra, feats}."""
    from .models import backbone_spec, build_classifier, predict
    from .tracks import get_track

    tp, t = params["teacher"], get_track(track)
    spec = backbone_spec(params, track)
    model = t.initial_teacher(params, spec)
    model = build_classifier(spec) if model is None else model
    _, feats = predict(model, train.images, tp["batch_size"], layer="pooled")
    probe_weight, probe_bias = fit_linear_probe(feats.numpy(), train.labels, tp["probe_c"], tp["probe_max_iter"])
    weight, bias, kind, extra = t.teacher_head(params, model, id_val, tp["batch_size"], manifest) \
        or (probe_weight, probe_bias, "probe", {})
    with torch.no_grad():
        model.head.weight.copy_(weight)
        model.head.bias.copy_(bias)
    return {"model": model, "weight": weight, "bias": bias, "probe_weight": probe_weight, "probe_bias": probe_bias,
            "kind": kind, "extra": extra, "feats": feats}
