"""The language track's data stage: a benchmark's splits as token-id shards (the ``Split`` format).

``text.data.dataset`` selects the benchmark: one of the embedded candidates (``rtd.tracks.text.candidates``:
WordNet supersenses definitions -> usage examples, Bible genre on unseen books, Bible genre with a
reversed style shortcut) or, in the paper configuration, MedNLI / PubMedQA from user-provided files
(``rtd.tracks.text.medical``). Token ids come from the backbone's tokenizer, truncated to ``text.data.max_len``.

Two options make the embedded WordNet benchmark one that fine-tuning can erode (README, "The benchmark"):
``text.data.zeroshot_top_k`` keeps the k supersenses on which the zero-shot teacher is most accurate on
``id_val`` (``zeroshot.select_classes``), and ``text.data.nuisance: leet`` writes every ID text (train,
``id_val``, ``id_test``) in leetspeak, a nuisance of the ID side only that the teacher handles poorly (as the
vision track's ID texture); the OOD splits stay clean.
"""
from __future__ import annotations

import numpy as np

from ...data.splits import Split
from ...errors import ParamError

EMBEDDED = ("wordnet", "bible_books", "bible_style")
PAPER = ("mednli", "pubmedqa")
DATASETS = EMBEDDED + PAPER
NUISANCES = ("none", "leet")
ID_SPLITS = ("train", "id_val", "id_test")   # where the nuisance is; never the OOD splits
LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"})
PAPER_CLASSES = {"mednli": ["entailment", "neutral", "contradiction"], "pubmedqa": ["yes", "no", "maybe"]}


def num_text_classes(data_cfg: dict) -> int:
    """The number of classes of ``text.data``'s benchmark, without building it."""
    name = data_cfg["dataset"]
    if name in PAPER_CLASSES:
        return len(PAPER_CLASSES[name])
    if name == "wordnet":
        from .candidates import candidate_config

        if data_cfg.get("zeroshot_top_k"):
            return int(data_cfg["zeroshot_top_k"])
        return len(candidate_config(name, data_cfg.get("candidate") or {})["classes"])
    if name in EMBEDDED:
        from .bible import GENRES

        return len(GENRES)
    raise ParamError(f"params.yaml: `text.data.dataset` = {name!r} is unknown; choose one of {', '.join(DATASETS)}")


def leetspeak(text: str) -> str:
    """``text`` lower-cased with a -> 4, e -> 3, i -> 1, o -> 0, s -> 5."""
    return text.lower().translate(LEET)


def apply_nuisance(splits: dict, nuisance: str) -> dict:
    """The splits with ``nuisance`` applied to the texts of the ID splits only (train, id_val, id_test)."""
    import dataclasses

    if nuisance not in NUISANCES:
        raise ParamError(f"params.yaml: `text.data.nuisance` = {nuisance!r} is unknown; choose one of {', '.join(NUISANCES)}")
    if nuisance == "none":
        return dict(splits)
    return {k: dataclasses.replace(v, texts=[leetspeak(t) for t in v.texts]) if k in ID_SPLITS else v
            for k, v in splits.items()}


def restrict_classes(split, keep: list[int]):
    """A TextSplit with only the rows of the classes ``keep`` (old label indices), relabelled 0..len(keep)-1."""
    import dataclasses

    remap = {old: new for new, old in enumerate(keep)}
    rows = [i for i, y in enumerate(split.labels) if int(y) in remap]
    labels = np.array([remap[int(split.labels[i])] for i in rows], dtype=np.int64)
    domains = np.asarray(split.domains)[rows]
    return dataclasses.replace(split, texts=[split.texts[i] for i in rows], labels=labels, domains=domains,
                               groups=labels * len(split.domain_names) + domains, ids=[split.ids[i] for i in rows])


def _zeroshot_candidate(data_cfg: dict, spec: dict) -> tuple[dict, list[str], dict]:
    """The wordnet candidate on the supersenses where the zero-shot teacher is strong: built on the pool (every
    supersense with enough synsets, or `candidate.classes` if given), then the ``zeroshot_top_k`` classes with the
    best zero-shot recall on ``id_val`` are kept (their rows, relabelled). Returns splits, classes, the record."""
    import torch

    from .candidates import build_candidate, candidate_config
    from .models import build_text_classifier, load_tokenizer, pad_token_id, tokenize
    from .wordnet import read_synsets
    from .zeroshot import encode_prompts, select_classes, supersense_pool, supersense_prompts

    overrides = dict(data_cfg.get("candidate") or {})
    cfg = candidate_config("wordnet", overrides)
    synsets = read_synsets(cfg["root"])
    if "classes" not in overrides:
        need = sum(int(cfg[f"{s}_per_class"]) for s in ("id_val", "id_test", "ood_val", "ood_test"))
        cfg["classes"] = supersense_pool(synsets, need)
    splits, classes = build_candidate("wordnet", cfg, data_cfg["seed"])
    tokenizer = load_tokenizer(spec)
    pad_id = pad_token_id(spec, tokenizer)
    model = build_text_classifier({**spec, "num_classes": len(classes)}).eval()

    @torch.no_grad()
    def encode(texts: list[str]) -> torch.Tensor:
        ids = torch.as_tensor(tokenize(texts, tokenizer, data_cfg["max_len"], pad_id))
        return torch.cat([model.features(ids[i:i + 256]) for i in range(0, len(ids), 256)])

    class_emb = encode_prompts([supersense_prompts(c, synsets, cfg["root"]) for c in classes], encode)
    val = splits["id_val"]
    chosen, recall = select_classes(encode(val.texts), torch.as_tensor(val.labels), class_emb, classes,
                                    int(data_cfg["zeroshot_top_k"]))
    keep = [classes.index(c) for c in chosen]
    record = {"pool": classes, "id_val_recall": {c: round(r, 4) for c, r in recall.items()}, "chosen": chosen}
    return {k: restrict_classes(v, keep) for k, v in splits.items()}, chosen, record


def _text_splits(data_cfg: dict, spec: dict) -> tuple[dict, list[str], dict]:
    name = data_cfg["dataset"]
    if name == "wordnet" and data_cfg.get("zeroshot_top_k"):
        return _zeroshot_candidate(data_cfg, spec)
    if name in EMBEDDED:
        from .candidates import build_candidate, candidate_config

        return (*build_candidate(name, candidate_config(name, data_cfg.get("candidate") or {}), data_cfg["seed"]), {})
    from . import medical

    if name == "mednli":
        raw = medical.read_mednli(f"{data_cfg['root']}/mednli")
    else:
        raw = medical.read_pubmedqa(f"{data_cfg['root']}/pubmedqa", data_cfg["seed"])
    splits = {"train": raw["train"], "id_val": raw["dev"], "id_test": raw["test"]}
    splits.update(_paper_ood(name, data_cfg["root"]))
    return splits, PAPER_CLASSES[name], {}


def _paper_ood(name: str, root: str) -> dict:
    """The paper datasets' OOD splits: user-provided files in the ID files' format (neither dataset has one).

    MedNLI: ``<root>/mednli/ood_{val,test}.jsonl``, e.g. clinical NLI pairs written from another hospital's
    records; PubMedQA: ``<root>/pubmedqa/ood_{val,test}.json``, e.g. yes/no/maybe questions of another
    biomedical QA source (BioASQ) in PubMedQA's layout. The ID readers check them the same way.
    """
    from pathlib import Path

    from ...errors import RTDError
    from . import medical

    ext = "jsonl" if name == "mednli" else "json"
    folder = Path(root) / name
    files = {split: folder / f"{split}.{ext}" for split in ("ood_val", "ood_test")}
    missing = [str(f) for f in files.values() if not f.is_file()]
    if missing:
        raise RTDError(f"{name} has no OOD split of its own: put the OOD evaluation sets in the format of its ID "
                       f"files at {' and '.join(missing)} (see README, Language track: paper configuration)")
    if name == "mednli":
        return {split: medical.read_mednli_file(path) for split, path in files.items()}
    return {split: _pubmedqa_file(path) for split, path in files.items()}


def _pubmedqa_file(path) -> "TextSplit":
    from . import medical

    records = medical._pubmedqa_records(path)
    rows = [medical._pubmedqa_row(str(pmid), rec, path) for pmid, rec in sorted(records.items())]
    return medical._make_split([r[0] for r in rows], [r[1] for r in rows], sorted(map(str, records)), "ood")


def build_text_splits(data_cfg: dict, spec: dict) -> tuple[dict[str, Split], dict[str, list[str]], dict]:
    """Token-id ``Split``s, their texts and a manifest for the benchmark of ``text.data``.

    ``spec`` is ``models.backbone_spec`` (the tokenizer is the backbone's). A split's domains are its
    groups where the benchmark defines groups finer than domains (the style shortcut: genre x version),
    so the report's worst-domain accuracy is the worst-group accuracy there.
    """
    from .models import load_tokenizer, pad_token_id, tokenize

    raw, classes, selection = _text_splits(data_cfg, spec)
    nuisance = data_cfg.get("nuisance", "none")
    raw = apply_nuisance(raw, nuisance)
    tokenizer = load_tokenizer(spec)
    pad_id = pad_token_id(spec, tokenizer)
    splits, texts, manifest = {}, {}, {"dataset": data_cfg["dataset"], "classes": classes, "nuisance": nuisance,
                                       **({"zeroshot_selection": selection} if selection else {}), "splits": {}}
    for name, ts in raw.items():
        ids = tokenize(ts.texts, tokenizer, data_cfg["max_len"], pad_id)
        domains, names = np.asarray(ts.domains, dtype=np.int64), list(ts.domain_names)
        if data_cfg["dataset"] == "bible_style":
            names = [f"{classes[g // len(ts.domain_names)]}/{ts.domain_names[g % len(ts.domain_names)]}"
                     for g in range(len(classes) * len(ts.domain_names))]
            domains = np.asarray(ts.groups, dtype=np.int64)
        present = sorted(set(domains.tolist()))   # a split lists only its own domains (OOD: the examples)
        domains = np.searchsorted(present, domains).astype(np.int64)
        names = [names[i] for i in present]
        splits[name] = Split(ids, np.asarray(ts.labels, dtype=np.int64), domains, names)
        texts[name] = list(ts.texts)
        lengths = (ids != pad_id).sum(axis=1)
        manifest["splits"][name] = {
            "n": len(ts.texts), "classes": np.bincount(ts.labels, minlength=len(classes)).tolist(),
            "domains": {n: int((domains == i).sum()) for i, n in enumerate(names)},
            "tokens_mean": round(float(lengths.mean()), 2), "truncated": int((lengths >= data_cfg["max_len"]).sum()),
        }
    return splits, texts, manifest
