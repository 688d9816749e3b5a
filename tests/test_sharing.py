"""Sharing results: push to a remote, clone, pull (local directory and read-only HTTP), experiments."""
from __future__ import annotations

import contextlib
import functools
import http.server
import json
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

from tests.helpers import pipeline_outputs, run_dvc, subprocess_env

pytestmark = pytest.mark.slow


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"git {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout


@pytest.fixture(scope="module")
def published(tiny_repo, tmp_path_factory):
    """A published copy of the tiny project: committed, pushed to a bare git remote and a DVC remote."""
    root = tmp_path_factory.mktemp("publish")
    src = root / "src"
    shutil.copytree(tiny_repo, src, ignore=shutil.ignore_patterns(".scratch"))
    remote = root / "dvc-remote"
    run_dvc(src, "remote", "add", "-d", "storage", str(remote))
    _git(src, "add", "-A")
    _git(src, "commit", "-qm", "tiny published run")
    origin = root / "origin.git"
    _git(root, "init", "-q", "--bare", str(origin))
    _git(src, "remote", "add", "origin", str(origin))
    _git(src, "push", "-q", "origin", "HEAD:refs/heads/main")
    run_dvc(src, "push", "--run-cache")
    return {"root": root, "src": src, "remote": remote, "origin": origin}


def _clone(published: dict, name: str) -> Path:
    dest = published["root"] / name
    _git(published["root"], "clone", "-q", "--branch", "main", str(published["origin"]), str(dest))
    return dest


def test_pull_from_a_directory_remote_restores_every_output(published):
    clone = _clone(published, "reviewer")
    run_dvc(clone, "pull")
    assert "up to date" in run_dvc(clone, "status")
    assert pipeline_outputs(clone) == pipeline_outputs(published["src"])


def test_pull_of_one_target(published):
    clone = _clone(published, "one-target")
    run_dvc(clone, "pull", "train_rtd")
    assert (clone / "models/rtd/seed0/model.safetensors").read_bytes() == \
        (published["src"] / "models/rtd/seed0/model.safetensors").read_bytes()
    assert not (clone / "models/ft/lr0.0001/seed0/model.safetensors").exists()


@contextlib.contextmanager
def _serve(directory: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_pull_through_a_read_only_http_remote(published):
    clone = _clone(published, "http-reviewer")
    with _serve(published["remote"]) as url:
        run_dvc(clone, "remote", "add", "--local", "-d", "published-http", url)
        run_dvc(clone, "pull")
    assert "up to date" in run_dvc(clone, "status")
    assert pipeline_outputs(clone) == pipeline_outputs(published["src"])


def test_repro_pull_allow_missing_runs_nothing(published):
    clone = _clone(published, "repro-pull")
    out = run_dvc(clone, "repro", "--pull", "--allow-missing")
    assert "Running stage" not in out


def test_experiment_push_and_pull_through_a_bare_git_remote(published):
    author = _clone(published, "exp-author")
    run_dvc(author, "pull")
    # a cheap ablation (one arm); the lambda_kd reruns are tested in test_pipeline.py
    run_dvc(author, "exp", "run", "-n", "l2sp02", "-S", "l2sp.alpha=0.02")
    run_dvc(author, "exp", "push", "origin", "l2sp02")
    reader = _clone(published, "exp-reader")
    run_dvc(reader, "exp", "pull", "origin", "l2sp02")
    shown = run_dvc(reader, "exp", "show", "--md")
    assert "l2sp02" in shown
    run_dvc(reader, "exp", "apply", "l2sp02")
    run_dvc(reader, "pull")
    assert (reader / "models/l2sp/seed0/model.safetensors").read_bytes() == \
        (author / "models/l2sp/seed0/model.safetensors").read_bytes()
    assert "up to date" in run_dvc(reader, "status")


def test_queued_grid_runs_every_experiment(published):
    import time

    work = _clone(published, "queue")
    run_dvc(work, "pull")
    # a grid over a param only the analysis reads (cheap); the training arms' reruns are tested elsewhere
    run_dvc(work, "exp", "run", "--queue", "-S", "analysis.tsne_perplexity=5,10")
    run_dvc(work, "queue", "start", "-j", "1")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run_dvc(work, "queue", "status")
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(2)
    assert status.count("Success") == 2, status
    shown = run_dvc(work, "exp", "show", "--md")
    assert "analysis.tsne_perplexity" in shown or "tsne_perplexity" in shown, shown[:2000]


def _make(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """The real `make` target, with the venv taken as installed (the test runs inside it)."""
    return subprocess.run(["make", "-s", "-o", ".venv/.installed", *args], cwd=repo, env=subprocess_env(),
                          capture_output=True, text=True)


def test_make_pull_against_an_http_remote_that_holds_nothing_says_so(published, tmp_path):
    clone = _clone(published, "pull-empty")
    (tmp_path / "empty").mkdir()
    with _serve(tmp_path / "empty") as url:
        run_dvc(clone, "remote", "add", "--local", "-d", "mirror", url)
        proc = _make(clone, "pull")
    assert proc.returncode != 0
    assert "holds nothing for this dvc.lock (0 of " in proc.stderr, proc.stderr
    assert not (clone / "models/rtd/seed0/model.safetensors").exists()


def test_make_pull_against_a_partial_http_remote_names_the_missing_stages_and_pulls_the_rest(published, tmp_path):
    import yaml

    clone = _clone(published, "pull-partial")
    partial = tmp_path / "partial"
    shutil.copytree(published["remote"], partial)
    lock = yaml.safe_load((clone / "dvc.lock").read_text())["stages"]
    folder = lock["train_rtd"]["outs"][0]["md5"]   # models/rtd: its manifest names the seed-0 RTD model
    manifest = json.loads((partial / "files/md5" / folder[:2] / folder[2:]).read_text())
    gone = next(e["md5"] for e in manifest if e["relpath"] == "seed0/model.safetensors")
    (partial / "files/md5" / gone[:2] / gone[2:]).unlink()
    with _serve(partial) as url:
        run_dvc(clone, "remote", "add", "--local", "-d", "mirror", url)
        proc = _make(clone, "pull")
    assert proc.returncode != 0
    assert "lacks 1 of " in proc.stderr and "of 1 stage(s): train_rtd;" in proc.stderr, proc.stderr
    assert not (clone / "models/rtd/seed0/model.safetensors").exists()
    assert (clone / "models/lpft/seed0/model.safetensors").read_bytes() == \
        (published["src"] / "models/lpft/seed0/model.safetensors").read_bytes()   # another stage: pulled


def test_make_pull_names_an_unreachable_remote(published):
    clone = _clone(published, "pull-unreachable")
    run_dvc(clone, "remote", "add", "--local", "-d", "mirror", "http://127.0.0.1:9/dvc")
    proc = _make(clone, "pull")
    assert proc.returncode != 0 and "is not reachable" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_make_publish_pushes_and_verifies_from_a_fresh_clone(published, tmp_path):
    proc = _make(published["src"], "publish", f"REMOTE={tmp_path / 'published'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "verified: a fresh clone pulled every output" in proc.stderr
    clone = _clone(published, "from-published")
    run_dvc(clone, "remote", "add", "--local", "-d", "mirror", str(tmp_path / "published"))
    proc = _make(clone, "pull")
    assert proc.returncode == 0 and "holds all" in proc.stderr, proc.stderr
    assert pipeline_outputs(clone) == pipeline_outputs(published["src"])
