"""Side-by-side cost of FT and RTD training on the embedded benchmark, in one process.

    python -m benchmarks.run                      # full epochs, 5 repetitions, rho in {0.1, 0.25, 0.5, 1.0}
    python -m benchmarks.run --steps 15 --reps 3  # a quicker look: 15 steps per timing, scaled to an epoch
    python -m benchmarks.run --track text         # the language track (MiniLM), with D_OOD sentences/s

Vision rows include RTD at the default rho with B_OOD drawn at every step (arm `rtd_online`: fresh transforms, PGD
against θ_T, θ_T's outputs on B_OOD computed then) beside the cached D_OOD.

Needs the pipeline's data, D_OOD and teacher cache (`dvc repro cache` / `text_cache`, or `dvc pull`). The timings
are interleaved (every configuration once per repetition) so that machine noise hits all of them alike,
after an untimed warm-up of every configuration (allocator, thread pool, caches); ratios are of medians.
Prints one table and writes it as JSON (``--out``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")


class PeakRSS:
    """Peak resident memory of this process while the block runs, sampled every 5 ms.

    Process-wide and including the loaded data and models; compare rows, not absolute values.
    """

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    @property
    def peak_mb(self) -> float:
        return self.peak / 2**20


def matmul_gflops(n: int = 1024, reps: int = 20) -> float:
    """This machine's float32 matmul throughput with the current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e9


def _subset(split, n):
    from rtd.data.splits import Split

    return Split(split.images[:n], split.labels[:n], split.domains[:n], split.domain_names)


def main(argv: list[str] | None = None) -> None:
    from rtd.config import load_params
    from rtd.data.splits import load_split, to_float
    from rtd.errors import RTDError
    from rtd.io import load_arrays, seed_everything, set_fill_uninitialized
    from rtd.arms import build_method
    from rtd.models import backbone_spec, build_classifier, load_model
    from rtd.tracks.vision.models import explicit_same_padding
    from rtd.tracks.vision.ood import build_transforms
    from rtd.tracks import for_track, track_path
    from rtd.train import CACHE_PARTS, OODSet, TeacherCache, cache_path, train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--warmup-steps", type=int, default=3, help="untimed steps of every configuration first")
    parser.add_argument("--variant-rho", type=float, default=0.5,
                        help="rho of the rows that compare a speed-up with the loop without it")
    parser.add_argument("--steps", type=int, default=0, help="steps per timing (0 = a full epoch)")
    parser.add_argument("--rhos", default="0.1,0.25,0.5,1.0")
    parser.add_argument("--track", default="vision", choices=("vision", "text"))
    parser.add_argument("--out", help="default benchmarks/results.json (vision), benchmarks/results_text.json (text)")
    opts = parser.parse_args(argv)
    track = opts.track
    out = opts.out or ("benchmarks/results.json" if track == "vision" else "benchmarks/results_text.json")

    params = for_track(load_params(), track)
    tp = dict(params["train"])
    seed = params["seeds"][0]
    seed_everything(seed, params["num_threads"])
    try:
        train_split = load_split(track_path("data/vision/train.safetensors", track))
        id_val = load_split(track_path("data/vision/id_val.safetensors", track))
        ood_arrays = load_arrays(track_path("data/vision/ood/train_ood.safetensors", track))
        c = {part: load_arrays(cache_path(part, track))[part] for part in CACHE_PARTS}
    except RTDError as exc:
        stage = "cache" if track == "vision" else "text_cache"
        sys.exit(f"error: {exc} (the benchmark needs `dvc repro {stage}` or `dvc pull {stage}` first)")
    bsz = tp["batch_size"]
    steps_per_epoch = math.ceil(len(train_split) / bsz)
    steps = opts.steps or steps_per_epoch

    def first(n: int):
        """The first ``n`` training examples with their D_OOD copies and teacher cache."""
        keep = ood_arrays["source"] < n
        return (_subset(train_split, n), OODSet(ood_arrays["images"][keep], ood_arrays["source"][keep]),
                TeacherCache(id_logits=torch.as_tensor(c["id_logits"][:n]), id_act=torch.as_tensor(c["id_act"][:n]),
                             ood_logits=torch.as_tensor(c["ood_logits"][keep]),
                             ood_act=torch.as_tensor(c["ood_act"][keep])))

    sub, ood, cache = first(min(len(train_split), steps * bsz))
    tiny_val = _subset(id_val, 1)  # validation is not what is timed
    tp.update(epochs=1, patience=1, warmup_steps=0)   # the schedule does not change the cost; a warm-up as long as a
    # timed run would be refused (config.check_schedule)

    backbone = backbone_spec(params, track)
    teacher = load_model(track_path("models/teacher/model.safetensors", track), backbone)
    teacher.eval()
    teacher_calls = {"n": 0}
    _count_teacher_passes(teacher, teacher_calls, track)

    rhos = [float(r) for r in opts.rhos.split(",")]
    # (label, arm, rho, teacher every step, variant of the loop)
    configs = [("ft", "ft", None, False, None)]
    if track == "text":   # what the text track's two speed-ups buy, side by side with the default loop
        configs += [("ft padded batches", "ft", None, False, "padded"), ("ft unfused AdamW", "ft", None, False, "unfused"),
                    (f"rtd rho={opts.variant_rho:g} two passes", "rtd", opts.variant_rho, False, "two_passes")]
    else:   # what padding inside the 5 x 5 convolutions buys (rtd.tracks.vision.models.pad_inside_convs), side by side
        configs += [("ft explicit padding", "ft", None, False, "explicit_pad"),
                    (f"rtd rho={opts.variant_rho:g} explicit padding", "rtd", opts.variant_rho, False, "explicit_pad")]
    # what turning off deterministic mode's NaN fill of new tensors buys (io.set_fill_uninitialized), side by side
    configs += [("ft NaN-filled allocations", "ft", None, False, "fill"),
                (f"rtd rho={opts.variant_rho:g} NaN-filled allocations", "rtd", opts.variant_rho, False, "fill")]
    configs += [(f"rtd rho={r:g}", "rtd", r, False, None) for r in rhos]
    configs += [(f"rtd rho={params['rho']:g} teacher every step", "rtd", params["rho"], True, None)]
    online_ood = None
    if track == "vision":   # the proposal's B_OOD, drawn at every step (arm rtd_online), against the cached D_OOD
        from rtd.tracks import get_track

        online_ood = get_track(track).online_ood(params, teacher, list(params["ood"]["transforms"]))
        configs += [(f"rtd rho={params['rho']:g} online B_OOD", "rtd", params["rho"], False, "online_b_ood")]
    times: dict[str, list[float]] = {}
    info: dict[str, dict] = {}
    warm = first(min(len(train_split), opts.warmup_steps * bsz)) if opts.warmup_steps > 0 else None
    for rep in range(-1 if warm else 0, opts.reps):
        data, ood_set, cache_set = warm if rep < 0 else (sub, ood, cache)
        for label, name, rho, online, variant in configs:
            method = build_method(name, params, params["train"]["lr"] if name == "ft" else None)
            model = build_classifier(backbone)
            if method.init == "teacher":
                model.load_state_dict(teacher.state_dict())
            if variant == "padded":   # a hook on the backbone makes TextClassifier run whole padded batches
                model.backbone.register_forward_hook(lambda *_: None)
            if variant == "explicit_pad":
                explicit_same_padding(model.backbone)
            if variant == "two_passes":   # B_ID and B_OOD as two encoder passes, as the vision CNN runs them
                model.split_id_ood = True
            run_tp = {**tp, "fused_optimizer": False} if variant == "unfused" else tp
            teacher_calls["n"] = 0
            set_fill_uninitialized(variant == "fill")
            with PeakRSS() as mem:
                start = time.perf_counter()
                result = train(model, method, data, tiny_val, tiny_val, run_tp, seed, rho=rho or 0.0,
                               ar_layer=params["ar_layer"], ood=ood_set, cache=None if online else cache_set,
                               progress=False, online_teacher=teacher if online else None,
                               online_ood=online_ood if variant == "online_b_ood" else None)
                elapsed = time.perf_counter() - start
            set_fill_uninitialized(False)
            if rep < 0:
                continue
            times.setdefault(label, []).append(elapsed / steps * steps_per_epoch)
            info[label] = {"flops_per_step": result.flops_per_step, "teacher_forwards": teacher_calls["n"],
                           "peak_rss_mb": round(mem.peak_mb), "rho": rho}
            print(f"rep {rep + 1}/{opts.reps} {label}: {elapsed:.1f} s for {steps} steps", file=sys.stderr)

    # OOD generation throughput per transform family
    if track == "vision":
        transforms = build_transforms(params["ood"], teacher)
        x = to_float(train_split.images[:256])
        y = torch.as_tensor(train_split.labels[:256])
        ood_speed = {}
        for fam, fn in transforms.items():
            start = time.perf_counter()
            fn(x, y)
            ood_speed[fam] = round(len(x) / (time.perf_counter() - start), 1)
        sentence_speed = None
    else:
        ood_speed, sentence_speed = None, text_ood_speed(params, teacher, backbone, train_split)

    ft_med = statistics.median(times["ft"])
    peak = matmul_gflops()
    rows = []
    for label, ts in times.items():
        med = statistics.median(ts)
        fl = info[label]["flops_per_step"]
        rows.append({
            "config": label, "epoch_s_median": round(med, 2), "epoch_s_min": round(min(ts), 2),
            "epoch_s_max": round(max(ts), 2), "ratio_vs_ft": round(med / ft_med, 3),
            "limit_1_plus_rho": None if info[label]["rho"] is None else round(1 + info[label]["rho"] + 0.05, 3),
            "flops_per_step_g": round(fl / 1e9, 2), "flops_ratio_vs_ft": round(fl / info["ft"]["flops_per_step"], 3),
            "achieved_gflops": round(fl * steps_per_epoch / med / 1e9, 2),
            "teacher_forwards": info[label]["teacher_forwards"], "peak_rss_mb": info[label]["peak_rss_mb"],
        })
    report = {"threads": torch.get_num_threads(), "batch_size": bsz, "steps_per_epoch": steps_per_epoch,
              "timed_steps": steps, "reps": opts.reps, "warmup_steps": opts.warmup_steps, "matmul_gflops": round(peak, 1),
              "track": track, "ood_images_per_s": ood_speed, "ood_sentences_per_s": sentence_speed, "rows": rows}
    cols = ["config", "epoch_s_median", "epoch_s_min", "epoch_s_max", "ratio_vs_ft", "limit_1_plus_rho",
            "flops_ratio_vs_ft", "achieved_gflops", "teacher_forwards", "peak_rss_mb"]
    print(f"threads={report['threads']} batch={bsz} steps/epoch={steps_per_epoch} timed steps={steps} "
          f"reps={opts.reps} matmul={peak:.1f} GFLOP/s")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join("–" if r[c] is None else str(r[c]) for c in cols) + " |")
    if ood_speed is not None:
        print("D_OOD generation, images/s (batch 256): " + ", ".join(f"{k} {v}" for k, v in ood_speed.items()))
    if sentence_speed is not None:
        print(f"D_OOD generation, sentences/s ({TEXT_OOD_N} training texts): "
              + ", ".join(f"{k} {v}" for k, v in sentence_speed.items()))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(report, indent=2) + "\n")


def _count_teacher_passes(teacher, counter: dict, track: str) -> None:
    """Count every pass through the teacher, whichever forward method is used."""
    def bump(*_):
        counter["n"] += 1

    if track == "vision":
        teacher.backbone._conv_stem.register_forward_hook(bump)
    else:   # wrap rather than hook: a hook would make TextClassifier run whole padded batches
        features = teacher.features
        teacher.features = lambda ids: (bump(), features(ids))[1]


TEXT_OOD_N = 256


def text_ood_speed(params: dict, teacher, backbone: dict, train_split) -> dict[str, float]:
    """Sentences/s of each text D_OOD family on the first ``TEXT_OOD_N`` training texts, through the ood stage's
    own ``generate_text_ood`` (transform, then re-tokenization) with one family at a time."""
    from rtd.io import read_json
    from rtd.tracks.text.ood import generate_text_ood
    from rtd.tracks.text.models import load_tokenizer
    from rtd.tracks import track_path

    texts = read_json(track_path("data/vision/texts.json", "text"))["train"][:TEXT_OOD_N]
    ids, labels = train_split.images[:TEXT_OOD_N], train_split.labels[:TEXT_OOD_N]
    tokenizer = load_tokenizer(backbone)   # shard width = text.data.max_len; pad id = the model's
    speed = {}
    for name in params["ood"]["transforms"]:
        cfg = {**params["ood"], "transforms": [name], "copies_per_example": 1}
        start = time.perf_counter()
        generate_text_ood(texts, ids, labels, cfg, tokenizer, ids.shape[1], teacher.pad_id, teacher=teacher)
        speed[name] = round(len(texts) / (time.perf_counter() - start), 1)
    return speed

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    main()
