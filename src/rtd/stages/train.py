"""DVC stage `train_<arm>[@<variant>]`: train one arm (at one value of its sweep) for every seed, one after
another in one process, with the one loop; write each seed's model, log and stats.

    python -m rtd.stages.train --arm rtd                    # every seed in `seeds`: models/rtd/seed<k>/
    python -m rtd.stages.train --arm rtd --seed 0           # one seed
    python -m rtd.stages.train --arm ft --lr 0.0001
    python -m rtd.stages.train --arm lora --lr 0.003
    python -m rtd.stages.train --arm l2sp --alpha 1.0
    python -m rtd.stages.train --arm rtd_ar --lambda-ar 1.0
    python -m rtd.stages.train --arm rtd_rho --rho 0.25
    python -m rtd.stages.train --arm rtd_online --transforms all   # B_OOD drawn at every step
    python -m rtd.stages.train --arm rtd --track text       # the language track (models/text/...)
    torchrun --nproc_per_node 4 -m rtd.stages.train --arm rtd   # 4 GPUs, DDP; rank 0 writes
    RTD_NPROC=4 dvc repro                  # the same for every training stage: each relaunches under torchrun

One stage per arm and sweep value, not per seed: the interpreter, torch and DVC's lock rewrite are paid once for all
seeds (docs/cost.md). Each seed is seeded and built from scratch exactly as a run of its own, so its outputs are
byte-identical to `--seed k` alone. Until the stage ends, each finished seed is kept in `.scratch/finished/` (hard
links), so a stage that failed at seed 3 resumes there when it is run again (DVC removes a stage's outputs before it
reruns it). The price: a new seed (`-S seeds=[0,...,6]`) reruns every seed of each arm's stage.
"""
from __future__ import annotations

import argparse
import json
import math

from .common import run_stage, track_params

FINISHED = ".scratch/finished"


def main(argv: list[str] | None = None) -> None:
    from ..tracks import BASE

    parser = argparse.ArgumentParser(description="train one arm for every seed (or one)")
    parser.add_argument("--arm", required=True)
    parser.add_argument("--seed", type=int, help="train this seed only (default: every seed in `seeds`)")
    from ..arms import TRAINED, build_method, parse_variant
    from ..errors import ParamError

    for flag in dict.fromkeys(a.variant for a in TRAINED.values() if a.variant):   # --lr, --alpha, --lambda-ar, --rho
        parser.add_argument(f"--{flag.replace('_', '-')}", help=f"the {flag} of an arm that sweeps it: one of its sweep")
    parser.add_argument("--track", default=BASE, help=f"a track under rtd/tracks/ (default {BASE})")
    opts = parser.parse_args(argv)

    params = track_params(opts.track)
    if opts.seed is not None and opts.seed not in params["seeds"]:
        raise ParamError(f"seed {opts.seed} is not in `seeds` = {params['seeds']!r}")
    spec = TRAINED.get(opts.arm)
    variant = parse_variant(opts.arm, getattr(opts, spec.variant) if spec and spec.variant else None, params)
    build_method(opts.arm, params, variant)   # bad hyperparameters stop here, before any seed trains

    from ..distributed import close, init_world

    world = init_world(params["train"]["device"])
    seeds = [opts.seed] if opts.seed is not None else list(params["seeds"])
    for seed in seeds:
        _train_seed(opts, seed, variant, params, world)
    close(world)
    if world.main and opts.seed is None:   # the stage is done (DVC records it): a forced rerun trains again
        import shutil

        from ..arms import run_dir

        shutil.rmtree(f"{FINISHED}/{run_dir(opts.arm, 0, variant, opts.track).rsplit('/', 1)[0]}", ignore_errors=True)


def _train_seed(opts, seed: int, variant, params: dict, world) -> None:
    """Train seed ``seed`` of the arm as a run of its own (seeded first, everything built afresh) and write it;
    restore it instead from ``.scratch/finished/`` where an earlier attempt at the same run finished it."""
    import torch

    from ..arms import TRAINED, build_method, cache_parts, log_path, online_classes, run_dir
    from ..codedeps import fingerprint
    from ..data.splits import load_split
    from ..io import seed_everything
    from ..models import backbone_spec, check_layer, init_head, load_model
    from ..train import Checkpointer, cache_path, load_cache, train
    from ..tracks import track_key, track_path as P

    track, spec = opts.track, TRAINED[opts.arm]
    method = build_method(opts.arm, params, variant)
    rho = float(variant) if spec.variant == "rho" else params["rho"]   # rho is the loop's, not the objective's
    tp = params["train"]
    backbone = backbone_spec(params, track)
    seed_everything(seed, params["num_threads"])
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

    out_dir, log_file = run_dir(opts.arm, seed, variant, track), log_path(opts.arm, seed, variant, track)
    key = _digest({"arm": opts.arm, "train": tp, "seed": seed, "hparams": hparams, "backbone": backbone,
                   "threads": params["num_threads"], "code": fingerprint("rtd.stages.train"),
                   "torch": torch.__version__}, inputs)
    finished = _Finished(f"{FINISHED}/{out_dir}", key, out_dir, log_file)
    if finished.done():   # every rank sees it (one file system), so all skip the seed together
        if world.main:
            finished.restore()
            print(f"{opts.arm} seed {seed}: finished by an earlier attempt, restored from {finished.path}", flush=True)
        return
    checkpointer = Checkpointer(f".scratch/checkpoints/{out_dir.removeprefix('models/')}.pt", tp["checkpoint_every"], key)
    result = train(model, method, train_split, id_val, ood_val, tp, seed,
                   rho=rho, ar_layer=params["ar_layer"], ood=ood, cache=cache, hparams=hparams, online_ood=online,
                   checkpointer=checkpointer, progress=world.main, world=world,
                   section=track_key("train", track))
    if not world.main:
        return  # every rank holds the same weights; rank 0 writes them

    _write_outputs(out_dir, log_file, opts.arm, seed, method, result, tp, rho, hparams)
    if opts.seed is None:
        finished.keep()


class _Finished:
    """A finished seed of a stage that has not ended: its output files hard-linked under
    ``.scratch/finished/<run dir>/`` with the run's key and their md5s. A rerun of the stage after a failure at a later
    seed restores it instead of training it again. The key covers everything a run's bytes depend on (``_digest``)."""

    def __init__(self, path: str, key: str, out_dir: str, log_file: str):
        from pathlib import Path

        self.path, self.key, self.out_dir, self.log_file = Path(path), key, Path(out_dir), Path(log_file)

    def _record(self) -> list[str]:
        import hashlib

        return [self.key] + [f"{hashlib.md5(f.read_bytes()).hexdigest()}  {f.name}"
                             for f in sorted(self.path.iterdir()) if f.name != "key"]

    def keep(self) -> None:
        import os
        import shutil

        shutil.rmtree(self.path, ignore_errors=True)
        self.path.mkdir(parents=True)
        for src in sorted(self.out_dir.iterdir()):
            os.link(src, self.path / src.name)
        os.link(self.log_file, self.path / "log.tsv")
        (self.path / "key").write_text("\n".join(self._record()) + "\n")   # last: a folder without it is unfinished

    def done(self) -> bool:
        key = self.path / "key"
        return key.is_file() and key.read_text() == "\n".join(self._record()) + "\n"

    def restore(self) -> None:
        import shutil

        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        for f in self.path.iterdir():
            if f.name != "key":
                shutil.copyfile(f, self.log_file if f.name == "log.tsv" else self.out_dir / f.name)


def _write_outputs(out_dir: str, log_file: str, arm: str, seed: int, method, result, tp: dict, rho: float,
                   hparams: dict) -> None:
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
        "arm": arm, "seed": seed, "best_epoch": result.best_epoch, "epochs_run": result.epochs_run,
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
