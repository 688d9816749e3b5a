"""DVC stage `pretrain`: the foundation model of a track that makes its own (``Track.pretrain_run``; the vision
track's embedded default: ``rtd.tracks.vision.pretrain``), trained with the one loop, its own head included.

    python -m rtd.stages.pretrain     # -> models/pretrain/model.safetensors, models/pretrain/stats.json
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "pretrain the foundation model of a track").track
    params = track_params(track)

    from ..io import save_arrays, seed_everything, write_json
    from ..methods import FineTune
    from ..models import backbone_spec, build_classifier, save_model
    from ..tracks import get_track, track_path as P
    from ..train import train

    run = get_track(track).pretrain_run(params)
    model_path, stats_path = P("models/pretrain/model.safetensors", track), P("models/pretrain/stats.json", track)
    if isinstance(run, str):   # nothing to pretrain (e.g. CLIP): a placeholder, so the DAG is the same
        save_arrays(model_path, {})
        write_json(stats_path, {"skipped": run})
        return
    corpus, val, config, seed = run
    seed_everything(seed, params["num_threads"])
    model = build_classifier(backbone_spec(params, track))   # the pretrained backbone, fresh head
    result = train(model, FineTune(), corpus, val, val, config, seed, section="pretrain")
    save_model(model_path, result.model)
    write_json(stats_path, {
        "n_images": len(corpus), "domains": corpus.domain_names, "best_epoch": result.best_epoch,
        "pretrain_val_acc": [round(row["id_val_acc"], 6) for row in result.log],
        "train_loss": [round(row["task"], 6) for row in result.log],
    })


if __name__ == "__main__":
    run_stage("pretrain", main)
