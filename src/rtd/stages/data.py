"""DVC stage `data`: render the embedded vision benchmark into one shard per split."""
from __future__ import annotations

from .common import run_stage


def main() -> None:
    from ..config import load_params
    from ..data.fonts import build_font_benchmark
    from ..data.splits import save_split
    from ..io import write_json

    params = load_params()
    splits, manifest = build_font_benchmark(params["data"])
    for name, split in splits.items():
        save_split(f"data/vision/{name}.safetensors", split)
    write_json("data/vision/manifest.json", manifest)


if __name__ == "__main__":
    run_stage("data", main)
