"""Bad input through the real commands (issue 21): `dvc repro`, `dvc exp run --queue` + `dvc queue start`, and
two DVC commands in one checkout. Each stops with one clear line and leaves the outputs and dvc.lock as they were."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_tiny_repo, subprocess_env, tiny_params

pytestmark = pytest.mark.slow


def _dvc(repo: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=subprocess_env(),
                          capture_output=True, text=True)
    if check:
        assert proc.returncode == 0, f"dvc {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env=subprocess_env(), check=True, capture_output=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The tiny repository, committed, with only the `check` stage run (every other stage is its downstream)."""
    dest = copy_tiny_repo(tmp_path_factory.mktemp("dvc-bad-input") / "repo")
    _git(dest, "init", "-q")
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "tiny")
    _dvc(dest, "repro", "check", check=True)
    _git(dest, "add", "-A")
    _git(dest, "commit", "-qm", "check")
    return dest


def _stage_locks(repo: Path) -> bool:
    import json

    try:
        held = json.loads((repo / ".dvc" / "tmp" / "rwlock").read_text())
    except (FileNotFoundError, ValueError):
        return False
    return any(held.get(kind) for kind in ("read", "write"))


def _write(repo: Path, changes: dict) -> None:
    params = tiny_params()
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


# each mistake of issue 21 that params alone reveal: `dvc repro` stops at the check stage, before DVC removes anything
CASES = [
    ({"seeds": [0, 2**32]}, "`seeds` must be distinct integers in [0, 2**32 - 1]"),
    ({"tracks": ["text"], "track": "vision"}, "`track` = 'vision' (the track results.md leads with) is not in `tracks`"),
    ({"analysis.tsne_perplexity": 400}, "`analysis.tsne_perplexity` = 400 must be smaller than the t-SNE sample"),
    ({"train.batch_size": 128}, "`train.batch_size` = 128 is larger than the training set (60 examples)"),
    ({"train.warmup_steps": 8}, "`train.warmup_steps` = 8 is not shorter than training"),
]


@pytest.mark.parametrize("changes,message", CASES, ids=[next(iter(c)) for c, _ in CASES])
def test_dvc_repro_stops_at_the_check_with_one_line(repo, changes, message):
    lock = (repo / "dvc.lock").read_bytes()
    _write(repo, changes)
    try:
        proc = _dvc(repo, "repro")
        assert proc.returncode != 0
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error [")]
        assert len(errors) == 1 and message in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout
        assert "Running stage 'data'" not in proc.stdout   # nothing after the check ran
        assert not (repo / "data").exists() and (repo / "dvc.lock").read_bytes() == lock
    finally:
        _git(repo, "checkout", "params.yaml")


def test_a_queued_experiment_with_a_bad_value_is_reported_failed(repo):
    """`dvc exp run --queue -S` with a bad value: the queue marks it Failed (it does not hang) and its log names it."""
    _dvc(repo, "exp", "run", "--queue", "-S", "seeds=[4294967296]", check=True)
    _dvc(repo, "queue", "start", check=True)
    deadline, status = time.monotonic() + 300, ""
    while time.monotonic() < deadline:
        status = _dvc(repo, "queue", "status").stdout
        if "Failed" in status and "Running" not in status and "Queued" not in status:
            break
        time.sleep(2)
    assert "Failed" in status, status
    name = status.splitlines()[1].split()[1]
    logs = _dvc(repo, "queue", "logs", name).stdout
    assert "error [check]: params.yaml: `seeds` must be distinct integers in [0, 2**32 - 1]" in logs, logs
    _dvc(repo, "queue", "stop")
    assert _dvc(repo, "status", "check").returncode == 0   # the workspace was not touched


def test_two_dvc_repro_at_once_one_refuses_and_nothing_is_corrupted(repo):
    """While `dvc repro data` renders (and holds its stage locks), a second `dvc repro` in the same checkout refuses
    with a message naming the process; the first finishes and records its work in dvc.lock."""
    env = subprocess_env()
    first = subprocess.Popen([sys.executable, "-m", "dvc", "--wait-for-lock", "repro", "data"], cwd=repo, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):   # until the first holds a stage lock (DVC's .dvc/tmp/rwlock lists it)
            if _stage_locks(repo):
                break
            time.sleep(0.05)
        second = _dvc(repo, "--wait-for-lock", "repro", "-f", "check")
        out, err = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, err
    assert second.returncode != 0
    assert "is busy, it is being blocked by" in second.stderr or "Unable to acquire lock" in second.stderr, second.stderr
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert "data" in lock["stages"]
    status = _dvc(repo, "status", "check", "data", check=True)
    assert "changed" not in status.stdout and "modified" not in status.stdout, status.stdout
