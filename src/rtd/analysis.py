"""Representational analysis and intervals: linear CKA, layer activations, Clopper–Pearson, reliability bins."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between two representations of the same n examples.

    CKA(X, Y) = ||Y_c^T X_c||_F^2 / (||X_c^T X_c||_F ||Y_c^T Y_c||_F) with column-centred X_c, Y_c, computed
    through the n x n Gram matrices (cheaper when features outnumber examples). It is 1 for identical
    representations and invariant to orthogonal transforms and isotropic scaling of either one.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
    if len(x) != len(y):
        raise ValueError(f"CKA needs the same examples in both: {len(x)} and {len(y)} rows")
    x = x - x.mean(axis=0, keepdims=True)
    y = y - y.mean(axis=0, keepdims=True)
    k, l = x @ x.T, y @ y.T
    hsic = (k * l).sum()
    norm = np.sqrt((k * k).sum() * (l * l).sum())
    return float(hsic / norm) if norm > 0 else float("nan")


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper–Pearson) two-sided confidence interval of a binomial proportion k / n."""
    from scipy.stats import beta

    if not 0 <= k <= n or n <= 0:
        raise ValueError(f"need 0 <= k <= n and n > 0, got k={k}, n={n}")
    a = (1 - level) / 2
    lo = 0.0 if k == 0 else float(beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def _flat(out, mask: torch.Tensor | None) -> torch.Tensor:
    """A hooked module's output as (N, d): a transformer layer's token states (N, L, d) are mean-pooled over the mask."""
    if isinstance(out, tuple):
        out = out[0]
    if mask is not None and out.dim() == 3:
        from .models import masked_mean

        out = masked_mean(out, mask)
    return out.flatten(1).float().cpu()


@torch.no_grad()
def layer_activations(model: nn.Module, images: np.ndarray, layers: list[str], batch_size: int) -> dict[str, np.ndarray]:
    """Activations of ``model`` at each layer (a backbone module name, or ``pooled`` / ``logits``), flattened."""
    from .data.splits import to_float

    model.eval()
    device = next(model.parameters()).device
    modules = dict(model.backbone.named_modules())
    store: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    handles = []
    for name in layers:
        if name in ("pooled", "logits"):
            continue
        if name not in modules or not name:
            raise ValueError(f"{name!r} is not a module of the backbone")
        handles.append(modules[name].register_forward_hook(
            lambda _m, _i, out, name=name: store[name].append(_flat(out, batch.get("mask")))))
    batch: dict[str, torch.Tensor] = {}
    try:
        for start in range(0, len(images), batch_size):
            x = to_float(images[start:start + batch_size]).to(device)
            if hasattr(model, "pad_id"):   # a text model: token activations are averaged over its non-pad tokens
                batch["mask"] = model.activation_mask(x)
            feats = model.features(x)
            if "pooled" in store:
                store["pooled"].append(feats.cpu())
            if "logits" in store:
                store["logits"].append(model.head(feats).cpu())
    finally:
        for h in handles:
            h.remove()
    return {name: torch.cat(parts).numpy() for name, parts in store.items()}
