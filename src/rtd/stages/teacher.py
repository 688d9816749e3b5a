"""DVC stage `teacher`: the pretrained backbone + a linear probe on ID train features, or CLIP's zero-shot head."""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "fit the teacher of one track").track
    params = track_params(track)

    import torch

    from ..data.splits import load_split
    from ..io import seed_everything, write_json
    from ..metrics import accuracy
    from ..models import backbone_spec, build_classifier, predict, save_model
    from ..teacher import fit_linear_probe, zero_shot_head
    from ..tracks import track_path as P

    tp = params["teacher"]
    seed_everything(params["data"]["seed"] if track == "vision" else params["text"]["data"]["seed"],
                    params["num_threads"])
    train = load_split(P("data/vision/train.safetensors", track))
    id_val = load_split(P("data/vision/id_val.safetensors", track))
    model = build_classifier(backbone_spec(params))
    zero_shot = tp["backbone"] == "clip" and params["clip"]["head"] == "zeroshot"
    if zero_shot:
        weight, bias = zero_shot_head(params)
    _, feats = predict(model, train.images, tp["batch_size"], layer="pooled")
    if not zero_shot:
        weight, bias = fit_linear_probe(feats.numpy(), train.labels, tp["probe_c"], tp["probe_max_iter"])
    with torch.no_grad():
        model.head.weight.copy_(weight)
        model.head.bias.copy_(bias)
    save_model(P("models/teacher/model.safetensors", track), model)
    val_logits, _ = predict(model, id_val.images, tp["batch_size"])
    train_logits = torch.nn.functional.linear(feats, weight, bias)
    write_json(P("models/teacher/probe.json", track), {
        **({"head": "zeroshot", "templates": params["clip"]["templates"]} if zero_shot else {}),
        "train_acc": round(accuracy(train_logits, torch.as_tensor(train.labels)), 6),
        "id_val_acc": round(accuracy(val_logits, torch.as_tensor(id_val.labels)), 6),
        "feature_dim": int(feats.shape[1]),
    })


if __name__ == "__main__":
    run_stage("teacher", main)
