"""The text track's erosion check: FT's loss of OOD accuracy against θ_T per lr, from the evaluation files."""
import pytest

from rtd.erosion_check import erosion_check, erosion_check_markdown


def _run(seed, lr, ood_val, ood_test, id_acc=0.5):
    return {"seed": seed, "variant": lr, "id_acc": id_acc, "ood_val_acc": ood_val, "ood_domain_mean_acc": ood_test}


def test_erosion_check_by_hand():
    teacher = {"runs": {"teacher": {"id_acc": 0.2, "ood_val_acc": 0.45, "ood_domain_mean_acc": 0.40}}}
    ft = {"runs": {"a": _run(1, 3e-4, 0.30, 0.26), "b": _run(0, 3e-4, 0.32, 0.28),
                   "c": _run(0, 1e-4, 0.44, 0.41, 0.4), "d": _run(1, 1e-4, 0.46, 0.39, 0.6)}}
    out = erosion_check(ft, teacher, 3e-4)
    assert out["teacher"] == {"id_acc": 0.2, "ood_val_acc": 0.45, "ood_test_acc": 0.40} and out["tuned_lr"] == "0.0003"
    assert list(out["lrs"]) == ["0.0001", "0.0003"]
    hi = out["lrs"]["0.0003"]
    assert hi["seeds"] == [0, 1] and hi["id_acc"] == pytest.approx(0.5)
    assert hi["ood_val_drop"]["mean"] == pytest.approx(0.14) and hi["ood_test_drop"]["mean"] == pytest.approx(0.13)
    assert hi["ood_val_drop"]["p"] < 0.05   # drops 0.15 and 0.13: t = 14 on 1 df, one-sided p ~ 0.023
    lo = out["lrs"]["0.0001"]
    assert lo["ood_val_drop"]["mean"] == pytest.approx(0.0) and lo["ood_test_drop"]["mean"] == pytest.approx(0.0)
    md = erosion_check_markdown(out)
    assert "| 0.0003 (chosen on id_val) | 2 | 50.0 | +14.0 [" in md and "| 0.0001 | 2 |" in md
