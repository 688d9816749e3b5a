"""DVC stage `analysis`: how far each student moved from the teacher, for the figures and the report.

    python -m rtd.stages.analysis
    python -m rtd.stages.analysis --track text   # -> reports/text/analysis/

On the first seed's models: linear CKA between the teacher and every student at `analysis.layers`
(ID and OOD inputs, subsampled), t-SNE of the penultimate features of teacher, FT and RTD, and the
reliability-diagram bins of teacher, FT and RTD on the whole `id_test` and `ood_test`.
"""
from __future__ import annotations

from ..arms import BASELINE, METHOD
from .common import check_declared, run_stage, track_arg, track_params

TSNE_MODELS = ("teacher", BASELINE, METHOD)


def _subsample(split, n: int, rng):
    """``n`` examples drawn without replacement, in index order (all of them if n >= len)."""
    import numpy as np

    idx = np.sort(rng.choice(len(split), size=min(n, len(split)), replace=False))
    return split.images[idx], split.labels[idx], split.domains[idx]


def analysed_models(params: dict, track: str) -> dict[str, str]:
    """The run folders the analysis reads, by row name: the teacher, the first seed of each arm at a tuning sweep's
    default value, and of every value of an ablation sweep."""
    from ..arms import TRAINED, default_variant, run_dir
    from ..tracks import track_path

    seed, models = params["seeds"][0], {"teacher": track_path("models/teacher", track)}
    for name, arm in TRAINED.items():
        for v in ([default_variant(arm, params)] if arm.default else params[arm.sweep] if arm.sweep else [None]):
            models[name if v is None or arm.default else f"{name}@{v}"] = run_dir(name, seed, v, track)
    return models


def main(argv: list[str] | None = None) -> None:
    track = track_arg(argv, "CKA, t-SNE and reliability bins of one track").track
    params = track_params(track)

    import numpy as np
    import torch
    from sklearn.manifold import TSNE
    from tqdm import tqdm

    from ..analysis import layer_activations, linear_cka
    from ..metrics import reliability_bins
    from ..evaluate import rounded
    from ..io import seed_everything, write_json
    from ..errors import ParamError
    from ..models import backbone_spec, check_layer, load_model, predict
    from ..data.splits import load_split
    from ..tracks import get_track, stage_name, track_path as P

    ap, ep, backbone = params["analysis"], params["eval"], backbone_spec(params, track)
    seed_everything(ap["seed"], params["num_threads"])
    seed = params["seeds"][0]
    models = analysed_models(params, track)
    check_declared(stage_name("analysis", track), [f"{d}/model.safetensors" for d in models.values()])
    id_test, ood_test = (load_split(P(f"data/vision/{s}.safetensors", track)) for s in ("id_test", "ood_test"))
    rng = np.random.default_rng(ap["seed"])
    inputs = {"id": _subsample(id_test, ap["n_id"], rng), "ood": _subsample(ood_test, ap["n_ood"], rng)}
    layers = list(ap["layers"])
    teacher = load_model(f"{models['teacher']}/model.safetensors", backbone)
    for layer in layers:   # before any work: an unknown layer or too small a sample is one line
        check_layer(teacher, layer, "analysis.layers", extra=("logits",))
    n_sample = sum(len(x[0]) for x in inputs.values())
    if ap["tsne_perplexity"] >= n_sample:
        raise ParamError(f"params.yaml: `analysis.tsne_perplexity` = {ap['tsne_perplexity']} must be smaller than the "
                         f"t-SNE sample ({n_sample} examples: id_test and ood_test hold fewer than n_id + n_ood)")

    acts: dict[str, dict[str, dict[str, np.ndarray]]] = {}
    cka: dict[str, dict] = {}
    reliability: dict[str, dict] = {}
    for name, path in tqdm(models.items(), desc="analysis", unit="model"):
        model = load_model(f"{path}/model.safetensors", backbone)
        acts[name] = {where: layer_activations(model, x[0], layers, ep["batch_size"]) for where, x in inputs.items()}
        if name != "teacher":
            cka[name] = {where: {layer: linear_cka(acts["teacher"][where][layer], acts[name][where][layer])
                                 for layer in layers} for where in inputs}
        if name in TSNE_MODELS:
            reliability[name] = {}
            for where, split in (("id", id_test), ("ood", ood_test)):
                logits, _ = predict(model, split.images, ep["batch_size"])
                reliability[name][where] = reliability_bins(logits, torch.as_tensor(split.labels), ep["ece_bins"])
        if name != "teacher":   # keep only what t-SNE needs
            for where in inputs:
                acts[name][where] = {"pooled": acts[name][where]["pooled"]} if name in TSNE_MODELS else {}

    tsne = {"domain_names": ["id"] + list(ood_test.domain_names), "models": {}}
    labels = np.concatenate([inputs["id"][1], inputs["ood"][1]])
    domains = np.concatenate([np.zeros(len(inputs["id"][1]), dtype=np.int64), inputs["ood"][2] + 1])
    tsne.update(labels=labels.tolist(), domains=domains.tolist())
    tsne.update(get_track(track).tsne_extra(params))
    for name in TSNE_MODELS:
        feats = np.concatenate([acts[name]["id"]["pooled"], acts[name]["ood"]["pooled"]]).astype(np.float64)
        emb = TSNE(n_components=2, perplexity=ap["tsne_perplexity"], init="pca", random_state=ap["seed"],
                   n_jobs=1).fit_transform(feats)
        tsne["models"][name] = np.round(emb, 3).tolist()

    write_json(P("reports/analysis/cka.json", track), rounded({
        "seed": seed, "layers": layers, "models": cka, "n": {k: len(v[1]) for k, v in inputs.items()},
        "split_sizes": {"id_test": len(id_test), "ood_test": len(ood_test)}}))
    write_json(P("reports/analysis/reliability.json", track), rounded({"seed": seed, "bins": reliability}))
    write_json(P("reports/analysis/tsne.json", track), tsne)


if __name__ == "__main__":
    run_stage("analysis", main)
