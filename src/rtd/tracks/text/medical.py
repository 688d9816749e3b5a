"""The paper's language datasets, read from files the user provides (neither can be downloaded here).

MedNLI (Romanov & Shivade 2018): clinical premise/hypothesis pairs, 3 classes; credentialed PhysioNet access.
PubMedQA-L (Jin et al. 2019): 1,000 expert-labelled questions with abstract contexts, yes/no/maybe.

Both return ``TextSplit``s (``rtd.tracks.text.candidates``) with one domain each (the shift comes from the OOD-style
copies and the other benchmarks), so ``groups`` = label * 1 + domain 0 = the label: worst-group accuracy is
worst-class accuracy on these sets.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...errors import RTDError
from .candidates import TextSplit

MEDNLI_ROOT = "data/text/mednli"
MEDNLI_LABELS = ("entailment", "neutral", "contradiction")
MEDNLI_FILES = {"train": "mli_train_v1.jsonl", "dev": "mli_dev_v1.jsonl", "test": "mli_test_v1.jsonl"}
MEDNLI_URL = "https://physionet.org/content/mednli/1.0.0/"

PUBMEDQA_ROOT = "data/text/pubmedqa"
PUBMEDQA_LABELS = ("yes", "no", "maybe")
PUBMEDQA_FILE = "ori_pqal.json"
PUBMEDQA_TEST_FILE = "test_ground_truth.json"   # the official 500 test PMIDs (optional)
PUBMEDQA_URL = "https://github.com/pubmedqa/pubmedqa"


def mednli_text(premise: str, hypothesis: str) -> str:
    """The MedNLI template: premise, then hypothesis, then the cue a causal LM's last token reads."""
    return f"Premise: {premise.strip()}\nHypothesis: {hypothesis.strip()}\nRelation:"


def pubmedqa_text(question: str, contexts: list[str]) -> str:
    """The PubMedQA template: the question first (it survives truncation), then the abstract's contexts."""
    return f"Question: {question.strip()}\nContext: {' '.join(c.strip() for c in contexts)}\nAnswer:"


def _make_split(texts: list[str], labels: list[int], ids: list[str], domain: str) -> TextSplit:
    y = np.asarray(labels, dtype=np.int64)
    return TextSplit(texts=texts, labels=y, domains=np.zeros(len(y), dtype=np.int64), domain_names=[domain],
                     groups=y.copy(), ids=ids)


def _mednli_missing(root: Path, names: list[str]) -> RTDError:
    return RTDError(f"MedNLI is missing ({', '.join(names)} not in {root}/): it needs credentialed PhysioNet "
                    f"access. Sign the data use agreement at {MEDNLI_URL}, download mli_train_v1.jsonl, "
                    f"mli_dev_v1.jsonl and mli_test_v1.jsonl and put the three files in {root}/")


def _mednli_row(line: str, path: Path, number: int) -> tuple[str, int, str]:
    """(text, label, pairID) of one MedNLI line; a malformed line raises an RTDError naming it."""
    try:
        row = json.loads(line)
        label = row["gold_label"]
        text = mednli_text(row["sentence1"], row["sentence2"])
        pair_id = str(row.get("pairID", f"{path.stem}:{number}"))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise RTDError(f"{path}, line {number}: not a MedNLI record with sentence1, sentence2 and gold_label "
                       f"({exc}); replace the file with the original from {MEDNLI_URL}") from exc
    if label not in MEDNLI_LABELS:
        raise RTDError(f"{path}, line {number}: gold_label {label!r} is not one of {', '.join(MEDNLI_LABELS)}; "
                       f"replace the file with the original from {MEDNLI_URL}")
    return text, MEDNLI_LABELS.index(label), pair_id


def read_mednli_file(path: Path) -> TextSplit:
    """One MedNLI jsonl file (blank lines skipped)."""
    texts, labels, ids = [], [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            text, label, pair_id = _mednli_row(line, path, number)
            texts.append(text)
            labels.append(label)
            ids.append(pair_id)
    if not texts:
        raise RTDError(f"{path} holds no examples; replace it with the original from {MEDNLI_URL}")
    return _make_split(texts, labels, ids, "mednli")


def read_mednli(root: str | Path = MEDNLI_ROOT) -> dict[str, TextSplit]:
    """{train, dev, test} from ``root``/mli_{train,dev,test}_v1.jsonl; labels index ``MEDNLI_LABELS``."""
    root = Path(root)
    missing = [name for name in MEDNLI_FILES.values() if not (root / name).is_file()]
    if missing:
        raise _mednli_missing(root, missing)
    return {split: read_mednli_file(root / name) for split, name in MEDNLI_FILES.items()}


def _pubmedqa_missing(path: Path) -> RTDError:
    return RTDError(f"PubMedQA is missing ({path} not found): download data/{PUBMEDQA_FILE} (and, for the "
                    f"official test set, data/{PUBMEDQA_TEST_FILE}) from {PUBMEDQA_URL} and put them in "
                    f"{path.parent if path.suffix else path}/")


def _pubmedqa_records(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RTDError(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg}); replace the file with "
                       f"data/{PUBMEDQA_FILE} from {PUBMEDQA_URL}") from exc
    if not isinstance(data, dict) or not data:
        raise RTDError(f"{path}: expected a non-empty object {{pmid: record}}; replace the file with "
                       f"data/{PUBMEDQA_FILE} from {PUBMEDQA_URL}")
    return data


def _pubmedqa_row(pmid: str, record, path: Path) -> tuple[str, int]:
    """(text, label) of one PubMedQA record; a malformed one raises an RTDError naming its PMID."""
    try:
        label, question, contexts = record["final_decision"], record["QUESTION"], record["CONTEXTS"]
        if not isinstance(contexts, list):
            raise TypeError("CONTEXTS is not a list")
        text = pubmedqa_text(question, [str(c) for c in contexts])
    except (KeyError, TypeError, AttributeError) as exc:
        raise RTDError(f"{path}, record {pmid}: lacks QUESTION, CONTEXTS (a list) or final_decision ({exc}); "
                       f"replace the file with data/{PUBMEDQA_FILE} from {PUBMEDQA_URL}") from exc
    if label not in PUBMEDQA_LABELS:
        raise RTDError(f"{path}, record {pmid}: final_decision {label!r} is not one of "
                       f"{', '.join(PUBMEDQA_LABELS)}; replace the file with data/{PUBMEDQA_FILE} from {PUBMEDQA_URL}")
    return text, PUBMEDQA_LABELS.index(label)


def _stratified_take(pmids: list[str], labels: list[int], fraction: float,
                     rng: np.random.Generator) -> tuple[list[str], list[str]]:
    """(taken, rest): per label, a shuffled ``round(fraction * n)`` of the PMIDs are taken."""
    taken, rest = [], []
    by_label = np.asarray(labels)
    for label in np.unique(by_label):
        members = [pmids[i] for i in np.flatnonzero(by_label == label)]
        order = rng.permutation(len(members))
        k = int(round(fraction * len(members)))
        taken += [members[i] for i in order[:k]]
        rest += [members[i] for i in order[k:]]
    return sorted(taken), sorted(rest)


def _official_test(path: Path, pmids: set[str]) -> list[str] | None:
    """The official test PMIDs from test_ground_truth.json next to ori_pqal.json, if it is there."""
    test_path = path.parent / PUBMEDQA_TEST_FILE
    if not test_path.is_file():
        return None
    test = _pubmedqa_records(test_path)
    unknown = sorted(set(test) - pmids)
    if unknown:
        raise RTDError(f"{test_path} lists PMIDs absent from {path} (e.g. {unknown[0]}): download both files "
                       f"from the same release of {PUBMEDQA_URL}")
    return sorted(test)


def read_pubmedqa(path: str | Path = PUBMEDQA_ROOT, seed: int = 0) -> dict[str, TextSplit]:
    """{train, dev, test} from PubMedQA-L's ori_pqal.json (``path``: the file or its folder).

    Split (PubMedQA's convention: 500 test / 500 cross-validation of the 1,000 labelled questions):
    test = the PMIDs of test_ground_truth.json when it lies next to ori_pqal.json (the official test set),
    else a label-stratified half drawn with ``seed``; the rest is cut, stratified by label with ``seed``,
    into dev = 10% and train = 90% (one fold of the official 10-fold CV: 50 / 450). The seeded halves are
    not the official PMIDs (split_dataset.py uses Python's random with seed 0); put
    test_ground_truth.json in the folder for results comparable with the leaderboard.
    Labels index ``PUBMEDQA_LABELS`` (yes, no, maybe); ids are the PMIDs.
    """
    path = Path(path)
    if path.is_dir() or not path.suffix:
        path = path / PUBMEDQA_FILE
    if not path.is_file():
        raise _pubmedqa_missing(path)
    records = _pubmedqa_records(path)
    rows = {str(pmid): _pubmedqa_row(str(pmid), rec, path) for pmid, rec in records.items()}
    rng = np.random.default_rng(seed)
    pmids = sorted(rows)
    test = _official_test(path, set(pmids))
    if test is None:
        test, cv = _stratified_take(pmids, [rows[p][1] for p in pmids], 0.5, rng)
    else:
        cv = sorted(set(pmids) - set(test))
    dev, train = _stratified_take(cv, [rows[p][1] for p in cv], 0.1, rng)

    def split(ids: list[str]) -> TextSplit:
        return _make_split([rows[p][0] for p in ids], [rows[p][1] for p in ids], ids, "pubmedqa")

    return {"train": split(train), "dev": split(dev), "test": split(test)}
