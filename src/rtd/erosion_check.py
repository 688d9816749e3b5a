"""The erosion check of a track without an erosion study (the text track): from the main table's own runs, how much
OOD accuracy FT from θ_T (head included) loses against θ_T at each lr of ``ft_lrs``, on ``ood_val`` and
``ood_test`` (the mean over its domains), over seeds (``erosion.drop_test``: mean, 95 % interval, one-sided p).
The lr ``id_val`` chooses is marked; nothing here chooses anything on an OOD split.
"""
from __future__ import annotations

from .erosion import drop_test
from .erosion_report import _drop, _pct


def erosion_check(ft_eval: dict, teacher_eval: dict, tuned_lr: float | None) -> dict:
    """``ft_eval``/``teacher_eval``: reports/<track>/eval/{ft,teacher}.json. Returns the teacher's ood_val / ood_test
    accuracy and, per lr, the drops (``drop_test``) and FT's mean ID accuracy."""
    teacher = next(iter(teacher_eval["runs"].values()))
    by_lr: dict[float, list[dict]] = {}
    for run in ft_eval["runs"].values():
        by_lr.setdefault(float(run["variant"]), []).append(run)
    lrs = {}
    for lr in sorted(by_lr):
        runs = sorted(by_lr[lr], key=lambda r: r["seed"])
        lrs[f"{lr:g}"] = {
            "seeds": [r["seed"] for r in runs],
            "id_acc": sum(r["id_acc"] for r in runs) / len(runs),
            "ood_val_drop": drop_test(teacher["ood_val_acc"], [r["ood_val_acc"] for r in runs]),
            "ood_test_drop": drop_test(teacher["ood_domain_mean_acc"], [r["ood_domain_mean_acc"] for r in runs]),
        }
    return {"teacher": {"id_acc": teacher["id_acc"], "ood_val_acc": teacher["ood_val_acc"],
                        "ood_test_acc": teacher["ood_domain_mean_acc"]},
            "tuned_lr": None if tuned_lr is None else f"{tuned_lr:g}", "lrs": lrs}


def erosion_check_markdown(check: dict) -> str:
    """The section "Is there erosion to prevent?" of a track's part of results.md."""
    t = check["teacher"]
    lines = ["## Is there erosion to prevent?", "",
             f"From this table's runs: FT from θ_T (head included) at each lr of `ft_lrs`, against θ_T "
             f"({_pct(t['id_acc'])} ID, {_pct(t['ood_val_acc'])} `ood_val`, {_pct(t['ood_test_acc'])} `ood_test`). "
             "Loss of OOD accuracy in points (positive = FT below θ_T): mean over seeds [95 % interval], one-sided p.",
             "", "| lr | seeds | FT ID acc | loss on ood_val | loss on ood_test |", "|---|---|---|---|---|"]
    for lr, row in check["lrs"].items():
        mark = " (chosen on id_val)" if lr == check["tuned_lr"] else ""
        lines.append(f"| {lr}{mark} | {len(row['seeds'])} | {_pct(row['id_acc'])} | {_drop(row['ood_val_drop'])} | "
                     f"{_drop(row['ood_test_drop'])} |")
    return "\n".join(lines) + "\n"
