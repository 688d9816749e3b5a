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

from rtd.text.candidates import WORDNET_CLASSES
from rtd.text.wordnet import read_synsets

# WordNet lexnames(5WN) descriptions
DESCRIPTIONS = {
    "noun.Tops": "unique beginner for nouns", "noun.act": "nouns denoting acts or actions",
    "noun.animal": "nouns denoting animals", "noun.artifact": "nouns denoting man-made objects",
    "noun.attribute": "nouns denoting attributes of people and objects", "noun.body": "nouns denoting body parts",
    "noun.cognition": "nouns denoting cognitive processes and contents",
    "noun.communication": "nouns denoting communicative processes and contents",
    "noun.event": "nouns denoting natural events", "noun.feeling": "nouns denoting feelings and emotions",
    "noun.food": "nouns denoting foods and drinks", "noun.group": "nouns denoting groupings of people or objects",
    "noun.location": "nouns denoting spatial position", "noun.motive": "nouns denoting goals",
    "noun.object": "nouns denoting natural objects (not man-made)", "noun.person": "nouns denoting people",
    "noun.phenomenon": "nouns denoting natural phenomena", "noun.plant": "nouns denoting plants",
    "noun.possession": "nouns denoting possession and transfer of possession",
    "noun.process": "nouns denoting natural processes", "noun.quantity": "nouns denoting quantities and units of measure",
    "noun.relation": "nouns denoting relations between people or things or ideas",
    "noun.shape": "nouns denoting two and three dimensional shapes", "noun.state": "nouns denoting stable states of affairs",
    "noun.substance": "nouns denoting substances", "noun.time": "nouns denoting time and temporal relations",
    "verb.body": "verbs of grooming, dressing and bodily care", "verb.change": "verbs of size, temperature change, intensifying, etc.",
    "verb.cognition": "verbs of thinking, judging, analyzing, doubting", "verb.communication": "verbs of telling, asking, ordering, singing",
    "verb.competition": "verbs of fighting, athletic activities", "verb.consumption": "verbs of eating and drinking",
    "verb.contact": "verbs of touching, hitting, tying, digging", "verb.creation": "verbs of sewing, baking, painting, performing",
    "verb.emotion": "verbs of feeling", "verb.motion": "verbs of walking, flying, swimming",
    "verb.perception": "verbs of seeing, hearing, feeling", "verb.possession": "verbs of buying, selling, owning",
    "verb.social": "verbs of political and social activities and events", "verb.stative": "verbs of being, having, spatial relations",
    "verb.weather": "verbs of raining, snowing, thawing, thundering",
}
ROOT_WORD = {"verb.change": "change", "verb.communication": "communicate", "verb.contact": "touch", "verb.motion": "move",
             "verb.body": "groom", "verb.cognition": "think", "verb.competition": "compete", "verb.consumption": "consume",
             "verb.creation": "create", "verb.emotion": "feel", "verb.perception": "perceive", "verb.possession": "own",
             "verb.social": "socialize", "verb.stative": "be", "verb.weather": "rain"}


def first_sense(word: str, pos: str, root: str = "/usr/share/wordnet") -> str | None:
    with open(f"{root}/index.{pos}", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.startswith(word.replace(" ", "_") + " "):
                f = line.split()
                n_ptr = int(f[3])
                return f[6 + n_ptr]   # lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offsets
    return None


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

    from rtd.text.models import _minilm_path

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
        off = first_sense(word, "noun" if kind == "noun" else "verb")
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
