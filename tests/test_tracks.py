"""The two tracks share stages and library code: params overrides, paths and declared params."""
import pytest

from rtd.codedeps import code_files
from rtd.config import validate
from rtd.errors import ParamError
from rtd.tracks import for_track, track_key, track_path
from rtd.tracks.text import OVERRIDES as TEXT_OVERRIDES
from tests.helpers import default_params


def test_for_track_replaces_only_the_overridden_sections():
    p = default_params()
    assert for_track(p, "vision") is p
    t = for_track(p, "text")
    for key in TEXT_OVERRIDES:
        assert t[key] == p["text"][key]
    for key in ("lambda_kd", "lambda_ar", "rho", "temperature", "sdft", "l2sp", "eval", "seeds", "methods"):
        assert t[key] == p[key]
    assert p["train"] != p["text"]["train"] and t["train"] is not p["text"]["train"]   # a copy: stages may not alias


@pytest.mark.parametrize("path, text", [
    ("data/vision/train.safetensors", "data/text/train.safetensors"),
    ("data/vision/cache/id_act.safetensors", "data/text/cache/id_act.safetensors"),
    ("models/rtd/seed0", "models/text/rtd/seed0"),
    ("models/teacher/model.safetensors", "models/text/teacher/model.safetensors"),
    ("reports/eval/ft.json", "reports/text/eval/ft.json"),
    ("reports/train/ft/lr0.0001/seed1.tsv", "reports/text/train/ft/lr0.0001/seed1.tsv"),
])
def test_track_paths(path, text):
    assert track_path(path, "vision") == path
    assert track_path(path, "text") == text


def test_declared_params_follow_the_overrides():
    assert track_key("train", "text") == "text.train"
    assert track_key("train.device", "text") == "text.train.device"
    assert track_key("ft_lrs", "text") == "text.ft_lrs"
    assert track_key("lambda_kd", "text") == "lambda_kd"
    assert track_key("vision.dataset", "text") == "text.data"
    assert track_key("clip", "text") == "text.llm"
    assert track_key("train", "vision") == "train"


def test_text_stages_declare_text_sections_and_shared_weights():
    from rtd.dvcgen import pipeline

    stages = pipeline()["stages"]
    rtd = stages["text_train_rtd"]
    assert rtd["cmd"].endswith("--track text")
    assert {"text.train", "text.ar_layer", "lambda_kd", "lambda_ar", "rho"} <= set(rtd["params"])
    assert "train" not in rtd["params"] and "ar_layer" not in rtd["params"]
    assert all(not d.startswith(("data/vision", "models/teacher")) for d in rtd["deps"])
    assert stages["text_train_ft"]["matrix"]["lr"] == "${text.ft_lrs}"
    assert "src/rtd/tracks/text/ood.py" in code_files(stages["text_ood"]["deps"])   # the ood stage's import closure serves both tracks
    assert "reports/text/eval/rtd.json" in stages["report"]["deps"]


@pytest.mark.parametrize("dotted, value, message", [
    ("text.ood.transforms", ["synonym", "paraphrase"], "`text.ood.transforms` has unknown entry 'paraphrase'"),
    ("text.ft_lrs", [5e-5], "`text.train.lr` = 0.0003 must be one of `ft_lrs`"),
    ("text.train.batch_size", 0, "`text.train.batch_size` must be >= 1"),
    ("text.data.dataset", "imdb", "`text.data.dataset` = 'imdb' is unknown"),
    ("text.ood.backtranslate.engine", "google", "`text.ood.backtranslate.engine` = 'google' is unknown"),
    ("text.teacher.backbone", "bert", "`text.teacher.backbone` = 'bert' is unknown"),
    ("text.lora.target_modules", "((", "`text.lora.target_modules` is not a valid regular expression"),
    ("text.online_transforms_sweep", ["all"], "`text.online_transforms_sweep` must be []: online B_OOD"),
])
def test_bad_text_params(dotted, value, message):
    p = default_params()
    node = p
    *parents, last = dotted.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate(p)


def test_an_empty_sweep_switches_its_arm_off_in_that_track_only(tmp_path, monkeypatch):
    """`text.rho_sweep: []` and `lambda_ar_sweep: []`: no stages, no inputs of the analysis and
    report, no plots, and the report stage refuses a sweep that dvc.yaml has no stages for."""
    import yaml

    from rtd.config import validate
    from rtd.dvcgen import pipeline
    from rtd.arms import switched_off
    from rtd.stages.report import _check_pipeline
    from rtd.tracks import for_track

    p = default_params()
    p["lambda_ar_sweep"], p["text"]["lambda_ar_sweep"], p["text"]["rho_sweep"] = [], [1.0], []
    p["text"]["controls_rho_sweep"] = []   # matched to rtd_rho: off with it
    validate(p)
    assert switched_off("rtd_ar", p) and not switched_off("rtd_rho", p) and not switched_off("rtd", p)
    assert switched_off("rtd_rho", for_track(p, "text")) and not switched_off("rtd_ar", for_track(p, "text"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p, sort_keys=False))
    out = pipeline()
    stages = out["stages"]
    assert {"train_rtd_rho", "evaluate_rtd_rho", "text_train_rtd_ar", "text_evaluate_rtd_ar"} <= set(stages)
    assert not {"train_rtd_ar", "evaluate_rtd_ar", "text_train_rtd_rho", "text_evaluate_rtd_rho"} & set(stages)
    analysed = {t: stages[f"{t}analysis"]["deps"] for t in ("", "text_")}   # the folders of the runs it reads
    assert not any(d.startswith("models/rtd_ar") for d in analysed[""]) and "models/rtd_rho/rho0.25" in analysed[""]
    assert not any(d.startswith("models/text/rtd_rho") for d in analysed["text_"])
    assert "models/text/rtd_ar/lambda_ar1.0" in analysed["text_"]
    deps = stages["report"]["deps"]
    assert "reports/eval/rtd_ar.json" not in deps and "reports/text/eval/rtd_rho.json" not in deps
    assert "reports/eval/rtd_rho.json" in deps and "reports/text/eval/rtd_ar.json" in deps
    plotted = {f for plot in out["plots"] for spec in plot.values() for f in spec["y"]}
    assert not any("/rtd_ar/" in f and "text" not in f for f in plotted) and any("/rtd_rho/" in f for f in plotted)
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(out))
    _check_pipeline(p, "vision", ["rtd", "rtd_rho"])   # stages present: fine
    p["lambda_ar_sweep"] = [1.0]   # switched on in params.yaml, dvc.yaml not regenerated
    with pytest.raises(ParamError, match=r"`lambda_ar_sweep` = \[1.0\] but dvc.yaml has no stages for arm rtd_ar"):
        _check_pipeline(p, "vision", ["rtd", "rtd_ar"])
    text = for_track(p, "text")
    text["rho_sweep"] = [0.25]
    with pytest.raises(ParamError, match=r"`text.rho_sweep` = \[0.25\] but dvc.yaml has no stages for arm rtd_rho"):
        _check_pipeline(text, "text", ["rtd_rho"])
