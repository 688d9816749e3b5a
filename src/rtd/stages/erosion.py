"""DVC stage `erosion`: is there robustness for fine-tuning to erode? It gates the default configuration.

    python -m rtd.stages.erosion    # -> reports/erosion.json, reports/erosion.md, reports/figures/erosion.png

For every candidate configuration (`erosion.candidates`: the shortcut probability p of the ID training set,
drawn on `train_clean` exactly as the data stage draws `data.shortcut`), FT from θ_T (head included) and FT
with a new head train at each of `erosion.lrs` on each of `erosion.seeds`, with the one loop and the `train`
settings of the FT arm, logging id_val and ood_val accuracy every epoch. Reported per candidate:
- the teacher against FT at the lr chosen on id_val: ID and OOD accuracy per ood_test domain and their mean,
  the loss against the teacher with its 95 % interval and one-sided p (the teacher is deterministic);
- the WiSE-FT curve θ_T -> FT (θ_T init, chosen lr) over `erosion.alphas` on id_val / ood_val, per seed;
- effective robustness (Taori et al. 2020): the distance of the teacher, of FT and of every FT epoch from the
  logit-linear id_val -> ood_val trend of ID-only models (linear probes on the ImageNet backbone, which never saw
  a digit, fit on growing shares of the ID training set).
The default is the candidate whose FT loses most ood_val accuracy against the teacher, at least
`erosion.min_drop` with p < 0.05 (``erosion.choose_candidate``); `ood_test` takes part in no choice.
Runs finished before an interruption are kept in .scratch/erosion/ and not trained again.
"""
from __future__ import annotations

from .common import run_stage, track_arg, track_params


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "the erosion study of the embedded vision benchmark").track
    params = track_params(track)

    import json
    from pathlib import Path

    import numpy as np
    import torch
    from tqdm import tqdm

    from ..data.fonts import add_shortcut
    from ..data.splits import Split, load_split
    from ..erosion import best_lr, choose_candidate, drop_test, effective_robustness, fit_trend, mean_ci
    from ..errors import ParamError
    from ..evaluate import evaluate_splits, load_eval_splits, rounded
    from ..io import atomic_path, seed_everything, write_json, write_text
    from ..methods import FineTune, FineTuneNewHead
    from ..models import backbone_spec, build_classifier, init_head, load_model, predict, save_model
    from ..teacher import fit_linear_probe
    from ..train import train
    from ..wiseft import interpolate_weights
    from .train import _digest

    if track != "vision":
        raise ParamError("the erosion study runs on the vision track (the text track's teacher is still an ID probe)")
    ep, tp, spec = params["erosion"], params["train"], backbone_spec(params)
    sc = params["data"]["shortcut"]
    seed_everything(0, params["num_threads"])
    clean = load_split("data/vision/train_clean.safetensors")
    splits = load_eval_splits(track)
    id_val, ood_val = splits["id_val"], splits["ood_val"]
    n_id, n_ood = len(id_val), len(ood_val)
    teacher_path = "models/teacher/model.safetensors"
    teacher = load_model(teacher_path, spec)
    theta_0 = {k: v.clone() for k, v in teacher.state_dict().items()}
    inputs = [teacher_path, "data/vision/train_clean.safetensors", "data/vision/id_val.safetensors",
              "data/vision/ood_val.safetensors"]

    def test_metrics(model) -> dict:
        return rounded(evaluate_splits(model, splits["id_test"], ood_val, splits["ood_test"], params["eval"]["batch_size"],
                                       params["eval"]["ece_bins"], id_val=id_val))

    teacher_m = test_metrics(teacher)

    # the trend of ID-only models: probes on the ImageNet backbone at growing shares of the ID training set
    imagenet = build_classifier(spec)
    feats = {name: predict(imagenet, s.images, params["teacher"]["batch_size"], layer="pooled")[1]
             for name, s in (("train", clean), ("id_val", id_val), ("ood_val", ood_val))}
    order = np.random.default_rng(ep["seed"]).permutation(len(clean))
    trend_points = []
    for fraction in ep["trend_fractions"]:
        keep = np.sort(order[:max(10, int(round(fraction * len(clean))))])
        w, b = fit_linear_probe(feats["train"][keep].numpy(), clean.labels[keep], params["teacher"]["probe_c"],
                                params["teacher"]["probe_max_iter"])
        accs = [float((torch.nn.functional.linear(feats[n], w, b).argmax(1) == torch.as_tensor(s.labels)).double().mean())
                for n, s in (("id_val", id_val), ("ood_val", ood_val))]
        trend_points.append({"fraction": fraction, "id_val_acc": accs[0], "ood_val_acc": accs[1]})
    trend = fit_trend([(p["id_val_acc"], p["ood_val_acc"]) for p in trend_points], n_id, n_ood)
    er = lambda i, o: effective_robustness(i, o, trend, n_id)   # noqa: E731

    methods = {"teacher": FineTune, "new_head": FineTuneNewHead}
    scratch = Path(".scratch/erosion")
    total = len(ep["candidates"]) * len(ep["inits"]) * len(ep["lrs"]) * len(ep["seeds"])
    bar = tqdm(total=total, desc="erosion study", unit="run")
    out = {"trend": {"slope": trend[0], "intercept": trend[1], "points": trend_points, "n_id_val": n_id,
                     "n_ood_val": n_ood},
           "teacher": {**teacher_m, "effective_robustness_val": er(teacher_m["id_val_acc"], teacher_m["ood_val_acc"])},
           "candidates": {}}
    for p in ep["candidates"]:
        images, _ = add_shortcut(clean.images, clean.labels, p, sc["size"], params["data"]["seed"])
        train_split = Split(images, clean.labels, clean.domains, clean.domain_names)
        cand: dict = {"p": p, "inits": {}}
        for init in ep["inits"]:
            runs = {}
            for lr in ep["lrs"]:
                for seed in ep["seeds"]:
                    config = {"p": p, "init": init, "lr": lr, "seed": seed, "train": tp, "spec": spec,
                              "threads": params["num_threads"], "size": sc["size"], "data_seed": params["data"]["seed"]}
                    path = scratch / f"{_digest(config, inputs)[:20]}.json"   # a run is reused only with the same inputs
                    if path.is_file():
                        runs[(lr, seed)] = json.loads(path.read_text())
                        bar.update()
                        continue
                    seed_everything(seed, params["num_threads"])
                    model = load_model(teacher_path, spec)
                    method = methods[init]()
                    init_head(model, method.init)
                    method.lr = lr
                    result = train(model, method, train_split, id_val, ood_val, tp, seed, progress=False)
                    best = result.log[result.best_epoch - 1]
                    run = {"log": [{k: r[k] for k in ("epoch", "id_val_acc", "id_val_nll", "ood_val_acc")} for r in result.log],
                           "best_epoch": result.best_epoch, "id_val_acc": best["id_val_acc"],
                           "id_val_nll": best["id_val_nll"], "ood_val_acc": best["ood_val_acc"]}
                    # the weights stay in the scratch folder: the chosen lr's runs are evaluated below
                    run["weights_file"] = str(path.with_suffix(".safetensors"))
                    save_model(run["weights_file"], result.model)
                    with atomic_path(path) as tmp:
                        tmp.write_text(json.dumps(run))
                    runs[(lr, seed)] = run
                    bar.update()
            lr = best_lr({v: [(runs[(v, s)]["id_val_acc"], runs[(v, s)]["id_val_nll"]) for s in ep["seeds"]]
                          for v in ep["lrs"]})
            per_lr = {str(v): {"ood_val_acc": mean_ci([runs[(v, s)]["ood_val_acc"] for s in ep["seeds"]]),
                               "id_val_acc": mean_ci([runs[(v, s)]["id_val_acc"] for s in ep["seeds"]])}
                      for v in ep["lrs"]}
            chosen, curves, epochs = [], [], []
            for seed in ep["seeds"]:
                run = runs[(lr, seed)]
                state = load_model(run["weights_file"], spec).state_dict()
                teacher.load_state_dict(state)
                m = test_metrics(teacher)
                m.update(seed=seed, best_epoch=run["best_epoch"], effective_robustness_val=er(m["id_val_acc"], m["ood_val_acc"]))
                chosen.append(m)
                epochs.append([{"epoch": r["epoch"], "id_val_acc": r["id_val_acc"], "ood_val_acc": r["ood_val_acc"],
                                "effective_robustness_val": er(r["id_val_acc"], r["ood_val_acc"])} for r in run["log"]])
                if init == "teacher":   # WiSE-FT needs both ends in one basin: only FT from θ_T, head included
                    curve = []
                    for alpha in ep["alphas"]:
                        teacher.load_state_dict(interpolate_weights(theta_0, state, alpha))
                        scores = [float((predict(teacher, s.images, params["eval"]["batch_size"])[0].argmax(1)
                                         == torch.as_tensor(s.labels)).double().mean()) for s in (id_val, ood_val)]
                        curve.append({"alpha": alpha, "id_val_acc": scores[0], "ood_val_acc": scores[1]})
                    curves.append(curve)
            teacher.load_state_dict(theta_0)
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
                summary["wiseft_val"] = curves
                means = [{"alpha": a, **{k: sum(c[i][k] for c in curves) / len(curves) for k in ("id_val_acc", "ood_val_acc")}}
                         for i, a in enumerate(ep["alphas"])]
                summary["wiseft_val_mean"] = means
                peak = max(means, key=lambda q: (q["ood_val_acc"], -q["alpha"]))
                summary["wiseft_ood_val_peak_alpha"] = peak["alpha"]
                summary["wiseft_interior_peak"] = 0.0 < peak["alpha"] < 1.0
            cand["inits"][init] = summary
        out["candidates"][str(p)] = cand
    bar.close()
    if "teacher" not in ep["inits"]:
        raise ParamError("`erosion.inits` must include teacher: the default is chosen on FT from θ_T")
    choice = choose_candidate({k: c["inits"]["teacher"]["ood_val_drop"] for k, c in out["candidates"].items()},
                              ep["min_drop"])
    out["choice"] = {**choice, "default_p": sc["p"], "default_is_selected": str(sc["p"]) == choice["selected"]}
    out = rounded(out)
    write_json("reports/erosion.json", out)
    from ..erosion_report import erosion_figure, erosion_markdown

    erosion_figure(out, "reports/figures/erosion.png")
    write_text("reports/erosion.md", erosion_markdown(out, params))


if __name__ == "__main__":
    run_stage("erosion", main)
