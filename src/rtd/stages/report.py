"""DVC stage `report`: reports/headline.json (the DVC metric: 20 numbers, `rtd.headline`), reports/metrics.json
(every aggregate: mean and std over seeds, one section per track), reports/results.md (vision, then text) and the
figures in reports/figures/ and reports/text/figures/."""
from __future__ import annotations

import os

from .common import run_stage


def _check_pipeline(params: dict, track: str, methods: list[str]) -> None:
    """Stop if a swept arm is on in params.yaml but dvc.yaml has no stages for it (dvc.yaml is generated from
    params.yaml: an arm whose sweep was empty when it was generated trains nothing)."""
    from pathlib import Path

    import yaml

    from ..arms import TRAINED
    from ..errors import ParamError
    from ..tracks import stage_name, track_key

    if not Path("dvc.yaml").is_file():
        return
    stages = yaml.safe_load(Path("dvc.yaml").read_text()).get("stages", {})
    for m in methods:
        arm = TRAINED.get(m)
        if arm is not None and arm.sweep is not None and stage_name(f"evaluate_{m}", track) not in stages:
            raise ParamError(f"`{track_key(arm.sweep, track)}` = {params[arm.sweep]} but dvc.yaml has no stages for arm "
                             f"{m}: regenerate it (`PYTHONPATH=src python -m rtd.dvcgen`), then run `dvc repro`")


def _track(params: dict, track: str, metrics: dict) -> str:
    """Add ``track``'s aggregates to ``metrics``; write its figures; return its part of results.md."""
    from ..figures import write_all
    from ..arms import BASELINE, SUMMARY, TUNED, switched_off
    from ..io import read_json
    from ..report import (build_metrics, loss_logs, method_runs, results_markdown, rho_points, study_trend,
                          summary_markdown, tuning_markdown)
    from ..tracks import BASE, for_track, get_track, track_path

    params, study = for_track(params, track), get_track(track).has_erosion_study
    methods = [m for m in params["methods"] if not switched_off(m, params)]
    _check_pipeline(params, track, methods)
    names = {"teacher", *(a for m in methods for a in (TUNED[m].arms if m in TUNED else [m]) if not switched_off(a, params))}
    evals = {m: read_json(track_path(f"reports/eval/{m}.json", track)) for m in sorted(names)}
    rows = method_runs(methods, evals, params)
    # effective robustness needs a trend of ID-only models: the erosion study's, where the track has one
    trend = study_trend(read_json(track_path("reports/erosion.json", track)),
                        get_track(track).erosion_default(params)) if study else None
    part = build_metrics(track, rows, trend)
    metrics[track] = part[track]
    metrics["significance" if track == BASE else f"significance_{track}"] = part["significance"]
    logs, lams = loss_logs(rows, params, track)
    weights = {"lambda_kd": params["lambda_kd"], "temperature": params["temperature"],
               "kd_scale_t2": params["kd_scale_t2"], "alpha_l2sp": params["l2sp"]["alpha"], "arms": lams,
               "rho": params["rho"], "batch_size": params["train"]["batch_size"]}
    analysis = {name: read_json(track_path(f"reports/analysis/{name}.json", track)) for name in ("cka", "reliability", "tsne")}
    figures = write_all(rows, evals, analysis, logs, rho_points(metrics[track], rows, params["rho"]),
                        out_dir=track_path("reports/figures", track))
    page = results_markdown(track, {**part, track: metrics[track]}, rows, logs, weights, cka=analysis["cka"], figures=figures)
    title, body = page.split("\n", 1)   # the summary first: the README copies it
    page = f"{title}\n\n{summary_markdown(metrics[track], rows, SUMMARY)}{body}"
    page += "\n" + tuning_markdown(rows, methods)
    if not study and BASELINE in evals:   # no erosion study in this track: the check from the table's own runs
        from ..erosion_check import erosion_check, erosion_check_markdown

        check = metrics[f"erosion_{track}"] = erosion_check(evals[BASELINE], evals["teacher"],
                                                            rows.get(f"{BASELINE}_tuned", {}).get("variant"))
        page += "\n" + erosion_check_markdown(check)
    return page


def main() -> None:
    from ..config import load_params
    from ..evaluate import rounded
    from ..io import write_json, write_text
    from ..tracks import BASE, for_track, get_track, track_path

    params = load_params()
    metrics: dict = {}
    order = [params["track"]] + [t for t in params["tracks"] if t != params["track"]]
    pages = [_track(params, track, metrics) for track in order]
    for track in (t for t in order if get_track(t).has_erosion_study):   # the erosion study: headline, link
        from ..io import read_json
        from ..report import erosion_headline
        from ..tracks import stage_name

        t = get_track(track)
        study = read_json(track_path("reports/erosion.json", track))
        head = erosion_headline(study, t.erosion_default(for_track(params, track)))
        metrics["erosion" if track == BASE else f"erosion_{track}"] = head
        gate = ("the default `{knob}` = {default} is the candidate the study selects on ood_val."
                if head["default_is_selected"] else "**the default `{knob}` = {default} is not the "
                "candidate the study selects on ood_val ({label} = {selected})**: set `{knob}: {selected}`.")
        page = os.path.relpath(track_path("reports/erosion.md", track), "reports")   # results.md's link to it
        pages[order.index(track)] += (f"\n## Is there erosion to prevent?\n\nThe erosion study (stage "
                                      f"`{stage_name('erosion', track)}`): [erosion.md]({page}); "
                                      + gate.format(knob=t.erosion_knob, label=t.erosion_label, **head) + "\n")
    from ..headline import headline

    write_json("reports/metrics.json", rounded(metrics))
    write_json("reports/headline.json", headline(metrics, order))
    write_text("reports/results.md", "\n".join(pages))


if __name__ == "__main__":
    run_stage("report", main)
