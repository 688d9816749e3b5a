"""DVC stage `data`: one shard per split, built by the track (``Track.build_splits``).

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
    from ..tracks import get_track, track_path

    splits, manifest, files = get_track(track).build_splits(params)
    for name, split in splits.items():
        save_split(track_path(f"data/vision/{name}.safetensors", track), split)
    for name, obj in files.items():
        write_json(track_path(f"data/vision/{name}", track), obj)
    write_json(track_path("data/vision/manifest.json", track), manifest)


if __name__ == "__main__":
    run_stage("data", main)
