"""Where a training stage's time goes, and what each lever of issue 21 would buy, measured side by side.

    python -m benchmarks.levers                # 3 repetitions; writes benchmarks/levers.json
    python -m benchmarks.levers --compile      # also torch.compile (minutes of compilation on a CPU)

Needs the vision pipeline's data and teacher (`dvc repro teacher` or `dvc pull teacher`). Every row runs the
default FT arm (θ_T, head included, at `train.lr`) on the real splits, as `train_ft` and `evaluate@ft` do:

- **one run, 1 process x 2 threads**: what a training stage and its share of the evaluation stage do today, split
  into training steps, per-epoch validation (id_val + ood_val) and the final evaluation (id_test, ood_val,
  ood_test, id_val). Two runs (seeds 0 and 1) one after the other in one worker process.
- **two runs at once, 2 processes x 1 thread**: the same two runs in two worker processes side by side (what a
  stage training several seeds in workers, or `dvc queue start -j 2`, would do); wall time per run. Results
  depend on the thread count (a param), so the table says whether they changed.
- **stage start-up**: a fresh interpreter importing torch and the library and loading the data and θ_T (what
  every one of the pipeline's ~150 stage instances pays before its first step), and DVC's own time per stage.
- **frozen prefix k**: the share of a training step (forward + backward) and of an evaluation forward spent in the
  stem and the first k blocks: what caching their outputs would save if no arm trained them (a design change:
  every arm would fine-tune only the later blocks).
- **torch.compile** (``--compile``): a training step of the compiled model against the eager one, and the
  compile time.

Timings are interleaved over repetitions after an untimed warm-up; ratios are of medians within this run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_STATE: dict = {}


def _load(threads: int) -> None:
    """Worker initialiser: the data, θ_T and the FT method, loaded once (not timed)."""
    sys.path.insert(0, str(ROOT / "src"))
    from rtd.arms import build_method
    from rtd.config import load_params
    from rtd.data.splits import load_split
    from rtd.evaluate import load_eval_splits
    from rtd.io import seed_everything
    from rtd.models import backbone_spec

    params = load_params()
    seed_everything(0, threads)
    _STATE.update(params=params, threads=threads, backbone=backbone_spec(params),
                  train=load_split("data/vision/train.safetensors"), evals=load_eval_splits("vision"),
                  build=lambda: build_method("ft", params, params["train"]["lr"]))


def _ready(queue) -> None:
    queue.put(os.getpid())


def _init(threads: int, queue) -> None:
    _load(threads)
    _ready(queue)


def _one_run(seed: int) -> dict:
    """One FT run as `train_ft@seed` + its evaluation do it; timings of the parts and the test accuracy."""
    import torch

    import rtd.train as loop
    from rtd.evaluate import evaluate_splits
    from rtd.io import seed_everything
    from rtd.models import load_model

    s, tp = _STATE, _STATE["params"]["train"]
    seed_everything(seed, s["threads"])
    model = load_model("models/teacher/model.safetensors", s["backbone"])
    val_time = [0.0]
    scores = loop._val_scores

    def timed_scores(*args, **kwargs):
        start = time.perf_counter()
        out = scores(*args, **kwargs)
        val_time[0] += time.perf_counter() - start
        return out

    loop._val_scores = timed_scores
    start = time.perf_counter()
    try:
        result = loop.train(model, s["build"](), s["train"], s["evals"]["id_val"], s["evals"]["ood_val"], tp, seed,
                            progress=False)
    finally:
        loop._val_scores = scores
    train_total = time.perf_counter() - start
    ev = s["evals"]
    start = time.perf_counter()
    metrics = evaluate_splits(result.model, ev["id_test"], ev["ood_val"], ev["ood_test"], s["params"]["eval"]["batch_size"],
                              s["params"]["eval"]["ece_bins"], id_val=ev["id_val"])
    eval_s = time.perf_counter() - start
    return {"seed": seed, "threads": torch.get_num_threads(), "steps_s": train_total - val_time[0],
            "val_s": val_time[0], "eval_s": eval_s, "ood_acc": metrics["ood_acc"], "id_acc": metrics["id_acc"]}


def _pool(ctx, n: int, threads: int):
    queue = ctx.Queue()
    pool = ctx.Pool(n, initializer=_init, initargs=(threads, queue))
    for _ in range(n):
        queue.get()
    return pool


def _startup_seconds() -> float:
    """A fresh interpreter: import torch and the library, load the splits and θ_T (what a stage pays first)."""
    code = ("import time; t = time.perf_counter(); import torch, rtd.train, rtd.evaluate; "
            "from rtd.config import load_params; from rtd.models import backbone_spec, load_model; "
            "from rtd.evaluate import load_eval_splits; from rtd.data.splits import load_split; p = load_params(); "
            "load_split('data/vision/train.safetensors'); load_eval_splits('vision'); "
            "load_model('models/teacher/model.safetensors', backbone_spec(p))")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def _dvc_stage_seconds() -> float | None:
    """DVC's own time for one stage that is up to date (`dvc repro -s check`: reads dvc.yaml/dvc.lock, hashes)."""
    dvc = Path(sys.executable).parent / "dvc"
    if not dvc.exists():
        return None
    start = time.perf_counter()
    proc = subprocess.run([str(dvc), "repro", "-s", "check"], cwd=ROOT, capture_output=True, text=True)
    return time.perf_counter() - start if proc.returncode == 0 else None


def _segments(model):
    """The backbone as a list of (name, callable) segments: stem, each block, head conv + pooling + head."""
    import torch

    net = model.backbone
    segs = [("stem", lambda x: net._swish(net._bn0(net._conv_stem(x * (255.0 / 128.0) - (127.0 / 128.0)))))]
    segs += [(f"_blocks.{i}", (lambda b: lambda x: b(x, drop_connect_rate=0.0))(b)) for i, b in enumerate(net._blocks)]
    segs.append(("head", lambda x: model.head(net._swish(net._bn1(net._conv_head(x))).mean(dim=(2, 3)))))
    return segs


def _prefix_rows(reps: int, threads: int) -> list[dict]:
    """Training-step and evaluation-forward time of the whole network and of the part after the first k blocks."""
    import torch

    from rtd.data.splits import to_float
    from rtd.models import load_model, set_train_mode

    s = _STATE
    torch.set_num_threads(threads)
    model = load_model("models/teacher/model.safetensors", s["backbone"])
    x = to_float(s["train"].images[:64])
    y = torch.as_tensor(s["train"].labels[:64])
    xe = to_float(s["evals"]["ood_test"].images[:64])
    segs = _segments(model)
    cuts = [0, 1, 2, 4, 6, 9, 12]   # 0 = nothing frozen; k = stem + blocks 0..k-2

    def run_from(h, k):
        for _, fn in segs[k:]:
            h = fn(h)
        return h

    def prefix(h, k):
        with torch.no_grad():
            for _, fn in segs[:k]:
                h = fn(h)
        return h.contiguous(memory_format=torch.channels_last) if h.dim() == 4 else h

    def step(k):
        set_train_mode(model, "frozen")
        h = prefix(x, k)
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(run_from(h, k), y)
        loss.backward()
        model.zero_grad(set_to_none=True)
        return time.perf_counter() - start

    def forward(k):
        model.eval()
        h = prefix(xe, k)
        start = time.perf_counter()
        with torch.no_grad():
            run_from(h, k)
        return time.perf_counter() - start

    times = {k: {"step": [], "eval": []} for k in cuts}
    for rep in range(-1, reps):
        for k in cuts:
            a, b = step(k), forward(k)
            if rep >= 0:
                times[k]["step"].append(a)
                times[k]["eval"].append(b)
    full_step, full_eval = (statistics.median(times[0][w]) for w in ("step", "eval"))
    rows = []
    for k in cuts:
        st, ev = statistics.median(times[k]["step"]), statistics.median(times[k]["eval"])
        frozen = "nothing" if k == 0 else ("stem" if k == 1 else f"stem + _blocks.0-{k - 2}")
        rows.append({"frozen": frozen, "step_s": round(st, 3), "step_x_full": round(st / full_step, 3),
                     "eval_forward_s": round(ev, 3), "eval_x_full": round(ev / full_eval, 3)})
    return rows


def _compile_row(threads: int) -> dict:
    """A training step of torch.compile(model) against the eager model, and what compiling costs."""
    import torch

    from rtd.data.splits import to_float
    from rtd.models import load_model, set_train_mode

    torch.set_num_threads(threads)
    x = to_float(_STATE["train"].images[:64])
    y = torch.as_tensor(_STATE["train"].labels[:64])
    out = {}
    for name in ("eager", "compiled"):
        model = load_model("models/teacher/model.safetensors", _STATE["backbone"])
        set_train_mode(model, "frozen")
        fn = torch.compile(model) if name == "compiled" else model
        start = time.perf_counter()
        try:
            torch.nn.functional.cross_entropy(fn(x), y).backward()
        except Exception as exc:   # an inductor that cannot build on this machine: say so in the table
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
        out[f"{name}_first_step_s"] = round(time.perf_counter() - start, 2)
        steps = []
        for _ in range(5):
            model.zero_grad(set_to_none=True)
            start = time.perf_counter()
            torch.nn.functional.cross_entropy(fn(x), y).backward()
            steps.append(time.perf_counter() - start)
        out[f"{name}_step_s"] = round(statistics.median(steps), 3)
    out["compiled_x_eager"] = round(out["compiled_step_s"] / out["eager_step_s"], 3)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--out", default="benchmarks/levers.json")
    opts = parser.parse_args(argv)
    os.chdir(ROOT)
    for path in ("data/vision/train.safetensors", "models/teacher/model.safetensors"):
        if not Path(path).is_file():
            sys.exit(f"error: {path} is missing: run `dvc repro teacher` (or `dvc pull teacher`) first")
    ctx = mp.get_context("spawn")
    serial, parallel = _pool(ctx, 1, 2), _pool(ctx, 2, 1)
    rows: dict[str, list] = {"1x2": [], "2x1": []}
    walls: dict[str, list] = {"1x2": [], "2x1": []}
    startup, dvc = [], []
    try:
        serial.map(_one_run, [0])           # warm-up (untimed)
        parallel.map(_one_run, [0, 1])
        for rep in range(opts.reps):
            for key, pool in (("1x2", serial), ("2x1", parallel)):
                start = time.perf_counter()
                rows[key].append(pool.map(_one_run, [0, 1]))
                walls[key].append((time.perf_counter() - start) / 2)
                print(f"rep {rep + 1}/{opts.reps} {key}: {walls[key][-1]:.1f} s per run", file=sys.stderr)
            startup.append(_startup_seconds())
            dvc.append(_dvc_stage_seconds())
    finally:
        serial.close()
        parallel.close()

    _load(2)
    prefix = _prefix_rows(opts.reps + 2, 2)
    compiled = _compile_row(2) if opts.compile else None
    med = {k: statistics.median(v) for k, v in walls.items()}
    parts = {p: statistics.median(r[p] for rr in rows["1x2"] for r in rr) for p in ("steps_s", "val_s", "eval_s")}
    same = all(a["ood_acc"] == b["ood_acc"] and a["id_acc"] == b["id_acc"]
               for a, b in zip(rows["1x2"][0], rows["2x1"][0]))
    report = {
        "reps": opts.reps, "cpu_count": os.cpu_count(),
        "run_1x2_s": round(med["1x2"], 2), "run_2x1_s": round(med["2x1"], 2),
        "two_at_once_speedup": round(med["1x2"] / med["2x1"], 3),
        "same_results_1x2_vs_2x1": same,
        "ood_acc_1x2": [r["ood_acc"] for r in rows["1x2"][0]], "ood_acc_2x1": [r["ood_acc"] for r in rows["2x1"][0]],
        "parts_1x2_s": {k: round(v, 2) for k, v in parts.items()},
        "stage_startup_s": round(statistics.median(startup), 2),
        "dvc_per_stage_s": None if None in dvc else round(statistics.median(dvc), 2),
        "frozen_prefix": prefix, "compile": compiled,
    }
    total = sum(parts.values())
    print(f"FT run at train.lr, {opts.reps} repetitions, median; cpu_count={os.cpu_count()}")
    print("| configuration | s per run | x (1 x 2 threads) |")
    print("|---|---|---|")
    print(f"| one run at a time, 1 process x 2 threads | {med['1x2']:.1f} | 1.0 |")
    print(f"| two runs at once, 2 processes x 1 thread | {med['2x1']:.1f} | {med['2x1'] / med['1x2']:.3f} |")
    print(f"results identical between the two: {same} (num_threads is a param; 1 thread changes float rounding)")
    print()
    print("| part of a run (1 x 2 threads) | s | share |")
    print("|---|---|---|")
    for name, key in (("training steps", "steps_s"), ("per-epoch validation (id_val + ood_val)", "val_s"),
                      ("final evaluation (id_test, ood_val, ood_test, id_val)", "eval_s")):
        print(f"| {name} | {parts[key]:.1f} | {parts[key] / total:.0%} |")
    print(f"| stage start-up (interpreter, imports, data, θ_T), per stage | {report['stage_startup_s']:.1f} | – |")
    if report["dvc_per_stage_s"] is not None:
        print(f"| DVC's own work for one up-to-date stage (`dvc repro -s check`) | {report['dvc_per_stage_s']:.1f} | – |")
    print()
    print("| frozen (outputs cached) | step s | step x full | eval forward s | eval x full |")
    print("|---|---|---|---|---|")
    for r in prefix:
        print(f"| {r['frozen']} | {r['step_s']} | {r['step_x_full']} | {r['eval_forward_s']} | {r['eval_x_full']} |")
    if compiled is not None:
        print()
        print("torch.compile: " + json.dumps(compiled))
    Path(opts.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
