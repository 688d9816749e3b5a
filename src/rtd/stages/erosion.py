"""DVC stage `erosion` (`text_erosion`): is there robustness for fine-tuning to erode? Its choice gates the default.

    python -m rtd.stages.erosion                # -> reports/erosion.json, reports/erosion.md, reports/figures/erosion.png
    python -m rtd.stages.erosion --track text   # -> the same under reports/text/

For every candidate configuration (`erosion.candidates`: values of the track's knob, ``Track.erosion_knob``: the
shortcut probability p of the vision ID training set, drawn on `train_clean` exactly as the data stage draws
`data.shortcut`; the nuisance of the text ID splits, built as the data and teacher stages build them), FT from θ_T
(head included) and FT with a new head train at each of `erosion.lrs` on each of `erosion.seeds`, with the one loop
and the `train` settings of the FT arm, logging id_val and ood_val accuracy every epoch. Reported per candidate:
- the teacher against FT at the lr chosen on id_val: ID and OOD accuracy per ood_test domain and their mean,
  the loss against the teacher with its 95 % interval and one-sided p (the teacher is deterministic);
- the WiSE-FT curve θ_T -> FT (θ_T init, chosen lr) over `erosion.alphas` on id_val / ood_val, per seed;
- effective robustness (Taori et al. 2020): the distance of the teacher, of FT and of every FT epoch from the
  logit-linear id_val -> ood_val trend of ID-only models (linear probes on the pretrained backbone, which never saw
  the task's labels, fit on growing shares of the ID training set).
Where every candidate shares θ_T, the evaluation splits and the trend (vision), they are computed once (top-level
`teacher`, `trend`); else each candidate carries its own.
The default is the candidate whose FT loses most ood_val accuracy against the teacher, at least
`erosion.min_drop` with p < 0.05 (``erosion.choose_candidate``); `ood_test` takes part in no choice.
The report stage checks that the track's default is that choice, so the study does not depend on it.
Runs finished before an interruption are kept in .scratch/erosion/ (keyed by their config and input files) and
not trained again; once a candidate's lr is chosen only that lr's weights stay there (the others' logs do), and a
chosen run whose weights were dropped (the lr grid changed) is trained again.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

from .common import run_stage, track_arg, track_params

SCRATCH = ".scratch/erosion"


def _probe_trend(params: dict, track: str, clean, id_val, ood_val) -> tuple[list[dict], tuple[float, float]]:
    """ID-only models: probes on the pretrained backbone at growing shares of the ID training set, and their trend."""
    import numpy as np
    import torch

    from ..erosion import fit_trend
    from ..models import backbone_spec, build_classifier, predict
    from ..teacher import fit_linear_probe

    ep, tp = params["erosion"], params["teacher"]
    backbone = build_classifier(backbone_spec(params, track))
    feats = {name: predict(backbone, s.images, tp["batch_size"], layer="pooled")[1]
             for name, s in (("train", clean), ("id_val", id_val), ("ood_val", ood_val))}
    order = np.random.default_rng(ep["seed"]).permutation(len(clean))
    points = []
    for fraction in ep["trend_fractions"]:
        keep = np.sort(order[:max(10, int(round(fraction * len(clean))))])
        w, b = fit_linear_probe(feats["train"][keep].numpy(), clean.labels[keep], tp["probe_c"], tp["probe_max_iter"])
        accs = [float((torch.nn.functional.linear(feats[n], w, b).argmax(1) == torch.as_tensor(s.labels)).double().mean())
                for n, s in (("id_val", id_val), ("ood_val", ood_val))]
        points.append({"fraction": fraction, "id_val_acc": accs[0], "ood_val_acc": accs[1]})
    if len({q["id_val_acc"] for q in points}) < 2:   # before any run is trained: a line needs two ID accuracies
        from ..errors import ParamError
        from ..tracks import track_key

        raise ParamError(f"params.yaml: `{track_key('erosion.trend_fractions', track)}` = {ep['trend_fractions']}: every "
                         f"ID-only probe scores {100 * points[0]['id_val_acc']:.1f} % on id_val, so the trend of effective "
                         "robustness is undefined; add a smaller share (e.g. 0.02) so that the probes differ")
    return points, fit_trend([(q["id_val_acc"], q["ood_val_acc"]) for q in points], len(id_val), len(ood_val))


def _context(params: dict, track: str, teacher: str, splits: dict, trend_train) -> dict:
    """What a candidate's runs are measured against: θ_T (its file, weights, metrics), the splits and the trend."""
    from ..erosion import effective_robustness
    from ..evaluate import evaluate_splits, rounded
    from ..models import backbone_spec, load_model

    model = load_model(teacher, backbone_spec(params, track))
    id_val, ood_val = splits["id_val"], splits["ood_val"]

    def test_metrics(m) -> dict:
        return rounded(evaluate_splits(m, splits["id_test"], ood_val, splits["ood_test"], params["eval"]["batch_size"],
                                       params["eval"]["ece_bins"], id_val=id_val))

    teacher_m = test_metrics(model)
    points, trend = _probe_trend(params, track, trend_train, id_val, ood_val)
    er = lambda i, o: effective_robustness(i, o, trend, len(id_val))   # noqa: E731
    return {"teacher_file": teacher, "model": model, "theta_0": {k: v.clone() for k, v in model.state_dict().items()},
            "splits": splits, "test_metrics": test_metrics, "er": er,
            "trend": {"slope": trend[0], "intercept": trend[1], "points": points, "n_id_val": len(id_val),
                      "n_ood_val": len(ood_val)},
            "teacher": {**teacher_m, "effective_robustness_val": er(teacher_m["id_val_acc"], teacher_m["ood_val_acc"])}}


def _train_runs(params: dict, track: str, key: dict, inputs: list[str], init: str, train_split, ctx: dict, bar=None,
                lrs: list | None = None, need_weights: bool = False) -> dict:
    """FT from ``init`` at each lr (``lrs``; default `erosion.lrs`) and seed on ``train_split`` (the candidate ``key``);
    finished runs are read back from the scratch folder, and trained again only if ``need_weights`` and their
    weights were dropped (``_summarise`` keeps the chosen lr's only)."""
    import json
    from pathlib import Path

    from ..io import atomic_path, seed_everything
    from ..methods import FineTune, FineTuneNewHead
    from ..models import backbone_spec, init_head, load_model, save_model
    from ..train import train
    from .train import _digest

    ep, tp, spec = params["erosion"], params["train"], backbone_spec(params, track)
    id_val, ood_val = ctx["splits"]["id_val"], ctx["splits"]["ood_val"]
    methods = {"teacher": FineTune, "new_head": FineTuneNewHead}
    runs = {}
    for lr in ep["lrs"] if lrs is None else lrs:
        for seed in ep["seeds"]:
            config = {"candidate": key, "init": init, "lr": lr, "seed": seed, "train": tp, "spec": spec,
                      "threads": params["num_threads"]}
            path = Path(SCRATCH) / f"{_digest(config, inputs)[:20]}.json"   # reused only with the same inputs
            if not path.is_file() or (need_weights and not path.with_suffix(".safetensors").is_file()):
                seed_everything(seed, params["num_threads"])
                model = load_model(ctx["teacher_file"], spec)
                method = methods[init]()
                init_head(model, method.init)
                method.lr = lr
                result = train(model, method, train_split, id_val, ood_val, tp, seed, progress=False)
                best = result.log[result.best_epoch - 1]
                run = {"log": [{k: r[k] for k in ("epoch", "id_val_acc", "id_val_nll", "ood_val_acc")} for r in result.log],
                       "best_epoch": result.best_epoch, "id_val_acc": best["id_val_acc"],
                       "id_val_nll": best["id_val_nll"], "ood_val_acc": best["ood_val_acc"],
                       "weights_file": str(path.with_suffix(".safetensors"))}
                save_model(run["weights_file"], result.model)
                with atomic_path(path) as tmp:
                    tmp.write_text(json.dumps(run))
            runs[(lr, seed)] = json.loads(path.read_text())
            if bar is not None:
                bar.update()
    return runs


def _wiseft_curve(model, theta_0: dict, state: dict, alphas: list[float], splits: tuple, batch_size: int) -> list[dict]:
    """id_val / ood_val accuracy of θ_α = (1 - α) θ_T + α θ_FT along ``alphas``."""
    import torch

    from ..models import predict
    from ..wiseft import interpolate_weights

    curve = []
    for alpha in alphas:
        model.load_state_dict(interpolate_weights(theta_0, state, alpha))
        scores = [float((predict(model, s.images, batch_size)[0].argmax(1) == torch.as_tensor(s.labels)).double().mean())
                  for s in splits]
        curve.append({"alpha": alpha, "id_val_acc": scores[0], "ood_val_acc": scores[1]})
    return curve


def _summarise(params: dict, track: str, init: str, runs: dict, ctx: dict, runs_of: Callable[..., dict]) -> dict:
    """The chosen lr's runs against the teacher: drops with intervals, per-epoch effective robustness, WiSE-FT.
    ``runs_of``: ``_train_runs`` of this candidate and init, to restore the chosen runs' weights if they were dropped;
    the other lrs' weights are dropped here (never read again; MiniLM's are 90 MB a run)."""
    from pathlib import Path

    from ..erosion import best_lr, drop_test, mean_ci
    from ..models import backbone_spec, load_model

    ep, spec = params["erosion"], backbone_spec(params, track)
    model, theta_0, test_metrics, er = ctx["model"], ctx["theta_0"], ctx["test_metrics"], ctx["er"]
    teacher_m, id_val, ood_val = ctx["teacher"], ctx["splits"]["id_val"], ctx["splits"]["ood_val"]
    lr = best_lr({v: [(runs[(v, s)]["id_val_acc"], runs[(v, s)]["id_val_nll"]) for s in ep["seeds"]] for v in ep["lrs"]})
    runs = {**runs, **runs_of(lrs=[lr], need_weights=True)}
    per_lr = {str(v): {"ood_val_acc": mean_ci([runs[(v, s)]["ood_val_acc"] for s in ep["seeds"]]),
                       "id_val_acc": mean_ci([runs[(v, s)]["id_val_acc"] for s in ep["seeds"]])} for v in ep["lrs"]}
    chosen, curves, epochs = [], [], []
    for seed in ep["seeds"]:
        run = runs[(lr, seed)]
        state = load_model(run["weights_file"], spec).state_dict()
        model.load_state_dict(state)
        m = test_metrics(model)
        m.update(seed=seed, best_epoch=run["best_epoch"], effective_robustness_val=er(m["id_val_acc"], m["ood_val_acc"]))
        chosen.append(m)
        epochs.append([{"epoch": r["epoch"], "id_val_acc": r["id_val_acc"], "ood_val_acc": r["ood_val_acc"],
                        "effective_robustness_val": er(r["id_val_acc"], r["ood_val_acc"])} for r in run["log"]])
        if init == "teacher":   # WiSE-FT needs both ends in one basin: only FT from θ_T, head included
            curves.append(_wiseft_curve(model, theta_0, state, ep["alphas"], (id_val, ood_val),
                                        params["eval"]["batch_size"]))
    model.load_state_dict(theta_0)
    for (v, _), run in runs.items():
        if v != lr:
            Path(run["weights_file"]).unlink(missing_ok=True)
    domains = list(teacher_m["ood_domains"])
    summary = {
        "lr": lr, "per_lr": per_lr, "runs": chosen, "epochs": epochs,
        "ood_val_drop": drop_test(teacher_m["ood_val_acc"], [m["ood_val_acc"] for m in chosen]),
        "ood_test_mean_drop": drop_test(teacher_m["ood_domain_mean_acc"], [m["ood_domain_mean_acc"] for m in chosen]),
        "ood_test_domain_drop": {d: drop_test(teacher_m["ood_domains"][d], [m["ood_domains"][d] for m in chosen])
                                 for d in domains},
        "id_test_change": mean_ci([m["id_acc"] - teacher_m["id_acc"] for m in chosen]),
    }
    if curves:
        means = [{"alpha": a, **{k: sum(c[i][k] for c in curves) / len(curves) for k in ("id_val_acc", "ood_val_acc")}}
                 for i, a in enumerate(ep["alphas"])]
        peak = max(means, key=lambda q: (q["ood_val_acc"], -q["alpha"]))
        summary.update(wiseft_val=curves, wiseft_val_mean=means, wiseft_ood_val_peak_alpha=peak["alpha"],
                       wiseft_interior_peak=0.0 < peak["alpha"] < 1.0)
    return summary


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "the erosion study of a track's embedded benchmark").track
    params = track_params(track)

    from tqdm import tqdm

    from ..erosion import choose_candidate
    from ..errors import ParamError
    from ..evaluate import rounded
    from ..io import seed_everything, write_json, write_text
    from ..models import save_model
    from ..tracks import get_track, stage_name, track_path

    t = get_track(track)
    if not t.has_erosion_study:
        raise ParamError(f"the {track} track has no erosion study (no candidate configurations to compare)")
    ep = params["erosion"]
    seed_everything(0, params["num_threads"])
    shared = t.erosion_shared(params)
    ctx = None if shared is None else _context(params, track, shared["teacher"], shared["splits"], shared["trend_train"])
    out = {"candidates": {}} if ctx is None else {"trend": ctx["trend"], "teacher": ctx["teacher"], "candidates": {}}
    bar = tqdm(total=len(ep["candidates"]) * len(ep["inits"]) * len(ep["lrs"]) * len(ep["seeds"]),
               desc=stage_name("erosion", track), unit="run")
    for value in ep["candidates"]:
        cand = t.erosion_candidate(params, value, shared)
        entry = {t.erosion_label: value}
        if shared is None:   # its own θ_T: kept in the scratch folder, so that its runs start from the file
            teacher = f"{SCRATCH}/{track}-teacher-{value}.safetensors"
            save_model(teacher, cand["teacher"])
            ctx = _context(params, track, teacher, cand["splits"], cand["trend_train"])
            entry.update(trend=ctx["trend"], teacher=ctx["teacher"])
        inputs = (shared or {}).get("inputs", []) + ([] if shared else [ctx["teacher_file"]])
        entry["inits"] = {}
        for init in ep["inits"]:
            runs_of = partial(_train_runs, params, track, cand["key"], inputs, init, cand["train"], ctx)
            entry["inits"][init] = _summarise(params, track, init, runs_of(bar=bar), ctx, runs_of)
        out["candidates"][str(value)] = entry
    bar.close()
    # the gate (is the default this choice?) is the report stage's, so the study does not depend on the default
    out["choice"] = choose_candidate({k: c["inits"]["teacher"]["ood_val_drop"] for k, c in out["candidates"].items()},
                                     ep["min_drop"])
    out = rounded(out)
    write_json(track_path("reports/erosion.json", track), out)
    from ..erosion_report import erosion_figure, erosion_markdown

    erosion_figure(out, track_path("reports/figures/erosion.png", track), t.erosion_label)
    write_text(track_path("reports/erosion.md", track), erosion_markdown(out, params, track))


if __name__ == "__main__":
    run_stage("erosion", main)
