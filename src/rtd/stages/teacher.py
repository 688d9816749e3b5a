"""DVC stage `teacher`: θ_T = the foundation model with a head that no downstream data was fit to.

Embedded vision track (`teacher.head: pretrained`): the `pretrain` model, its own head included. Paper
configuration: CLIP with its zero-shot head. Text track (`text.teacher.head: zeroshot`): MiniLM with a cosine
head on WordNet prompt ensembles (`rtd.text.zeroshot`), only its scale fit on `id_val`. `teacher.head: probe`:
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
    from ..models import backbone_spec, build_classifier, load_model, predict, save_model
    from ..teacher import fit_linear_probe, zero_shot_head
    from ..tracks import track_path as P

    tp = params["teacher"]
    seed_everything(params["data"]["seed"] if track == "vision" else params["text"]["data"]["seed"],
                    params["num_threads"])
    train = load_split(P("data/vision/train.safetensors", track))
    id_val = load_split(P("data/vision/id_val.safetensors", track))
    spec = backbone_spec(params)
    pretrained = track == "vision" and tp["backbone"] == "efficientnet-lite0" and tp["head"] == "pretrained"
    model = load_model("models/pretrain/model.safetensors", spec) if pretrained else build_classifier(spec)
    zero_shot = tp["backbone"] == "clip" and params["clip"]["head"] == "zeroshot"
    text_zero_shot = track == "text" and tp["head"] == "zeroshot"
    _, feats = predict(model, train.images, tp["batch_size"], layer="pooled")
    probe_weight, probe_bias = fit_linear_probe(feats.numpy(), train.labels, tp["probe_c"], tp["probe_max_iter"])
    extra = {}
    if zero_shot:
        weight, bias = zero_shot_head(params)
    elif text_zero_shot:
        weight, bias, scale = _text_zeroshot_head(model, params, id_val, tp["batch_size"])
        extra = {"scale": scale}
    elif pretrained:
        weight, bias = model.head.weight.detach().clone(), model.head.bias.detach().clone()
    else:
        weight, bias = probe_weight, probe_bias
    with torch.no_grad():
        model.head.weight.copy_(weight)
        model.head.bias.copy_(bias)
    save_model(P("models/teacher/model.safetensors", track), model)
    save_arrays(P("models/teacher/probe_head.safetensors", track),
                {"weight": probe_weight.numpy(), "bias": probe_bias.numpy()})
    val_logits, _ = predict(model, id_val.images, tp["batch_size"])
    train_logits = torch.nn.functional.linear(feats, weight, bias)
    probe_val = torch.nn.functional.linear(predict(model, id_val.images, tp["batch_size"], layer="pooled")[1],
                                           probe_weight, probe_bias)
    write_json(P("models/teacher/probe.json", track), {
        "head": "zeroshot" if zero_shot or text_zero_shot else "pretrained" if pretrained else "probe",
        **({"templates": params["clip"]["templates"]} if zero_shot else {}), **extra,
        "train_acc": round(accuracy(train_logits, torch.as_tensor(train.labels)), 6),
        "id_val_acc": round(accuracy(val_logits, torch.as_tensor(id_val.labels)), 6),
        "probe_id_val_acc": round(accuracy(probe_val, torch.as_tensor(id_val.labels)), 6),
        "feature_dim": int(feats.shape[1]),
    })


def _text_zeroshot_head(model, params: dict, id_val, batch_size: int):
    """The text teacher's zero-shot head on the classes of the data stage's manifest (WordNet supersenses)."""
    import json
    from pathlib import Path

    import torch

    from ..models import backbone_spec, predict
    from ..text.candidates import candidate_config
    from ..text.models import load_tokenizer, pad_token_id, tokenize
    from ..text.zeroshot import wordnet_zeroshot_head
    from ..tracks import track_path

    data_cfg = params["text"]["data"]
    classes = json.loads(Path(track_path("data/vision/manifest.json", "text")).read_text())["classes"]
    spec = backbone_spec(params)
    tokenizer = load_tokenizer(spec)
    pad_id = pad_token_id(spec, tokenizer)

    def encode(texts: list[str]) -> torch.Tensor:
        return predict(model, tokenize(texts, tokenizer, data_cfg["max_len"], pad_id), batch_size, layer="pooled")[1]

    val_feats = predict(model, id_val.images, batch_size, layer="pooled")[1]
    root = candidate_config("wordnet", data_cfg.get("candidate") or {})["root"]
    return wordnet_zeroshot_head(classes, encode, val_feats, torch.as_tensor(id_val.labels), root)


if __name__ == "__main__":
    run_stage("teacher", main)
