"""DVC stage `data`: one shard per split, from the embedded font benchmark or a WILDS dataset.

    python -m rtd.stages.data                 # vision: data/vision/<split>.safetensors
    python -m rtd.stages.data --track text    # text: token ids in data/text/<split>.safetensors, texts in texts.json
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "build the data shards of one track").track
    params = track_params(track)

    from ..data.splits import save_split
    from ..io import write_json
    from ..tracks import track_path

    texts = None
    if track == "text":
        from ..models import backbone_spec
        from ..text.data import build_text_splits

        splits, texts, manifest = build_text_splits(params["text"]["data"], backbone_spec(params))
    elif params["vision"]["dataset"] == "fonts":
        from ..data.fonts import build_font_benchmark

        splits, manifest = build_font_benchmark(params["data"])
    else:
        from ..data.wilds_splits import build_wilds_splits

        splits, manifest = build_wilds_splits(params["vision"], params["data"]["image_size"])
        splits.update(empty_pretrain_splits(splits["train"]))   # CLIP is the paper configuration's foundation model
    for name, split in splits.items():
        save_split(track_path(f"data/vision/{name}.safetensors", track), split)
    if texts is not None:
        write_json(track_path("data/vision/texts.json", track), texts)
    write_json(track_path("data/vision/manifest.json", track), manifest)


def empty_pretrain_splits(train: "Split") -> dict:
    """The vision track's extra shards where the benchmark has no pretraining corpus and no shortcut (WILDS):
    `train_clean` is `train`, `pretrain` and `pretrain_val` are empty."""
    from ..data.splits import Split

    empty = Split(train.images[:0], train.labels[:0], train.domains[:0], [])
    return {"train_clean": train, "pretrain": empty, "pretrain_val": empty}


if __name__ == "__main__":
    run_stage("data", main)
