"""LoRA, WiSE-FT, seed aggregation and the arm registry, checked against hand-computed values."""
import math

import pytest
import torch

from rtd.arms import DERIVED, TRAINED, best_variant, log_path, run_dir
from rtd.metrics import aggregate_runs, paired_ttest
from rtd.models import build_classifier
from rtd.wiseft import interpolate_weights, select_alpha
from tests.helpers import default_params


def test_lora_merged_and_unmerged_logits_agree():
    from rtd.lora import LoRA

    torch.manual_seed(0)
    model = build_classifier("efficientnet-lite0")
    model.eval()
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
    lora = LoRA(rank=4, alpha=8, dropout=0.0, target_modules=r".*\._(expand|project)_conv", lr=1e-3)
    model = lora.prepare(model)
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), before, atol=1e-5)  # B = 0 at init: the pretrained function
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)                           # as if trained: the adapters now matter
        unmerged = model(x)
    assert not torch.allclose(unmerged, before, atol=1e-3)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert any(n.startswith("head.") for n in trainable)
    merged = lora.finalize(model)
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    assert lora.adapters and all("lora_" in k or k.startswith("head.") for k in lora.adapters)
    with torch.no_grad():
        assert torch.allclose(merged(x), unmerged, atol=1e-4)
    # the merged weights load into a plain Classifier (what evaluation builds)
    fresh = build_classifier("efficientnet-lite0")
    fresh.load_state_dict(merged.state_dict())
    fresh.eval()
    with torch.no_grad():
        assert torch.allclose(fresh(x), unmerged, atol=1e-4)


def test_lora_rejects_targets_it_cannot_adapt():
    from rtd.errors import ParamError
    from rtd.lora import LoRA

    with pytest.raises(ParamError, match="matches no module"):
        LoRA(4, 8, 0.0, "nothing_here", 1e-3).prepare(build_classifier("efficientnet-lite0"))
    with pytest.raises(ParamError, match="padded"):
        LoRA(4, 8, 0.0, r".*_depthwise_conv", 1e-3).prepare(build_classifier("efficientnet-lite0"))


def test_wiseft_endpoints_are_exact_and_the_middle_is_linear():
    g = torch.Generator().manual_seed(0)
    a = {"w": torch.randn(3, 4, generator=g), "n": torch.tensor(5)}
    b = {"w": torch.randn(3, 4, generator=g), "n": torch.tensor(9)}
    assert torch.equal(interpolate_weights(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate_weights(a, b, 1.0)["w"], b["w"])
    assert interpolate_weights(a, b, 0.0)["n"].item() == 5 and interpolate_weights(a, b, 0.3)["n"].item() == 9
    assert torch.allclose(interpolate_weights(a, b, 0.25)["w"], 0.75 * a["w"] + 0.25 * b["w"], atol=1e-6)
    with pytest.raises(ValueError, match="alpha must lie in"):
        interpolate_weights(a, b, 1.5)
    with pytest.raises(ValueError, match="different parameters"):
        interpolate_weights(a, {"w": b["w"]}, 0.5)


def test_wiseft_of_real_models_reproduces_both_endpoints():
    torch.manual_seed(0)
    m0, m1 = build_classifier("efficientnet-lite0"), build_classifier("efficientnet-lite0")
    m0.eval(), m1.eval()
    x = torch.rand(2, 3, 32, 32)
    probe = build_classifier("efficientnet-lite0")
    probe.eval()
    for alpha, ref in ((0.0, m0), (1.0, m1)):
        probe.load_state_dict(interpolate_weights(m0.state_dict(), m1.state_dict(), alpha))
        with torch.no_grad():
            assert torch.equal(probe(x), ref(x))


def test_select_alpha_takes_the_best_validation_point_and_the_smaller_alpha_on_ties():
    curve = [{"alpha": 0.0, "v": 0.5}, {"alpha": 0.5, "v": 0.7}, {"alpha": 1.0, "v": 0.7}]
    assert select_alpha(curve, "v")["alpha"] == 0.5


def test_aggregate_runs_mean_and_sample_std():
    runs = [{"acc": 0.6, "dom": {"a": 0.1}, "name": "x", "seed": 0},
            {"acc": 0.8, "dom": {"a": 0.3}, "name": "x", "seed": 1},
            {"acc": 0.7, "dom": {"a": 0.2}, "name": "x", "seed": 2}]
    agg = aggregate_runs(runs)
    assert agg["n_runs"] == 3 and agg["name"] == "x"
    assert agg["acc"] == pytest.approx(0.7) and agg["acc_std"] == pytest.approx(0.1)   # sqrt((0.01+0.01+0)/2)
    assert agg["dom"]["a"] == pytest.approx(0.2) and agg["dom_std"]["a"] == pytest.approx(0.1)
    assert aggregate_runs(runs[:1])["acc_std"] is None


def test_paired_ttest_against_hand_computed_t():
    a, b = [0.5, 0.6, 0.9], [0.4, 0.4, 0.6]        # differences 0.1, 0.2, 0.3: mean 0.2, sd 0.1
    res = paired_ttest(a, b)
    assert res["mean_diff"] == pytest.approx(0.2)
    assert res["t"] == pytest.approx(0.2 / (0.1 / math.sqrt(3)))   # 3.4641
    assert res["p"] == pytest.approx(0.0742, abs=1e-3)               # two-sided, 2 degrees of freedom
    assert paired_ttest([0.5, 0.6], [0.4, 0.5])["t"] is None         # constant difference: t undefined


def test_best_variant_uses_the_mean_over_seeds():
    assert best_variant({1e-4: [0.9, 0.7], 3e-4: [0.8, 0.85], 3e-5: [0.1, 0.2]}) == 3e-4
    assert best_variant({1e-4: [0.8], 3e-4: [0.8]}) == 1e-4


def test_run_paths_follow_dvc_rendering_of_the_variant():
    assert run_dir("ft", 0, 3e-05) == "models/ft/lr3e-05/seed0"
    assert run_dir("rtd_ar", 2, 10.0) == "models/rtd_ar/lambda_ar10.0/seed2"
    assert log_path("rtd", 1) == "reports/train/rtd/seed1.tsv"


def test_report_rows_name_every_arm():
    """`methods` may list every trained and derived arm, and the default reports all of them."""
    from rtd.arms import REPORT_ROWS

    assert set(REPORT_ROWS) == set(TRAINED) | set(DERIVED) == set(default_params()["methods"])


def test_dvc_yaml_is_generated_from_the_arm_registry():
    from rtd.dvcgen import render
    from tests.helpers import ROOT

    assert (ROOT / "dvc.yaml").read_text() == render(), "dvc.yaml is stale: run `PYTHONPATH=src python -m rtd.dvcgen`"


def test_rho_points_and_table_sort_by_rho_and_compare_with_ft():
    from rtd.report import rho_points, rho_table

    agg = {"teacher": {"ood_domain_mean_acc": 0.3, "id_acc": 0.9, "flops_rel_ft": None},
           "ft": {"ood_domain_mean_acc": 0.40, "ood_domain_mean_acc_std": 0.01, "id_acc": 0.99, "id_acc_std": 0.0, "flops_rel_ft": 1.0},
           "rtd": {"ood_domain_mean_acc": 0.45, "ood_domain_mean_acc_std": 0.02, "id_acc": 0.98, "id_acc_std": 0.01, "flops_rel_ft": 1.5},
           "rtd_rho@1.0": {"ood_domain_mean_acc": 0.47, "ood_domain_mean_acc_std": 0.0, "id_acc": 0.97, "id_acc_std": 0.0, "flops_rel_ft": 2.0},
           "rtd_rho@0.1": {"ood_domain_mean_acc": 0.41, "ood_domain_mean_acc_std": 0.0, "id_acc": 0.99, "id_acc_std": 0.0, "flops_rel_ft": 1.1}}
    rows = {"rtd_rho@1.0": {"variant": 1.0}, "rtd_rho@0.1": {"variant": 0.1}}
    points = rho_points(agg, rows, 0.5)
    assert [(p["row"], p["rho"]) for p in points] == [("ft", 0.0), ("rtd_rho@0.1", 0.1), ("rtd", 0.5), ("rtd_rho@1.0", 1.0)]
    table = rho_table(points, 64)
    assert "| 0.1 | 7 | 1.10 | 41.0 ± 0.0 | 99.0 ± 0.0 | +1.0 |" in table
    assert "| 0.5 (`rtd`) | 32 | 1.50 | 45.0 ± 2.0 | 98.0 ± 1.0 | +5.0 |" in table


def test_loss_weights_come_from_what_each_arm_reads():
    """The report weights each arm's KD and AR terms by what the arm reads (no hand list of arm names)."""
    from rtd.arms import loss_weights

    params = {"lambda_kd": 0.7, "lambda_ar": 0.3}
    expected = {"ft": (0.0, 0.0), "ft_newhead": (0.0, 0.0), "lpft": (0.0, 0.0), "lora": (0.0, 0.0), "sdft": (0.0, 0.0),
                "l2sp": (0.0, 0.0), "aug_only": (0.0, 0.0), "kd_only": (0.7, 0.0), "ar_only": (0.0, 0.3),
                "rtd": (0.7, 0.3), "rtd_ar": (0.7, 10.0), "rtd_rho": (0.7, 0.3),
                "aug_only_rho": (0.0, 0.0), "kd_only_rho": (0.7, 0.0), "ar_only_rho": (0.0, 0.3),
                "lora_lr": (0.0, 0.0), "lora_rank": (0.0, 0.0), "l2sp_alpha": (0.0, 0.0),   # an lr, rank or alpha
                "rtd_lr": (0.7, 0.3),                                                          # weights no term
                "rtd_kd": (0.2, 0.3), "rtd_t": (0.7, 0.3),   # a swept lambda_KD weights KD; a swept T weights nothing
                "rtd_online": (0.7, 0.3),   # nor does the class set B_OOD is drawn from
                "aug_only_online": (0.0, 0.0), "kd_only_online": (0.7, 0.0), "ar_only_online": (0.0, 0.3)}
    variants = {"rtd_ar": 10.0, "rtd_kd": 0.2, "rtd_t": 4.0, "rtd_online": "pgd", "aug_only_online": "all",
                "kd_only_online": "all", "ar_only_online": "all"}
    assert {name: loss_weights(arm, params, variants.get(name, 0.5 if arm.variant == "rho" else None))
            for name, arm in TRAINED.items()} == expected
