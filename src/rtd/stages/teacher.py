"""DVC stage `teacher`: θ_T = the foundation model with a head that no downstream data was fit to.

Embedded vision track (`teacher.head: pretrained`): the `pretrain` model, its own head included. Paper
configuration: CLIP with its zero-shot head. Text track (`text.teacher.head: zeroshot`): MiniLM with a cosine
head on WordNet prompt ensembles (`rtd.tracks.text.zeroshot`), only its scale fit on `id_val`. `teacher.head: probe`:
the pretrained backbone + a linear probe fit on the ID train features. In every case the stage also writes the linear
probe on θ_T's ID train features (`probe_head.safetensors`): LP-FT's initialisation.
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "fit the teacher of one track").track
    params = track_params(track)

    import torch

    from ..data.splits import load_split
    from ..io import save_arrays, seed_everything, write_json
    from ..metrics import accuracy
    from ..models import predict, save_model
    from ..teacher import build_teacher
    from ..tracks import get_track, track_path as P

    tp, t = params["teacher"], get_track(track)
    seed_everything(t.data_seed(params), params["num_threads"])
    train = load_split(P("data/vision/train.safetensors", track))
    id_val = load_split(P("data/vision/id_val.safetensors", track))
    built = build_teacher(params, track, train, id_val)
    model, feats, probe_weight, probe_bias = built["model"], built["feats"], built["probe_weight"], built["probe_bias"]
    weight, bias = built["weight"], built["bias"]
    save_model(P("models/teacher/model.safetensors", track), model)
    save_arrays(P("models/teacher/probe_head.safetensors", track),
                {"weight": probe_weight.numpy(), "bias": probe_bias.numpy()})
    val_logits, _ = predict(model, id_val.images, tp["batch_size"])
    train_logits = torch.nn.functional.linear(feats, weight, bias)
    probe_val = torch.nn.functional.linear(predict(model, id_val.images, tp["batch_size"], layer="pooled")[1],
                                           probe_weight, probe_bias)
    write_json(P("models/teacher/probe.json", track), {
        "head": built["kind"], **built["extra"],
        "train_acc": round(accuracy(train_logits, torch.as_tensor(train.labels)), 6),
        "id_val_acc": round(accuracy(val_logits, torch.as_tensor(id_val.labels)), 6),
        "probe_id_val_acc": round(accuracy(probe_val, torch.as_tensor(id_val.labels)), 6),
        "feature_dim": int(feats.shape[1]),
    })


if __name__ == "__main__":
    run_stage("teacher", main)
