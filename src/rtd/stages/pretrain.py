"""DVC stage `pretrain`: the foundation model of a track that makes its own (the vision track's embedded
default: ``rtd.tracks.vision.pretrain``).

    python -m rtd.stages.pretrain     # -> models/pretrain/model.safetensors, models/pretrain/stats.json
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "pretrain the foundation model of a track").track
    params = track_params(track)

    from ..tracks import get_track

    get_track(track).pretrain(params)


if __name__ == "__main__":
    run_stage("pretrain", main)
