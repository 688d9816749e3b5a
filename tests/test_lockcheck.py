"""`rtd.lockcheck`: which differences between a checkout and dvc.lock count (issue 21's fresh-clone check)."""
from rtd.lockcheck import disagreements, stale_inputs


def test_missing_cache_files_are_fine_and_tracked_changes_are_named():
    status = {
        "data": [{"changed outs": {"data/vision/train.safetensors": "deleted"}}],           # no cache: fine
        "teacher": [{"changed deps": {"models/pretrain/model.safetensors": "deleted"}}],    # upstream output: fine
        "train_rtd@0": [{"changed deps": {"src/rtd/losses.py": "modified",
                                          "data/vision/train.safetensors": "deleted"}}],
        "report": [{"changed outs": {"reports/results.md": "modified", "reports/figures/a.png": "deleted"}}],
        "evaluate@ft": [{"changed deps": {"params.yaml": {"seeds": "modified", "eval.ece_bins": "new"}}}],
        "check": ["changed command"],
    }
    tracked = {"src/rtd/losses.py", "reports/results.md", "reports/figures/a.png", "params.yaml"}
    assert disagreements(status, tracked) == {
        "train_rtd@0": ["dep src/rtd/losses.py modified"],
        "report": ["out reports/results.md modified", "out reports/figures/a.png deleted"],
        "evaluate@ft": ["param params.yaml:eval.ece_bins new", "param params.yaml:seeds modified"],
        "check": ["changed command"],
    }
    assert disagreements({"data": [{"changed outs": {"data/x": "deleted"}}]}, tracked) == {}


def test_a_fresh_clone_agrees_with_the_committed_lock(tmp_path):
    """Issue 21: in a clone of the committed repository (no cache, no outputs), `dvc status` names no changed code,
    params or committed report of any stage: a reviewer who pulls the artifacts reruns nothing."""
    import subprocess
    import sys

    import pytest

    from tests.helpers import ROOT, subprocess_env

    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, env=subprocess_env())
    proc = subprocess.run([sys.executable, "-m", "rtd.lockcheck"], cwd=clone, capture_output=True, text=True,
                          env={**subprocess_env(), "PYTHONPATH": str(clone / "src")})
    if proc.returncode == 2:
        pytest.fail(proc.stderr)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr


def test_a_stage_that_read_an_older_input_is_named():
    """The lock must agree with itself: SDFT recorded the cache's logits with another hash than the cache stage
    made (it was relocked, not rerun, after the cache changed); a folder or a file no stage makes is not checked."""
    lock = {"stages": {
        "cache": {"outs": [{"path": "data/cache/logits.safetensors", "md5": "new"}]},
        "train_sdft@0": {"deps": [{"path": "data/cache/logits.safetensors", "md5": "old"},
                                  {"path": "reports/params_check.txt", "md5": "x"}]},
        "train_rtd@0": {"deps": [{"path": "data/cache/logits.safetensors", "md5": "new"}]},
        "evaluate": {"deps": [{"path": "models/rtd", "md5": "abc.dir"}]},
    }}
    assert stale_inputs(lock) == {"train_sdft@0": ["dep data/cache/logits.safetensors is not what cache made"]}


def test_the_committed_lock_agrees_with_itself():
    import yaml

    from tests.helpers import ROOT

    assert stale_inputs(yaml.safe_load((ROOT / "dvc.lock").read_text())) == {}
