"""DVC stage `ood`: the fixed OOD-style set D_OOD from the ID training inputs (``Track.generate_ood``)."""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "generate D_OOD for one track").track
    params = track_params(track)

    import json

    from ..data.splits import load_split
    from ..io import save_arrays, seed_everything, write_json
    from ..models import backbone_spec, load_model
    from ..tracks import get_track, track_path as P

    ood, t = params["ood"], get_track(track)
    seed_everything(ood["seed"], params["num_threads"])
    train = load_split(P("data/vision/train.safetensors", track))
    spec = backbone_spec(params, track)
    needs_teacher = t.adversarial in ood["transforms"]
    teacher = load_model(P("models/teacher/model.safetensors", track), spec) if needs_teacher else None
    metadata = {"transform_names": json.dumps(list(ood["transforms"]))}
    arrays, files = t.generate_ood(params, train, teacher, spec)
    for name, obj in files.items():
        write_json(P(f"data/vision/{name}", track), obj)
    save_arrays(P("data/vision/ood/train_ood.safetensors", track), arrays, metadata=metadata)


if __name__ == "__main__":
    run_stage("ood", main)
