"""Shared test helpers: a tiny configuration of the real pipeline."""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def default_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def tiny_params() -> dict:
    """The default params shrunk to a configuration that runs end to end in well under a minute."""
    p = copy.deepcopy(default_params())
    d = p["data"]
    d["image_size"] = 32
    d["printed"] = ["DejaVu Sans", "Liberation Serif", "Nimbus Mono PS"]
    d["handwriting_val"] = ["Kristi"]
    d["handwriting_test"] = ["Humor Sans"]
    d["decorative"] = ["Binary BRK", "Wager BRK"]
    d["renders_per_digit"] = {"train": 2, "id_val": 1, "id_test": 1, "handwriting_val": 1,
                              "handwriting_test": 1, "decorative": 1}
    d["pretrain"] = {"printed": ["FreeSerif", "URW Gothic"], "handwriting": ["Because We Build"],
                     "decorative": ["Ataxia BRK"], "renders_per_digit": {"printed": 1, "handwriting": 2, "decorative": 1, "val": 1}}
    d["shortcut"] = {"p": 0.9, "size": 2}
    p["pretrain"].update(epochs=1, batch_size=16, warmup_steps=1)
    p["erosion"].update(candidates=[0.0, 0.9], inits=["teacher"], lrs=[1.0e-4], seeds=[0, 1], alphas=[0.0, 0.5, 1.0],
                        trend_fractions=[0.5, 1.0])
    d["sklearn_digits"] = True
    p["ood"]["pgd"]["steps"] = 1
    p["train"].update(epochs=2, patience=2, batch_size=16, warmup_steps=2, eval_batch_size=64, checkpoint_every=1)
    p["teacher"]["batch_size"] = 64
    p["eval"]["batch_size"] = 256
    p["seeds"] = [0]   # one seed keeps the end-to-end tests in CI's budget; seed aggregation has unit tests
    p["num_threads"] = 1   # `pytest -n 2` runs two tiny pipelines at once on CI's 2 cores: one thread each
    p["ft_lrs"] = [1.0e-4]
    p["lora_lrs"], p["l2sp_alphas"], p["rtd_lrs"] = [3.0e-3], [1.0], []   # two candidates each for lora/l2sp_tuned
    p["lambda_ar_sweep"] = [1.0]
    p["lambda_kd_sweep"], p["temperature_sweep"] = [0.5], []   # rtd_kd runs end to end; rtd_t is rtd_kd's machinery
    p["rho_sweep"] = [1.0]
    p["controls_rho_sweep"] = [1.0]   # the matched controls run in the vision tiny pipeline
    p["online_transforms_sweep"] = ["all"]   # B_OOD drawn at every step, from every class
    p["controls_online_sweep"] = []   # its controls are the ρ controls' machinery with online B_OOD (CI's budget)
    p["wiseft"]["alphas"] = [0.0, 0.5, 1.0]
    p["analysis"].update(n_id=100, n_ood=120)
    p["tracks"] = ["vision"]   # the text track has its own tiny repository (``tiny_text_params``)
    t = p["text"]   # the language track: a few WordNet glosses on a tiny random BERT with MiniLM's tokenizer
    t["data"].update(max_len=24, candidate={"train_per_class": 6, "id_val_per_class": 3, "id_test_per_class": 3,
                                            "ood_val_per_class": 3, "ood_test_per_class": 3})
    t["teacher"].update(path=TINY_BERT, batch_size=64)
    t["ood"]["hotflip"]["swaps"] = 1
    t["train"].update(epochs=1, patience=1, batch_size=8, warmup_steps=1, eval_batch_size=64, checkpoint_every=1)
    t["ft_lrs"] = [t["train"]["lr"]]
    t["erosion"].update(inits=["teacher"], lrs=[t["train"]["lr"]], seeds=[0, 1], alphas=[0.0, 0.5, 1.0],
                        trend_fractions=[0.2, 1.0])   # both candidates (none, leet): their own splits and θ_T
    t["lora_lrs"] = t["l2sp_alphas"] = t["rtd_lrs"] = t["lora_ranks"] = []
    t["rho_sweep"] = []   # the sweep machinery runs in the vision tiny pipeline; this keeps CI in its budget
    t["controls_rho_sweep"] = t["lambda_ar_sweep"] = []
    t["lambda_kd_sweep"] = t["temperature_sweep"] = []   # rtd_kd runs in the vision tiny pipeline
    t["ar_layer"] = "encoder.layer.1"   # the tiny BERT's second (last) layer
    t["analysis"].update(n_id=20, n_ood=20, layers=["encoder.layer.0", "encoder.layer.1", "pooled"], tsne_perplexity=5)
    return p


def tiny_text_params() -> dict:
    """The tiny configuration of the language track alone, one seed (its pipeline runs beside the vision one)."""
    p = tiny_params()
    p.update(tracks=["text"], track="text")
    return p


TINY_BERT = "pretrained/tiny-bert"   # made by ``write_tiny_bert`` inside each tiny repository


def write_tiny_bert(folder: Path) -> None:
    """A 2-layer, 32-wide BERT (random, seeded) with all-MiniLM-L6-v2's tokenizer: the text track in seconds."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from rtd.tracks.text.models import _minilm_path

    path = _minilm_path({"name": "minilm"})
    torch.manual_seed(0)
    config = BertConfig(vocab_size=AutoTokenizer.from_pretrained(path).vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config, add_pooling_layer=False).save_pretrained(folder)
    AutoTokenizer.from_pretrained(path).save_pretrained(folder)


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout
    return [f for f in out.splitlines() if (ROOT / f).is_file()]


def subprocess_env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.update(HF_HUB_OFFLINE="1", DVC_NO_ANALYTICS="1", GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t",
               GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env.pop("PYTHONPATH", None)
    return env


def run_dvc(repo: Path, *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=repo, env=subprocess_env(), capture_output=True, text=True)
    assert proc.returncode == 0, f"dvc {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def pipeline_outputs(repo: Path) -> dict[str, bytes]:
    """Every output file dvc.lock records (the files of a folder output one by one), path -> bytes."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    paths = {o["path"] for st in lock["stages"].values() for o in st.get("outs", [])}
    files = {f.relative_to(repo).as_posix() for p in paths if (repo / p).is_dir() for f in (repo / p).rglob("*")
             if f.is_file()}
    return {p: (repo / p).read_bytes() for p in sorted(files | {p for p in paths if not (repo / p).is_dir()})}


def copy_tiny_repo(repo: Path, params: dict | None = None) -> Path:
    """Copy the repository's files (no outputs) into ``repo`` with the tiny params (or ``params``), and generate
    its dvc.yaml for the tracks they list."""
    for rel in tracked_files():
        if rel == "dvc.lock" or rel.startswith("reports/"):
            continue  # the copy must produce these itself
        dest = repo / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest)
    params = params or tiny_params()
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    subprocess.run([sys.executable, "-m", "rtd.dvcgen"], cwd=repo, check=True, env={**subprocess_env(), "PYTHONPATH": str(repo / "src")})
    if "text" in params["tracks"]:
        write_tiny_bert(repo / TINY_BERT)
    return repo


def make_tiny_repo(repo: Path, params: dict | None = None) -> Path:
    """Copy the repository's files into ``repo`` with the tiny params, `git init` it and `dvc repro`."""
    copy_tiny_repo(repo, params)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    run_dvc(repo, "repro")
    return repo
