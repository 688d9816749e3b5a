"""DVC stage `cache`: the teacher's logits and layer-l activations on D_ID (train) and D_OOD.

Training reads these instead of running the teacher: RTD does no teacher forward pass. Each output
is its own file (`data/vision/cache/<part>.safetensors`, see ``CACHE_PARTS``) so that an arm depends
only on what it reads: SDFT's targets (id_logits) do not change when D_OOD or `ar_layer` does.
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "cache the teacher outputs of one track").track
    params = track_params(track)

    import json

    import numpy as np
    import torch

    from ..data.splits import load_split
    from ..io import load_arrays, save_arrays, seed_everything, shard_metadata, write_json
    from ..metrics import accuracy
    from ..models import backbone_spec, check_layer, load_model, predict
    from ..tracks import track_path as P

    tp, layer = params["teacher"], params["ar_layer"]
    seed_everything(0, params["num_threads"])
    teacher = load_model(P("models/teacher/model.safetensors", track), backbone_spec(params, track))
    check_layer(teacher, layer)
    train = load_split(P("data/vision/train.safetensors", track))
    ood = load_arrays(P("data/vision/ood/train_ood.safetensors", track))
    id_logits, id_act = predict(teacher, train.images, tp["batch_size"], layer=layer)
    ood_logits, ood_act = predict(teacher, ood["images"], tp["batch_size"], layer=layer)
    from ..train import cache_path

    for part, value in {"id_logits": id_logits, "ood_logits": ood_logits}.items():
        save_arrays(cache_path(part, track), {part: value.numpy()})
    for part, value in {"id_act": id_act, "ood_act": ood_act}.items():
        save_arrays(cache_path(part, track), {part: value.numpy()}, metadata={"ar_layer": layer})
    # teacher accuracy on D_OOD per transform family: how hard each family is for the teacher
    names = json.loads(shard_metadata(P("data/vision/ood/train_ood.safetensors", track))["transform_names"])
    labels = torch.as_tensor(ood["labels"])
    stats = {"id_train_acc": round(accuracy(id_logits, torch.as_tensor(train.labels)), 6), "ood_acc_by_transform": {}}
    for i, name in enumerate(names):
        mask = torch.as_tensor(ood["transform"] == i)
        stats["ood_acc_by_transform"][name] = {"n": int(mask.sum()), "acc": round(accuracy(ood_logits[mask], labels[mask]), 6)}
    stats["activation_dim"] = int(np.prod(id_act.shape[1:]))
    write_json(P("data/vision/cache/stats.json", track), stats)


if __name__ == "__main__":
    run_stage("cache", main)
