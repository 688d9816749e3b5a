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


def test_repro_writes_metrics_for_every_method(tiny_repo):
    metrics = json.loads((tiny_repo / "reports/metrics.json").read_text())
    assert set(metrics["vision"]) == {"teacher", "ft", "rtd"}
    for m in metrics["vision"].values():
        assert 0.0 <= m["id_acc"] <= 1.0 and 0.0 <= m["ood_acc"] <= 1.0
        assert set(m["ood_domains"]) == {"handwriting", "decorative", "sklearn_digits"}
        assert m["gap"] == pytest.approx(m["id_acc"] - m["ood_acc"], abs=2e-6)
    ft, rtd = metrics["vision"]["ft"], metrics["vision"]["rtd"]
    # RTD also passes ceil(rho * B) OOD images per step: more FLOPs than FT
    assert rtd["flops_rel_ft"] > 1.0 and ft["flops_rel_ft"] == 1.0
    results = (tiny_repo / "reports/results.md").read_text()
    assert "| RTD |" in results and "sklearn digits" in results
    log = (tiny_repo / "reports/train/rtd.tsv").read_text().splitlines()
    assert log[0].split("\t")[:7] == ["epoch", "step", "lr", "task", "kd", "ar", "total"]


def test_second_repro_runs_nothing_and_status_is_clean(tiny_repo):
    out = run_dvc(tiny_repo, "repro")
    assert "Running stage" not in out
    assert "up to date" in run_dvc(tiny_repo, "status")


def test_lambda_kd_change_reruns_only_rtd(tiny_repo):
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    before = pipeline_outputs(tiny_repo)
    params["lambda_kd"] = 0.5
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = run_dvc(tiny_repo, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran <= {"train_rtd", "evaluate@rtd", "report"} and "train_rtd" in ran
    after = pipeline_outputs(tiny_repo)
    assert after["models/ft/model.safetensors"] == before["models/ft/model.safetensors"]
    params["lambda_kd"] = tiny_params()["lambda_kd"]
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_dvc(tiny_repo, "repro")
    assert pipeline_outputs(tiny_repo) == before, "restoring the param must restore byte-identical outputs"


def test_forced_rerun_is_byte_identical(tiny_repo):
    before = pipeline_outputs(tiny_repo)
    run_dvc(tiny_repo, "repro", "--force")
    after = pipeline_outputs(tiny_repo)
    changed = [p for p in before if before[p] != after[p]]
    assert not changed, f"outputs differ between two runs: {changed}"


def test_training_killed_with_sigkill_resumes_to_identical_outputs(tiny_repo, tmp_path):
    import signal
    import time

    work = tmp_path / "killed"
    shutil.copytree(tiny_repo, work, ignore=shutil.ignore_patterns(".dvc", ".scratch"))
    ckpt = work / ".scratch/checkpoints/rtd.pt"
    cmd = [sys.executable, "-m", "rtd.stages.train", "--method", "rtd"]
    env = {**subprocess_env(), "PYTHONPATH": str(work / "src")}
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert ckpt.exists()
    resumed = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    assert not ckpt.exists(), "the checkpoint must be deleted once training finishes"
    for rel in ("models/rtd/model.safetensors", "models/rtd/train_stats.json", "reports/train/rtd.tsv"):
        assert (work / rel).read_bytes() == (tiny_repo / rel).read_bytes(), f"{rel} differs after resume"


def test_corrupted_checkpoint_stops_with_a_message(tiny_repo, tmp_path):
    work = tmp_path / "corrupt"
    shutil.copytree(tiny_repo, work, ignore=shutil.ignore_patterns(".dvc", ".scratch"))
    (work / ".scratch/checkpoints").mkdir(parents=True)
    (work / ".scratch/checkpoints/ft.pt").write_bytes(b"not a checkpoint")
    proc = subprocess.run([sys.executable, "-m", "rtd.stages.train", "--method", "ft"], cwd=work,
                          env={**subprocess_env(), "PYTHONPATH": str(work / "src")}, capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "checkpoint .scratch/checkpoints/ft.pt is corrupted" in proc.stderr and "rm " in proc.stderr
