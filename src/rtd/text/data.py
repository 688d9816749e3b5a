"""The language track's data stage: a benchmark's splits as token-id shards (the ``Split`` format).

``text.data.dataset`` selects the benchmark: one of the embedded candidates (``rtd.text.candidates``:
WordNet supersenses definitions -> usage examples, Bible genre on unseen books, Bible genre with a
reversed style shortcut) or, in the paper configuration, MedNLI / PubMedQA from user-provided files
(``rtd.text.medical``). Token ids come from the backbone's tokenizer, truncated to ``text.data.max_len``.
"""
from __future__ import annotations

import numpy as np

from ..data.splits import Split
from ..errors import ParamError

EMBEDDED = ("wordnet", "bible_books", "bible_style")
PAPER = ("mednli", "pubmedqa")
DATASETS = EMBEDDED + PAPER
PAPER_CLASSES = {"mednli": ["entailment", "neutral", "contradiction"], "pubmedqa": ["yes", "no", "maybe"]}


def num_text_classes(data_cfg: dict) -> int:
    """The number of classes of ``text.data``'s benchmark, without building it."""
    name = data_cfg["dataset"]
    if name in PAPER_CLASSES:
        return len(PAPER_CLASSES[name])
    if name == "wordnet":
        from .candidates import candidate_config

        return len(candidate_config(name, data_cfg.get("candidate") or {})["classes"])
    if name in EMBEDDED:
        from .bible import GENRES

        return len(GENRES)
    raise ParamError(f"params.yaml: `text.data.dataset` = {name!r} is unknown; choose one of {', '.join(DATASETS)}")


def _text_splits(data_cfg: dict) -> tuple[dict, list[str]]:
    name = data_cfg["dataset"]
    if name in EMBEDDED:
        from .candidates import build_candidate, candidate_config

        return build_candidate(name, candidate_config(name, data_cfg.get("candidate") or {}), data_cfg["seed"])
    from . import medical

    if name == "mednli":
        raw = medical.read_mednli(f"{data_cfg['root']}/mednli")
        raw = {"train": raw["train"], "id_val": raw["dev"], "id_test": raw["test"]}
    else:
        raw = medical.read_pubmedqa(f"{data_cfg['root']}/pubmedqa", data_cfg["seed"])
    return raw, PAPER_CLASSES[name]


def build_text_splits(data_cfg: dict, spec: dict) -> tuple[dict[str, Split], dict[str, list[str]], dict]:
    """Token-id ``Split``s, their texts and a manifest for the benchmark of ``text.data``.

    ``spec`` is ``models.backbone_spec`` (the tokenizer is the backbone's). A split's domains are its
    groups where the benchmark defines groups finer than domains (the style shortcut: genre x version),
    so the report's worst-domain accuracy is the worst-group accuracy there.
    """
    from .models import load_tokenizer, tokenize

    raw, classes = _text_splits(data_cfg)
    tokenizer = load_tokenizer(spec)
    pad_id = 0 if spec["name"] == "minilm" else tokenizer.pad_token_id
    splits, texts, manifest = {}, {}, {"dataset": data_cfg["dataset"], "classes": classes, "splits": {}}
    for name, ts in raw.items():
        ids = tokenize(ts.texts, tokenizer, data_cfg["max_len"], pad_id)
        domains, names = np.asarray(ts.domains, dtype=np.int64), list(ts.domain_names)
        if data_cfg["dataset"] == "bible_style":
            names = [f"{classes[g // len(ts.domain_names)]}/{ts.domain_names[g % len(ts.domain_names)]}"
                     for g in range(len(classes) * len(ts.domain_names))]
            domains = np.asarray(ts.groups, dtype=np.int64)
        splits[name] = Split(ids, np.asarray(ts.labels, dtype=np.int64), domains, names)
        texts[name] = list(ts.texts)
        lengths = (ids != pad_id).sum(axis=1)
        manifest["splits"][name] = {
            "n": len(ts.texts), "classes": np.bincount(ts.labels, minlength=len(classes)).tolist(),
            "domains": {n: int((domains == i).sum()) for i, n in enumerate(names)},
            "tokens_mean": round(float(lengths.mean()), 2), "truncated": int((lengths >= data_cfg["max_len"]).sum()),
        }
    return splits, texts, manifest
