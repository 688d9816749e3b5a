"""End to end: `dvc repro` of a tiny configuration in a temporary copy of the repository."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, run_dvc, subprocess_env, pipeline_outputs, tiny_params

pytestmark = pytest.mark.slow


def test_repro_writes_metrics_for_every_method_and_seed(tiny_repo):
    metrics = json.loads((tiny_repo / "reports/metrics.json").read_text())
    rows = {"teacher", "ft", "ft_tuned", "ft_newhead", "lpft", "lora", "lora_lr@0.003", "lora_tuned", "lora_rank_tuned", "sdft", "l2sp",
            "l2sp_alpha@1.0", "l2sp_tuned", "wiseft_ft", "wiseft_ft@0.5", "wiseft_ft_oodval", "aug_only",
            "kd_only", "ar_only", "rtd", "rtd_tuned", "rtd_ar_tuned", "rtd_ar@1.0", "rtd_kd@0.5", "rtd_kd_tuned", "rtd_t_tuned", "rtd_rho@1.0", "aug_only_rho@1.0", "kd_only_rho@1.0",
            "ar_only_rho@1.0", "wiseft_rtd", "wiseft_rtd@0.5", "wiseft_rtd_oodval", "rtd_online@all"}
    assert set(metrics["vision"]) == rows
    seeds = tiny_params()["seeds"]
    for name, m in metrics["vision"].items():
        assert 0.0 <= m["id_acc"] <= 1.0 and 0.0 <= m["ood_acc"] <= 1.0
        assert set(m["ood_domains"]) == {"handwriting", "decorative", "sklearn_digits"}
        assert m["gap"] == pytest.approx(m["id_acc"] - m["ood_acc"], abs=2e-6)
        assert m["n_runs"] == (1 if name == "teacher" else len(seeds)), name
        assert m["ood_acc_std"] is None   # one seed (and the teacher): no spread
    ft, rtd = metrics["vision"]["ft"], metrics["vision"]["rtd"]
    # RTD also passes ceil(rho * B) OOD images per step: more FLOPs than FT
    assert rtd["flops_rel_ft"] > 1.0 and ft["flops_rel_ft"] == 1.0
    assert metrics["vision"]["lora"]["trainable_params"] < ft["trainable_params"]
    assert set(metrics["significance"]["rtd_vs_ft"]["ood_domain_mean_acc"]) == {"n", "mean_diff", "t", "p", "p_holm"}
    for name, m in metrics["vision"].items():   # derived by the report: gap on the headline OOD, ER on the val splits
        assert m["gap_mean"] == pytest.approx(m["id_acc"] - m["ood_domain_mean_acc"], abs=2e-6)
        assert -1.0 <= m["effective_robustness_val"] <= 1.0, name
    assert "rtd_rho@1.0_vs_ft" in metrics["significance"]   # every swept rho against FT
    for control in ("aug_only", "kd_only", "ar_only"):   # ... and against its controls at that rho
        assert f"rtd_rho@1.0_vs_{control}_rho@1.0" in metrics["significance"]
    online = json.loads((tiny_repo / "models/rtd_online/transformsall/seed0/train_stats.json").read_text())["hparams"]
    assert online["ood_transforms"] == tiny_params()["ood"]["transforms"] and online["pgd_target"] == "teacher"
    assert "rtd_online@all_vs_rtd" in metrics["significance"]
    assert "## B_OOD drawn at every step, and each transform class alone" in (tiny_repo / "reports/results.md").read_text()
    stats = json.loads((tiny_repo / "models/kd_only_rho/rho1.0/seed0/train_stats.json").read_text())
    assert stats["hparams"]["rho"] == 1.0 and stats["hparams"]["lambda_ar"] == 0.0, stats["hparams"]
    results = (tiny_repo / "reports/results.md").read_text()
    assert "| RTD |" in results and "sklearn digits" in results and " ± " in results and "Paired t-test" in results
    log = (tiny_repo / "reports/train/rtd/seed0.tsv").read_text().splitlines()
    assert log[0].split("\t")[:8] == ["epoch", "step", "lr", "task", "kd", "ar", "l2sp", "total"]
    assert (tiny_repo / "models/lora/seed0/adapter.safetensors").stat().st_size > 0
    wise = json.loads((tiny_repo / "reports/eval/wiseft_rtd.json").read_text())
    curve = wise["runs"]["seed0"]["curve"]
    assert [p["alpha"] for p in curve] == tiny_params()["wiseft"]["alphas"]
    # the endpoints are the evaluate stage's metrics of the teacher and of RTD (read, not recomputed)
    teacher = json.loads((tiny_repo / "reports/eval/teacher.json").read_text())["runs"]["teacher"]
    rtd_run = json.loads((tiny_repo / "reports/eval/rtd.json").read_text())["runs"]["seed0"]
    from rtd.wiseft import endpoint_metrics

    assert {k: v for k, v in curve[0].items() if k != "alpha"} == endpoint_metrics(teacher)
    assert {k: v for k, v in curve[-1].items() if k != "alpha"} == endpoint_metrics(rtd_run)
    assert set(curve[1]) == set(curve[0])   # an interpolated point has the same metrics


def test_every_figure_is_written_and_embedded(tiny_repo):
    from rtd.figures import FIGURES

    results = (tiny_repo / "reports/results.md").read_text()
    for name in FIGURES:
        png = tiny_repo / f"reports/figures/{name}.png"
        assert png.stat().st_size > 10_000, name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](figures/{name}.png)" in results
    cka = json.loads((tiny_repo / "reports/analysis/cka.json").read_text())
    assert set(cka["models"]) >= {"ft", "rtd", "lpft", "lora"}
    for values in cka["models"].values():
        for where in ("id", "ood"):
            assert all(0.0 <= v <= 1.0 + 1e-9 for v in values[where].values())
    assert "Linear CKA with the teacher" in results


def test_erosion_study_reports_every_candidate_and_chooses_on_ood_val(tiny_repo):
    from rtd.erosion import choose_candidate

    study = json.loads((tiny_repo / "reports/erosion.json").read_text())
    ep = tiny_params()["erosion"]
    assert set(study["candidates"]) == {str(c) for c in ep["candidates"]}
    for cand in study["candidates"].values():
        s = cand["inits"]["teacher"]
        assert [r["seed"] for r in s["runs"]] == ep["seeds"] and s["lr"] in ep["lrs"]
        assert set(s["ood_test_domain_drop"]) == {"handwriting", "decorative", "sklearn_digits"}
        curve = s["wiseft_val_mean"]
        assert [q["alpha"] for q in curve] == ep["alphas"]
        # the curve's ends are the teacher and the fine-tuned runs themselves
        assert curve[0]["ood_val_acc"] == pytest.approx(study["teacher"]["ood_val_acc"], abs=1e-6)
        assert curve[-1]["ood_val_acc"] == pytest.approx(sum(r["ood_val_acc"] for r in s["runs"]) / len(s["runs"]), abs=1e-6)
        assert len(s["epochs"]) == len(ep["seeds"]) and all("effective_robustness_val" in e[0] for e in s["epochs"])
    # the default is chosen from the ood_val losses alone: ood_test takes no part
    drops = {k: c["inits"]["teacher"]["ood_val_drop"] for k, c in study["candidates"].items()}
    assert study["choice"]["selected"] == choose_candidate(drops, ep["min_drop"])["selected"]
    assert "# Is there erosion to prevent?" in (tiny_repo / "reports/erosion.md").read_text()
    assert (tiny_repo / "reports/figures/erosion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((tiny_repo / "reports/metrics.json").read_text())
    assert metrics["erosion"]["selected"] == study["choice"]["selected"]
    # the gate is the report's: is the default shortcut probability the study's choice?
    default_p = tiny_params()["data"]["shortcut"]["p"]
    assert metrics["erosion"]["default"] == default_p
    assert metrics["erosion"]["default_is_selected"] == (float(study["choice"]["selected"]) == default_p)
    results = (tiny_repo / "reports/results.md").read_text()
    assert "[erosion.md](erosion.md)" in results
    assert ("is the candidate the study selects" in results) == metrics["erosion"]["default_is_selected"]


def test_second_repro_runs_nothing_and_status_is_clean(tiny_repo):
    out = run_dvc(tiny_repo, "repro")
    assert "Running stage" not in out
    assert "up to date" in run_dvc(tiny_repo, "status")


def test_lambda_kd_change_touches_only_the_arms_that_read_it(tiny_repo):
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    params["lambda_kd"] = 0.5
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        changed = set(json.loads(run_dvc(tiny_repo, "status", "--json")))
    finally:
        (tiny_repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    p = tiny_params()   # one stage per arm and swept value trains every seed
    expected = {"train_rtd", "train_kd_only", "report", "check"}
    expected |= {f"train_rtd_ar@{v}" for v in p["lambda_ar_sweep"]}
    expected |= {f"train_rtd_rho@{v}" for v in p["rho_sweep"]}
    expected |= {f"train_kd_only_rho@{v}" for v in p["controls_rho_sweep"]}
    expected |= {f"train_rtd_online@{v}" for v in p["online_transforms_sweep"]}
    expected |= {f"train_kd_only_online@{v}" for v in p["controls_online_sweep"]}
    assert changed == expected   # what `dvc repro` would run first; downstream stages follow their changed inputs


def test_a_code_change_reruns_only_the_stages_that_can_execute_it(tiny_repo):
    """Editing a file makes only `code` stale; once it has run, exactly the stages whose fingerprinted modules
    import the file are: src/rtd/stats.py serves the erosion study and the report, no training stage."""
    from rtd.codedeps import code_files

    stages = yaml.safe_load((tiny_repo / "dvc.yaml").read_text())["stages"]
    readers = {name for name, st in stages.items() if "src/rtd/stats.py" in code_files(st.get("do", st).get("deps", []))}
    path = tiny_repo / "src/rtd/stats.py"
    text = path.read_text()
    path.write_text(text + "# an edit\n")
    try:
        assert set(json.loads(run_dvc(tiny_repo, "status", "--json"))) == {"code"}
        run_dvc(tiny_repo, "repro", "-s", "code")
        changed = set(json.loads(run_dvc(tiny_repo, "status", "--json")))
    finally:
        path.write_text(text)
        run_dvc(tiny_repo, "repro", "-s", "code")
    assert readers == {"erosion", "report"}
    assert changed == readers
    assert "up to date" in run_dvc(tiny_repo, "status")   # the fingerprints came back: nothing else reruns


def test_a_param_change_reruns_only_its_arm_and_restoring_it_restores_every_byte(tiny_repo):
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    before = pipeline_outputs(tiny_repo)
    params["sdft"]["temperature"] = 3.0
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run_dvc(tiny_repo, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    allowed = {"train_sdft", "evaluate@sdft", "analysis", "report", "check"}
    assert ran <= allowed and "train_sdft" in ran, sorted(ran)
    after = pipeline_outputs(tiny_repo)
    for arm in ("ft/lr0.0001", "lpft", "lora", "rtd", "l2sp", "aug_only", "kd_only", "ar_only"):
        assert after[f"models/{arm}/seed0/model.safetensors"] == before[f"models/{arm}/seed0/model.safetensors"]
    assert after["models/sdft/seed0/model.safetensors"] != before["models/sdft/seed0/model.safetensors"]
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    run_dvc(tiny_repo, "repro")
    assert pipeline_outputs(tiny_repo) == before, "restoring the param must restore byte-identical outputs"


@pytest.mark.parametrize("edit,message", [
    ({"temperature": 0}, "`temperature` must be > 0"),
    ({"train.warmup_stpes": 7}, "unknown key `train.warmup_stpes`; did you mean `train.warmup_steps`?"),
    ({"lamda_kd": 1.0, "lambda_kd": None}, "missing key `lambda_kd` (params.yaml has `lamda_kd`: misspelt?)"),
], ids=["bad-value", "misspelt-nested-key", "misspelt-key"])
def test_dvc_repro_with_bad_params_stops_at_the_check_and_removes_no_output(tiny_repo, edit, message):
    params, before = tiny_params(), pipeline_outputs(tiny_repo)
    committed = {p: (tiny_repo / p).read_bytes() for p in ("reports/metrics.json", "reports/results.md")}
    for dotted, value in edit.items():
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        if value is None:
            del node[last]
        else:
            node[last] = value
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = subprocess.run([sys.executable, "-m", "dvc", "repro"], cwd=tiny_repo, env=subprocess_env(),
                              capture_output=True, text=True)
    finally:
        (tiny_repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and message in out, out[-2000:]
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran == {"check"}, ran
    assert {p: (tiny_repo / p).read_bytes() for p in committed} == committed
    check = "reports/params_check.txt"   # the check's own output: DVC removed it to rerun the check
    assert {p: (tiny_repo / p).read_bytes() for p in before if p != check} == {p: b for p, b in before.items() if p != check}
    out = run_dvc(tiny_repo, "repro")   # params restored: only the check reruns, to the same bytes
    assert {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")} == {"check"}
    assert pipeline_outputs(tiny_repo) == before
    assert "up to date" in run_dvc(tiny_repo, "status")


def test_params_written_by_dvc_in_yaml_1_2_are_read_as_numbers(tiny_repo):
    # `dvc exp run -S lambda_ar=1e-5` writes `1e-05`, a float in YAML 1.2 (DVC's reader) and a string in PyYAML's 1.1
    text = (tiny_repo / "params.yaml").read_text()
    assert "\nlambda_ar: " in text
    lines = [("lambda_ar: 1e-05" if ln.startswith("lambda_ar:") else ln) for ln in text.splitlines()]
    (tiny_repo / "params.yaml").write_text("\n".join(lines) + "\n")
    try:
        run_dvc(tiny_repo, "repro", "--single-item", "check")
        changed = set(json.loads(run_dvc(tiny_repo, "status", "--json")))
        assert "train_rtd" in changed and "train_lpft" not in changed
    finally:
        (tiny_repo / "params.yaml").write_text(text)
    run_dvc(tiny_repo, "repro", "--single-item", "check")
    assert "up to date" in run_dvc(tiny_repo, "status")


def test_forced_rerun_is_byte_identical(tiny_repo):
    # the stages with randomness or threads in play: D_OOD (kornia, PGD) and training; t-SNE and the figures are
    # rerun (and compared byte for byte) by the param-restore test above (a full forced rerun would double the time)
    before = pipeline_outputs(tiny_repo)
    for stage in ("ood", "train_rtd"):
        run_dvc(tiny_repo, "repro", "--force", "--single-item", stage)
    after = pipeline_outputs(tiny_repo)
    changed = [p for p in before if before[p] != after[p]]
    assert not changed, f"outputs differ between two runs: {changed}"


def _killed_once_exists(cmd: list[str], cwd: Path, env: dict, path: Path, timeout: float = 120) -> bool:
    """Start `cmd`, SIGKILL it as soon as `path` exists; True if it was killed (not finished or failed first)."""
    import signal
    import time

    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while not path.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return proc.returncode == -signal.SIGKILL


def test_training_killed_with_sigkill_resumes_to_identical_outputs(tiny_repo, tmp_path):
    work = tmp_path / "killed"
    shutil.copytree(tiny_repo, work, ignore=shutil.ignore_patterns(".dvc", ".scratch"))
    ckpt = work / ".scratch/checkpoints/rtd/seed0.pt"
    cmd = [sys.executable, "-m", "rtd.stages.train", "--arm", "rtd", "--seed", "0"]
    env = {**subprocess_env(), "PYTHONPATH": str(work / "src")}
    assert _killed_once_exists(cmd, work, env, ckpt), "the run finished before it could be killed"
    assert ckpt.exists()
    resumed = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert not ckpt.exists(), "the checkpoint must be deleted once training finishes"
    for rel in ("models/rtd/seed0/model.safetensors", "models/rtd/seed0/train_stats.json", "reports/train/rtd/seed0.tsv"):
        assert (work / rel).read_bytes() == (tiny_repo / rel).read_bytes(), f"{rel} differs after resume"


def test_corrupted_checkpoint_stops_with_a_message(tiny_repo, tmp_path):
    work = tmp_path / "corrupt"
    shutil.copytree(tiny_repo, work, ignore=shutil.ignore_patterns(".dvc", ".scratch"))
    (work / ".scratch/checkpoints/lpft").mkdir(parents=True)
    (work / ".scratch/checkpoints/lpft/seed0.pt").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "rtd.stages.train", "--arm", "lpft", "--seed", "0"], cwd=work,
                          env={**subprocess_env(), "PYTHONPATH": str(work / "src")}, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "checkpoint .scratch/checkpoints/lpft/seed0.pt is corrupted" in proc.stderr and "rm " in proc.stderr


def test_the_arm_stage_matches_single_seed_runs_and_resumes_after_its_last_finished_seed(tiny_repo, tmp_path):
    """The per-arm stage trains every seed in one process: seed 0 equals the DVC-made run, seed 1 (trained after
    seed 0 in the same process) equals seed 1 trained alone; killed after seed 0 finished, it restores seed 0 and trains
    the rest to the same bytes."""
    work = tmp_path / "arm"
    shutil.copytree(tiny_repo, work, ignore=shutil.ignore_patterns(".dvc", ".scratch"))
    params = yaml.safe_load((work / "params.yaml").read_text())
    assert params["seeds"] == [0]
    params["seeds"] = [0, 1]
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**subprocess_env(), "PYTHONPATH": str(work / "src")}
    cmd = [sys.executable, "-m", "rtd.stages.train", "--arm", "rtd"]
    files = [f"{d}/seed{s}{f}" for s in (0, 1) for d, f in (("models/rtd", "/model.safetensors"),
                                                          ("models/rtd", "/train_stats.json"), ("reports/train/rtd", ".tsv"))]

    def outputs() -> dict[str, bytes]:
        return {rel: (work / rel).read_bytes() for rel in files}

    def clear() -> None:   # as DVC does before it runs a stage
        shutil.rmtree(work / "models/rtd")
        shutil.rmtree(work / "reports/train/rtd")

    clear()
    first = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    both = outputs()
    for rel in files[:3]:
        assert both[rel] == (tiny_repo / rel).read_bytes(), f"{rel} differs from the DVC-made run"
    assert not (work / ".scratch/finished/models/rtd").exists(), "a finished stage keeps no copies (-f retrains)"
    alone = subprocess.run([*cmd, "--seed", "1"], cwd=work, env=env, capture_output=True, text=True)
    assert alone.returncode == 0 and "restored" not in alone.stdout, alone.stderr
    assert outputs() == both, "seed 1 trained alone differs from seed 1 trained after seed 0"

    clear()
    done = work / ".scratch/finished/models/rtd/seed0/key"
    assert _killed_once_exists(cmd, work, env, done) and done.exists(), "seed 0 did not finish before the kill"
    clear()
    resumed = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "rtd seed 0: finished by an earlier attempt, restored" in resumed.stdout
    assert "rtd seed 1: finished" not in resumed.stdout
    assert outputs() == both, "the resumed stage's outputs differ"
