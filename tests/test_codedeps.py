"""Stage code dependencies are the entry module's import closure (an ast walk), and dvc.yaml declares exactly them."""
from __future__ import annotations

import yaml

from rtd.codedeps import import_closure
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
    for name, stage in stages.items():
        body = stage.get("do", stage)
        module = body["cmd"].split(" -m ", 1)[1].split()[0]
        code = [d for d in body["deps"] if d.startswith("src/")]
        tracks = ["vision", "text"] if name in ("check", "report") else ["text" if name.startswith("text_") else "vision"]
        closure = {f for m in [module, *(f"rtd.tracks.{t}" for t in tracks)] for f in import_closure(m)}
        assert code == sorted(closure), name
        assert ("reports/params_check.txt" in body["deps"]) == (name != "check"), name
    # the seeding and data loading of io.py reach every training stage (they were missing from the hand-typed lists)
    assert "src/rtd/io.py" in stages["train_ft"]["deps"] and "src/rtd/analysis.py" in stages["report"]["deps"]


def test_analysis_depends_on_the_models_it_reads():
    """The analysis reads the first seed's model of each arm (FT's at train.lr) and every value of a swept arm:
    a retrained seed 1 or an FT run at another lr does not rerun it."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for prefix, lr in (("", "${train.lr}"), ("text/", "${text.train.lr}")):
        deps = [d for d in stages[f"{prefix.replace('/', '_')}analysis"]["deps"] if d.startswith("models/")]
        assert f"models/{prefix}ft/lr{lr}/seed${{seeds[0]}}/model.safetensors" in deps
        assert f"models/{prefix}rtd/seed${{seeds[0]}}/model.safetensors" in deps
        assert f"models/{prefix}rtd_rho" in deps   # swept: one model per value
        assert not any(d.endswith(("/ft", "/rtd")) for d in deps)
