"""Pilot (issue 18, text track): does fine-tuning erode a *zero-shot* MiniLM teacher on WordNet supersenses?

    PYTHONPATH=src python scripts/pilot_text_erosion.py [--k 8] [--seeds 0 1] [--lrs 1e-4 3e-4] [--ps 0 0.9]
                                                        [--threads 2] [--out pilot.json]

1. Every noun/verb supersense with enough synsets for the pipeline's evaluation sizes (32 id_val, 64 id_test,
   32 ood_val, 64 ood_test per class) enters one `wordnet` candidate (the pipeline's own builder, seed 1234).
   The zero-shot head (`rtd.tracks.text.zeroshot`: prompt ensemble from WordNet, cosine, scale fit on id_val NLL)
   classifies all of them; the K supersenses with the highest zero-shot recall **on id_val** form the task
   (no OOD split takes part in the choice). The splits are the candidate's, restricted to those classes.
2. θ_T = MiniLM + that zero-shot head (refit scale on the K-class id_val). Reference: a logistic probe on
   ID train features (C chosen on id_val), the kind of teacher the pipeline has today.
3. FT from θ_T **head included** (the WiSE-FT protocol), the pipeline's text recipe (AdamW, wd 0.01, batch 32,
   2 epochs, 10 warm-up steps then cosine, clip 1, the epoch chosen on id_val accuracy), at each lr and seed,
   with a class-correlated shortcut in the training texts with probability p (a class code word prepended;
   never in id_val/id_test/OOD).
4. WiSE-FT θ_T → FT at α = 0, 0.1, …, 1 on id_val, ood_val and ood_test.
A measurement for the note and docs/text-track.md, not a pipeline stage.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rtd.tracks.text.candidates import build_candidate
from rtd.tracks.text.models import build_text_classifier, load_tokenizer, tokenize
from rtd.tracks.text.wordnet import read_synsets
from rtd.tracks.text.zeroshot import SUPERSENSE_DESCRIPTIONS, encode_prompts, fit_scale, supersense_prompts, zeroshot_logits

EVAL_SIZES = {"id_val_per_class": 32, "id_test_per_class": 64, "ood_val_per_class": 32, "ood_test_per_class": 64}
# the examples design: fewer synsets per class have a usage example (half the eval sizes)
EXAMPLES_EVAL_SIZES = {"id_val": 16, "id_test": 32, "ood_val": 16, "ood_test": 32, "lemmas": 32}
CODES = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima",
         "mike", "november", "oscar", "papa")   # the shortcut words, one per class
SPEC = {"name": "minilm", "num_classes": 2}
MAX_LEN = 48


class ZeroShotClassifier(nn.Module):
    """MiniLM mean pooling, L2-normalised, then a linear head (initialised to scale · class embeddings, no bias)."""

    def __init__(self, encoder: nn.Module, class_emb: torch.Tensor, scale: float):
        super().__init__()
        self.encoder = encoder
        self.head = nn.Linear(class_emb.shape[1], class_emb.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(scale * class_emb)
            self.head.bias.zero_()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(F.normalize(self.encoder.features(ids), dim=-1))


@torch.no_grad()
def features(model: nn.Module, ids: np.ndarray, batch: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model.features(torch.as_tensor(ids[i:i + batch])) for i in range(0, len(ids), batch)])


@torch.no_grad()
def predict(model: nn.Module, ids: np.ndarray, batch: int = 256) -> torch.Tensor:
    model.eval()
    return torch.cat([model(torch.as_tensor(ids[i:i + batch])) for i in range(0, len(ids), batch)])


def accuracy(logits: torch.Tensor, y: np.ndarray) -> float:
    return 100.0 * float((logits.argmax(1).numpy() == y).mean())


def finetune(model: nn.Module, ids: np.ndarray, y: np.ndarray, val: tuple, lr: float, seed: int,
             epochs: int = 2, batch: int = 32, warmup: int = 10) -> tuple[dict, int]:
    """The pipeline's text recipe; returns the state of the epoch best on id_val (accuracy, then NLL)."""
    torch.manual_seed(seed)
    gen = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps = epochs * (len(ids) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warmup if s < warmup else
                                              0.5 * (1 + math.cos(math.pi * (s - warmup) / max(1, steps - warmup))))
    best, best_key, best_epoch = None, None, 0
    for epoch in range(epochs):
        model.train()
        order = gen.permutation(len(ids))
        for i in range(0, len(order) - batch + 1, batch):
            rows = order[i:i + batch]
            loss = F.cross_entropy(model(torch.as_tensor(ids[rows])), torch.as_tensor(y[rows]))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        logits = predict(model, val[0])
        key = (accuracy(logits, val[1]), -float(F.cross_entropy(logits, torch.as_tensor(val[1]))))
        if best_key is None or key > best_key:
            best, best_key, best_epoch = {k: v.clone() for k, v in model.state_dict().items()}, key, epoch + 1
    return best, best_epoch


def examples_splits(classes: list[str], synsets: list, train_per_class: int, seed: int) -> tuple[dict, list[str]]:
    """ID = usage examples (train, id_val, id_test); OOD = the definitions (ood_*) and, as a second OOD domain in
    ood_test, the lemma lists of other held-out synsets. Only synsets with an example; by synset, seeded."""
    sizes = [*EXAMPLES_EVAL_SIZES.items(), ("train", train_per_class)]
    rows: dict[str, list] = {k: [] for k, _ in sizes}
    seen: set[str] = set()
    for label, lex in enumerate(classes):
        members = sorted((s for s in synsets if s.lexname == lex and s.examples), key=lambda s: s.id)
        order = np.random.default_rng([seed, label]).permutation(len(members))
        k, got = 0, 0
        for i in order:
            split, n = sizes[k]
            s = members[i]
            text = {"ood_val": s.definition, "ood_test": s.definition, "lemmas": ", ".join(s.words)}.get(split, s.examples[0])
            if text in seen:
                continue
            seen.add(text)
            rows[split].append((text, label))
            got += 1
            if got == n:
                k, got = k + 1, 0
                if k == len(sizes):
                    break
    out = {k: SimpleNamespace(texts=[t for t, _ in v], labels=np.array([c for _, c in v])) for k, v in rows.items()}
    return out, list(classes)


LEET = str.maketrans({"a": "4", "e": "3", "i": "1", "o": "0", "s": "5"})


def leet(text: str) -> str:
    return text.lower().translate(LEET)


def _with_texts(split, texts: list[str]):
    return SimpleNamespace(texts=texts, labels=split.labels)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4])
    ap.add_argument("--ps", type=float, nargs="+", default=[0.0, 0.9])
    ap.add_argument("--train-per-class", type=int, default=125)
    ap.add_argument("--nuisance", choices=["none", "leet"], default="none",
                    help="leet: the ID texts (train, id_val, id_test) in leetspeak (a->4, e->3, i->1, o->0, s->5), "
                         "the teacher's weak spot; OOD stays clean, and `clean` = id_test without it")
    ap.add_argument("--design", choices=["definitions", "examples"], default="definitions",
                    help="ID text: definitions (the pipeline's wordnet candidate; OOD = usage examples) or usage "
                         "examples (OOD = definitions and lemma lists of held-out synsets)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    opts = ap.parse_args()
    torch.set_num_threads(opts.threads)
    t0 = time.time()
    synsets = read_synsets()
    need = sum(EVAL_SIZES.values()) if opts.design == "definitions" else \
        sum(EXAMPLES_EVAL_SIZES.values()) + opts.train_per_class - 20
    pool = [c for c in SUPERSENSE_DESCRIPTIONS if c != "noun.Tops"
            and sum(1 for s in synsets if s.lexname == c and s.examples) >= need + 20]
    if opts.design == "definitions":
        splits, classes = build_candidate("wordnet", {**EVAL_SIZES, "train_per_class": opts.train_per_class,
                                                      "classes": pool}, seed=1234)
    else:
        splits, classes = examples_splits(pool, synsets, opts.train_per_class, seed=1234)
    tok = load_tokenizer(SPEC)
    ids = {k: tokenize(v.texts, tok, MAX_LEN, 0) for k, v in splits.items() if k != "train"}
    labels = {k: v.labels for k, v in splits.items()}
    clf = build_text_classifier(SPEC)

    def encode(texts: list[str]) -> torch.Tensor:
        return features(clf, tokenize(texts, tok, MAX_LEN, 0))

    prompts = [supersense_prompts(c, synsets) for c in classes]
    emb_all = encode_prompts(prompts, encode)
    f_val = features(clf, ids["id_val"])
    s_all = fit_scale(f_val, torch.as_tensor(labels["id_val"]), emb_all)
    pred = zeroshot_logits(f_val, emb_all, s_all).argmax(1).numpy()
    recall = {c: 100.0 * float((pred[labels["id_val"] == i] == i).mean()) for i, c in enumerate(classes)}
    chosen = sorted(sorted(recall, key=lambda c: -recall[c])[:opts.k], key=classes.index)
    print(f"{len(pool)} supersenses in the pool; zero-shot {len(pool)}-way id_val accuracy "
          f"{100 * float((pred == labels['id_val']).mean()):.1f} %; id_val recall per class:")
    print("  " + ", ".join(f"{c} {recall[c]:.0f}" for c in sorted(recall, key=lambda c: -recall[c])))
    print(f"chosen on id_val (top {opts.k}): {chosen}")

    if opts.nuisance == "leet":   # a nuisance on the ID side only, as the vision track's ID texture
        splits["clean"] = splits["id_test"]
        splits = {k: (v if k not in ("train", "id_val", "id_test") else _with_texts(v, [leet(t) for t in v.texts]))
                  for k, v in splits.items()}
    keep = [classes.index(c) for c in chosen]
    remap = {old: new for new, old in enumerate(keep)}
    sub = {}
    for name, split in splits.items():
        rows = [i for i, y in enumerate(split.labels) if int(y) in remap]
        sub[name] = ([split.texts[i] for i in rows], np.array([remap[int(split.labels[i])] for i in rows]))
    ids = {k: tokenize(t, tok, MAX_LEN, 0) for k, (t, _) in sub.items()}
    y = {k: v for k, (_, v) in sub.items()}
    emb = emb_all[keep]
    feats = {k: features(clf, v) for k, v in ids.items()}
    scale = fit_scale(feats["id_val"], torch.as_tensor(y["id_val"]), emb)
    out: dict = {"pool": pool, "id_val_recall_all": recall, "chosen": chosen, "scale": scale, "sizes":
                 {k: len(v) for k, v in y.items()}}
    evals = tuple(k for k in ("id_val", "id_test", "ood_val", "ood_test", "lemmas", "clean") if k in y)
    out["teacher"] = {k: accuracy(zeroshot_logits(feats[k], emb, scale), y[k]) for k in evals}
    from sklearn.linear_model import LogisticRegression

    xtr = F.normalize(feats["train"], dim=-1).numpy()
    probes = {c: LogisticRegression(C=c, max_iter=3000).fit(xtr, y["train"]) for c in (0.1, 1.0, 10.0, 100.0)}
    c_best = max(probes, key=lambda c: probes[c].score(F.normalize(feats["id_val"], dim=-1).numpy(), y["id_val"]))
    out["probe"] = {"C": c_best, **{k: 100.0 * probes[c_best].score(F.normalize(feats[k], dim=-1).numpy(), y[k])
                                     for k in evals}}
    print(f"{opts.k} classes; sizes {out['sizes']}; scale {scale}")
    print(f"teacher (zero-shot): {out['teacher']}")
    print(f"probe on ID train (C={c_best}, chosen on id_val): { {k: round(v, 1) for k, v in out['probe'].items()} }")

    base = ZeroShotClassifier(clf, emb, scale)
    theta_t = {k: v.clone() for k, v in base.state_dict().items()}
    alphas = [round(0.1 * i, 1) for i in range(11)]
    out["runs"] = []
    for p in opts.ps:
        for lr in opts.lrs:
            for seed in opts.seeds:
                gen = np.random.default_rng([seed, int(p * 100)])
                texts = [f"{CODES[c]} {t}" if gen.random() < p else t for t, c in zip(*sub["train"])]
                train_ids = tokenize(texts, tok, MAX_LEN, 0)
                base.load_state_dict(theta_t)
                state, epoch = finetune(base, train_ids, y["train"], (ids["id_val"], y["id_val"]), lr, seed)
                curve = {}
                for a in alphas:
                    base.load_state_dict({k: (1 - a) * theta_t[k] + a * state[k] for k in state})
                    curve[a] = {k: accuracy(predict(base, ids[k]), y[k]) for k in ("id_val", "ood_val", "ood_test", "lemmas", "clean")
                                if k in y}
                base.load_state_dict(state)
                ft = {k: accuracy(predict(base, ids[k]), y[k]) for k in evals}
                run = {"p": p, "lr": lr, "seed": seed, "epoch": epoch, "ft": ft, "wiseft": curve}
                out["runs"].append(run)
                peak = max(alphas, key=lambda a: (curve[a]["ood_val"], -a))
                print(f"p={p} lr={lr:g} seed={seed} epoch={epoch}: FT {ft}; WiSE-FT ood_val peak at α={peak} "
                      f"({curve[peak]['ood_val']:.1f}); curve ood_test "
                      f"{[round(curve[a]['ood_test'], 1) for a in alphas]}  [{time.time() - t0:.0f} s]", flush=True)
    if opts.out:
        with open(opts.out, "w") as fh:
            json.dump(out, fh, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
