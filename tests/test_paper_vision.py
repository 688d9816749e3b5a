"""The paper configuration for vision (CLIP via open_clip, WILDS Camelyon17 / iWildCam) on CPU fixtures.

The fixtures are in WILDS' official layouts and load through the real `wilds` code; the model is a
randomly initialised tiny ResNet CLIP (a config JSON), so nothing is downloaded.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
import yaml

from tests.helpers import ROOT, default_params, subprocess_env
from tests.wilds_fixtures import TINY_CLIP_CONFIG, make_camelyon17, make_iwildcam

open_clip = pytest.importorskip("open_clip")


def test_scatter_fallback_gives_group_means_with_empty_groups_zero():
    from rtd.tracks.vision.wilds import install_scatter_fallback

    install_scatter_fallback()
    import torch_scatter

    v = torch.tensor([1.0, 3.0, 10.0, 0.0])
    g = torch.tensor([0, 0, 2, 2])
    assert torch_scatter.scatter(src=v, index=g, dim_size=4, reduce="mean").tolist() == [2.0, 0.0, 5.0, 0.0]


def test_wilds_splits_follow_the_official_split_names(tmp_path):
    from rtd.tracks.vision.wilds import build_wilds_splits

    make_camelyon17(tmp_path)
    splits, manifest = build_wilds_splits({"dataset": "camelyon17", "wilds_root": str(tmp_path), "download": False}, 32)
    # centers 0, 3, 4 -> train / id_val; center 1 -> val (our ood_val); center 2 -> test (our ood_test)
    assert manifest["sizes"] == {"train": 18, "id_val": 18, "id_test": 18, "ood_val": 12, "ood_test": 12}
    assert splits["ood_val"].domain_names == ["hospital1"] and splits["ood_test"].domain_names == ["hospital2"]
    assert splits["train"].images.shape == (18, 3, 32, 32) and splits["train"].metadata.shape == (18, 4)


def test_iwildcam_official_metrics_through_dataset_eval(tmp_path):
    from rtd.tracks.vision.wilds import build_wilds_splits, class_names, official_metrics

    make_iwildcam(tmp_path)
    vision = {"dataset": "iwildcam", "wilds_root": str(tmp_path), "download": False}
    splits, _ = build_wilds_splits(vision, 32)
    test = splits["ood_test"]
    y = torch.as_tensor(test.labels)
    perfect = official_metrics(vision, torch.nn.functional.one_hot(y, 3).float(), y, test.metadata)
    assert perfect == {"acc_avg": 1.0, "recall-macro_all": 1.0, "F1-macro_all": 1.0}
    # always predicting class 0: accuracy 2/6; macro-F1 over the classes present = (1/2 + 0 + 0) / 3
    zero = official_metrics(vision, torch.zeros(len(y), 3).index_fill_(1, torch.tensor([0]), 1.0), y, test.metadata)
    assert zero["acc_avg"] == pytest.approx(2 / 6) and zero["F1-macro_all"] == pytest.approx(1 / 6)
    assert class_names(vision, {}) == ["empty", "deer", "zebra"]


def test_missing_wilds_root_and_missing_weights_give_one_clear_message(tmp_path):
    from rtd.tracks.vision.clip import load_clip
    from rtd.tracks.vision.wilds import load_wilds
    from rtd.errors import RTDError

    with pytest.raises(RTDError, match=r"WILDS camelyon17 not found: .*camelyon17_v1.0/ lacks RELEASE_v1.0.txt, "
                                         r"metadata.csv.*download=True"):
        load_wilds("camelyon17", tmp_path)
    with pytest.raises(RTDError, match=r"open_clip weights RN50/openai are not in .*HF_HUB_OFFLINE.*on a machine "
                                         r"with internet run .*create_model\('RN50', pretrained='openai'"):
        load_clip("RN50", "openai", str(tmp_path / "cache"))


def test_rn50_builds_and_runs_one_forward():
    from rtd.models import build_classifier

    model = build_classifier({"name": "clip", "num_classes": 2,
                              "clip": {"model": "RN50", "pretrained": None, "cache_dir": "unused"}}).eval()
    assert sum(p.numel() for p in model.backbone.parameters()) > 38_000_000  # RN50's image tower
    with torch.no_grad():
        feats = model.features(torch.rand(1, 3, 96, 96))  # 96 px patches are resized to 224 inside
    assert feats.shape == (1, 1024) and torch.allclose(feats.norm(dim=1), torch.ones(1))


def _paper_params(tmp_path) -> dict:
    config = tmp_path / "rtd-tiny-rn.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    p = default_params()
    p["vision"] = {"dataset": "camelyon17", "wilds_root": str(tmp_path / "wilds"), "download": False}
    p["teacher"].update(backbone="clip", batch_size=32)
    p["clip"].update(model=str(config), pretrained=None, templates=["a histopathology image of {}."])
    p["data"]["image_size"] = 32
    p["ood"]["transforms"] = ["stain", "noise", "pgd"]
    p["ood"]["pgd"]["steps"] = 1
    p["seeds"], p["ft_lrs"], p["rtd_lrs"] = [0], [1.0e-4], []
    p["train"].update(epochs=1, batch_size=6, warmup_steps=1, checkpoint_every=100)   # 18 images: 3 full steps
    p["rho"] = 1.0
    return p


def _stage(cwd, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 0, f"{args}: {proc.stderr[-3000:]}"


def _run_ft_and_rtd(tmp_path, params: dict) -> dict[str, dict]:
    """The pipeline's stages from data to evaluation for FT and RTD; each arm's evaluated run."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for args in (["rtd.stages.data"], ["rtd.stages.teacher"], ["rtd.stages.ood"], ["rtd.stages.cache"],
                 ["rtd.stages.train", "--arm", "ft", "--seed", "0", "--lr", "0.0001"],
                 ["rtd.stages.train", "--arm", "rtd", "--seed", "0"],
                 ["rtd.stages.evaluate", "--arm", "ft"], ["rtd.stages.evaluate", "--arm", "rtd"]):
        _stage(tmp_path, *args)
    return {arm: json.loads((tmp_path / f"reports/eval/{arm}.json").read_text())["runs"][run_name]
            for arm, run_name in (("ft", "lr0.0001/seed0"), ("rtd", "seed0"))}


@pytest.mark.slow
def test_ft_and_rtd_run_through_the_pipeline_stages_on_iwildcam(tmp_path):
    make_iwildcam(tmp_path / "wilds", n_categories=182)   # WILDS' 182 classes, 3 of them in the images
    params = _paper_params(tmp_path)
    params["vision"]["dataset"] = "iwildcam"
    params["clip"]["templates"] = ["a camera trap photo of a {}."]
    params["ood"]["transforms"] = ["noise", "motion", "pgd"]
    params["train"]["warmup_steps"] = 0   # its train split is one batch: a warm-up must end before training does
    runs = _run_ft_and_rtd(tmp_path, params)
    from safetensors.torch import load_file

    head = load_file(str(tmp_path / "models/teacher/model.safetensors"))["head.weight"]
    assert head.shape == (182, TINY_CLIP_CONFIG["embed_dim"])   # the zero-shot head names every class
    for arm, run in runs.items():
        wilds = run["wilds"]["ood_test"]
        assert set(wilds) == {"acc_avg", "recall-macro_all", "F1-macro_all"}, arm   # WILDS' official iWildCam metrics
        assert wilds["acc_avg"] == pytest.approx(run["ood_acc"], abs=1e-6)
        assert 0.0 <= wilds["F1-macro_all"] <= 1.0 and set(run["wilds"]) == {"id_test", "ood_test"}
    stats = json.loads((tmp_path / "models/rtd/seed0/train_stats.json").read_text())
    assert stats["ood_batch_size"] == 6 and stats["flops_per_step"] > 0


@pytest.mark.slow
def test_ft_and_rtd_run_through_the_pipeline_stages_on_camelyon17(tmp_path):
    make_camelyon17(tmp_path / "wilds")
    params = _paper_params(tmp_path)
    runs = _run_ft_and_rtd(tmp_path, params)

    # the teacher's head is CLIP's zero-shot head: normalised prompt embedding times the logit scale
    from safetensors.torch import load_file

    from rtd.tracks.vision.clip import load_clip

    clip = load_clip(params["clip"]["model"], None)
    head = load_file(str(tmp_path / "models/teacher/model.safetensors"))["head.weight"]
    # the stage built the text tower with a random init of its own: compare the structure, not the values
    assert head.shape == (2, TINY_CLIP_CONFIG["embed_dim"])
    assert torch.allclose(head.norm(dim=1), torch.full((2,), float(clip.logit_scale.exp().detach())), rtol=1e-5)
    assert json.loads((tmp_path / "models/teacher/probe.json").read_text())["head"] == "zeroshot"

    for arm, run in runs.items():
        wilds = run["wilds"]["ood_test"]
        assert set(wilds) == {"acc_avg", "acc_wg"}
        # WILDS' acc_avg on hospital 2 is our pooled OOD accuracy: two implementations agree
        assert wilds["acc_avg"] == pytest.approx(run["ood_acc"], abs=1e-6)
        assert run["ood_domains"].keys() == {"hospital2"}
    stats = json.loads((tmp_path / "models/rtd/seed0/train_stats.json").read_text())
    assert stats["ood_batch_size"] == 6 and stats["flops_per_step"] > 0

    # the same stage under torchrun (RTD_NPROC=2: two gloo ranks on the CPU) logs the same losses
    single = (tmp_path / "reports/train/rtd/seed0.tsv").read_text()
    (tmp_path / "models/rtd/seed0/model.safetensors").unlink()
    proc = subprocess.run([sys.executable, "-m", "rtd.stages.train", "--arm", "rtd", "--seed", "0"], cwd=tmp_path,
                          capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONPATH": str(ROOT / "src"), "RTD_NPROC": "2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 process(es)" in proc.stderr
    header, row_1 = single.splitlines()[:2]
    row_2 = (tmp_path / "reports/train/rtd/seed0.tsv").read_text().splitlines()[1]
    for name, a, b in zip(header.split("\t"), row_1.split("\t"), row_2.split("\t")):
        if name in ("task", "kd", "ar", "total"):
            assert float(b) == pytest.approx(float(a), rel=1e-3), name
    assert (tmp_path / "models/rtd/seed0/model.safetensors").is_file()


def test_zero_shot_weights_equal_normalised_text_embeddings_times_logit_scale(tmp_path):
    from rtd.tracks.vision.clip import load_clip, tokenizer_for, zero_shot_weights

    config = tmp_path / "rtd-tiny-rn.json"
    config.write_text(json.dumps(TINY_CLIP_CONFIG))
    model = load_clip(str(config), None).eval()
    tokenizer = tokenizer_for(str(config))
    names, templates = ["cat", "dog"], ["a photo of a {}.", "a drawing of a {}."]
    w = zero_shot_weights(model, names, templates, tokenizer)
    scale = model.logit_scale.exp()
    with torch.no_grad():
        for c, name in enumerate(names):
            emb = torch.nn.functional.normalize(model.encode_text(tokenizer([t.format(name) for t in templates])), dim=-1)
            expected = torch.nn.functional.normalize(emb.mean(0), dim=0) * scale
            assert torch.allclose(w[c], expected, atol=1e-6)
        one = zero_shot_weights(model, ["cat"], ["a photo of a {}."], tokenizer)[0]
        text = model.encode_text(tokenizer(["a photo of a cat."]))[0]
        assert torch.allclose(one, text / text.norm() * scale, atol=1e-6)


def test_stain_jitter_is_the_identity_at_zero_severity_and_stays_in_range():
    from rtd.tracks.vision.ood import stain_jitter

    x = torch.rand(4, 3, 16, 16) * 0.9 + 0.05
    assert torch.allclose(stain_jitter(x, 0.0, 0.0), x, atol=1e-5)
    y = stain_jitter(x, 0.2, 0.2)
    assert y.min() >= 0 and y.max() <= 1 and not torch.allclose(y, x, atol=1e-3)


def test_params_refuse_a_wilds_dataset_on_the_embedded_backbone():
    from rtd.config import validate
    from rtd.errors import ParamError

    p = default_params()
    p["vision"]["dataset"] = "camelyon17"
    with pytest.raises(ParamError, match="needs `teacher.backbone` = clip"):
        validate(p)


@pytest.mark.parametrize("name", ["camelyon17", "iwildcam"])
def test_profiles_are_valid_params_and_print_one_command(name, monkeypatch):
    from rtd.config import validate
    from rtd.profile import apply, command, load_profile

    monkeypatch.chdir(ROOT)
    overrides = load_profile(name)
    params = apply(default_params(), overrides)
    validate(params)
    assert params["vision"]["dataset"] == name and params["teacher"]["backbone"] == "clip"
    cmd = command(name, overrides)
    assert cmd[:5] == ["dvc", "exp", "run", "-n", f"paper-{name}"]
    assert f"vision.dataset={name}" in cmd and "train.precision=bf16" in cmd


def test_profile_run_stops_within_seconds_when_offline(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rtd.profile", "camelyon17", "--run",
                           "--set", f"vision.wilds_root={tmp_path}"], cwd=ROOT, capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONPATH": str(ROOT / "src")}, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"WILDS camelyon17 not found: {tmp_path}/camelyon17_v1.0/ lacks" in proc.stderr
    make_camelyon17(tmp_path)  # data present, weights absent: the next thing named is the weights
    proc = subprocess.run([sys.executable, "-m", "rtd.profile", "camelyon17", "--check",
                           "--set", f"vision.wilds_root={tmp_path}", "--set", f"clip.cache_dir={tmp_path}/cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env={**subprocess_env(), "PYTHONPATH": str(ROOT / "src")})
    assert proc.returncode == 2 and "the open_clip weights RN50/openai are not in" in proc.stderr


@pytest.mark.gpu
def test_clip_rn50_trains_in_bf16_on_a_gpu(tmp_path):
    """The GPU check: RN50 (random init: no weights offline) on the Camelyon17 fixture, one epoch of FT and RTD."""
    import time

    from rtd.arms import build_method
    from rtd.tracks.vision.wilds import build_wilds_splits
    from rtd.models import build_classifier
    from rtd.tracks.vision.ood import generate_ood
    from rtd.train import OODSet, train

    make_camelyon17(tmp_path, per_center_split=32)
    splits, _ = build_wilds_splits({"dataset": "camelyon17", "wilds_root": str(tmp_path), "download": False}, 96)
    params = default_params()
    tp = {**params["train"], "device": "cuda", "precision": "bf16", "epochs": 1, "batch_size": 32, "warmup_steps": 1}
    spec = {"name": "clip", "num_classes": 2, "clip": {"model": "RN50", "pretrained": None, "cache_dir": "unused"}}
    ood_params = {**params["ood"], "transforms": ["stain", "noise", "blur"]}
    ood = generate_ood(splits["train"].images, splits["train"].labels, ood_params, None)
    for arm in ("ft", "rtd"):
        torch.manual_seed(0)
        student, teacher = build_classifier(spec), build_classifier(spec)
        start = time.perf_counter()
        result = train(student, build_method(arm, params, tp["lr"] if arm == "ft" else None), splits["train"],
                       splits["id_val"], splits["ood_val"], tp, seed=0, rho=0.5,
                       ood=OODSet(ood["images"], ood["source"]), online_teacher=teacher if arm == "rtd" else None,
                       progress=False)
        row = result.log[0]
        print(f"GPU {arm}: {time.perf_counter() - start:.1f} s/epoch, total loss {row['total']:.4f}, "
              f"id_val {row['id_val_acc']:.3f}, {result.flops_per_step / 1e9:.1f} GFLOP/step")
        assert next(result.model.parameters()).device.type == "cpu" and math.isfinite(row["total"])
