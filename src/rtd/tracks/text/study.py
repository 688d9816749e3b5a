"""Which text benchmark shows erosion? Standard FT against the linear-probe teacher on each candidate split.

    python -m rtd.tracks.text.study                       # all candidates, writes reports/text/candidates.{json,md}
    python -m rtd.tracks.text.study --candidates wordnet --seeds 0 1 2

For each candidate (``rtd.tracks.text.candidates``): the teacher = MiniLM + a logistic-regression probe on ID
train features (as the `text_teacher` stage fits it), its inverse regularisation C chosen on id_val from
``PROBE_CS`` (C = 1 overfits 2,000 examples: 100% train accuracy, and the weakest OOD accuracy); FT =
MiniLM + a new head trained with the one loop (``rtd.train.train``, method ``FineTune``) for
``text.train.epochs`` epochs, best epoch on id_val; its learning rate is chosen on id_val among
``text.ft_lrs`` with the first seed, and the other seeds run at that lr (to fit the study in ~30 minutes). A benchmark
tests RTD only if FT ends below the teacher on OOD: the table gives FT − teacher on ``ood_val`` per seed, its mean
and a one-sample t-test, next to the ID change; ``choose`` picks the candidate on those ``ood_val`` numbers only.
``ood_test`` is reported in its own column and never read by the choice (a test scrambles it). Not a DVC stage (it
would add half an hour to every `dvc repro`); its output is committed.

    python -m rtd.tracks.text.study --resummarise   # rebuild the table and choice from the committed JSON
"""
from __future__ import annotations

import argparse
import sys


def _eval(model, split, batch_size: int, worst_groups: bool) -> dict:
    import torch

    from ...metrics import accuracy
    from ...models import predict

    logits, _ = predict(model, split.images, batch_size)
    y = torch.as_tensor(split.labels)
    out = {"acc": accuracy(logits, y)}
    if worst_groups:
        accs = [accuracy(logits[torch.as_tensor(split.domains == g)], y[torch.as_tensor(split.domains == g)])
                for g in range(len(split.domain_names)) if (split.domains == g).any()]
        out["worst_group_acc"] = min(accs)
    return out


PROBE_CS = (0.003, 0.01, 0.03, 0.1, 1.0)
SPLITS = ("id_val", "ood_val", "id_test", "ood_test")


def study(candidate: str, params: dict, seeds: list[int], progress: bool = True) -> dict:
    """Teacher and FT (each lr, each seed) on one candidate; see the module docstring."""
    import numpy as np
    import torch

    from ...io import seed_everything
    from ...methods import FineTune
    from ...models import backbone_spec, build_classifier, predict
    from ...teacher import fit_linear_probe
    from ...train import train
    from ...tracks import for_track
    from .data import build_text_splits

    p = for_track(params, "text")
    data_cfg = {**p["text"]["data"], "dataset": candidate, "candidate": {}}
    spec = {**backbone_spec(p, "text"), "num_classes": None}
    seed_everything(data_cfg["seed"], p["num_threads"])
    from .data import num_text_classes

    spec["num_classes"] = num_text_classes(data_cfg)
    splits, _, manifest = build_text_splits(data_cfg, spec)
    worst = candidate == "bible_style"
    tp, bs = p["train"], p["train"]["eval_batch_size"]

    teacher = build_classifier(spec)
    _, feats = predict(teacher, splits["train"].images, bs, layer="pooled")
    _, val_feats = predict(teacher, splits["id_val"].images, bs, layer="pooled")
    probes = {c: fit_linear_probe(feats.numpy(), splits["train"].labels, c, p["teacher"]["probe_max_iter"]) for c in PROBE_CS}
    val_acc = {c: float(((val_feats @ w.T + b).argmax(1).numpy() == splits["id_val"].labels).mean())
               for c, (w, b) in probes.items()}
    probe_c = max(PROBE_CS, key=lambda c: (val_acc[c], -PROBE_CS.index(c)))
    w, b = probes[probe_c]
    with torch.no_grad():
        teacher.head.weight.copy_(w)
        teacher.head.bias.copy_(b)
    result = {"candidate": candidate, "sizes": {k: v["n"] for k, v in manifest["splits"].items()},
              "teacher": {s: _eval(teacher, splits[s], bs, worst) for s in SPLITS},
              "probe_c_chosen_on_id_val": probe_c, "probe_id_val_acc": val_acc, "ft": {}}
    plan = [(lr, seeds[0]) for lr in p["ft_lrs"]]
    for lr, seed in plan + [(None, s) for s in seeds[1:]]:
        if lr is None:   # the other seeds at the lr the first seed chose on id_val
            lr = max(p["ft_lrs"], key=lambda v: (result["ft"][f"lr{v}/seed{seeds[0]}"]["id_val"]["acc"],
                                                  -list(p["ft_lrs"]).index(v)))
        seed_everything(seed, p["num_threads"])
        method = FineTune()
        method.lr = float(lr)
        run = train(build_classifier(spec), method, splits["train"], splits["id_val"], splits["ood_val"], tp, seed,
                    progress=progress)
        result["ft"][f"lr{lr}/seed{seed}"] = {
            "lr": lr, "seed": seed, "best_epoch": run.best_epoch,
            **{s: _eval(run.model, splits[s], bs, worst) for s in SPLITS}}
        if progress:
            r = result["ft"][f"lr{lr}/seed{seed}"]
            print(f"[study] {candidate} lr={lr} seed={seed}: id_val {r['id_val']['acc']:.3f} "
                  f"ood_val {r['ood_val']['acc']:.3f} (teacher {result['teacher']['id_val']['acc']:.3f} / "
                  f"{result['teacher']['ood_val']['acc']:.3f})", file=sys.stderr)
    best = result["ft"][f"lr{lr}/seed{seeds[-1]}"]["lr"]
    result["ft_lr_chosen_on_id_val"] = best
    result["summary"] = summarise(result, best, worst)
    return result


MIN_LOSS = 0.03      # the erosion a default needs: FT at least 3 points below the teacher on ood_val ...
MAX_P = 0.05         # ... with a one-sample t-test over seeds below this


def summarise(result: dict, lr: float, worst: bool) -> dict:
    """FT (at ``lr``) − teacher per seed on each split (and worst group), mean ± std, one-sample t-test."""
    import numpy as np
    from scipy import stats

    runs = [r for r in result["ft"].values() if r["lr"] == lr]
    out = {}
    for split in SPLITS:
        for key in ("acc", "worst_group_acc") if worst else ("acc",):
            if key not in result["teacher"][split]:
                continue
            diffs = np.array([r[split][key] - result["teacher"][split][key] for r in runs])
            t, pval = stats.ttest_1samp(diffs, 0.0) if len(diffs) > 1 and diffs.std() > 0 else (float("nan"), float("nan"))
            vals = np.array([r[split][key] for r in runs])
            out[f"{split}/{key}"] = {"teacher": result["teacher"][split][key], "ft_mean": float(vals.mean()),
                                     "ft_std": float(vals.std(ddof=1)) if len(vals) > 1 else 0.0,
                                     "diff_per_seed": diffs.round(4).tolist(), "diff_mean": float(diffs.mean()),
                                     "t": float(t), "p": float(pval)}
    return out


def choose(results: list[dict]) -> str | None:
    """The candidate whose FT loses the most ``ood_val`` accuracy against the teacher, among those that lose at least
    ``MIN_LOSS`` with p < ``MAX_P``; None if none does. Reads ``ood_val`` only."""
    eroded = {r["candidate"]: -r["summary"]["ood_val/acc"]["diff_mean"] for r in results
              if -r["summary"]["ood_val/acc"]["diff_mean"] >= MIN_LOSS and r["summary"]["ood_val/acc"]["p"] < MAX_P}
    return max(eroded, key=eroded.get) if eroded else None


def markdown(results: list[dict]) -> str:
    """The candidates table: the choice's columns (``ood_val``), then ``ood_test`` (held out), and the choice."""
    lines = ["| candidate | n train / ood_val / ood_test | teacher ID (id_val) | FT ID (id_val) | teacher ood_val | "
             "FT ood_val | FT − teacher ood_val (per seed) | p | FT − teacher ood_test (held out) |",
             "|---|---|---|---|---|---|---|---|---|"]

    def row(label: str, sizes: str, s: dict, key: str) -> str:
        i, v, t = s.get(f"id_val/{key}"), s[f"ood_val/{key}"], s[f"ood_test/{key}"]
        ids = f"{100 * i['teacher']:.1f} | {100 * i['ft_mean']:.1f} ± {100 * i['ft_std']:.1f}" if i else " | "
        seeds = ", ".join(f"{100 * d:+.1f}" for d in v["diff_per_seed"])
        return (f"| {label} | {sizes} | {ids} | {100 * v['teacher']:.1f} | {100 * v['ft_mean']:.1f} ± "
                f"{100 * v['ft_std']:.1f} | {seeds} | {v['p']:.3f} | {100 * t['diff_mean']:+.1f} |")

    for r in results:
        z = r["sizes"]
        lines.append(row(f"{r['candidate']} (lr {r['ft_lr_chosen_on_id_val']:g})",
                         f"{z['train']} / {z['ood_val']} / {z['ood_test']}", r["summary"], "acc"))
        if "ood_val/worst_group_acc" in r["summary"]:
            lines.append(row("↳ worst group (genre × version)", "", r["summary"], "worst_group_acc"))
    chosen = choose(results)
    lines += ["", f"**Choice (on ood_val):** {chosen}" if chosen else
              f"**Choice (on ood_val):** none — no candidate's FT loses ≥ {100 * MIN_LOSS:.0f} points against its "
              f"teacher with p < {MAX_P}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    from ...config import load_params
    from ...evaluate import rounded
    from ...io import write_json, write_text
    from .candidates import CANDIDATES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default="reports/text/candidates")
    parser.add_argument("--resummarise", action="store_true", help="rebuild the summary and table from <out>.json")
    opts = parser.parse_args(argv)
    if opts.resummarise:
        from ...io import read_json

        results = read_json(f"{opts.out}.json")
        for r in results:
            r["summary"] = summarise(r, r["ft_lr_chosen_on_id_val"], "worst_group_acc" in r["teacher"]["ood_val"])
    else:
        results = [study(c, load_params(), opts.seeds) for c in opts.candidates]
    write_json(f"{opts.out}.json", rounded(results))
    write_text(f"{opts.out}.md", markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    from ...stages.common import run_stage

    run_stage("study", main)
