"""DVC stage `report`: reports/metrics.json (the DVC metric, mean and std over seeds), reports/results.md
and the figures in reports/figures/ (embedded in results.md)."""
from __future__ import annotations

from .common import run_stage


def main() -> None:
    from ..config import load_params
    from ..evaluate import rounded
    from ..io import read_json, write_json, write_text
    from ..figures import write_all
    from ..report import build_metrics, loss_logs, method_runs, results_markdown, rho_points

    params = load_params()
    files = {"ft_tuned": "ft", "wiseft_ft": "wiseft_ft", "wiseft_rtd": "wiseft_rtd"}
    names = {"teacher", *(files.get(m, m) for m in params["methods"])}
    evals = {m: read_json(f"reports/eval/{m}.json") for m in sorted(names)}
    rows = method_runs(params["methods"], evals, params)
    metrics = build_metrics(params["track"], rows)
    write_json("reports/metrics.json", rounded(metrics))
    logs, lams = loss_logs(rows, params)
    weights = {"lambda_kd": params["lambda_kd"], "temperature": params["temperature"],
               "kd_scale_t2": params["kd_scale_t2"], "l2sp_alpha": params["l2sp"]["alpha"], "arms": lams,
               "rho": params["rho"], "batch_size": params["train"]["batch_size"]}
    analysis = {name: read_json(f"reports/analysis/{name}.json") for name in ("cka", "reliability", "tsne")}
    figures = write_all(rows, evals, analysis, logs, rho_points(metrics[params["track"]], rows, params["rho"]))
    write_text("reports/results.md", results_markdown(params["track"], metrics, rows, logs, weights,
                                                      cka=analysis["cka"], figures=figures))


if __name__ == "__main__":
    run_stage("report", main)
