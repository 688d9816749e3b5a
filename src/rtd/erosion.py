"""The erosion study: does fine-tuning on the ID task erode the teacher's OOD accuracy? (README, "Is there
erosion to prevent?"; the signatures of ANCHORS' "Is there erosion?").

Pure functions here (effective robustness, intervals, the candidate choice); the `erosion` stage trains
and evaluates. Every choice reads validation splits only: the candidate (the default configuration) on
`ood_val`, learning rates and WiSE-FT's alpha on `id_val`.
"""
from __future__ import annotations

import math


def clipped_logit(acc: float, n: int) -> float:
    """logit(acc), with acc clipped to [0.5/n, 1 - 0.5/n] so that 0 % and 100 % on n examples stay finite."""
    lo = 0.5 / n
    a = min(max(acc, lo), 1.0 - lo)
    return math.log(a / (1.0 - a))


def fit_trend(points: list[tuple[float, float]], n_id: int, n_ood: int) -> tuple[float, float]:
    """Least-squares line logit(OOD) = slope * logit(ID) + intercept over ID-only models (Taori et al. 2020)."""
    if len(points) < 2:
        raise ValueError("the trend needs at least two ID-only models")
    xs = [clipped_logit(i, n_id) for i, _ in points]
    ys = [clipped_logit(o, n_ood) for _, o in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the ID-only models all have the same ID accuracy: the trend is undefined")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def effective_robustness(id_acc: float, ood_acc: float, trend: tuple[float, float], n_id: int) -> float:
    """OOD accuracy above the trend's prediction at the same ID accuracy, in accuracy units (Taori et al.)."""
    slope, intercept = trend
    predicted = 1.0 / (1.0 + math.exp(-(slope * clipped_logit(id_acc, n_id) + intercept)))
    return ood_acc - predicted


def mean_ci(values: list[float], level: float = 0.95) -> dict:
    """Mean, sample std and the t-interval of the mean (``level``); one value gives no interval."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "std": None, "ci": None, "n": n}
    std = (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * std / n ** 0.5
    return {"mean": mean, "std": std, "ci": [mean - half, mean + half], "n": n}


def drop_test(teacher: float, runs: list[float]) -> dict:
    """FT's loss against the (deterministic) teacher: mean of teacher - run over seeds, its 95 % interval and
    the one-sided p of a t-test that the loss is > 0 (paired with a constant: a one-sample test)."""
    from scipy import stats

    drops = [teacher - r for r in runs]
    out = mean_ci(drops)
    out["p"] = None
    if len(drops) >= 2 and out["std"]:
        out["p"] = float(stats.ttest_1samp(drops, 0.0, alternative="greater").pvalue)
    return out


def choose_candidate(candidates: dict, min_drop: float, alpha: float = 0.05) -> dict:
    """The candidate whose FT (from θ_T, lr chosen on id_val) loses most `ood_val` accuracy against the teacher,
    among those losing >= ``min_drop`` with p < ``alpha``; without one, the largest loss, flagged as not eroding.

    ``candidates``: {name: drop_test result on ood_val}. Returns {"selected", "erodes", "reason"}.
    """
    def erodes(d: dict) -> bool:
        return d["mean"] >= min_drop and d["p"] is not None and d["p"] < alpha

    passing = {k: d for k, d in candidates.items() if erodes(d)}
    pool = passing or candidates
    best = max(pool, key=lambda k: (pool[k]["mean"], -list(candidates).index(k)))
    reason = (f"largest significant ood_val loss (>= {100 * min_drop:g} points, p < {alpha})" if passing else
              f"no candidate loses >= {100 * min_drop:g} points of ood_val accuracy with p < {alpha}: the largest loss")
    return {"selected": best, "erodes": bool(passing), "reason": reason}


def best_lr(scores: dict) -> object:
    """The learning rate with the best mean (id_val accuracy, -id_val NLL) over seeds; ties to the first listed."""
    def key(lr):
        runs = scores[lr]
        return (sum(r[0] for r in runs) / len(runs), -sum(r[1] for r in runs) / len(runs), -list(scores).index(lr))
    return max(scores, key=key)
