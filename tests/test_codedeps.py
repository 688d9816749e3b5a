"""Stage code dependencies are the entry module's import closure (an ast walk), and dvc.yaml declares exactly them."""
from __future__ import annotations

import hashlib
import re

import yaml

from rtd.codedeps import code_files, fingerprint, fingerprint_modules, fingerprint_path, import_closure
from tests.helpers import ROOT


def _write(root, rel, text=""):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_closure_follows_relative_absolute_and_function_level_imports(tmp_path):
    _write(tmp_path, "pkg/__init__.py")
    _write(tmp_path, "pkg/stages/__init__.py")
    _write(tmp_path, "pkg/stages/run.py", "import os\nfrom .common import x\n\ndef main():\n    from ..lib import f\n")
    _write(tmp_path, "pkg/stages/common.py", "x = 1\n")
    _write(tmp_path, "pkg/lib.py", "from . import helpers\nimport numpy\n")
    _write(tmp_path, "pkg/helpers.py", "")
    _write(tmp_path, "pkg/unused.py", "")
    assert import_closure("pkg.stages.run", tmp_path) == [
        "src/pkg/__init__.py", "src/pkg/helpers.py", "src/pkg/lib.py", "src/pkg/stages/__init__.py",
        "src/pkg/stages/common.py", "src/pkg/stages/run.py"]


def test_dvc_yaml_declares_each_stage_s_import_closure_and_the_params_check():
    """A stage's code = the closure of its entry module and of the track package(s) it runs (the core finds a
    track by name at run time, which an ast walk cannot see): `check` and `report` serve every track."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert stages["code"]["deps"] == ["src/rtd"]
    for name, stage in list(stages.items())[1:]:
        body = stage.get("do", stage)
        module = body["cmd"].split(" -m ", 1)[1].split()[0]
        code = code_files(body["deps"])
        tracks = ["vision", "text"] if name in ("check", "report") else ["text" if name.startswith("text_") else "vision"]
        closure = {f for m in [module, *(f"rtd.tracks.{t}" for t in tracks)] for f in import_closure(m)}
        assert code == sorted(closure), name
        assert ("reports/params_check.txt" in body["deps"]) == (name != "check"), name
    # the seeding and data loading of io.py reach every training stage (they were missing from the hand-typed lists)
    assert "src/rtd/io.py" in code_files(stages["train_ft"]["deps"])
    assert "src/rtd/analysis.py" in code_files(stages["report"]["deps"])


def test_a_fingerprint_lists_its_closure_and_changes_only_with_it(tmp_path):
    """The `code` stage's file for a module holds the md5 of each file of its import closure: editing a file of the
    closure changes it, editing any other file does not (so DVC reruns exactly the stages that can execute it)."""
    tree = {"stages/train.py": "from ..losses import kd\n", "stages/report.py": "from ..stats import holm\n",
            "losses.py": "kd = 1\n", "stats.py": "holm = 1\n", "tracks/toy/__init__.py": ""}
    for rel in ("__init__.py", "stages/__init__.py", "stages/common.py", "tracks/__init__.py", *tree):
        _write(tmp_path, f"rtd/{rel}", tree.get(rel, ""))
    assert fingerprint_modules(tmp_path) == ["rtd.stages.report", "rtd.stages.train", "rtd.tracks.toy"]
    before = {m: fingerprint(m, tmp_path) for m in fingerprint_modules(tmp_path)}
    md5 = hashlib.md5(b"kd = 1\n").hexdigest()
    assert f"{md5}  src/rtd/losses.py" in before["rtd.stages.train"].splitlines()
    _write(tmp_path, "rtd/losses.py", "kd = 2\n")
    after = {m: fingerprint(m, tmp_path) for m in fingerprint_modules(tmp_path)}
    assert after["rtd.stages.train"] != before["rtd.stages.train"]
    assert after["rtd.stages.report"] == before["rtd.stages.report"]
    assert after["rtd.tracks.toy"] == before["rtd.tracks.toy"]
    assert fingerprint_path("rtd.stages.train") == "reports/code/rtd.stages.train.txt"


def test_the_committed_fingerprints_are_the_code_s():
    """reports/code/ is what the `code` stage writes from this tree (dvc.lock records it; lockcheck compares)."""
    for module in fingerprint_modules():
        assert (ROOT / fingerprint_path(module)).read_text() == fingerprint(module), module


def test_analysis_depends_on_the_models_it_reads():
    """The analysis reads the first seed's model of each arm (FT's at train.lr) and of every value of a swept arm; it
    declares the output folder of each stage that trains one (FT's at train.lr only), not an arm's folder of every
    value: an FT run at another lr or a new value of a sweep does not rerun it."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for prefix, lr in (("", "${train.lr}"), ("text/", "${text.train.lr}")):
        name = prefix.replace("/", "_")
        deps = [d for d in stages[f"{name}analysis"]["deps"] if d.startswith("models/")]
        outs = [re.sub(r"\\\$\\\{[^}]*\\\}", "[^/]+", re.escape(o)) for st in stages.values()
                for o in st.get("outs", []) if isinstance(o, str)]   # a matrix stage's ${item.x} matches a value
        assert f"models/{prefix}ft/lr{lr}" in deps and f"models/{prefix}ft" not in deps
        assert f"models/{prefix}rtd" in deps
        assert f"models/{prefix}rtd_rho/rho0.5" in deps and f"models/{prefix}rtd_rho" not in deps   # one per value
        for dep in (d.replace(lr, "0.0001") for d in deps if not d.endswith("teacher/model.safetensors")):
            assert any(re.fullmatch(o, dep) for o in outs), f"{dep} is no training stage's output folder"


def test_the_analysis_stops_when_a_sweep_changed_since_dvc_yaml_was_generated(tmp_path, monkeypatch):
    """The analysis declares one model per value of a sweep as params.yaml had it when dvc.yaml was generated:
    after `-S lambda_ar_sweep=[1.0, 5.0]` it would read an undeclared model, so it stops with one line first."""
    import pytest

    from rtd.dvcgen import render
    from rtd.errors import ParamError
    from rtd.stages.analysis import analysed_models
    from rtd.stages.common import check_declared
    from rtd.tracks import for_track

    monkeypatch.chdir(tmp_path)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (tmp_path / "dvc.yaml").write_text(render())
    for track, stage in (("vision", "analysis"), ("text", "text_analysis")):
        read = analysed_models(for_track(params, track), track)
        check_declared(stage, [f"{d}/model.safetensors" for d in read.values()])   # ${seeds[0]}, ${text.train.lr}
    params["lambda_ar_sweep"] = [1.0, 5.0]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    read = analysed_models(for_track(params, "vision"), "vision")
    with pytest.raises(ParamError, match="models/rtd_ar/lambda_ar5.0/seed0/model.safetensors.*rtd.dvcgen"):
        check_declared("analysis", [f"{d}/model.safetensors" for d in read.values()])
