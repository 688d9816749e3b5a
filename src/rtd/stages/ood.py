"""DVC stage `ood`: the fixed OOD-style set D_OOD from the ID training images."""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "generate D_OOD for one track").track
    params = track_params(track)

    import json

    from ..data.splits import load_split
    from ..io import save_arrays, seed_everything
    from ..models import backbone_spec, load_model
    from ..tracks import track_path as P

    ood = params["ood"]
    seed_everything(ood["seed"], params["num_threads"])
    train = load_split(P("data/vision/train.safetensors", track))
    adversarial = {"vision": "pgd", "text": "hotflip"}[track]
    spec = backbone_spec(params)
    teacher = load_model(P("models/teacher/model.safetensors", track), spec) if adversarial in ood["transforms"] else None
    metadata = {"transform_names": json.dumps(list(ood["transforms"]))}
    if track == "vision":
        from ..ood.vision import generate_ood

        arrays = generate_ood(train.images, train.labels, ood, teacher)
    else:
        from ..io import read_json, write_json
        from ..ood.text import generate_text_ood
        from ..text.models import load_tokenizer, pad_token_id

        tokenizer, max_len = load_tokenizer(spec), params["text"]["data"]["max_len"]
        pad_id = pad_token_id(spec, tokenizer)
        texts = read_json(P("data/vision/texts.json", track))["train"]
        arrays = generate_text_ood(texts, train.images, train.labels, ood, tokenizer, max_len, pad_id, teacher)
        arrays["images"] = arrays.pop("ids")   # the training loop reads D_OOD's inputs as `images`
        # the texts go to their own file: safetensors writes two or more metadata keys in a random order
        write_json(P("data/vision/ood/texts.json", track), arrays.pop("texts"))
    save_arrays(P("data/vision/ood/train_ood.safetensors", track), arrays, metadata=metadata)


if __name__ == "__main__":
    run_stage("ood", main)
