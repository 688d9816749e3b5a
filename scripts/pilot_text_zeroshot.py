"""Pilot (issue 18, text track): how strong is a zero-shot MiniLM head on WordNet supersenses?

    PYTHONPATH=src python scripts/pilot_text_zeroshot.py [--per-class 100] [--classes default|nouns|all]

Classifies by cosine similarity between a text's MiniLM embedding (mean pooling, L2-normalised, as
sentence-transformers does) and each class's prompt embedding; no downstream data is fit. Prompt sets per class:
`desc` (the lexicographer file's description, written from WordNet's lexnames(5WN)), `root` (the gloss and lemmas
of the class's root synset, from WordNet itself), and `ensemble` (the mean of the normalised embeddings of both and
of "<name>" templates, as CLIP's prompt ensembles do). Reports accuracy on definitions (ID) and on usage examples
(OOD) of synsets that have one, overall and per class, against a logistic probe fit on other synsets' definitions
(the current teacher's kind). A measurement for the note, not a pipeline stage.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from rtd.tracks.text.candidates import WORDNET_CLASSES
from rtd.tracks.text.wordnet import read_synsets
from rtd.tracks.text.zeroshot import ROOT_WORDS as ROOT_WORD
from rtd.tracks.text.zeroshot import SUPERSENSE_DESCRIPTIONS as DESCRIPTIONS
from rtd.tracks.text.zeroshot import first_sense_offset


def embed(texts: list[str], tok, enc, batch: int = 128) -> torch.Tensor:
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), batch):
            b = tok(texts[i:i + batch], padding=True, truncation=True, max_length=64, return_tensors="pt")
            h = enc(**b).last_hidden_state
            m = b["attention_mask"].unsqueeze(-1).float()
            out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--classes", default="default", choices=["default", "nouns", "verbs", "all"])
    opts = ap.parse_args()
    torch.set_num_threads(1)
    from transformers import AutoModel, AutoTokenizer

    from rtd.tracks.text.models import _minilm_path

    path = _minilm_path({"name": "minilm"})
    tok, enc = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path, add_pooling_layer=False).eval()
    synsets = read_synsets()
    by_offset = {(s.pos, s.offset): s for s in synsets}
    names = {"default": list(WORDNET_CLASSES), "all": [n for n in DESCRIPTIONS if n != "noun.Tops"],
             "nouns": [n for n in DESCRIPTIONS if n.startswith("noun.") and n != "noun.Tops"],
             "verbs": [n for n in DESCRIPTIONS if n.startswith("verb.")]}[opts.classes]
    rng = np.random.default_rng(0)
    test, train = [], []
    for c, name in enumerate(names):
        pool = [s for s in synsets if s.lexname == name]
        with_ex = [s for s in pool if s.examples]
        idx = rng.permutation(len(with_ex))[:opts.per_class]
        chosen = {with_ex[i].offset for i in idx}
        test += [(with_ex[i], c) for i in idx]
        rest = [s for s in pool if s.offset not in chosen]
        train += [(rest[i], c) for i in rng.permutation(len(rest))[:opts.per_class]]
    prompts: dict[str, list[list[str]]] = {"desc": [], "root": [], "ensemble": []}
    for name in names:
        kind, stem = name.split(".")
        word = ROOT_WORD.get(name, stem)
        off = first_sense_offset(word, "noun" if kind == "noun" else "verb")
        s = by_offset.get(("n" if kind == "noun" else "v", off)) if off else None
        root = f"{', '.join(s.words)}: {s.definition}" if s else word
        prompts["desc"].append([DESCRIPTIONS[name]])
        prompts["root"].append([root])
        prompts["ensemble"].append([DESCRIPTIONS[name], root, f"a word about {stem}", f"the meaning of {stem}",
                                    f"something to do with {stem}"])
    y = torch.tensor([c for _, c in test])
    e_id, e_ood = embed([s.definition for s, _ in test], tok, enc), embed([s.examples[0] for s, _ in test], tok, enc)
    print(f"{len(names)} classes, {len(test)} test synsets ({opts.per_class}/class), chance {100 / len(names):.1f} %")
    results = {}
    for key, ps in prompts.items():
        w = torch.stack([torch.nn.functional.normalize(embed(p, tok, enc).mean(0), dim=0) for p in ps])
        results[key] = [(e @ w.T).argmax(1) for e in (e_id, e_ood)]
        print(f"zero-shot [{key:8s}] ID (definitions) {100 * (results[key][0] == y).double().mean():5.1f} %  "
              f"OOD (usage examples) {100 * (results[key][1] == y).double().mean():5.1f} %")
    from sklearn.linear_model import LogisticRegression

    e_tr = embed([s.definition for s, _ in train], tok, enc)
    probe = LogisticRegression(C=1.0, max_iter=2000).fit(e_tr.numpy(), [c for _, c in train])
    pid, pood = (torch.as_tensor(probe.predict(e.numpy())) for e in (e_id, e_ood))
    print(f"probe on {len(train)} train definitions   ID {100 * (pid == y).double().mean():5.1f} %  "
          f"OOD {100 * (pood == y).double().mean():5.1f} %")
    best = max(results, key=lambda k: (results[k][1] == y).double().mean())
    print(f"per class, zero-shot [{best}] ID / OOD  |  probe ID / OOD:")
    for c, name in enumerate(names):
        m = y == c
        acc = lambda p: 100 * (p[m] == c).double().mean().item()   # noqa: E731
        print(f"  {name:20s} {acc(results[best][0]):5.1f} / {acc(results[best][1]):5.1f}   |  {acc(pid):5.1f} / {acc(pood):5.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
