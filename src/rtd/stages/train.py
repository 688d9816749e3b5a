"""DVC stage `train_<method>`: train one method with the one loop; write its model, log and stats.

    python -m rtd.stages.train --method rtd
"""
from __future__ import annotations

import argparse
import math

from .common import run_stage


def main(argv: list[str] | None = None) -> None:
    import torch

    from ..config import load_params
    from ..data.splits import load_split
    from ..errors import RTDError
    from ..io import load_arrays, seed_everything, shard_metadata, write_json, write_text
    from ..methods import build_method
    from ..models import build_classifier, check_layer, load_model, save_model
    from ..train import LOSS_TERMS, Checkpointer, OODSet, TeacherCache, train

    parser = argparse.ArgumentParser(description="train one method")
    parser.add_argument("--method", required=True)
    opts = parser.parse_args(argv)

    params = load_params()
    method = build_method(opts.method, params)
    tp = params["train"]
    backbone = params["teacher"]["backbone"]
    seed_everything(params["seed"], params["num_threads"])
    inputs = [f"data/vision/{s}.safetensors" for s in ("train", "id_val", "ood_val")]
    train_split, id_val, ood_val = (load_split(path) for path in inputs)

    if method.init == "teacher":
        model = load_model("models/teacher/model.safetensors", backbone, tp["drop_connect"])
    else:
        model = build_classifier(backbone, tp["drop_connect"])  # head: fresh nn.Linear init from `seed`
    ood = cache = None
    hparams: dict = {}
    if method.uses_ood:
        check_layer(model, params["ar_layer"])
        ood_path, cache_path = "data/vision/ood/train_ood.safetensors", "data/vision/teacher_cache.safetensors"
        inputs += [ood_path, cache_path]
        arrays = load_arrays(ood_path)
        ood = OODSet(arrays["images"], arrays["source"])
        c = load_arrays(cache_path)
        layer = shard_metadata(cache_path).get("ar_layer")
        if layer != params["ar_layer"]:
            raise RTDError(f"the teacher cache holds layer {layer!r} but `ar_layer` is {params['ar_layer']!r}: "
                           "run `dvc repro cache`")
        cache = TeacherCache(*(torch.as_tensor(c[k]) for k in ("id_logits", "id_act", "ood_logits", "ood_act")))
        hparams = {k: params[k] for k in ("lambda_kd", "lambda_ar", "temperature", "kd_scale_t2", "rho", "ar_layer")}

    key = _digest({"method": opts.method, "train": tp, "seed": params["seed"], "hparams": hparams,
                   "backbone": backbone, "threads": params["num_threads"]}, inputs)
    checkpointer = Checkpointer(f".scratch/checkpoints/{method.name}.pt", tp["checkpoint_every"], key)
    result = train(model, method, train_split, id_val, ood_val, tp, params["seed"],
                   rho=params["rho"], ar_layer=params["ar_layer"], ood=ood, cache=cache, hparams=hparams,
                   checkpointer=checkpointer)

    name = method.name
    save_model(f"models/{name}/model.safetensors", result.model)
    columns = ["epoch", "step", "lr", *LOSS_TERMS, "id_val_acc", "ood_val_acc"]
    lines = ["\t".join(columns)] + ["\t".join(_fmt(row[c]) for c in columns) for row in result.log]
    write_text(f"reports/train/{name}.tsv", "\n".join(lines) + "\n")
    write_json(f"models/{name}/train_stats.json", {
        "method": name, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "trainable_params": result.trainable_params, "flops_per_step": result.flops_per_step,
        "batch_size": tp["batch_size"], "ood_batch_size": math.ceil(tp["batch_size"] * params["rho"]) if method.uses_ood else 0,
        "hparams": hparams,
    })


def _digest(config: dict, files: list[str]) -> str:
    """Identify a run by its configuration and input files, so a checkpoint resumes only the same run."""
    import hashlib
    import json

    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.6g}"
    return str(value)


if __name__ == "__main__":
    run_stage("train", main)
