"""Bad input, end to end: each case runs a real stage and expects one clear line on stderr, a non-zero
exit, no traceback and no output written."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rtd.arms import TRAINED
from tests.helpers import copy_tiny_repo, subprocess_env, tiny_params

pytestmark = pytest.mark.slow


def _set(params: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        params = params[key]
    params[last] = value


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# (id, stage args, param changes, file action, expected message)
CASES = [
    ("unknown-method-cli", ["train", "--arm", "sgd", "--seed", "0"], {}, None, "unknown training arm 'sgd'"),
    ("unknown-method-param", ["report"], {"methods": ["ft", "sgd"]}, None, "`methods` has unknown entry 'sgd'"),
    ("unknown-track", ["data"], {"track": "audio"}, None, "`track` = 'audio' is unknown"),
    ("negative-lambda-kd", ["train", "--arm", "rtd", "--seed", "0"], {"lambda_kd": -0.5}, None, "`lambda_kd` must be >= 0"),
    ("negative-lambda-ar", ["train", "--arm", "rtd", "--seed", "0"], {"lambda_ar": -1}, None, "`lambda_ar` must be >= 0"),
    ("zero-temperature", ["train", "--arm", "rtd", "--seed", "0"], {"temperature": 0}, None, "`temperature` must be > 0"),
    ("rho-zero", ["train", "--arm", "rtd", "--seed", "0"], {"rho": 0}, None, "`rho` must be > 0"),
    ("rho-above-one", ["train", "--arm", "rtd", "--seed", "0"], {"rho": 1.5}, None, "`rho` must be <= 1"),
    ("unknown-bn-policy", ["train", "--arm", "lpft", "--seed", "0"], {"train.bn_policy": "on"}, None, "`train.bn_policy` = 'on' is unknown"),
    ("unknown-transform", ["ood"], {"ood.transforms": ["blur", "fog"]}, None, "`ood.transforms` has unknown entry 'fog'"),
    ("unknown-font-family", ["data"], {"data.printed": ["DejaVu Sans", "Comic Sans Nowhere"]}, None,
     "unknown font family 'Comic Sans Nowhere' in `data.printed`"),
    ("family-in-two-splits", ["data"], {"data.handwriting_test": ["Kristi"]}, None,
     "'Kristi' is in both `data.handwriting_val` and `data.handwriting_test`"),
    ("unknown-ar-layer", ["cache"], {"ar_layer": "_blocks.99"}, None, "`ar_layer` names '_blocks.99', which is not a module"),
    ("stale-cache-layer", ["train", "--arm", "rtd", "--seed", "0"], {"ar_layer": "_blocks.10"}, None,
     "data/vision/cache/id_act.safetensors holds layer 'pooled' but `ar_layer` is '_blocks.10'"),
    ("missing-key", ["train", "--arm", "lpft", "--seed", "0"], {"train.lr": None}, None, "missing key `train.lr`"),
    ("missing-shard", ["train", "--arm", "lpft", "--seed", "0"], {}, ("delete", "data/vision/train.safetensors"),
     "data shard data/vision/train.safetensors is missing"),
    ("truncated-shard", ["evaluate", "--arm", "lpft"], {}, ("truncate", "data/vision/ood_test.safetensors"),
     "data shard data/vision/ood_test.safetensors is unreadable"),
    ("missing-model", ["evaluate", "--arm", "rtd"], {}, ("delete", "models/rtd/seed0/model.safetensors"),
     "model file models/rtd/seed0/model.safetensors is missing"),
    ("corrupted-model", ["evaluate", "--arm", "teacher"], {}, ("truncate", "models/teacher/model.safetensors"),
     "model file models/teacher/model.safetensors is corrupted"),
    ("corrupted-checkpoint", ["train", "--arm", "lpft", "--seed", "0"], {}, ("garbage", ".scratch/checkpoints/lpft/seed0.pt"),
     "checkpoint .scratch/checkpoints/lpft/seed0.pt is corrupted"),
    ("invalid-yaml", ["data"], {}, ("garbage", "params.yaml"), "params.yaml is not valid YAML"),
    ("empty-seed-list", ["train", "--arm", "rtd", "--seed", "0"], {"seeds": []}, None, "`seeds` must be a non-empty list"),
    ("seed-not-listed", ["train", "--arm", "rtd", "--seed", "7"], {}, None, "seed 7 is not in `seeds`"),
    ("wiseft-alpha-above-one", ["wiseft", "--end", "rtd"], {"wiseft.alphas": [0.0, 0.5, 1.5]}, None,
     "`wiseft.alphas` entry `1.5` must be <= 1"),
    ("wiseft-alpha-negative", ["wiseft", "--end", "ft"], {"wiseft.alphas": [-0.1, 0.0, 1.0]}, None,
     "`wiseft.alphas` entry `-0.1` must be >= 0"),
    ("unknown-wiseft-end", ["wiseft", "--end", "lora"], {}, None, "unknown WiSE-FT endpoint 'lora'"),
    ("lr-not-in-sweep", ["train", "--arm", "ft", "--seed", "0", "--lr", "0.5"], {}, None, "lr = 0.5 is not in `ft_lrs`"),
    ("train-lr-not-swept", ["train", "--arm", "lpft", "--seed", "0"], {"ft_lrs": [3.0e-4]}, None,
     "`train.lr` = 0.0001 must be one of `ft_lrs`"),
    ("bad-lora-regex", ["train", "--arm", "lora", "--seed", "0"], {"lora.target_modules": "(("}, None,
     "`lora.target_modules` is not a valid regular expression"),
    ("wilds-root-without-files", ["data"], {"vision.dataset": "camelyon17", "teacher.backbone": "clip"},
     ("garbage", "data/wilds/camelyon17_v1.0/notes.txt"),
     "WILDS camelyon17 not found: data/wilds/camelyon17_v1.0/ lacks RELEASE_v1.0.txt, metadata.csv"),
    ("hub-download-offline", ["teacher"], {"vision.dataset": "camelyon17", "teacher.backbone": "clip"}, None,
     "the open_clip weights RN50/openai are not in models/pretrained (HF_HUB_OFFLINE=1 is set)"),
    ("wilds-dataset-on-embedded-backbone", ["data"], {"vision.dataset": "iwildcam"}, None,
     "`vision.dataset` = 'iwildcam' needs `teacher.backbone` = clip"),
    ("missing-eval-file", ["report"], {}, ("delete", "reports/eval/sdft.json"), "reports/eval/sdft.json is missing"),
    # issue 21: tracebacks and silent mistakes, now one line before any work
    ("seed-above-numpy-range", ["train", "--arm", "rtd", "--seed", str(2**32)], {"seeds": [2**32]}, None,
     "`seeds` must be distinct integers in [0, 2**32 - 1]"),
    ("data-seed-above-numpy-range", ["data"], {"data.seed": 2**32}, None, "`data.seed` must be <= 4294967295"),
    ("track-not-in-tracks", ["data"], {"track": "text"}, None, "`track` = 'text' (the track results.md leads with) is not in `tracks`"),
    ("unknown-analysis-layer", ["analysis"], {"analysis.layers": ["_blocks.1", "_blocks.99"]}, None,
     "`analysis.layers` names '_blocks.99', which is not a module"),
    ("tsne-perplexity-above-n", ["analysis"], {"analysis.tsne_perplexity": 500}, None,
     "`analysis.tsne_perplexity` = 500 must be smaller than the t-SNE sample (analysis.n_id + analysis.n_ood = 220)"),
    ("tsne-perplexity-above-sample", ["analysis"], {"analysis.tsne_perplexity": 200}, None,
     "`analysis.tsne_perplexity` = 200 must be smaller than the t-SNE sample (150 examples"),
    ("batch-larger-than-data", ["train", "--arm", "ft", "--seed", "0", "--lr", "0.0001"], {"train.batch_size": 128}, None,
     "`train.batch_size` = 128 is larger than the training set (60 examples)"),
    ("warmup-longer-than-training", ["train", "--arm", "lpft", "--seed", "0"], {"train.warmup_steps": 8}, None,
     "`train.warmup_steps` = 8 is not shorter than training (2 epoch(s) x 4 step(s) of 16 = 8 steps)"),
    ("pretrain-warmup-longer-than-training", ["pretrain"], {"pretrain.warmup_steps": 4}, None,
     "`pretrain.warmup_steps` = 4 is not shorter than training (1 epoch(s) x 4 step(s) of 16 = 4 steps)"),
    ("rtd-nproc-not-an-integer", ["train", "--arm", "lpft", "--seed", "0"], {}, ("env", "RTD_NPROC=two"),
     "RTD_NPROC = 'two' must be a whole number of processes"),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The tiny configuration up to the teacher cache (stages run directly), plus the few files the
    cases need downstream: RTD models for two seeds (copies of the teacher), a train_stats.json, and
    evaluation files. Independent of the full tiny pipeline, so it runs on the other test worker."""
    import json

    dest = copy_tiny_repo(tmp_path_factory.mktemp("bad-input") / "repo")
    env = {**subprocess_env(), "PYTHONPATH": str(dest / "src")}
    for stage in ("data", "pretrain", "teacher", "ood", "cache"):
        proc = subprocess.run([sys.executable, "-m", f"rtd.stages.{stage}"], cwd=dest, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-2000:]
    for seed in (0, 1):
        run = dest / f"models/rtd/seed{seed}"
        run.mkdir(parents=True)
        shutil.copy2(dest / "models/teacher/model.safetensors", run / "model.safetensors")
        (run / "train_stats.json").write_text(json.dumps({"trainable_params": 1, "flops_per_step": 1, "best_epoch": 1,
                                                          "epochs_run": 1, "best_id_val_acc": 0.5}))
    for arm in sorted(("teacher", *TRAINED, "wiseft_ft", "wiseft_rtd")):
        (dest / f"reports/eval/{arm}.json").parent.mkdir(parents=True, exist_ok=True)
        (dest / f"reports/eval/{arm}.json").write_text("{}\n")
    return dest


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes()
            for sub in ("data", "models", "reports") for p in sorted((root / sub).rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gives_one_clear_error(case, work):
    _, args, changes, action, message = case
    params = tiny_params()
    for key, value in changes.items():
        if value is None:
            *parents, last = key.split(".")
            node = params
            for k in parents:
                node = node[k]
            del node[last]
        else:
            _set(params, key, value)
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    touched = original = None
    env = {**subprocess_env(), "PYTHONPATH": str(work / "src")}
    if action is not None and action[0] == "env":
        name, value = action[1].split("=", 1)
        env[name] = value
    elif action is not None:
        kind, rel = action
        touched = work / rel
        original = touched.read_bytes() if touched.exists() else None
        touched.parent.mkdir(parents=True, exist_ok=True)
        if kind == "delete":
            touched.unlink()
        elif kind == "truncate":
            _truncate(touched)
        else:
            touched.write_text("::: not what it should be :::\n")
    before = _snapshot(work)
    try:
        proc = subprocess.run([sys.executable, "-m", f"rtd.stages.{args[0]}", *args[1:]], cwd=work,
                              env=env, capture_output=True, text=True)
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert proc.returncode != 0
        assert "Traceback" not in proc.stderr
        assert len(lines) == 1 and lines[0].startswith("error ["), proc.stderr
        assert message in lines[0], lines[0]
        assert _snapshot(work) == before, "a failing stage must not write outputs"
    finally:
        if touched is not None:
            if original is not None:
                touched.write_bytes(original)
            else:
                touched.unlink(missing_ok=True)
