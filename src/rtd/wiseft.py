"""WiSE-FT (Wortsman et al. 2022): weight-space ensembles of a zero-shot (here: linear-probe) model
and a fine-tuned one, theta_a = (1 - a) theta_0 + a theta_1, evaluated along the whole curve."""
from __future__ import annotations

import torch


def interpolate_weights(theta_0: dict[str, torch.Tensor], theta_1: dict[str, torch.Tensor],
                        alpha: float) -> dict[str, torch.Tensor]:
    """(1 - alpha) theta_0 + alpha theta_1 for floating-point tensors; exactly theta_0 at 0 and theta_1 at 1.

    Integer buffers (BatchNorm's step counters) cannot be interpolated and are taken from theta_1
    (from theta_0 at alpha = 0). Both state dicts must have the same keys and shapes.
    """
    if theta_0.keys() != theta_1.keys():
        raise ValueError("the two models have different parameters: " + ", ".join(sorted(theta_0.keys() ^ theta_1.keys())[:5]))
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    out = {}
    for key, a in theta_0.items():
        b = theta_1[key]
        if a.shape != b.shape:
            raise ValueError(f"{key}: shapes differ, {tuple(a.shape)} and {tuple(b.shape)}")
        if alpha == 0.0 or alpha == 1.0 or not a.is_floating_point():
            out[key] = (a if alpha == 0.0 else b).clone()
        else:
            out[key] = torch.lerp(a, b, alpha)
    return out


# what the `evaluate` stage records about a run besides ``evaluate.evaluate_splits``' metrics
RUN_KEYS = ("trainable_params", "flops_per_step", "best_epoch", "epochs_run", "seed", "variant", "best_id_val_acc")


def endpoint_metrics(run: dict) -> dict:
    """The metrics of one run of an `evaluate` report (``reports/eval/<arm>.json``) without its run keys:
    a WiSE-FT curve's point at alpha = 0 (the teacher) or 1 (the fine-tuned model)."""
    return {k: v for k, v in run.items() if k not in RUN_KEYS}


def select_alpha(curve: list[dict], key: str) -> dict:
    """The point of the curve with the highest ``key`` (a validation accuracy); ties go to the smaller alpha."""
    return max(curve, key=lambda point: (point[key], -point["alpha"]))
