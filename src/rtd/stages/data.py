"""DVC stage `data`: one shard per split, from the embedded font benchmark or a WILDS dataset."""
from __future__ import annotations

from .common import run_stage


def main() -> None:
    from ..config import load_params
    from ..data.splits import save_split
    from ..io import write_json

    params = load_params()
    if params["vision"]["dataset"] == "fonts":
        from ..data.fonts import build_font_benchmark

        splits, manifest = build_font_benchmark(params["data"])
    else:
        from ..data.wilds_splits import build_wilds_splits

        splits, manifest = build_wilds_splits(params["vision"], params["data"]["image_size"])
    for name, split in splits.items():
        save_split(f"data/vision/{name}.safetensors", split)
    write_json("data/vision/manifest.json", manifest)


if __name__ == "__main__":
    run_stage("data", main)
