"""reports/headline.json: the few numbers a person diffs (`dvc metrics show`, `dvc exp show`), from metrics.json.

reports/metrics.json keeps every aggregate (about 1,300 values: every arm, seed statistics, domains, tests) as a
plain output; the DVC metric is this short file: per track, ID accuracy and OOD accuracy (mean over the `ood_test`
domains, the headline) of the teacher, FT from θ_T, RTD and WiSE-FT θ_T → FT, the loss of OOD accuracy from the
teacher to FT (the erosion the method is meant to prevent), and the erosion study's own figure where it ran.
"""
from __future__ import annotations

from .arms import BASELINE, METHOD, WISEFT_ROWS

HEADLINE_ARMS = ("teacher", BASELINE, METHOD, WISEFT_ROWS[0])
DIGITS = 4


def headline(metrics: dict, tracks: list[str]) -> dict:
    """The headline numbers of ``metrics`` (reports/metrics.json's content) for ``tracks``, as fractions.

    ``{track: {arm: {id, ood}, ft_ood_loss}}`` for each arm of HEADLINE_ARMS that the track ran, and
    ``erosion: {ood_val_loss, ood_test_loss}`` (the candidate the study selected) when it ran: 20 numbers.
    """
    out: dict = {}
    for track in tracks:
        rows = metrics[track]
        part = {arm: {"id": round(rows[arm]["id_acc"], DIGITS), "ood": round(rows[arm]["ood_domain_mean_acc"], DIGITS)}
                for arm in HEADLINE_ARMS if arm in rows}
        if "teacher" in part and BASELINE in part:
            part[f"{BASELINE}_ood_loss"] = round(part["teacher"]["ood"] - part[BASELINE]["ood"], DIGITS)
        out[track] = part
    if "erosion" in metrics:
        study = metrics["erosion"]
        chosen = study["candidates"][study["selected"]]
        out["erosion"] = {"ood_val_loss": round(chosen["ood_val_drop"], DIGITS),
                          "ood_test_loss": round(chosen["ood_test_mean_drop"], DIGITS)}
    return out
