"""The erosion study's math against hand-computed values, and its choice of the default."""
import math

import pytest

from rtd.erosion import best_lr, choose_candidate, clipped_logit, drop_test, effective_robustness, fit_trend, mean_ci


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_clipped_logit_is_finite_at_0_and_100_percent():
    assert clipped_logit(0.5, 10) == pytest.approx(0.0)
    assert clipped_logit(1.0, 10) == pytest.approx(math.log(0.95 / 0.05))   # 1 - 0.5/10
    assert clipped_logit(0.0, 10) == pytest.approx(-math.log(0.95 / 0.05))


def test_trend_and_effective_robustness_on_an_exact_line():
    # logit(ood) = 2 logit(id) + 1 exactly; n large enough that nothing is clipped
    points = [(0.5, _sigmoid(1.0)), (_sigmoid(1.0), _sigmoid(3.0)), (_sigmoid(-1.0), _sigmoid(-1.0))]
    slope, intercept = fit_trend(points, 10**6, 10**6)
    assert slope == pytest.approx(2.0, abs=1e-6) and intercept == pytest.approx(1.0, abs=1e-6)
    # a model at id 50 % with 90 % OOD sits 0.9 - sigmoid(1) above the trend
    assert effective_robustness(0.5, 0.9, (slope, intercept), 10**6) == pytest.approx(0.9 - _sigmoid(1.0), abs=1e-6)
    with pytest.raises(ValueError, match="same ID accuracy"):
        fit_trend([(0.7, 0.1), (0.7, 0.2)], 100, 100)


def test_drop_test_against_a_deterministic_teacher():
    # drops 0.1 and 0.2: mean 0.15, sd 0.0707, t = 0.15 / (0.0707 / sqrt 2) = 3 on 1 df
    d = drop_test(0.8, [0.7, 0.6])
    assert d["mean"] == pytest.approx(0.15) and d["std"] == pytest.approx(math.sqrt(0.005))
    assert d["p"] == pytest.approx(0.5 - math.atan(3.0) / math.pi)   # Student t with 1 df: sf(3)
    half = 12.706204736 * math.sqrt(0.005) / math.sqrt(2)   # t_{0.975, 1}
    assert d["ci"] == pytest.approx([0.15 - half, 0.15 + half], rel=1e-6)
    assert mean_ci([0.3])["ci"] is None


def test_the_default_is_the_largest_significant_loss_on_ood_val():
    drops = {"0.0": {"mean": 0.01, "p": 0.01}, "0.9": {"mean": 0.05, "p": 0.02}, "1.0": {"mean": 0.08, "p": 0.2}}
    choice = choose_candidate(drops, min_drop=0.03)
    assert choice["selected"] == "0.9" and choice["erodes"]   # 1.0 loses more, but not significantly
    none = choose_candidate({"0.0": {"mean": 0.01, "p": 0.01}, "0.9": {"mean": 0.02, "p": 0.4}}, min_drop=0.03)
    assert none["selected"] == "0.9" and not none["erodes"] and "no candidate" in none["reason"]


def test_best_lr_breaks_accuracy_ties_with_nll():
    scores = {1e-4: [(1.0, 0.20), (1.0, 0.30)], 3e-4: [(1.0, 0.05), (1.0, 0.10)], 1e-3: [(0.9, 0.01), (1.0, 0.01)]}
    assert best_lr(scores) == 3e-4


def _study(shared: bool) -> dict:
    """A hand-made study of two candidates (text-style: each with its own θ_T and trend unless ``shared``)."""
    def teacher(acc):
        return {"ood_domain_mean_acc": acc, "ood_val_acc": acc, "id_acc": 0.2}

    def inits(drop):
        return {"teacher": {"lr": 3e-4, "runs": [{"ood_domain_mean_acc": 0.3}, {"ood_domain_mean_acc": 0.5}],
                            "ood_val_drop": {"mean": drop, "p": 0.01}, "ood_test_mean_drop": {"mean": drop / 2},
                            "wiseft_ood_val_peak_alpha": 0.1}}
    cands = {"none": {"inits": inits(-0.02)}, "leet": {"inits": inits(0.15)}}
    if shared:
        return {"teacher": teacher(0.4), "trend": {"slope": 1.0}, "candidates": cands,
                "choice": {"selected": "leet", "erodes": True}}
    cands["none"].update(teacher=teacher(0.44), trend={"slope": 0.5})
    cands["leet"].update(teacher=teacher(0.45), trend={"slope": 2.0})
    return {"candidates": cands, "choice": {"selected": "leet", "erodes": True}}


def test_erosion_headline_and_trend_with_a_theta_t_per_candidate():
    from rtd.report import erosion_headline, same_value, study_trend

    assert same_value("0.9", 0.9) and same_value("0.0", 0) and same_value("leet", "leet")
    assert not same_value("leet", "none") and not same_value("0.9", 1.0)
    head = erosion_headline(_study(shared=False), "leet")
    assert head["default_is_selected"] and head["default"] == "leet"
    assert head["teacher_ood_domain_mean_acc"] == 0.45   # the selected candidate's θ_T
    assert head["candidates"]["leet"]["ft_ood_domain_mean_acc"] == pytest.approx(0.4)
    assert head["candidates"]["leet"]["ood_val_drop"] == 0.15 and head["candidates"]["none"]["ft_lr"] == 3e-4
    assert not erosion_headline(_study(shared=False), "none")["default_is_selected"]
    # the main table's effective robustness: the default candidate's trend, or the shared one
    assert study_trend(_study(shared=False), "none") == {"slope": 0.5}
    assert study_trend(_study(shared=False), "leet") == {"slope": 2.0}
    assert study_trend(_study(shared=False), "rot13") is None
    assert study_trend(_study(shared=True), "none") == {"slope": 1.0}
    assert erosion_headline(_study(shared=True), "none")["teacher_ood_domain_mean_acc"] == 0.4


def test_a_flat_trend_stops_before_training_and_names_the_param(monkeypatch):
    """ID-only probes that all score the same id_val accuracy (here: constant features) give no trend line: the
    stage stops with the track's key to change, before any FT run."""
    from types import SimpleNamespace

    import numpy as np
    import torch

    import rtd.models as models
    from rtd.errors import ParamError
    from rtd.stages import erosion

    class Split(SimpleNamespace):
        def __len__(self) -> int:
            return len(self.labels)

    split = Split(images=np.zeros((20, 3)), labels=np.array([0, 1] * 10))
    monkeypatch.setattr(models, "backbone_spec", lambda params, track=None: {})
    monkeypatch.setattr(models, "build_classifier", lambda spec: None)
    monkeypatch.setattr(models, "predict", lambda model, x, batch_size, layer=None: (None, torch.zeros(len(x), 4)))
    params = {"erosion": {"seed": 0, "trend_fractions": [0.5, 1.0]},
              "teacher": {"batch_size": 8, "probe_c": 1.0, "probe_max_iter": 100}}
    with pytest.raises(ParamError, match=r"`text\.erosion\.trend_fractions` = \[0\.5, 1\.0\]: every ID-only probe"):
        erosion._probe_trend(params, "text", split, split, split)
    with pytest.raises(ParamError, match=r"`erosion\.trend_fractions`"):
        erosion._probe_trend(params, "vision", split, split, split)
