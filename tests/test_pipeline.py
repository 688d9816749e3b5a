"""End to end: `dvc repro` of a tiny configuration in a temporary copy of the repository."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import ROOT, tiny_params

pytestmark = pytest.mark.slow


def _tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(HF_HUB_OFFLINE="1", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env.pop("PYTHONPATH", None)
    return env


def _dvc(repo: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _outputs(repo: Path) -> dict[str, bytes]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    paths = {o["path"] for st in lock["stages"].values() for o in st.get("outs", [])}
    return {p: (repo / p).read_bytes() for p in sorted(paths)}


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("rtd") / "repo"
    for rel in _tracked_files():
        if rel == "dvc.lock" or rel.startswith("reports/"):
            continue  # the copy must produce these itself
        dest = repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    (repo / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    _dvc(repo, "repro")
    return repo


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
    out = _dvc(tiny_repo, "repro")
    assert "Running stage" not in out
    assert "up to date" in _dvc(tiny_repo, "status")


def test_lambda_kd_change_reruns_only_rtd(tiny_repo):
    params = yaml.safe_load((tiny_repo / "params.yaml").read_text())
    before = _outputs(tiny_repo)
    params["lambda_kd"] = 0.5
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    out = _dvc(tiny_repo, "repro")
    ran = {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}
    assert ran <= {"train_rtd", "evaluate@rtd", "report"} and "train_rtd" in ran
    after = _outputs(tiny_repo)
    assert after["models/ft/model.safetensors"] == before["models/ft/model.safetensors"]
    params["lambda_kd"] = tiny_params()["lambda_kd"]
    (tiny_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _dvc(tiny_repo, "repro")
    assert _outputs(tiny_repo) == before, "restoring the param must restore byte-identical outputs"


def test_forced_rerun_is_byte_identical(tiny_repo):
    before = _outputs(tiny_repo)
    _dvc(tiny_repo, "repro", "--force")
    after = _outputs(tiny_repo)
    changed = [p for p in before if before[p] != after[p]]
    assert not changed, f"outputs differ between two runs: {changed}"
