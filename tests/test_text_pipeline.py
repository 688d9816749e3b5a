"""End to end, the language track: `dvc repro` of a tiny text-only configuration (tiny BERT, one seed)."""
from __future__ import annotations

import json

import pytest

from tests.helpers import pipeline_outputs, run_dvc, tiny_text_params

pytestmark = pytest.mark.slow


def test_repro_runs_every_method_on_the_text_track(tiny_text_repo):
    p = tiny_text_params()
    metrics = json.loads((tiny_text_repo / "reports/metrics.json").read_text())
    assert set(metrics) == {"text", "significance_text", "erosion_text"}
    rows = {"teacher", "ft", "ft_tuned", "ft_newhead", "lpft", "lora", "lora_tuned", "lora_rank_tuned", "sdft", "l2sp", "l2sp_tuned", "wiseft_ft",
            "wiseft_ft@0.5", "wiseft_ft_oodval", "aug_only", "kd_only", "ar_only", "rtd", "rtd_tuned", "rtd_ar_tuned", "rtd_kd_tuned", "rtd_t_tuned", "wiseft_rtd", "wiseft_rtd@0.5", "wiseft_rtd_oodval"}
    rows |= {f"rtd_ar@{v}" for v in p["text"]["lambda_ar_sweep"]} | {f"rtd_rho@{v}" for v in p["text"]["rho_sweep"]}
    assert set(metrics["text"]) == rows
    for name, m in metrics["text"].items():
        assert 0.0 <= m["id_acc"] <= 1.0 and 0.0 <= m["ood_acc"] <= 1.0
        assert set(m["ood_domains"]) == {"example"}, name   # WordNet: definitions (ID) -> usage examples (OOD)
    assert metrics["text"]["rtd"]["flops_rel_ft"] > 1.0
    assert metrics["text"]["lora"]["trainable_params"] < metrics["text"]["ft"]["trainable_params"]
    results = (tiny_text_repo / "reports/results.md").read_text()
    assert results.startswith("# Results: text track") and "| RTD |" in results
    log = (tiny_text_repo / "reports/text/train/rtd/seed0.tsv").read_text().splitlines()
    assert len(log) == 1 + p["text"]["train"]["epochs"]
    assert all(row.split("\t")[4] != "nan" and row.split("\t")[5] != "nan" for row in log[1:])   # KD and AR logged
    for name in ("cka", "tsne", "effective_robustness", "wiseft", "reliability", "training_curves"):
        png = tiny_text_repo / f"reports/text/figures/{name}.png"
        assert png.stat().st_size > 10_000 and f"](text/figures/{name}.png)" in results
    cka = json.loads((tiny_text_repo / "reports/text/analysis/cka.json").read_text())
    assert cka["layers"] == p["text"]["analysis"]["layers"] and set(cka["models"]) >= {"ft", "rtd"}
    tsne = json.loads((tiny_text_repo / "reports/text/analysis/tsne.json").read_text())
    assert tsne["class_names"][0] == "noun.act"


def test_text_erosion_study_builds_each_candidate_and_chooses_on_ood_val(tiny_text_repo):
    """Each nuisance candidate has its own splits, θ_T and trend; the default's θ_T is the teacher stage's, byte for
    byte; the choice reads the ood_val losses only; the report gates the default `text.data.nuisance` on it."""
    from rtd.erosion import choose_candidate
    from rtd.report import same_value

    p = tiny_text_params()
    ep = p["text"]["erosion"]
    study = json.loads((tiny_text_repo / "reports/text/erosion.json").read_text())
    assert set(study["candidates"]) == set(ep["candidates"]) and "teacher" not in study and "trend" not in study
    for name, cand in study["candidates"].items():
        assert cand["nuisance"] == name and set(cand["inits"]) == set(ep["inits"])
        assert len(cand["trend"]["points"]) == len(ep["trend_fractions"])
        assert len(cand["inits"]["teacher"]["runs"]) == len(ep["seeds"])
        assert [q["alpha"] for q in cand["inits"]["teacher"]["wiseft_val_mean"]] == ep["alphas"]
    # leetspeak is written into the ID texts only: the OOD usage examples, so θ_T's OOD accuracy, are the same
    none, leet = (study["candidates"][k]["teacher"] for k in ("none", "leet"))
    assert none["ood_val_acc"] == leet["ood_val_acc"] and none["ood_domains"] == leet["ood_domains"]
    default = p["text"]["data"]["nuisance"]
    teacher = tiny_text_repo / f".scratch/erosion/text-teacher-{default}.safetensors"
    assert teacher.read_bytes() == (tiny_text_repo / "models/text/teacher/model.safetensors").read_bytes()
    drops = {k: c["inits"]["teacher"]["ood_val_drop"] for k, c in study["candidates"].items()}
    assert study["choice"] == choose_candidate(drops, ep["min_drop"])
    metrics = json.loads((tiny_text_repo / "reports/metrics.json").read_text())["erosion_text"]
    assert metrics["default"] == default
    assert metrics["default_is_selected"] == same_value(study["choice"]["selected"], default)
    results = (tiny_text_repo / "reports/results.md").read_text()
    assert "stage `text_erosion`): [erosion.md](text/erosion.md)" in results
    page = (tiny_text_repo / "reports/text/erosion.md").read_text()
    assert "| nuisance = leet | teacher θ_T |" in page and "`text.data.nuisance`" in page
    assert (tiny_text_repo / "reports/text/figures/erosion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_study_keeps_only_the_chosen_lrs_weights_and_trains_a_dropped_one_again(tiny_text_repo, tmp_path):
    """After a candidate is summarised only its chosen lr's weights stay in .scratch/erosion (the logs of every run
    do); a chosen run whose weights are gone is trained again, to the same outputs, and no other run is."""
    import shutil
    import subprocess
    import sys

    import yaml

    from tests.helpers import subprocess_env

    for rel in ("src", "pretrained"):
        shutil.copytree(tiny_text_repo / rel, tmp_path / rel)
    p = yaml.safe_load((tiny_text_repo / "params.yaml").read_text())
    lr = p["text"]["train"]["lr"]
    p["text"]["erosion"].update(candidates=["leet"], lrs=[lr, lr / 3])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))

    def study() -> dict[str, bytes]:
        proc = subprocess.run([sys.executable, "-m", "rtd.stages.erosion", "--track", "text"], cwd=tmp_path,
                              env={**subprocess_env(), "PYTHONPATH": "src"}, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return {f: (tmp_path / "reports/text" / f).read_bytes() for f in ("erosion.json", "erosion.md", "figures/erosion.png")}

    first = study()
    scratch = tmp_path / ".scratch/erosion"
    logs = sorted(scratch.glob("*.json"))
    kept = [scratch / f"{q.stem}.safetensors" for q in logs if (scratch / f"{q.stem}.safetensors").is_file()]
    assert len(logs) == 2 * len(p["text"]["erosion"]["seeds"]) and len(kept) == len(p["text"]["erosion"]["seeds"])
    before = {q: q.stat().st_mtime_ns for q in logs}
    for weights in kept:
        weights.unlink()
    assert study() == first   # the chosen runs were trained again, byte for byte
    assert all(w.is_file() for w in kept)
    retrained = {q for q in logs if q.stat().st_mtime_ns != before[q]}
    assert retrained == {scratch / f"{w.stem}.json" for w in kept}


def test_d_ood_holds_perturbed_copies_of_the_training_texts(tiny_text_repo):
    from rtd.io import load_arrays

    p = tiny_text_params()["text"]
    arrays = load_arrays(tiny_text_repo / "data/text/ood/train_ood.safetensors")
    texts = json.loads((tiny_text_repo / "data/text/ood/texts.json").read_text())
    train = json.loads((tiny_text_repo / "data/text/texts.json").read_text())["train"]
    assert len(texts) == len(arrays["source"]) == len(train) * p["ood"]["copies_per_example"]
    # jargon insertion and HotFlip change every text; WordNet synonyms and back-translation find few words to change
    # in leetspeak (the default ID nuisance), which the transforms' own tests check on clean text
    always = [p["ood"]["transforms"].index(t) for t in ("jargon", "hotflip")]
    pairs = [(t, train[s]) for t, s, k in zip(texts, arrays["source"], arrays["transform"]) if k in always]
    assert pairs and sum(t != x for t, x in pairs) >= 0.8 * len(pairs)
    assert set(arrays["transform"].tolist()) == set(range(len(p["ood"]["transforms"])))
    assert arrays["images"].shape[1] == p["data"]["max_len"] and arrays["images"].dtype.kind == "i"
    stats = json.loads((tiny_text_repo / "data/text/cache/stats.json").read_text())
    assert set(stats["ood_acc_by_transform"]) == set(p["ood"]["transforms"])


def test_text_reruns_are_byte_identical_and_second_repro_runs_nothing(tiny_text_repo):
    assert "Running stage" not in run_dvc(tiny_text_repo, "repro")
    before = pipeline_outputs(tiny_text_repo)
    for stage in ("text_ood", "text_train_rtd"):
        run_dvc(tiny_text_repo, "repro", "--force", "--single-item", stage)
    after = pipeline_outputs(tiny_text_repo)
    assert not [p for p in before if before[p] != after[p]], "text outputs differ between two runs"
