"""reports/metrics.json and reports/results.md from the per-arm evaluation files (mean ± std over seeds)."""
from __future__ import annotations

import csv
from pathlib import Path

from .arms import (BASELINE, COMPARISONS, CONTROL_OF, DERIVED, METHOD, ONLINE, ONLINE_CONTROLS, RHO_SWEEP, TRAINED, TUNED,
                   WISEFT_FIXED_ALPHA, WISEFT_ROWS, Tuned, best_variant, default_variant, log_path, loss_weights, param, switched_off,
                   tuned_candidates)
from .errors import ParamError
from .metrics import aggregate_runs, paired_ttest
from .tracks import BASE

DOMAIN_LABELS = {"handwriting": "handwriting fonts", "decorative": "decorative fonts", "sklearn_digits": "sklearn digits"}
TERMS = ("task", "kd", "ar", "l2sp")
# columns of the main table: key, header, higher is better
COLUMNS = (("id_acc", "ID acc", True), ("ood_domain_mean_acc", "OOD (mean over domains)", True),
           ("ood_acc", "OOD pooled", True), ("ood_worst_acc", "worst OOD domain", True), ("gap_mean", "gap", False),
           ("effective_robustness_val", "ER (ood_val)", True), ("id_ece", "ID ECE", False), ("ood_ece", "OOD ECE", False))
HEADLINE = "ood_domain_mean_acc"   # the headline OOD metric: each domain counts once, whatever its size


def read_log(path: str | Path) -> list[dict[str, float]]:
    """A training log (TSV) as a list of rows of floats."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f, delimiter="\t")]


def method_runs(methods: list[str], evals: dict[str, dict], params: dict) -> dict[str, dict]:
    """Report rows -> ``{"label", "runs": [per-seed metrics], "seeds"}``; rows of swept arms get one per value.

    `ft` is FT at `train.lr` (``Arm.default``); a ``TUNED`` row the configuration of its arms with the best mean
    id_val accuracy; WiSE-FT rows take, per seed, the curve point at the alpha chosen on id_val, at the fixed
    alpha 0.5 and (labelled) on ood_val.
    """
    rows: dict[str, dict] = {"teacher": {"label": "Teacher θ_T",
                                         "runs": list(evals["teacher"]["runs"].values()), "seeds": [None]}}
    for method in methods:
        if method in TUNED:
            rows[method] = tuned_row(TUNED[method], evals, params)
        elif method in WISEFT_ROWS:
            rows.update(_wiseft_rows(method, evals[method]))
        elif TRAINED[method].default:
            v = default_variant(TRAINED[method], params)
            chosen = [r for r in evals[method]["runs"].values() if r["variant"] == v]
            rows[method] = {"label": TRAINED[method].label, "runs": chosen, "seeds": [r["seed"] for r in chosen], "variant": v}
        elif TRAINED[method].variant:
            spec = TRAINED[method]
            for v in params[spec.sweep]:
                chosen = [r for r in evals[method]["runs"].values() if r["variant"] == v]
                rows[f"{method}@{v}"] = {"label": f"{spec.label}: {spec.variant} = {v}", "runs": chosen,
                                         "seeds": [r["seed"] for r in chosen], "variant": v}
        else:
            runs = list(evals[method]["runs"].values())
            rows[method] = {"label": TRAINED[method].label, "runs": runs, "seeds": [r["seed"] for r in runs]}
    return rows


def tuned_row(tuned: Tuned, evals: dict[str, dict], params: dict) -> dict:
    """The configuration of ``tuned.arms`` with the best mean best-epoch id_val accuracy over seeds (ties go to the
    first listed): each value of an arm that sweeps ``tuned.key``; an arm that does not, at ``tuned.value``'s value
    (and at its own sweep's default)."""
    groups = {(arm, v): [r for r in evals[arm]["runs"].values() if r.get("variant") == v]
              for arm, v in tuned_candidates(tuned, params)}
    scores = {k: [r["best_id_val_acc"] for r in runs] for k, runs in groups.items()}
    arm, v = best_variant(scores)
    value = lambda arm, v: v if TRAINED[arm].variant == tuned.key else param(params, tuned.value)  # noqa: E731
    key = {"lambda_ar": "λ_AR", "lambda_kd": "λ_KD", "temperature": "T", "alpha": "α"}.get(tuned.key, tuned.key)
    label = tuned.label if len(scores) > 1 else tuned.label.split(",")[0] + ", a grid of one: not tuned on this track"
    return {"label": f"{label} ({key} = {value(arm, v):g})", "runs": groups[(arm, v)],
            "seeds": [r["seed"] for r in groups[(arm, v)]], "variant": v, "arm": arm,
            "grid": {"key": key, "chosen": value(arm, v), "id_val": {value(*k): sum(s) / len(s) for k, s in scores.items()}}}


def summary_markdown(agg: dict, rows: dict[str, dict], names: tuple[str, ...]) -> str:
    """The summary table: the rows ``names`` that ran, the main columns; **bold** = best shown mean per column."""
    cols = [c for c in COLUMNS if c[0] in ("id_acc", HEADLINE, "gap_mean", "effective_robustness_val", "id_ece", "ood_ece")]
    shown = {n: agg[n] for n in names if n in agg}
    best = {key: _best(shown, key, higher) for key, _, higher in cols}
    lines = ["## Summary", "", "The arms at their default and tuned settings (`*_tuned`: chosen on `id_val`, see "
             "\"Tuning budget\"); every row, the per-domain accuracies and the paired tests follow.", "",
             "| method | " + " | ".join(h for _, h, _ in cols) + " | FLOPs/step (×FT) |", "|---|" + "---|" * (len(cols) + 1)]
    for name, m in shown.items():
        cells = [f"**{_pm(m, key)}**" if best[key] == name else _pm(m, key) for key, _, _ in cols]
        flops = "–" if m.get("flops_rel_ft") is None else f"{m['flops_rel_ft']:.2f}"
        lines.append(f"| {rows[name]['label']} | " + " | ".join(cells) + f" | {flops} |")
    return "\n".join(lines) + "\n"


def tuning_markdown(rows: dict[str, dict], methods: list[str]) -> str:
    """The tuning budget: each tuned row's grid with its mean id_val accuracy, and the arms run at one setting."""
    lines = ["## Tuning budget (chosen on `id_val` only)", "",
             "Each `*_tuned` row takes the value with the best mean (over seeds) best-epoch `id_val` accuracy; ties go "
             "to the first listed.", "", "| row | grid: mean id_val acc (%) | chosen |", "|---|---|---|"]
    for name, row in rows.items():
        if "grid" in row:
            g = row["grid"]
            cells = " · ".join(f"{g['key']} = {v:g}: {100 * acc:.1f}" for v, acc in g["id_val"].items())
            one = " (a grid of one: not tuned on this track)" if len(g["id_val"]) == 1 else ""
            lines.append(f"| {name} | {cells} | {g['key']} = {g['chosen']:g}{one} |")
    untuned = [m for m in methods if m in TRAINED and not TRAINED[m].sweep and f"{m}_tuned" not in methods]
    lines += ["", "Run at one setting (their params as given, no grid): " + ", ".join(f"`{m}`" for m in untuned) + "."]
    return "\n".join(lines) + "\n"


def _wiseft_rows(method: str, ev: dict) -> dict[str, dict]:
    """WiSE-FT's rows: per seed, the curve point at the alpha chosen on id_val, at the fixed 0.5, on ood_val."""
    if WISEFT_FIXED_ALPHA not in ev["alphas"]:
        raise ParamError(f"`wiseft.alphas` must include {WISEFT_FIXED_ALPHA} (WiSE-FT's fixed mix, reported as "
                         f"its own row): add it to params.yaml and run `dvc repro`")
    rows = {}
    for key, suffix, how in (("alpha_id_val", "", "α chosen on id_val"),
                             (None, f"@{WISEFT_FIXED_ALPHA:g}", f"α = {WISEFT_FIXED_ALPHA:g} fixed, as in the paper"),
                             ("alpha_ood_val", "_oodval", "α chosen on ood_val (oracle-style, not a fair row)")):
        runs = []
        for run in ev["runs"].values():
            alpha = run[key] if key else WISEFT_FIXED_ALPHA
            runs.append({**next(p for p in run["curve"] if p["alpha"] == alpha), "seed": run["seed"]})
        rows[method + suffix] = {"label": f"{DERIVED[method]}, {how}", "runs": runs, "seeds": [r["seed"] for r in runs]}
    return rows


def derived_metrics(run: dict, trend: dict | None) -> dict:
    """Per-run metrics the report derives: gap = ID − OOD mean over domains; effective robustness on the validation
    splits (Taori et al. 2020: ood_val accuracy above the trend of ID-only models at the same id_val accuracy,
    ``trend`` = the erosion study's fit; None where the track has no trend)."""
    from .erosion import effective_robustness

    out = {"gap_mean": run["id_acc"] - run["ood_domain_mean_acc"]}
    if trend is not None:
        out["effective_robustness_val"] = effective_robustness(run["id_val_acc"], run["ood_val_acc"],
                                                               (trend["slope"], trend["intercept"]), trend["n_id_val"])
    return out


def build_metrics(track: str, rows: dict[str, dict], trend: dict | None = None) -> dict:
    """``{track: {row: mean and *_std of every metric}, "significance": {...}}``; FLOPs relative to FT.

    Significance: paired t-tests over matched seeds of the headline OOD metric and of ID accuracy for every
    comparison in ``COMPARISONS`` (and RTD at every swept ρ against FT and its controls at that ρ), each p Holm-adjusted over the
    comparisons of the table (one family per metric)."""
    from .stats import holm

    agg = {}
    for name, row in rows.items():
        row["runs"] = [{**r, **derived_metrics(r, trend)} for r in row["runs"]]
        runs = [{k: v for k, v in r.items() if k not in ("seed", "variant", "alpha")} for r in row["runs"]]
        agg[name] = aggregate_runs(runs)
        if row.get("variant") is not None:
            agg[name]["variant"] = row["variant"]
    ft_flops = agg.get(BASELINE, {}).get("flops_per_step")
    for m in agg.values():
        m["flops_rel_ft"] = round(m["flops_per_step"] / ft_flops, 4) if ft_flops and m.get("flops_per_step") else None
    significance = {}
    # and RTD at every swept rho against FT (what each setting of the extra compute buys) and its matched controls
    swept = [name for name in rows if name.startswith(f"{RHO_SWEEP}@")]
    matched = [(name, f"{control}@{name.partition('@')[2]}") for name in swept for control in CONTROL_OF]
    matched += [(name, f"{control}@{name.partition('@')[2]}") for name in rows if name.startswith(f"{ONLINE}@")
                for control in ONLINE_CONTROLS]   # absent where the control did not run at that class set
    for a, b in (*COMPARISONS, *((name, BASELINE) for name in swept), *matched):
        if a in rows and b in rows:
            ra = {r["seed"]: r for r in rows[a]["runs"]}
            rb = {r["seed"]: r for r in rows[b]["runs"]}
            seeds = sorted(set(ra) & set(rb))
            significance[f"{a}_vs_{b}"] = {
                metric: paired_ttest([ra[s][metric] for s in seeds], [rb[s][metric] for s in seeds])
                for metric in (HEADLINE, "id_acc")}
    for metric in (HEADLINE, "id_acc"):
        tests = list(significance.values())
        for test, adjusted in zip(tests, holm([t[metric]["p"] for t in tests])):
            test[metric]["p_holm"] = adjusted
    return {track: agg, "significance": significance}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _pm(m: dict, key: str) -> str:
    std = m.get(f"{key}_std")
    return _pct(m.get(key)) + ("" if std is None else f" ± {100 * std:.1f}")


def _best(agg: dict, key: str, higher: bool) -> str | None:
    rows = [r for r in agg if r != "teacher" and not r.endswith("_oodval") and agg[r].get(key) is not None]
    return (max if higher else min)(rows, key=lambda r: agg[r][key]) if rows else None   # None: a column the track lacks


def claims(agg: dict) -> list[str]:
    """The proposal's claims (gap halved, >= +5 OOD points, ID within 2 points of FT), checked on the means."""
    out = []
    for ref in (BASELINE, f"{BASELINE}_tuned"):
        if METHOD not in agg or ref not in agg:
            continue
        r, f = agg[METHOD], agg[ref]
        d_ood, d_id = 100 * (r[HEADLINE] - f[HEADLINE]), 100 * (r["id_acc"] - f["id_acc"])
        out.append(f"- Against `{ref}`: gap {_pct(r['gap_mean'])} vs {_pct(f['gap_mean'])} → halved: "
                   f"**{'yes' if r['gap_mean'] <= f['gap_mean'] / 2 else 'no'}**; OOD (mean over domains) {d_ood:+.1f} points → ≥ +5: "
                   f"**{'yes' if d_ood >= 5 else 'no'}**; ID {d_id:+.1f} points → within 2: **{'yes' if d_id >= -2 else 'no'}**.")
    return out


def rho_points(agg: dict, rows: dict[str, dict], default_rho: float) -> list[dict]:
    """FT (rho = 0) and RTD at every rho run (the `rtd` row at `rho`, `rtd_rho@v` rows), sorted by rho."""
    picks = [(BASELINE, 0.0)] * (BASELINE in agg) + [(METHOD, default_rho)] * (METHOD in agg)
    picks += [(name, float(rows[name]["variant"])) for name in agg if name.startswith(f"{RHO_SWEEP}@")]
    out = []
    for name, rho in sorted(picks, key=lambda p: p[1]):
        m = agg[name]
        out.append({"row": name, "rho": rho, "ood_mean": m[HEADLINE], "ood_mean_std": m.get(f"{HEADLINE}_std") or 0.0,
                    "id_acc": m["id_acc"], "id_acc_std": m.get("id_acc_std") or 0.0, "flops_rel_ft": m["flops_rel_ft"]})
    return out


def rho_table(points: list[dict], batch_size: int, unit: str = "images") -> list[str]:
    """The cost/robustness table: OOD and ID accuracy against the extra compute rho buys."""
    import math

    ft = next((p for p in points if p["rho"] == 0), None)
    lines = [f"B_OOD = ⌈ρ · |B_ID|⌉ OOD-style {unit} per step on top of |B_ID| = " f"{batch_size}; FLOPs per step counted by "
             "`torch.utils.flop_counter` in the first step. Wall time per epoch against FT: `benchmarks/` (README, Cost).", "",
             "| ρ | B_OOD per step | FLOPs/step (×FT) | OOD (mean over domains) | ID acc | Δ OOD vs FT (points) |",
             "|---|---|---|---|---|---|"]
    for p in points:
        delta = "–" if ft is None or p is ft else f"{100 * (p['ood_mean'] - ft['ood_mean']):+.1f}"
        name = "0 (FT)" if p["rho"] == 0 else f"{p['rho']:g}" + (f" (`{METHOD}`)" if p["row"] == METHOD else "")
        lines.append(f"| {name} | {math.ceil(p['rho'] * batch_size)} | {p['flops_rel_ft']:.2f} | "
                     f"{_pct(p['ood_mean'])} ± {100 * p['ood_mean_std']:.1f} | {_pct(p['id_acc'])} ± {100 * p['id_acc_std']:.1f} | {delta} |")
    return lines


def rho_section(agg: dict, rows: dict[str, dict], weights: dict, unit: str) -> list[str]:
    """The cost/robustness section where RTD ran at more than one ρ."""
    points = rho_points(agg, rows, weights["rho"])
    if not any(p["row"].startswith(f"{RHO_SWEEP}@") for p in points):
        return []
    return ["", "## Cost against robustness: ρ = |B_OOD| / |B_ID|", ""] + rho_table(points, weights["batch_size"], unit)


def online_table(agg: dict, rows: dict[str, dict]) -> list[str]:
    """RTD with B_OOD read from D_OOD (`rtd`) and drawn at every step (`rtd_online@<classes>`): all classes, then each
    class alone (the per-transform ablation), then the three controls with online B_OOD; Δ against `rtd_online@all`."""
    online = [n for n in agg if n.startswith(f"{ONLINE}@")] + [n for n in agg if n.split("@")[0] in ONLINE_CONTROLS]
    if not online:
        return []
    ref = agg.get(f"{ONLINE}@all")
    lines = ["", "## B_OOD drawn at every step, and each transform class alone", "",
             "`rtd` reads B_OOD from D_OOD (one copy of each training image, made once by stage `ood`); `rtd_online` draws",
             "it fresh at every step, as the proposal's pseudocode has it: from every class of `ood.transforms` (`all`),",
             "or from one class only; the controls draw it the same way. Same ρ, λs, T and lr. FLOPs/step omit making",
             "B_OOD (its wall time: `benchmarks/`).", "",
             "| run | B_OOD | OOD (mean over domains) | ID acc | Δ OOD vs `all` (points) | FLOPs/step (×FT) |",
             "|---|---|---|---|---|---|"]
    for name in [METHOD, *online] if METHOD in agg else online:
        m = agg[name]
        source = "D_OOD (cached)" if name == METHOD else f"online: {rows[name]['variant']}"
        delta = "–" if ref is None or m is ref else f"{100 * (m[HEADLINE] - ref[HEADLINE]):+.1f}"
        flops = "–" if m.get("flops_rel_ft") is None else f"{m['flops_rel_ft']:.2f}"
        lines.append(f"| {rows[name]['label']} | {source} | {_pm(m, HEADLINE)} | {_pm(m, 'id_acc')} | {delta} | {flops} |")
    return lines


def cka_table(cka: dict, unit: str = "images") -> list[str]:
    """Linear CKA between the teacher and each student, per layer, on ID and OOD inputs (first seed)."""
    layers = cka["layers"]
    lines = [f"Linear CKA with the teacher (first seed, seed {cka['seed']}; {cka['n']['id']} ID and {cka['n']['ood']} OOD "
             f"test {unit}; 1 = the same representation up to rotation and scale).", "",
             "| arm | " + " | ".join(f"{layer} ID / OOD" for layer in layers) + " |", "|---|" + "---|" * len(layers)]
    for name, values in cka["models"].items():
        lines.append(f"| {name} | " + " | ".join(f"{values['id'][layer]:.3f} / {values['ood'][layer]:.3f}" for layer in layers) + " |")
    return lines


FIGURE_CAPTIONS = {
    "effective_robustness": "Effective robustness: ID against OOD accuracy, one point per arm and seed (logit axes, 95% Clopper–Pearson intervals, y = x dashed).",
    "wiseft": "WiSE-FT: ID and OOD accuracy along θ_α = (1 − α) θ_T + α θ_end, for tuned FT and RTD (thin: seeds, bold: mean).",
    "reliability": "Reliability diagrams (15 equal-width confidence bins) of the teacher, FT and RTD on id_test and ood_test (first seed).",
    "cka": "Linear CKA between the teacher and each student per layer, ID and OOD inputs (first seed).",
    "tsne": "t-SNE of penultimate features of the teacher, FT and RTD (first seed): colour = class, marker = domain.",
    "training_curves": "Each loss term and the validation accuracies per epoch for every arm (mean over seeds).",
    "rho_tradeoff": "Cost against robustness: RTD's OOD accuracy (mean ± std over seeds) at each ρ against its FLOPs per step relative to FT (dashed: FT, band: ± std).",
}


def same_value(a, b) -> bool:
    """Whether two spellings of a params value are the same value ("0.9" and 0.9; "leet" and "leet")."""
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def erosion_headline(study: dict, default) -> dict:
    """The erosion study's headline numbers for reports/metrics.json: the choice, whether the track's default
    ``default`` is that choice (the gate) and, per candidate, the teacher's and FT's (from θ_T, lr chosen on id_val)
    mean OOD accuracy over ood_test domains and the loss on ood_val."""
    selected = study["choice"]["selected"]
    teacher = study.get("teacher") or study["candidates"][selected]["teacher"]
    out = {"selected": selected, "erodes": study["choice"]["erodes"], "default": default,
           "default_is_selected": same_value(selected, default),
           "teacher_ood_domain_mean_acc": teacher["ood_domain_mean_acc"], "candidates": {}}
    for name, cand in study["candidates"].items():
        s = cand["inits"]["teacher"]
        out["candidates"][name] = {
            "ft_lr": s["lr"], "ft_ood_domain_mean_acc": sum(r["ood_domain_mean_acc"] for r in s["runs"]) / len(s["runs"]),
            "ood_val_drop": s["ood_val_drop"]["mean"], "ood_val_drop_p": s["ood_val_drop"]["p"],
            "ood_test_mean_drop": s["ood_test_mean_drop"]["mean"], "wiseft_ood_val_peak_alpha": s["wiseft_ood_val_peak_alpha"]}
    return out


def study_trend(study: dict, default) -> dict | None:
    """The trend of ID-only models that the track's main table measures effective robustness against: the study's
    shared one, else that of the candidate that is the default (None if the default is no candidate)."""
    if "trend" in study:
        return study["trend"]
    return next((c["trend"] for name, c in study["candidates"].items() if same_value(name, default)), None)


def significance_section(significance: dict, n_seeds: int) -> list[str]:
    """The paired tests of one track's table, with Holm-adjusted p-values, and which OOD differences survive."""
    lines = ["", "## Paired comparisons over seeds", "",
             f"Paired t-test over matched seeds (two-sided; {n_seeds} seeds detect only large, consistent effects), on",
             "OOD accuracy (mean over domains) and ID accuracy; Holm = the p-value Holm–Bonferroni-adjusted over the",
             f"{len(significance)} comparisons of this table (one family per metric): a difference survives",
             "correction where it is below 0.05.", "",
             "| comparison | Δ OOD (points) | t | p | p (Holm) | Δ ID acc (points) | p | p (Holm) |",
             "|---|---|---|---|---|---|---|---|"]
    fmt = lambda v, d=2: "–" if v is None else f"{v:.{d}f}"  # noqa: E731
    for key, test in significance.items():
        o, i = test[HEADLINE], test["id_acc"]
        lines.append(f"| {key.replace('_vs_', ' vs ')} | {100 * o['mean_diff']:+.1f} | {fmt(o['t'])} | {fmt(o['p'], 3)} | "
                    f"{fmt(o['p_holm'], 3)} | {100 * i['mean_diff']:+.1f} | {fmt(i['p'], 3)} | {fmt(i['p_holm'], 3)} |")
    survivors = [k.replace("_vs_", " vs ") for k, t in significance.items()
                if t[HEADLINE]["p_holm"] is not None and t[HEADLINE]["p_holm"] < 0.05]
    lines += ["", "OOD differences that survive correction: " + (", ".join(survivors) if survivors else "none") + "."]
    return lines


def loss_term_section(logs: dict[str, list[list[dict]]], weights: dict, rows: dict[str, dict], track: str) -> list[str]:
    """Each trained row's loss terms at its first and last epoch (mean over seeds), raw and weighted."""
    from .tracks import track_path

    lines = ["", "## Size of each loss term", "",
             f"Mean over seeds of each term at the first and the last epoch run (from `{track_path('reports/train', track)}/`); weighted ="
             " λ × term, its contribution to the total. λ_KD = " f"{weights['lambda_kd']}, T = {weights['temperature']}"
             f", KD × T² = {weights['kd_scale_t2']}; L2-SP contributes α/2 × ‖θ − θ_T‖² with α = {weights['alpha_l2sp']}.", "",
             "| arm | epoch | L_task | L_KD | λ_KD·L_KD | L_AR | λ_AR·L_AR | L2-SP penalty | id_val acc |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, run_logs in logs.items():
        lam_kd, lam_ar = weights["arms"][name]
        for which in ("first", "last"):
            pick = [log[0] if which == "first" else log[-1] for log in run_logs]
            mean = {k: sum(r[k] for r in pick) / len(pick) for k in pick[0]}
            f = lambda v: "–" if v != v else f"{v:.4g}"  # noqa: E731  (NaN: term not used)
            lines.append(f"| {rows[name]['label']} | {which} ({mean['epoch']:.3g}) | {f(mean['task'])} | {f(mean['kd'])} | "
                        f"{f(lam_kd * mean['kd'])} | {f(mean['ar'])} | {f(lam_ar * mean['ar'])} | {f(mean['l2sp'])} | "
                        f"{_pct(mean['id_val_acc'])} |")
    return lines


def results_markdown(track: str, metrics: dict, rows: dict[str, dict], logs: dict[str, list[list[dict]]],
                     weights: dict, cka: dict | None = None, figures: dict[str, str] | None = None) -> str:
    """The results page: main table (mean ± std over seeds), per-domain table, tests, loss-term sizes."""
    from .tracks import get_track

    agg = metrics[track]
    unit = get_track(track).unit
    domains = list(agg["teacher"]["ood_domains"])
    n_seeds = max(m["n_runs"] for m in agg.values())
    lines = [
        f"# Results: {track} track",
        "",
        "Generated by the `report` stage from `reports/metrics.json` (`dvc repro`); do not edit by hand.",
        f"Mean ± sample std over {n_seeds} seeds (the teacher is deterministic: one run). Accuracies and ECE in %.",
        "OOD (the headline) = mean over the `ood_test` domains, each counted once; pooled = over its examples; worst =",
        "worst domain; gap = ID − OOD mean; ER (ood_val) = effective robustness, ood_val accuracy above the logit-linear",
        "id_val → ood_val trend of ID-only models (the erosion study's probes; – where the track has none); ECE with 15",
        "equal-width bins; FLOPs per training step relative to FT. **Bold**: best mean per column (the teacher and the",
        "ood_val-selected WiSE-FT rows are not ranked).",
        "",
        "| method | " + " | ".join(h for _, h, _ in COLUMNS) + " | trainable params | FLOPs/step (×FT) |",
        "|---|" + "---|" * (len(COLUMNS) + 2),
    ]
    best = {key: _best(agg, key, higher) for key, _, higher in COLUMNS}
    for name, m in agg.items():
        cells = []
        for key, _, _ in COLUMNS:
            cell = _pm(m, key)
            cells.append(f"**{cell}**" if best[key] == name else cell)
        flops = "–" if m.get("flops_rel_ft") is None else f"{m['flops_rel_ft']:.2f}"
        params = "–" if m.get("trainable_params") is None else f"{int(m['trainable_params']):,}"
        lines.append(f"| {rows[name]['label']} | " + " | ".join(cells) + f" | {params} | {flops} |")

    lines += ["", "## OOD accuracy per domain (`ood_test`)", "",
              "| method | " + " | ".join(DOMAIN_LABELS.get(d, d) for d in domains) + " | mean over domains |",
              "|---|" + "---|" * (len(domains) + 1)]
    teacher = agg["teacher"]
    for name, m in agg.items():
        cells = []
        for d in domains:
            std = m["ood_domains_std"].get(d)
            cell = _pct(m["ood_domains"][d]) + ("" if std is None else f" ± {100 * std:.1f}")
            if name != "teacher":
                cell += f" ({100 * (m['ood_domains'][d] - teacher['ood_domains'][d]):+.1f})"
            cells.append(cell)
        lines.append(f"| {rows[name]['label']} | " + " | ".join(cells) + f" | {_pm(m, 'ood_domain_mean_acc')} |")
    lines += ["", "In parentheses: change of the mean in points relative to the teacher (negative = that domain eroded)."]

    lines += significance_section(metrics["significance"], n_seeds)
    lines += ["", "## The proposal's claims, RTD against FT", ""] + (claims(agg) or ["- (RTD or FT not run)"])
    lines += rho_section(agg, rows, weights, unit) + online_table(agg, rows)

    if logs:
        lines += loss_term_section(logs, weights, rows, track)
    if cka is not None:
        lines += ["", "## Representational similarity", ""] + cka_table(cka, unit)
    if figures:
        lines += ["", "## Figures", ""]
        for name, path in figures.items():
            rel = Path(path).relative_to("reports")
            lines += [f"**{FIGURE_CAPTIONS.get(name, name)}**", "", f"![{name}]({rel.as_posix()})", ""]
    return "\n".join(lines).rstrip("\n") + "\n"


def loss_logs(rows: dict[str, dict], params: dict, track: str = BASE) -> tuple[dict[str, list[list[dict]]], dict[str, tuple[float, float]]]:
    """Per trained row, the training logs of its seeds, and the (lambda_KD, lambda_AR) that weighted them."""
    logs, lams = {}, {}
    for name, row in rows.items():
        arm = row.get("arm", name.split("@")[0])
        if arm not in TRAINED:
            continue
        logs[name] = [read_log(log_path(arm, r["seed"], r.get("variant"), track)) for r in row["runs"]]
        lams[name] = loss_weights(TRAINED[arm], params, row.get("variant"))
    return logs, lams
