"""DVC stage `report`: reports/metrics.json (the DVC metric) and reports/results.md."""
from __future__ import annotations

from .common import run_stage


def main() -> None:
    from ..config import load_params
    from ..io import read_json, write_json, write_text
    from ..report import build_metrics, read_log, results_markdown

    params = load_params()
    names = ["teacher", *params["methods"]]
    evals = {m: read_json(f"reports/eval/{m}.json") for m in names}
    metrics = build_metrics(params["track"], evals)
    write_json("reports/metrics.json", metrics)
    logs = {m: read_log(f"reports/train/{m}.tsv") for m in params["methods"]}
    weights = {k: params[k] for k in ("lambda_kd", "lambda_ar", "temperature", "kd_scale_t2")}
    write_text("reports/results.md", results_markdown(params["track"], metrics, logs, weights))


if __name__ == "__main__":
    run_stage("report", main)
