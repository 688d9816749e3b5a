"""The report's figures (matplotlib, Agg), saved as PNG without dates or software tags so reruns are byte-identical."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .arms import BASELINE, METHOD

PNG_METADATA = {"Software": None}   # matplotlib writes its version here by default
CLASS_COLOURS = "tab10"
DOMAIN_MARKERS = {"id": "o", "handwriting": "^", "decorative": "s", "sklearn_digits": "x", "example": "^", "web": "^"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "font.size": 9, "svg.hashsalt": __package__})   # the package's name
    return plt


def save(fig, path: str | Path) -> None:
    """Write ``fig`` atomically as a PNG with no timestamp."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata=PNG_METADATA, bbox_inches="tight")
    _plt().close(fig)


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


SPARSE_TICKS = (0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999)
DENSE_TICKS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98,
               0.99, 0.995, 0.998, 0.999)


def _logit_axis(ax, lo: float, hi: float, which: str, candidates=SPARSE_TICKS) -> None:
    ticks = [t for t in candidates if lo <= _logit(t) <= hi]
    getattr(ax, f"set_{which}ticks")(_logit(ticks))
    getattr(ax, f"set_{which}ticklabels")([f"{100 * t:g}" for t in ticks])
    getattr(ax, f"set_{which}lim")(lo, hi)


def effective_robustness(points: list[dict], path: str | Path) -> None:
    """ID vs OOD accuracy on logit axes, one marker per (method, seed), 95% Clopper–Pearson bars, y = x.

    ``points``: dicts with label, id_acc, ood_acc and their intervals id_ci, ood_ci (each (lo, hi)).
    Left: both axes over the same range, with y = x; right: the same points zoomed to where they lie.
    """
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1, 1.3]})
    labels = list(dict.fromkeys(p["label"] for p in points))
    cmap = plt.get_cmap("tab20")
    for ax in axes:
        for i, label in enumerate(labels):
            pts = [p for p in points if p["label"] == label]
            x, y = _logit([p["id_acc"] for p in pts]), _logit([p["ood_acc"] for p in pts])
            xerr = np.abs(np.array([[_logit(p["id_ci"][0]), _logit(p["id_ci"][1])] for p in pts]).T - x)
            yerr = np.abs(np.array([[_logit(p["ood_ci"][0]), _logit(p["ood_ci"][1])] for p in pts]).T - y)
            teacher = label == "Teacher"
            ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="*" if teacher else "o", ms=12 if teacher else 5,
                        color="k" if teacher else cmap(i % 20), label=label, capsize=2, lw=0.7, alpha=0.85,
                        zorder=3 if teacher else 2)
        ax.grid(alpha=0.3)
        ax.set_xlabel("ID accuracy (%, id_test, logit scale)")
    xs = _logit([c for p in points for c in p["id_ci"]])
    ys = _logit([c for p in points for c in p["ood_ci"]])
    lo, hi = min(xs.min(), ys.min()) - 0.3, max(xs.max(), ys.max()) + 0.3
    axes[0].plot([lo, hi], [lo, hi], "k--", lw=0.8, label="y = x")
    _logit_axis(axes[0], lo, hi, "x")
    _logit_axis(axes[0], lo, hi, "y")
    axes[0].set_ylabel("OOD accuracy (%, ood_test pooled, logit scale)")
    axes[0].set_title("same scale on both axes, y = x dashed")
    _logit_axis(axes[1], xs.min() - 0.1, xs.max() + 0.1, "x", DENSE_TICKS)
    _logit_axis(axes[1], ys.min() - 0.05, ys.max() + 0.05, "y", DENSE_TICKS)
    axes[1].set_title("zoomed to the points")
    handles, names = axes[0].get_legend_handles_labels()
    axes[1].legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("Effective robustness: one point per arm and seed, 95% Clopper–Pearson intervals")
    save(fig, path)


def wiseft_curves(curves: dict[str, dict[str, list[dict]]], path: str | Path) -> None:
    """ID and OOD accuracy against alpha for each WiSE-FT endpoint; one thin line per seed, the mean bold."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    colours = {BASELINE: "tab:blue", METHOD: "tab:red"}
    for ax, key, title in ((axes[0], "id_acc", "ID accuracy (id_test)"), (axes[1], "ood_acc", "OOD accuracy (ood_test pooled)")):
        for end, seeds in curves.items():
            alphas = [p["alpha"] for p in next(iter(seeds.values()))]
            ys = np.array([[100 * p[key] for p in curve] for curve in seeds.values()])
            for row in ys:
                ax.plot(alphas, row, color=colours.get(end, "k"), lw=0.6, alpha=0.4)
            ax.plot(alphas, ys.mean(0), color=colours.get(end, "k"), lw=2, marker="o", ms=3,
                    label=f"θ_T → {end.upper()} (mean of {len(ys)} seeds)")
        ax.set_xlabel("α  (0 = teacher θ_T, 1 = fine-tuned)")
        ax.set_ylabel("%")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("WiSE-FT: θ_α = (1 − α) θ_T + α θ_fine-tuned")
    save(fig, path)


def reliability(bins: dict[str, dict[str, list[dict]]], path: str | Path) -> None:
    """Reliability diagrams (accuracy against confidence per bin) for each model, ID and OOD."""
    plt = _plt()
    models = list(bins)
    fig, axes = plt.subplots(2, len(models), figsize=(3.2 * len(models), 6.2), squeeze=False)
    for j, model in enumerate(models):
        for i, where in enumerate(("id", "ood")):
            ax = axes[i][j]
            rows = bins[model][where]
            width = rows[0]["hi"] - rows[0]["lo"]
            centres = [r["lo"] + width / 2 for r in rows]
            accs = [r["acc"] if r["acc"] is not None else 0.0 for r in rows]
            ax.bar(centres, accs, width=width * 0.95, color="tab:blue", edgecolor="k", lw=0.3, label="accuracy")
            ax.plot([0, 1], [0, 1], "k--", lw=0.8)
            total = sum(r["count"] for r in rows)
            ece = sum(r["count"] / total * abs(r["acc"] - r["conf"]) for r in rows if r["count"])
            ax.set_title(f"{model.upper() if model != 'teacher' else 'Teacher'}, {where.upper()} (ECE {100 * ece:.1f}%)", fontsize=9)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence")
            if j == 0:
                ax.set_ylabel("accuracy")
    fig.suptitle(f"Reliability diagrams ({len(next(iter(bins.values()))['id'])} equal-width bins)")
    fig.tight_layout()
    save(fig, path)


def cka_lines(cka: dict, path: str | Path) -> None:
    """Linear CKA between teacher and each student per layer depth, ID and OOD inputs."""
    plt = _plt()
    layers = cka["layers"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    cmap = plt.get_cmap("tab20")
    for ax, where in zip(axes, ("id", "ood")):
        for i, (name, values) in enumerate(cka["models"].items()):
            style = "-" if name in (BASELINE, METHOD) else "--"
            ax.plot(range(len(layers)), [values[where][layer] for layer in layers], style, marker="o", ms=3,
                    color=cmap(i % 20), lw=2 if name in (BASELINE, METHOD) else 1, label=name)
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, rotation=20)
        ax.set_title(f"{where.upper()} inputs (n = {cka['n'][where]})")
        ax.set_xlabel("layer (input → output)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("linear CKA with the teacher")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("How far each student's representations moved from the teacher's (1 = same up to rotation and scale)")
    save(fig, path)


def tsne(data: dict, path: str | Path) -> None:
    """t-SNE of penultimate features per model: colour = class, marker = domain."""
    plt = _plt()
    models = list(data["models"])
    labels, domains = np.array(data["labels"]), np.array(data["domains"])
    names = data["domain_names"]
    fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4.8), squeeze=False)
    cmap = plt.get_cmap(CLASS_COLOURS)
    for ax, model in zip(axes[0], models):
        emb = np.array(data["models"][model])
        for d, name in enumerate(names):
            m = domains == d
            ax.scatter(emb[m, 0], emb[m, 1], c=[cmap(int(c)) for c in labels[m]], marker=DOMAIN_MARKERS.get(name, "."),
                       s=10 if name != "id" else 6, lw=0.6 if DOMAIN_MARKERS.get(name) == "x" else 0, alpha=0.75)
        ax.set_title("Teacher" if model == "teacher" else model.upper())
        ax.set_xticks([])
        ax.set_yticks([])
    # domain markers in black: the class colours include tab10's grey
    handles = [plt.Line2D([], [], ls="", marker=DOMAIN_MARKERS.get(n, "."), color="black",
                          label="ID (id_test)" if n == "id" else n) for n in names]
    classes = data.get("class_names") or [f"digit {c}" for c in range(10)]
    handles += [plt.Line2D([], [], ls="", marker="o", color=cmap(c), label=name) for c, name in enumerate(classes)]
    axes[0][-1].legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.suptitle("t-SNE of penultimate features (first seed), ID (id_test) and OOD (ood_test) points")
    save(fig, path)


def training_curves(logs: dict[str, list[list[dict]]], path: str | Path) -> None:
    """Each loss term and the validation accuracies per epoch for every arm (mean over seeds)."""
    plt = _plt()
    panels = [("task", "L_task"), ("kd", "L_KD"), ("ar", "L_AR"), ("l2sp", "L2-SP penalty"),
              ("id_val_acc", "id_val accuracy"), ("ood_val_acc", "ood_val accuracy")]
    fig, axes = plt.subplots(2, 3, figsize=(14, 7.5))
    cmap = plt.get_cmap("tab20")
    for ax, (key, title) in zip(axes.flat, panels):
        for i, (name, runs) in enumerate(logs.items()):
            n_epochs = max(len(r) for r in runs)
            mean = []
            for e in range(n_epochs):
                vals = [r[e][key] for r in runs if e < len(r) and not math.isnan(r[e][key])]
                mean.append(sum(vals) / len(vals) if vals else math.nan)
            if all(math.isnan(v) for v in mean):
                continue
            ax.plot(range(1, n_epochs + 1), mean, marker="o", ms=3, color=cmap(i % 20), label=name)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        if key in ("task", "kd", "ar", "l2sp"):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    fig.tight_layout(rect=(0, 0, 0.88, 0.96))
    handles, labels = axes[0][0].get_legend_handles_labels()   # every arm has a task loss
    fig.legend(handles, labels, fontsize=8, loc="upper left", bbox_to_anchor=(0.885, 0.93))
    fig.suptitle("Training curves (mean over seeds; an arm stops early when id_val accuracy stalls)")
    save(fig, path)


def rho_tradeoff(points: list[dict], path: str | Path) -> None:
    """OOD accuracy (mean ± std over seeds) against FLOPs per step relative to FT, one point per rho."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    if not points:
        ax.text(0.5, 0.5, "no ρ sweep in `methods` (arm rtd_rho)", ha="center", va="center", transform=ax.transAxes)
    else:
        ft = next((p for p in points if p["rho"] == 0), None)
        rtd = [p for p in points if p["rho"] > 0]
        ax.errorbar([p["flops_rel_ft"] for p in rtd], [100 * p["ood_mean"] for p in rtd],
                    yerr=[100 * p["ood_mean_std"] for p in rtd], fmt="o-", capsize=3, label="RTD")
        for p in rtd:
            ax.annotate(f"ρ = {p['rho']:g}", (p["flops_rel_ft"], 100 * p["ood_mean"]), textcoords="offset points",
                        xytext=(6, -10), fontsize=8)
        if ft is not None:
            ax.axhline(100 * ft["ood_mean"], color="grey", ls="--", label=f"FT (lr = train.lr): {100 * ft['ood_mean']:.1f}")
            ax.axhspan(100 * (ft["ood_mean"] - ft["ood_mean_std"]), 100 * (ft["ood_mean"] + ft["ood_mean_std"]),
                       color="grey", alpha=0.15)
        ax.set_xlabel("FLOPs per training step (× FT)")
        ax.set_ylabel("OOD accuracy, mean over domains (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax.set_title("Cost against robustness: ρ = |B_OOD| / |B_ID|")
    save(fig, path)


FIGURES = ("effective_robustness", "wiseft", "reliability", "cka", "tsne", "training_curves", "rho_tradeoff")


def write_all(rows: dict[str, dict], evals: dict[str, dict], analysis: dict[str, dict],
              logs: dict[str, list[list[dict]]], rho: list[dict] | None = None,
              out_dir: str | Path = "reports/figures") -> dict[str, str]:
    """Every figure of the report; returns {name: path}. ``rows`` as from ``report.method_runs``,
    ``rho`` as from ``report.rho_points``."""
    from .analysis import clopper_pearson

    out_dir = Path(out_dir)
    sizes = analysis["cka"]["split_sizes"]
    points = []
    for name, row in rows.items():
        if name.endswith("_oodval"):
            continue   # selected on OOD validation data: not a fair point
        label = "Teacher" if name == "teacher" else name
        for run in row["runs"]:
            k_id, k_ood = round(run["id_acc"] * sizes["id_test"]), round(run["ood_acc"] * sizes["ood_test"])
            points.append({"label": label, "id_acc": run["id_acc"], "ood_acc": run["ood_acc"],
                           "id_ci": clopper_pearson(k_id, sizes["id_test"]), "ood_ci": clopper_pearson(k_ood, sizes["ood_test"])})
    paths = {name: str(out_dir / f"{name}.png") for name in FIGURES}
    effective_robustness(points, paths["effective_robustness"])
    curves = {ev["end"]: {k: run["curve"] for k, run in ev["runs"].items()}
              for key, ev in evals.items() if key.startswith("wiseft_")}
    wiseft_curves(curves, paths["wiseft"])
    reliability(analysis["reliability"]["bins"], paths["reliability"])
    cka_lines(analysis["cka"], paths["cka"])
    tsne(analysis["tsne"], paths["tsne"])
    training_curves(logs, paths["training_curves"])
    rho_tradeoff(rho or [], paths["rho_tradeoff"])
    return paths
