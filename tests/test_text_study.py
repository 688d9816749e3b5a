"""The text benchmark study chooses on ood_val only: its table and choice do not move when ood_test does."""
import copy

import pytest

from rtd.tracks.text.study import MIN_LOSS, choose, markdown, summarise


def _result(name: str, teacher_ood_val: float, ft_ood_val: list[float], ood_test: float) -> dict:
    teacher = {"id_val": {"acc": 0.5}, "id_test": {"acc": 0.5}, "ood_val": {"acc": teacher_ood_val},
               "ood_test": {"acc": ood_test}}
    ft = {f"lr0.001/seed{k}": {"lr": 0.001, "seed": k, "id_val": {"acc": 0.8}, "id_test": {"acc": 0.8},
                               "ood_val": {"acc": v}, "ood_test": {"acc": ood_test}} for k, v in enumerate(ft_ood_val)}
    r = {"candidate": name, "sizes": {"train": 10, "ood_val": 5, "ood_test": 5}, "teacher": teacher, "ft": ft,
         "ft_lr_chosen_on_id_val": 0.001}
    r["summary"] = summarise(r, 0.001, False)
    return r


def test_summary_by_hand():
    r = _result("a", 0.60, [0.50, 0.52, 0.54], 0.4)
    s = r["summary"]["ood_val/acc"]
    assert s["diff_per_seed"] == [-0.1, -0.08, -0.06]
    assert s["diff_mean"] == pytest.approx(-0.08)
    # t = mean / (sd / sqrt(n)) = -0.08 / (0.02 / sqrt(3)) = -6.93, two-sided p with 2 dof
    assert s["t"] == pytest.approx(-0.08 / (0.02 / 3 ** 0.5))
    assert s["p"] == pytest.approx(0.0202, abs=5e-4)


def test_choice_reads_ood_val_only():
    results = [_result("small", 0.60, [0.58, 0.575, 0.585], 0.5),       # loses 2 points: below MIN_LOSS
               _result("large", 0.60, [0.50, 0.52, 0.54], 0.5),         # loses 8 points, p = 0.02
               _result("noisy", 0.60, [0.30, 0.60, 0.62], 0.5)]         # loses 11 points on average, p > 0.05
    assert MIN_LOSS == 0.03 and choose(results) == "large"
    scrambled = copy.deepcopy(results)
    for r in scrambled:   # ood_test made to say the opposite: FT far above the teacher everywhere
        r["teacher"]["ood_test"]["acc"] = 0.0
        for run in r["ft"].values():
            run["ood_test"]["acc"] = 1.0
        r["summary"] = summarise(r, 0.001, False)
    assert choose(scrambled) == "large"
    keep = lambda md: [line.rsplit("|", 2)[0] for line in md.splitlines()]   # all but the ood_test column
    assert keep(markdown(scrambled)) == keep(markdown(results))
    assert "**Choice (on ood_val):** large" in markdown(results)


def test_no_candidate_erodes():
    results = [_result("gain", 0.50, [0.55, 0.56, 0.57], 0.5)]
    assert choose(results) is None
    assert "**Choice (on ood_val):** none" in markdown(results)
