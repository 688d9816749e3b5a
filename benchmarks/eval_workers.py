"""A lever tried and dropped (issue 21): evaluating an arm's runs in two worker processes of one thread each.

    python -m benchmarks.eval_workers --arm ft_newhead            # needs the arm's runs and the eval splits
    python -m benchmarks.eval_workers --arm ft_newhead --reps 3 --out benchmarks/eval_workers.json

For each repetition, interleaved so that machine noise hits both alike, the `evaluate` stage's work on every run of
the arm (`seeds`, at the arm's values: ``evaluate.evaluate_splits`` on the four evaluation splits): once in this
process on `num_threads` threads, as the stage does it, and once in `--workers` spawned processes of
`num_threads / workers` threads each (their start-up included). Then the bits: each run's logits on each split on
one thread against `num_threads` threads, and the two modes' metrics. The pipeline would take the lever only if it
were faster *and* changed no bit (CPU results depend on the thread count, which is why `num_threads` is a param).
Prints a table of medians and the ratio; ``--out`` writes it as JSON.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from concurrent.futures import ProcessPoolExecutor


def _evaluate(task: tuple[str, dict, str]) -> dict:
    from rtd.evaluate import evaluate_splits, load_eval_splits
    from rtd.models import backbone_spec, load_model

    path, params, track = task
    splits, ep = load_eval_splits(track), params["eval"]
    model = load_model(f"{path}/model.safetensors", backbone_spec(params, track))
    return evaluate_splits(model, splits["id_test"], splits["ood_val"], splits["ood_test"], ep["batch_size"],
                           ep["ece_bins"], id_val=splits["id_val"])


def _threads(n: int) -> None:
    from rtd.io import seed_everything

    seed_everything(0, n)


def _diff(a, b) -> int:
    """How many leaf values differ between two nested results."""
    if isinstance(a, dict):
        return sum(_diff(a[k], b[k]) for k in a)
    return int(a != b)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", default="ft_newhead")
    parser.add_argument("--track", default="vision")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--out")
    opts = parser.parse_args(argv)

    import platform

    import torch

    from rtd.arms import TRAINED, run_dir, variant_values
    from rtd.config import load_params
    from rtd.evaluate import load_eval_splits
    from rtd.models import backbone_spec, load_model, predict
    from rtd.tracks import for_track

    params = for_track(load_params("params.yaml"), opts.track)
    threads = params["num_threads"]
    paths = [run_dir(opts.arm, s, v, opts.track) for v in variant_values(TRAINED[opts.arm], params) for s in params["seeds"]]
    tasks = [(p, params, opts.track) for p in paths]
    modes = {"one process": None, f"{opts.workers} workers x {max(1, threads // opts.workers)} thread": opts.workers}
    times: dict[str, list[float]] = {m: [] for m in modes}
    results = {}
    for _ in range(opts.reps):
        for mode, workers in modes.items():
            start = time.perf_counter()
            if workers is None:
                _threads(threads)
                results[mode] = [_evaluate(t) for t in tasks]
            else:
                with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_threads,
                                         initargs=(max(1, threads // workers),)) as pool:
                    results[mode] = list(pool.map(_evaluate, tasks))
            times[mode].append(time.perf_counter() - start)
    one, many = results.values()
    metrics_differing = sum(_diff(a, b) for a, b in zip(one, many))

    splits, spec, max_logit_diff = load_eval_splits(opts.track), backbone_spec(params, opts.track), 0.0
    for path in paths:
        model = load_model(f"{path}/model.safetensors", spec)
        for split in splits.values():
            out = []
            for n in (1, threads):
                torch.set_num_threads(n)
                out.append(predict(model, split.images, params["eval"]["batch_size"])[0])
            max_logit_diff = max(max_logit_diff, float((out[0] - out[1]).abs().max()))
    torch.set_num_threads(threads)

    images = sum(len(s.labels) for s in splits.values()) * len(paths)
    base = statistics.median(times["one process"])
    rows = [{"mode": mode, "s (median)": round(statistics.median(t), 2), "min": round(min(t), 2),
             "max": round(max(t), 2), "images/s": round(images / statistics.median(t)),
             "time x one process": round(statistics.median(t) / base, 3)} for mode, t in times.items()]
    print(f"arm {opts.arm} ({opts.track}): {len(paths)} runs x {images // len(paths)} images, num_threads {threads}, "
          f"{opts.reps} repetitions; {platform.processor() or platform.machine()}")
    print("| " + " | ".join(rows[0]) + " |\n|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")
    print(f"metric values that differ between the modes: {metrics_differing}; "
          f"largest |logit difference|, 1 against {threads} threads: {max_logit_diff:.3g}")
    if opts.out:
        with open(opts.out, "w") as f:
            json.dump({"arm": opts.arm, "track": opts.track, "runs": len(paths), "images": images, "rows": rows,
                       "metric_values_differing": metrics_differing, "max_abs_logit_diff_1_vs_n_threads": max_logit_diff},
                      f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
