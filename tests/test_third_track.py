"""A third track is one folder and a params section: a tiny synthetic track, registered from this test, runs
through the pipeline's own stages (data -> teacher -> D_OOD -> cache -> FT and RTD training -> evaluation) with
no change to the core (issue 20)."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from torch import nn

from rtd.tracks import Track, available_tracks, for_track, register, track_key, track_path
from tests.helpers import default_params

CLASSES, DIM = 3, 12


class ToyTrack(Track):
    """Three Gaussian blobs stored as 3 x 2 x 2 uint8 "images"; OOD = the blobs shifted; an MLP backbone."""

    name = "toy"
    section = "toy"
    overrides = ("teacher", "ood", "train", "ft_lrs", "lora_lrs", "lora_ranks", "l2sp_alphas", "rtd_lrs", "lora", "ar_layer", "analysis", "lambda_ar_sweep", "lambda_kd_sweep",
                 "temperature_sweep", "rho_sweep", "controls_rho_sweep", "wiseft")
    unit = "points"
    backbones = ("toy-mlp",)

    def validate(self, params: dict) -> None:
        from rtd.config import _get, track_sections

        if isinstance(_get(params, "toy", whole=True), dict):
            track_sections(for_track(params, "toy"), "toy")

    def data_seed(self, params: dict) -> int:
        return params["toy"]["seed"]

    def backbone_spec(self, params: dict) -> dict:
        return {"name": "toy-mlp", "num_classes": CLASSES, "device": "cpu"}

    def build_classifier(self, spec: dict, drop_connect: float = 0.0, from_file: bool = False):
        from rtd.models import Classifier

        return Classifier(nn.Sequential(nn.Flatten(), nn.Linear(DIM, 8), nn.ReLU()), 8, spec["num_classes"])

    def build_splits(self, params: dict):
        from rtd.data.splits import Split

        rng = np.random.default_rng(params["toy"]["seed"])
        centres = rng.uniform(60, 190, size=(CLASSES, DIM))

        def blobs(n: int, shift: float, domain: str) -> Split:
            y = np.arange(n) % CLASSES
            x = np.clip(centres[y] + shift + rng.normal(0, 12, size=(n, DIM)), 0, 255).astype(np.uint8)
            return Split(x.reshape(n, 3, 2, 2), y.astype(np.int64), np.zeros(n, dtype=np.int64), [domain])

        splits = {"train": blobs(48, 0, "id"), "id_val": blobs(24, 0, "id"), "id_test": blobs(24, 0, "id"),
                  "ood_val": blobs(24, 25, "shifted"), "ood_test": blobs(30, 35, "shifted")}
        return splits, {"classes": ["a", "b", "c"]}, {"notes.json": {"made_by": "the toy track"}}

    def generate_ood(self, params: dict, train, teacher, spec: dict):
        rng = np.random.default_rng(params["ood"]["seed"])
        noisy = np.clip(train.images.astype(np.int64) + rng.integers(-20, 21, size=train.images.shape), 0, 255)
        return {"images": noisy.astype(np.uint8), "labels": train.labels, "source": np.arange(len(train.labels)),
                "transform": np.zeros(len(train.labels), dtype=np.int64)}, {}


@pytest.fixture()
def toy_repo(tmp_path, monkeypatch):
    import rtd.tracks

    monkeypatch.setattr(rtd.tracks, "_REGISTERED", dict(rtd.tracks._REGISTERED))   # registered for this test only
    register(ToyTrack())
    params = default_params()
    toy = {key: copy.deepcopy(params["text"][key]) for key in ToyTrack.overrides}
    toy["seed"] = 7
    toy["teacher"] = {"backbone": "toy-mlp", "head": "probe", "path": None, "probe_c": 1.0, "probe_max_iter": 200,
                      "batch_size": 16}
    toy["ood"] = {"seed": 3, "transforms": ["noise"]}
    toy["ar_layer"] = "pooled"
    toy["ft_lrs"] = [1.0e-2]
    for key in ("lora_lrs", "l2sp_alphas", "rtd_lrs", "lambda_kd_sweep"):   # the plumbing, not the grids
        toy[key] = []
    toy["train"].update(epochs=2, patience=2, batch_size=16, lr=1.0e-2, warmup_steps=1, eval_batch_size=32,
                        checkpoint_every=100)
    params["toy"] = toy
    params["seeds"] = [0]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_a_registered_track_runs_through_the_stages(toy_repo):
    from rtd.stages import cache, data, evaluate, ood, teacher, train

    assert "toy" in available_tracks()
    assert track_key("train.lr", "toy") == "toy.train.lr" and track_key("lambda_kd", "toy") == "lambda_kd"
    for stage in (data, teacher, ood, cache):
        stage.main(["--track", "toy"])
    assert json.loads((toy_repo / "data/toy/notes.json").read_text()) == {"made_by": "the toy track"}
    probe = json.loads((toy_repo / track_path("models/teacher/probe.json", "toy")).read_text())
    assert probe["head"] == "probe" and probe["id_val_acc"] > 0.9   # the blobs are separable
    for arm, extra in (("ft", ["--lr", "0.01"]), ("rtd", [])):
        train.main(["--arm", arm, "--seed", "0", "--track", "toy", *extra])
        evaluate.main(["--arm", arm, "--track", "toy"])
    assert (toy_repo / "models/toy/rtd/seed0/model.safetensors").is_file()
    rtd = json.loads((toy_repo / "reports/toy/eval/rtd.json").read_text())["runs"]["seed0"]
    assert set(rtd["ood_domains"]) == {"shifted"} and 0.0 <= rtd["ood_acc"] <= 1.0
    stats = json.loads((toy_repo / "models/toy/rtd/seed0/train_stats.json").read_text())
    assert stats["hparams"]["lambda_kd"] == 1.0 and stats["ood_batch_size"] > 0   # RTD read D_OOD and the cache
    log = (toy_repo / "reports/toy/train/rtd/seed0.tsv").read_text().splitlines()
    assert len(log) == 3 and "kd" in log[0]


def test_a_bad_key_in_the_new_section_is_named(toy_repo):
    from rtd.config import load_params
    from rtd.errors import ParamError

    params = yaml.safe_load((toy_repo / "params.yaml").read_text())
    params["toy"]["train"]["lr"] = 0.5   # not one of toy.ft_lrs
    (toy_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    with pytest.raises(ParamError, match=r"`toy\.train\.lr` = 0\.5 must be one of `ft_lrs`"):
        load_params()
