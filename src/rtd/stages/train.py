"""DVC stage `train_<arm>@<seed>`: train one arm for one seed with the one loop; write model, log, stats.

    python -m rtd.stages.train --arm rtd --seed 0
    python -m rtd.stages.train --arm ft --seed 0 --lr 0.0001
    python -m rtd.stages.train --arm lora --seed 0 --lr 0.003
    python -m rtd.stages.train --arm l2sp --seed 0 --alpha 1.0
    python -m rtd.stages.train --arm rtd_ar --seed 0 --lambda-ar 1.0
    python -m rtd.stages.train --arm rtd_rho --seed 0 --rho 0.25
    python -m rtd.stages.train --arm rtd_online --seed 0 --transforms all   # B_OOD drawn at every step
    python -m rtd.stages.train --arm rtd --seed 0 --track text   # the language track (models/text/...)
    torchrun --nproc_per_node 4 -m rtd.stages.train --arm rtd --seed 0   # 4 GPUs, DDP; rank 0 writes
    RTD_NPROC=4 dvc repro                  # the same for every training stage: each relaunches under torchrun
"""
from __future__ import annotations

import argparse
import json
import math

from .common import run_stage, track_params


def main(argv: list[str] | None = None) -> None:
    from ..tracks import BASE

    parser = argparse.ArgumentParser(description="train one arm for one seed")
    parser.add_argument("--arm", required=True)
    parser.add_argument("--seed", required=True, type=int)
    from ..arms import TRAINED, build_method, cache_parts, log_path, online_classes, parse_variant, run_dir
    from ..errors import ParamError

    for flag in dict.fromkeys(a.variant for a in TRAINED.values() if a.variant):   # --lr, --alpha, --lambda-ar, --rho
        parser.add_argument(f"--{flag.replace('_', '-')}", help=f"the {flag} of an arm that sweeps it: one of its sweep")
    parser.add_argument("--track", default=BASE, help=f"a track under rtd/tracks/ (default {BASE})")
    opts = parser.parse_args(argv)

    track = opts.track
    params = track_params(track)
    if opts.seed not in params["seeds"]:
        raise ParamError(f"seed {opts.seed} is not in `seeds` = {params['seeds']!r}")
    spec = TRAINED.get(opts.arm)
    variant = parse_variant(opts.arm, getattr(opts, spec.variant) if spec and spec.variant else None, params)
    method = build_method(opts.arm, params, variant)
    rho = float(variant) if spec.variant == "rho" else params["rho"]   # rho is the loop's, not the objective's

    from ..data.splits import load_split
    from ..io import seed_everything
    from ..models import backbone_spec, check_layer, init_head, load_model
    from ..train import Checkpointer, cache_path, load_cache, train
    from ..tracks import track_key, track_path as P

    from ..distributed import close, init_world

    tp = params["train"]
    backbone = backbone_spec(params, track)
    world = init_world(tp["device"])
    seed_everything(opts.seed, params["num_threads"])
    inputs = [P(f"data/vision/{s}.safetensors", track) for s in ("train", "id_val", "ood_val")]
    train_split, id_val, ood_val = (load_split(path) for path in inputs)
    inputs.append(P("models/teacher/model.safetensors", track))
    model = load_model(inputs[-1], backbone, tp["drop_connect"])
    if method.init == "probe":
        inputs.append(P("models/teacher/probe_head.safetensors", track))
    init_head(model, method.init, inputs[-1] if method.init == "probe" else None)
    ood, online = _b_ood_source(spec, method, params, variant, track, backbone, inputs)
    cache = None
    if method.uses_activation:
        check_layer(model, params["ar_layer"])
    if cache_parts(spec, method):
        cache = load_cache(cache_parts(spec, method), params["ar_layer"], track)
        inputs += [cache_path(part, track) for part in cache_parts(spec, method)]
    hparams = {k: v for k, v in vars(method).items() if isinstance(v, (int, float, str, bool)) and k != "name"}
    hparams["lr"] = method.lr if method.lr is not None else tp["lr"]
    if method.uses_ood:
        hparams["rho"] = rho
    if online is not None:
        hparams.update(ood_transforms=online_classes(variant, params), pgd_target=params["ood_online"]["pgd_target"])

    out_dir = run_dir(opts.arm, opts.seed, variant, track)
    key = _digest({"arm": opts.arm, "train": tp, "seed": opts.seed, "hparams": hparams,
                   "backbone": backbone, "threads": params["num_threads"]}, inputs)
    checkpointer = Checkpointer(f".scratch/checkpoints/{out_dir.removeprefix('models/')}.pt", tp["checkpoint_every"], key)
    result = train(model, method, train_split, id_val, ood_val, tp, opts.seed,
                   rho=rho, ar_layer=params["ar_layer"], ood=ood, cache=cache, hparams=hparams, online_ood=online,
                   checkpointer=checkpointer, progress=world.main, world=world,
                   section=track_key("train", track))
    close(world)
    if not world.main:
        return  # every rank holds the same weights; rank 0 writes them

    _write_outputs(out_dir, log_path(opts.arm, opts.seed, variant, track), opts, method, result, tp, rho, hparams)


def _write_outputs(out_dir: str, log_file: str, opts, method, result, tp: dict, rho: float, hparams: dict) -> None:
    """The run's model (and LoRA adapters), its per-epoch log (a DVC plot) and train_stats.json."""
    from ..io import save_arrays, write_json, write_text
    from ..models import save_model
    from ..train import LOSS_TERMS

    save_model(f"{out_dir}/model.safetensors", result.model)
    if getattr(method, "adapters", None):
        save_arrays(f"{out_dir}/adapter.safetensors", {k: v.numpy() for k, v in method.adapters.items()},
                    metadata={"peft_config": json.dumps(method.config().to_dict(), sort_keys=True, default=str)})
    columns = ["epoch", "step", "lr", *LOSS_TERMS, "id_val_acc", "id_val_nll", "ood_val_acc"]
    lines = ["\t".join(columns)] + ["\t".join(_fmt(row[c]) for c in columns) for row in result.log]
    write_text(log_file, "\n".join(lines) + "\n")
    best = result.log[result.best_epoch - 1]
    write_json(f"{out_dir}/train_stats.json", {
        "arm": opts.arm, "seed": opts.seed, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
        "best_id_val_acc": best["id_val_acc"], "best_id_val_nll": best["id_val_nll"], "best_ood_val_acc": best["ood_val_acc"],
        "trainable_params": result.trainable_params, "flops_per_step": result.flops_per_step,
        "batch_size": tp["batch_size"],
        "ood_batch_size": math.ceil(tp["batch_size"] * rho) if method.uses_ood else 0,
        "hparams": hparams,
    })


def _b_ood_source(spec, method, params: dict, variant, track: str, backbone: dict, inputs: list[str]) -> tuple:
    """(D_OOD, None) for an arm that reads it (its file appended to ``inputs``), (None, online B_OOD against a frozen
    copy of θ_T) for an online arm, (None, None) for an arm without B_OOD."""
    from ..arms import online_classes
    from ..io import load_arrays
    from ..models import load_model
    from ..train import OODSet
    from ..tracks import get_track, track_path

    if not method.uses_ood:
        return None, None
    if spec.online:
        teacher = load_model(track_path("models/teacher/model.safetensors", track), backbone, 0.0)
        return None, get_track(track).online_ood(params, teacher, online_classes(variant, params))
    inputs.append(track_path("data/vision/ood/train_ood.safetensors", track))
    arrays = load_arrays(inputs[-1])
    return OODSet(arrays["images"], arrays["source"]), None


def _digest(config: dict, files: list[str]) -> str:
    """Identify a run by its configuration and input files, so a checkpoint resumes only the same run."""
    import hashlib

    h = hashlib.sha256(json.dumps(config, sort_keys=True).encode())
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _fmt(value) -> str:
    if isinstance(value, float):
        return "nan" if value != value else f"{value:.6g}"
    return str(value)


def relaunch_under_torchrun() -> None:
    """With RTD_NPROC = N > 1 (and not already under torchrun), replace this process by N ranks of itself.

    This keeps dvc.yaml's command (`python -m rtd.stages.train ...`) the same on one device and on many.
    """
    import os
    import sys

    raw = os.environ.get("RTD_NPROC", "1").strip() or "1"
    if not raw.isdigit() or int(raw) < 1:
        print(f"error [train]: RTD_NPROC = {raw!r} must be a whole number of processes >= 1 (e.g. RTD_NPROC=4, "
              "one per GPU); unset it for one process", file=sys.stderr)
        sys.exit(2)
    n = int(raw)
    if n > 1 and "WORLD_SIZE" not in os.environ:
        os.execv(sys.executable, [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                  f"--nproc_per_node={n}", "-m", "rtd.stages.train", *sys.argv[1:]])


if __name__ == "__main__":
    relaunch_under_torchrun()
    run_stage("train", main)
