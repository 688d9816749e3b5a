"""The one training loop: methods differ only by objective, initialisation and trainable parameters."""
from __future__ import annotations

import contextlib
import copy
import math
import sys
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import nn

from .data.splits import Split, to_float
from .distributed import World, all_sum, resolve_device, shard
from .config import check_schedule
from .errors import RTDError
from .methods import Method, StepOutputs
from .metrics import accuracy
from .models import Classifier, count_trainable, predict, set_train_mode

LOSS_TERMS = ("task", "kd", "ar", "l2sp", "total")


@dataclass
class TeacherCache:
    """Cached teacher outputs, indexed like the ID training set (id_*) and D_OOD (ood_*).

    A method loads only the outputs it reads (``Method.teacher_outputs``); the rest stay None.
    """

    id_logits: torch.Tensor | None = None
    id_act: torch.Tensor | None = None
    ood_logits: torch.Tensor | None = None
    ood_act: torch.Tensor | None = None


CACHE_PARTS = ("id_logits", "ood_logits", "id_act", "ood_act")


def cache_path(part: str, track: str | None = None) -> str:
    from .tracks import BASE, track_path

    return track_path(f"data/vision/cache/{part}.safetensors", track or BASE)


def load_cache(parts: tuple[str, ...], ar_layer: str, track: str | None = None) -> TeacherCache:
    """The cached teacher outputs named in ``parts``; activations must be at ``ar_layer``."""
    from .io import load_arrays, shard_metadata
    from .tracks import BASE, stage_name

    cache = TeacherCache()
    for part in parts:
        path = cache_path(part, track)
        arrays = load_arrays(path)
        held = shard_metadata(path).get("ar_layer")
        if part.endswith("_act") and held != ar_layer:
            raise RTDError(f"the teacher cache {path} holds layer {held!r} but `ar_layer` is {ar_layer!r}: "
                           f"run `dvc repro {stage_name('cache', track or BASE)}`")
        setattr(cache, part, torch.as_tensor(arrays[part]))
    return cache


@dataclass
class OODSet:
    images: np.ndarray   # (M, 3, H, W) uint8
    source: np.ndarray   # (M,) index of the ID training image each copy was made from


@dataclass
class TrainResult:
    model: Classifier
    log: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    epochs_run: int = 0
    trainable_params: int = 0
    flops_per_step: int = 0


def _ood_index(ood: OODSet, n_id: int) -> torch.Tensor:
    """(n_id, copies) table: the D_OOD indices made from each ID training image."""
    order = np.argsort(ood.source, kind="stable")
    counts = np.bincount(ood.source, minlength=n_id)
    if counts.min() != counts.max() or counts.min() == 0:
        raise RTDError("D_OOD does not hold the same number of copies of every ID training image: "
                       "rebuild it with `dvc repro ood`")
    return torch.as_tensor(order.reshape(n_id, counts[0]))


class _BOOD:
    """Where each step's B_OOD comes from: a copy (picked at random) of each source image in D_OOD, or ``online``."""

    def __init__(self, method: Method, ood: OODSet | None, online: OnlineOOD | None, n: int, device: torch.device,
                 bn_policy: str):
        if ood is None and online is None:
            raise RTDError(f"method {method.name} needs D_OOD: run `dvc repro ood`")
        self.online, self.device, self.bn_policy = online, device, bn_policy
        if online is not None:   # θ_T for PGD, and for its outputs on B_OOD where the method reads them
            online.teacher.to(device)
        reads = any(p.startswith("ood_") for p in method.teacher_outputs)
        self.teacher = online.teacher if online is not None and reads else None
        if online is None:
            self.table, self.images = _ood_index(ood, n), torch.as_tensor(ood.images)

    def draw(self, src: torch.Tensor, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator,
             model: Classifier) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(D_OOD rows or None, the images) of B_OOD made from the training images ``src``."""
        if self.online is None:
            rows = self.table[src, torch.randint(self.table.shape[1], (len(src),), generator=generator)]
            return rows, to_float(self.images[rows])
        # drawn for the global batch, so that every rank's share is what one process would train on
        x = self.online(to_float(images[src]).to(self.device), labels[src].to(self.device), generator, model)
        set_train_mode(model, self.bn_policy)   # PGD against the student leaves it in eval mode
        return None, x


def _schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _forward(model: Classifier, x: torch.Tensor, n_id: int, layer: str | None,
             split: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Student logits (and layer activations) on B_ID ∪ B_OOD.

    With frozen BatchNorm every image is processed independently, so B_ID and B_OOD can go through
    the network as two batches: the same function, but on the CPU the cost per image grows with the
    batch size, and for |B_OOD| >= |B_ID|/2 two passes are cheaper than one (measured, 64 ID images,
    2 threads: 0.53 vs 0.59 s at rho = 1, 0.39 vs 0.42 s at 0.5; at rho <= 0.25 one pass wins).
    With training-mode BatchNorm the batch statistics must cover B_ID ∪ B_OOD, so one pass is used, and
    so it is for models whose ``split_id_ood`` is False (the text classifier, whose length-sorted runs are
    cheaper over the whole batch).
    """
    n_ood = len(x) - n_id
    parts = [x[:n_id], x[n_id:]] if split and n_ood > 0 and 2 * n_ood >= n_id else [x]
    outs = [model.forward_with_activation(p, layer) if layer is not None else (model(p), None) for p in parts]
    logits = torch.cat([o[0] for o in outs]) if len(outs) > 1 else outs[0][0]
    if layer is None:
        return logits, None
    return logits, (torch.cat([o[1] for o in outs]) if len(outs) > 1 else outs[0][1])


def two_passes_allowed(model: nn.Module, tp: dict) -> bool:
    """Whether ``_forward`` may run B_ID and B_OOD as two passes: frozen BatchNorm and a model that gains by it."""
    return tp["bn_policy"] == "frozen" and getattr(model, "split_id_ood", True)


class _StepModule(nn.Module):
    """The student's training forward as a module's ``forward``, so DistributedDataParallel can wrap it."""

    def __init__(self, model: Classifier):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, n_id: int, layer: str | None, split: bool):
        return _forward(self.model, x, n_id, layer, split)


class OnlineOOD(Protocol):
    """B_OOD drawn at every step (``Track.online_ood``): transformed copies of ``x`` (labels ``y``); ``teacher`` is θ_T."""
    teacher: Classifier

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, student: Classifier) -> torch.Tensor: ...


def _micro_step(runner: nn.Module, model: Classifier, method: Method, images: torch.Tensor, labels: torch.Tensor,
                idx: torch.Tensor, ood_src: torch.Tensor | None, ood_idx: torch.Tensor | None, ood_x: torch.Tensor | None,
                cache: TeacherCache | None, online_teacher: Classifier | None, ood_teacher: Classifier | None,
                ar_layer: str, device: torch.device, split: bool) -> dict[str, torch.Tensor]:
    """The loss terms of one micro-batch: B_ID = ``idx``, B_OOD = ``ood_x`` (copies of ``ood_src``: D_OOD's rows
    ``ood_idx``, or drawn online, whose teacher outputs ``ood_teacher`` computes now)."""
    x = to_float(images[idx]).to(device)
    n_id = len(idx)
    if ood_x is not None:
        x = torch.cat([x, ood_x.to(device)])
    logits, act = runner(x, n_id, ar_layer if method.uses_activation else None, split)
    out = StepOutputs(logits_id=logits[:n_id], labels=labels[idx].to(device), act=act)
    if ood_x is not None:
        out.logits_ood, out.labels_ood = logits[n_id:], labels[ood_src].to(device)
    if online_teacher is not None:
        with torch.no_grad():
            t_logits, t_act = online_teacher.forward_with_activation(x, ar_layer)
        out.teacher_logits_id, out.teacher_logits_ood, out.teacher_act = t_logits[:n_id], t_logits[n_id:], t_act
        return method.objective(out, model)
    if cache is not None and cache.id_logits is not None:
        out.teacher_logits_id = cache.id_logits[idx].to(device)
    ood_act = None
    if ood_teacher is not None and ood_x is not None:
        with torch.no_grad():
            out.teacher_logits_ood, ood_act = ood_teacher.forward_with_activation(x[n_id:], ar_layer)
    elif ood_idx is not None and cache is not None:
        if cache.ood_logits is not None:
            out.teacher_logits_ood = cache.ood_logits[ood_idx].to(device)
        ood_act = cache.ood_act[ood_idx] if cache.ood_act is not None else None
    if ood_x is not None and cache is not None and cache.id_act is not None and ood_act is not None:
        out.teacher_act = torch.cat([cache.id_act[idx].to(device), ood_act.to(device)])
    return method.objective(out, model)


def _val_scores(model: Classifier, split: Split, batch_size: int, world: World) -> tuple[float, float]:
    """Accuracy and mean NLL on ``split``; under torchrun each rank predicts a share and the sums are added."""
    share = np.array_split(np.arange(len(split)), world.size)[world.rank] if world.distributed else slice(None)
    logits, _ = predict(model, split.images[share], batch_size)
    labels = torch.as_tensor(split.labels[share])
    correct = float((logits.argmax(dim=1) == labels).sum())
    nll = float(torch.nn.functional.cross_entropy(logits.double(), labels, reduction="sum"))
    if world.distributed:
        correct, nll = all_sum([correct, nll], world)
    return correct / len(split), nll / len(split)


def check_cache(model: Classifier, train: Split, cache: TeacherCache) -> None:
    """A method initialised from theta_T must reproduce the cached teacher logits before training."""
    if cache.id_logits is None:
        return
    logits, _ = predict(model, train.images[:8], 8)
    if not torch.allclose(logits, cache.id_logits[:8], atol=1e-3, rtol=1e-3):
        raise RTDError("the teacher cache does not match the teacher model (stale cache?): run `dvc repro cache`")


@dataclass
class LoopState:
    """Everything a resumed run needs to continue exactly where an interrupted one stopped."""

    epoch: int = 1
    batch: int = 0                       # next batch index within the epoch
    step: int = 0
    perm: torch.Tensor | None = None     # this epoch's order of the training set
    sums: dict = field(default_factory=lambda: {k: 0.0 for k in LOSS_TERMS})
    counted: dict = field(default_factory=lambda: {k: 0 for k in LOSS_TERMS})
    log: list = field(default_factory=list)
    best_acc: tuple = (-1.0, -math.inf)     # (id_val accuracy, -id_val NLL) of the best epoch so far
    best_state: dict | None = None
    best_epoch: int = 0
    stale: int = 0
    flops_per_step: int = 0


class Checkpointer:
    """Periodic checkpoints (model, optimiser, scheduler, loop state, RNG states) in a scratch folder.

    A checkpoint is used only by a run with the same ``key`` (a digest of the configuration), written
    atomically, and deleted when training finishes. A corrupted checkpoint stops with a message.
    """

    def __init__(self, path, every: int, key: str):
        from pathlib import Path

        self.path, self.every, self.key = Path(path), every, key

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            ckpt = torch.load(self.path, map_location="cpu", weights_only=False)
            if not isinstance(ckpt, dict) or "key" not in ckpt:
                raise ValueError("not a training checkpoint")
        except Exception as exc:
            raise RTDError(f"checkpoint {self.path} is corrupted ({exc}): delete it (`rm {self.path}`) "
                           "to train from the start") from exc
        return ckpt if ckpt["key"] == self.key else None

    def save(self, **payload) -> None:
        from .io import atomic_path

        with atomic_path(self.path) as tmp:
            torch.save({"key": self.key, **payload}, tmp)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class _Run:
    """What every step of one run shares (built once by ``train``)."""

    model: Classifier
    method: Method
    runner: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    generator: torch.Generator
    images: torch.Tensor
    labels: torch.Tensor
    b_ood: _BOOD | None
    params: list
    device: torch.device
    autocast: object
    tp: dict
    rho: float
    lr: float
    ar_layer: str
    cache: TeacherCache | None
    online_teacher: Classifier | None
    hparams: dict | None
    checkpointer: Checkpointer | None
    world: World


def _steps_per_epoch(n: int, tp: dict, world: World, method: Method, rho: float, section: str) -> int:
    """Optimisation steps per epoch over ``n`` training images; a clear error, before any work, where the batch
    cannot be split over processes and micro-batches or the schedule does not fit."""
    bsz, parts = tp["batch_size"], world.size * tp["grad_accum"]
    if bsz % parts or (method.uses_ood and math.ceil(rho * bsz) < parts):
        raise RTDError(f"`train.batch_size` = {bsz} must split evenly over {world.size} process(es) x {tp['grad_accum']} "
                       f"micro-batch(es), with at least one B_OOD image each (rho = {rho}): change batch_size, "
                       "grad_accum or the number of processes")
    check_schedule(n, tp, section)
    # split over processes / micro-batches, an epoch drops its last incomplete batch, so that every share
    # has the same size and the averaged gradient is the gradient of the global batch's mean loss
    return math.ceil(n / bsz) if parts == 1 else n // bsz


def _resume(run: _Run, progress: bool) -> LoopState:
    """The loop state (and model, optimiser, scheduler, RNG states) of the run's checkpoint, or a fresh state."""
    ckpt = run.checkpointer.load() if run.checkpointer is not None else None
    if ckpt is None:
        return LoopState()
    run.model.load_state_dict(ckpt["model"])
    run.optimizer.load_state_dict(ckpt["optimizer"])
    run.scheduler.load_state_dict(ckpt["scheduler"])
    run.generator.set_state(ckpt["generator"])
    torch.set_rng_state(ckpt["torch_rng"])
    st = ckpt["state"]
    if progress and run.world.main:
        from tqdm import tqdm

        tqdm.write(f"{run.method.name}: resuming from {run.checkpointer.path} at epoch {st.epoch}, step {st.step}",
                   file=sys.stderr)
    return st


def _accumulate(run: _Run, st: LoopState, batch: tuple) -> dict[str, torch.Tensor]:
    """Forward and backward over this rank's share of one global batch ``batch`` = (B_ID indices, B_OOD source
    indices, D_OOD indices, online B_OOD images), cut into ``grad_accum`` micro-batches; adds to the epoch's sums."""
    accum, world = run.tp["grad_accum"], run.world
    mine = [shard(t, world) if t is not None else None for t in batch]
    micro = [torch.tensor_split(t, accum) if t is not None else [None] * accum for t in mine]
    run.optimizer.zero_grad(set_to_none=True)
    for m in range(accum):
        b_idx = micro[0][m]
        last = m == accum - 1
        with run.runner.no_sync() if world.distributed and not last else contextlib.nullcontext():
            with run.autocast():
                terms = _micro_step(run.runner, run.model, run.method, run.images, run.labels, b_idx, micro[1][m],
                                    micro[2][m], micro[3][m], run.cache, run.online_teacher,
                                    run.b_ood and run.b_ood.teacher, run.ar_layer, run.device,
                                    split=two_passes_allowed(run.model, run.tp))
            # every rank must see a non-finite loss on any rank, or the others hang in all-reduce
            if not math.isfinite(all_sum([terms["total"].item()], world)[0]):
                if run.checkpointer is not None and world.main:
                    run.checkpointer.clear()   # its state leads to this step again: start afresh
                raise RTDError(
                    f"non-finite loss at epoch {st.epoch}, step {st.step}: "
                    + ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
                    + f"; hyperparameters: lr={run.lr}, {run.hparams or {}}. Lower the learning rate or the "
                    "loss weights; nothing was saved")
            (terms["total"] / accum if accum > 1 else terms["total"]).backward()
        for k, v in terms.items():
            st.sums[k] += v.item() * len(b_idx)
            st.counted[k] += len(b_idx)
    return terms


def _step(run: _Run, st: LoopState, i: int) -> dict[str, torch.Tensor]:
    """One optimisation step on the epoch's ``i``-th global batch (B_OOD drawn from its first ceil(rho |B|) images)."""
    from .flops import flop_counter

    bsz = run.tp["batch_size"]
    idx = st.perm[i * bsz:(i + 1) * bsz]
    ood_src = ood_idx = ood_x = None
    if run.b_ood is not None:   # outside the FLOP counter, whose module hooks break PGD's input gradients: FLOPs/step
        # omit making B_OOD in both modes (D_OOD is made once, by stage `ood`); the benchmark times it
        ood_src = idx[:math.ceil(run.rho * len(idx))]
        ood_idx, ood_x = run.b_ood.draw(ood_src, run.images, run.labels, run.generator, run.model)
    counter = flop_counter() if st.step == 0 else None
    with counter if counter is not None else contextlib.nullcontext():
        terms = _accumulate(run, st, (idx, ood_src, ood_idx, ood_x))
    if counter is not None:
        st.flops_per_step = int(counter.get_total_flops())
    if run.tp["grad_clip"] > 0:
        nn.utils.clip_grad_norm_(run.params, run.tp["grad_clip"])
    run.optimizer.step()
    run.scheduler.step()
    st.step += 1
    st.batch = i + 1
    return terms


def _end_epoch(run: _Run, st: LoopState, id_val: Split, ood_val: Split, progress: bool) -> bool:
    """Validate, log the epoch's row, keep the best weights; True when patience has run out."""
    tp, world = run.tp, run.world
    id_val_acc, id_val_nll = _val_scores(run.model, id_val, tp["eval_batch_size"], world)
    ood_val_acc, _ = _val_scores(run.model, ood_val, tp["eval_batch_size"], world)
    row = {"epoch": st.epoch, "step": st.step, "lr": run.optimizer.param_groups[0]["lr"]}
    totals = all_sum([st.sums[k] for k in LOSS_TERMS] + [st.counted[k] for k in LOSS_TERMS], world)
    sums, counted = dict(zip(LOSS_TERMS, totals)), dict(zip(LOSS_TERMS, totals[len(LOSS_TERMS):]))
    row.update({k: (sums[k] / counted[k] if counted[k] else float("nan")) for k in LOSS_TERMS})
    row.update({"id_val_acc": id_val_acc, "id_val_nll": id_val_nll, "ood_val_acc": ood_val_acc})
    st.log.append(row)
    if progress and world.main:
        from tqdm import tqdm

        tqdm.write(f"{run.method.name} epoch {st.epoch}: " + " ".join(
            f"{k}={row[k]:.4f}" for k in (*LOSS_TERMS, "id_val_acc", "id_val_nll", "ood_val_acc") if row[k] == row[k]),
            file=sys.stderr)
    # id_val accuracy selects the epoch; its NLL breaks ties (a saturated id_val would keep the first epoch)
    if (id_val_acc, -id_val_nll) > st.best_acc:
        st.best_acc, st.best_state, st.stale, st.best_epoch = (id_val_acc, -id_val_nll), copy.deepcopy(run.model.state_dict()), 0, st.epoch
    else:
        st.stale += 1
    st.epoch += 1
    st.batch = 0
    return st.stale >= tp["patience"]


def train(model: Classifier, method: Method, train_split: Split, id_val: Split, ood_val: Split,
          tp: dict, seed: int, *, rho: float = 0.0, ar_layer: str = "pooled",
          ood: OODSet | None = None, cache: TeacherCache | None = None, hparams: dict | None = None,
          progress: bool = True, checkpointer: Checkpointer | None = None,
          online_teacher: Classifier | None = None, online_ood: OnlineOOD | None = None, world: World = World(),
          section: str = "train") -> TrainResult:
    """Train ``model`` with ``method``; keep the weights of the epoch with the best id_val accuracy.

    ``tp`` is params['train']: besides the optimisation settings, ``device``, ``precision`` (fp32 or
    bf16 autocast), ``grad_accum`` (micro-batches per step; ``batch_size`` is the effective, global
    batch) and ``fused_optimizer`` (torch's fused AdamW kernel; absent = false). Under torchrun (``world``), each rank trains on its share of every global batch through
    DistributedDataParallel; results are returned on every rank, and only rank 0 checkpoints.
    Raises RTDError on a non-finite loss, naming the step and the terms.
    With a ``checkpointer``, the run saves its state every ``checkpointer.every`` steps and a restarted
    run resumes there, producing exactly the result of an uninterrupted run.
    With ``online_teacher``, the teacher's outputs are computed every step, as in the proposal's
    pseudocode, instead of read from ``cache`` (used by the benchmark to measure what caching saves). With
    ``online_ood``, B_OOD is drawn at every step instead of read from ``ood`` (D_OOD), θ_T's outputs on it computed then.
    ``section`` is where ``tp`` comes from in params.yaml, for the messages (``pretrain``, ``text.train``).
    """
    from tqdm import tqdm

    device = resolve_device(tp["device"], world)
    accum, bsz, n = tp["grad_accum"], tp["batch_size"], len(train_split)
    model = method.prepare(model.to(device))
    if online_teacher is not None:
        online_teacher.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    lr = method.lr if method.lr is not None else tp["lr"]
    # fused=None is torch's default loop (what every vision result in dvc.lock was trained with)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=tp["weight_decay"] if method.decoupled_weight_decay else 0.0,
                                  fused=True if tp.get("fused_optimizer") else None)
    steps_per_epoch = _steps_per_epoch(n, tp, world, method, rho, section)
    b_ood = _BOOD(method, ood, online_ood, n, device, tp["bn_policy"]) if method.uses_ood else None
    if method.teacher_outputs and cache is None and online_teacher is None:
        raise RTDError(f"method {method.name} needs the teacher cache: run `dvc repro cache`")
    if method.init == "teacher" and cache is not None:
        check_cache(model, train_split, cache)
    runner: nn.Module = _StepModule(model)
    if world.distributed:
        runner = nn.parallel.DistributedDataParallel(runner, device_ids=[device.index] if device.type == "cuda" else None)
    run = _Run(model, method, runner, optimizer, _schedule(optimizer, tp["warmup_steps"], tp["epochs"] * steps_per_epoch),
               torch.Generator().manual_seed(seed), torch.as_tensor(train_split.images),
               torch.as_tensor(train_split.labels), b_ood, params, device,
               (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if tp["precision"] == "bf16"
               else contextlib.nullcontext, tp, rho, lr, ar_layer, cache, online_teacher, hparams, checkpointer, world)
    st = _resume(run, progress)
    if progress and world.main:
        tqdm.write(f"{method.name}: effective batch {bsz} = {world.size} process(es) x {accum} micro-batch(es) of "
                   f"<= {math.ceil(bsz / (world.size * accum))}; lr {lr}; {device}, {tp['precision']}", file=sys.stderr)
    while st.epoch <= tp["epochs"]:
        set_train_mode(model, tp["bn_policy"])
        if st.batch == 0:
            st.perm = torch.randperm(n, generator=run.generator)
            st.sums = {k: 0.0 for k in LOSS_TERMS}
            st.counted = {k: 0 for k in LOSS_TERMS}
        bar = tqdm(range(st.batch, steps_per_epoch), desc=f"{method.name} epoch {st.epoch}/{tp['epochs']}",
                   unit="step", disable=not progress, leave=False, initial=st.batch, total=steps_per_epoch)
        for i in bar:
            terms = _step(run, st, i)
            if progress:
                bar.set_postfix(loss=f"{terms['total'].item():.4f}")
            if checkpointer is not None and world.main and st.step % checkpointer.every == 0:
                checkpointer.save(model=model.state_dict(), optimizer=optimizer.state_dict(),
                                  scheduler=run.scheduler.state_dict(), generator=run.generator.get_state(),
                                  torch_rng=torch.get_rng_state(), state=st)
        bar.close()
        if _end_epoch(run, st, id_val, ood_val, progress):
            break

    model.load_state_dict(st.best_state)
    model.to("cpu").eval()
    trainable = count_trainable(model)
    if checkpointer is not None and world.main:
        checkpointer.clear()
    return TrainResult(model=method.finalize(model), log=st.log, best_epoch=st.best_epoch, epochs_run=len(st.log),
                       trainable_params=trainable, flops_per_step=st.flops_per_step)
