"""The zero-shot text head (rtd.tracks.text.zeroshot): prompt ensembles, cosine logits, the scale, WordNet prompts."""
from __future__ import annotations

import math

import pytest
import torch

from rtd.errors import RTDError
from rtd.tracks.text.zeroshot import class_embeddings, encode_prompts, fit_scale, supersense_prompts, zeroshot_logits

# a tiny "encoder": each text has a fixed 2-d feature
TINY = {"a": [1.0, 0.0], "b": [0.0, 2.0], "c": [3.0, 4.0], "x": [2.0, 0.0], "y": [0.0, -5.0]}


def encode(texts: list[str]) -> torch.Tensor:
    return torch.tensor([TINY[t] for t in texts])


def test_zero_shot_logits_from_prompts_by_hand():
    emb = encode_prompts([["a", "b"], ["c"]], encode)
    # class 0: mean of (1, 0) and (0, 1) = (.5, .5), normalised; class 1: (3, 4) / 5
    r = 1 / math.sqrt(2)
    assert torch.allclose(emb, torch.tensor([[r, r], [0.6, 0.8]]))
    logits = zeroshot_logits(encode(["x", "y"]), emb, scale=10.0)
    # x = (1, 0) after normalisation, y = (0, -1)
    assert torch.allclose(logits, torch.tensor([[10 * r, 6.0], [-10 * r, -8.0]]), atol=1e-6)


def test_prompt_norms_do_not_weigh_the_ensemble():
    """Each prompt is normalised before averaging: a long prompt vector does not dominate."""
    assert torch.allclose(class_embeddings([torch.tensor([[1.0, 0.0], [0.0, 100.0]])]),
                          class_embeddings([torch.tensor([[5.0, 0.0], [0.0, 1.0]])]))


def test_fit_scale_minimises_nll_on_the_grid():
    emb = torch.eye(2)
    # two identical texts with opposite labels: NLL(s) = (log(1 + e^-s) + log(1 + e^s)) / 2, smallest at the smallest s
    feats = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert fit_scale(feats, torch.tensor([0, 1]), emb, grid=[1.0, 2.0, 3.0]) == 1.0
    # every text on its class: the NLL falls with s, so the largest scale of the grid
    assert fit_scale(feats, torch.tensor([0, 0]), emb, grid=[1.0, 2.0, 3.0]) == 3.0


def test_a_class_without_prompts_is_an_error():
    with pytest.raises(RTDError, match="at least one prompt"):
        class_embeddings([torch.ones(1, 2), torch.ones(0, 2)])


def test_supersense_prompts_come_from_wordnet():
    from rtd.tracks.text.wordnet import read_synsets

    synsets = read_synsets()
    prompts = supersense_prompts("noun.animal", synsets)
    assert prompts[0] == "nouns denoting animals"
    assert prompts[1].startswith("animal, animate being, beast, brute, creature, fauna: a living organism")
    assert prompts[2:] == ["a word about animal", "the meaning of animal", "something to do with animal"]
    assert supersense_prompts("verb.motion", synsets)[1].startswith("travel, go, move, locomote: change location")
    with pytest.raises(RTDError, match="no prompts"):
        supersense_prompts("noun.unicorn", synsets)


# --- the pipeline's use: class selection on id_val, the leetspeak nuisance, the teacher's head ---------------------

def test_select_classes_keeps_the_best_recall_on_id_val_in_class_order():
    from rtd.tracks.text.zeroshot import select_classes

    emb = torch.eye(3)
    # class 0: 2/2 right; class 1: 1/2 right (one predicted as 2); class 2: 2/2 right -> keep 0 and 2
    feats = torch.tensor([[1.0, 0, 0], [1.0, 0.1, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 1.0], [0, 0.2, 1.0]])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    chosen, recall = select_classes(feats, labels, emb, ["a", "b", "c"], 2)
    assert chosen == ["a", "c"] and recall == {"a": 100.0, "b": 50.0, "c": 100.0}
    # ties (all at 100 %) keep the earlier classes
    chosen, _ = select_classes(torch.eye(3), torch.tensor([0, 1, 2]), emb, ["a", "b", "c"], 2)
    assert chosen == ["a", "b"]
    with pytest.raises(RTDError, match="zeroshot_top_k"):
        select_classes(feats, labels, emb, ["a", "b", "c"], 4)


def test_supersense_pool_counts_synsets_with_examples():
    from types import SimpleNamespace

    from rtd.tracks.text.zeroshot import supersense_pool

    syn = [SimpleNamespace(lexname="noun.time", examples=("x",))] * 3 + \
          [SimpleNamespace(lexname="noun.act", examples=("x",))] * 2 + \
          [SimpleNamespace(lexname="noun.act", examples=())] * 5 + [SimpleNamespace(lexname="noun.Tops", examples=("x",))] * 9
    assert supersense_pool(syn, need=2, margin=1) == ["noun.time"]
    assert supersense_pool(syn, need=1, margin=1) == ["noun.act", "noun.time"]   # never noun.Tops


def test_leetspeak_only_on_the_id_splits():
    import numpy as np

    from rtd.tracks.text.candidates import TextSplit
    from rtd.tracks.text.data import apply_nuisance, leetspeak

    assert leetspeak("Seasons Of Time") == "53450n5 0f t1m3"

    def split(texts):
        n = len(texts)
        return TextSplit(list(texts), np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), ["d"],
                         np.zeros(n, dtype=np.int64), [str(i) for i in range(n)])

    splits = {k: split([f"a sentence of {k}"]) for k in ("train", "id_val", "id_test", "ood_val", "ood_test")}
    out = apply_nuisance(splits, "leet")
    for k in ("train", "id_val", "id_test"):
        assert out[k].texts == [leetspeak(f"a sentence of {k}")] and out[k].texts != splits[k].texts
    for k in ("ood_val", "ood_test"):
        assert out[k].texts == splits[k].texts   # OOD stays clean
    assert apply_nuisance(splits, "none")["train"].texts == splits["train"].texts


def test_restrict_classes_relabels_and_keeps_the_rest():
    import numpy as np

    from rtd.tracks.text.candidates import TextSplit
    from rtd.tracks.text.data import restrict_classes

    s = TextSplit(["a", "b", "c", "d"], np.array([0, 2, 1, 2]), np.array([0, 1, 0, 1]), ["x", "y"],
                  np.array([0, 5, 2, 5]), ["i0", "i1", "i2", "i3"])
    r = restrict_classes(s, [2, 0])
    assert r.texts == ["a", "b", "d"] and r.labels.tolist() == [1, 0, 0] and r.ids == ["i0", "i1", "i3"]
    assert r.domains.tolist() == [0, 1, 1] and r.groups.tolist() == [2, 1, 1]


def test_the_zero_shot_selection_never_reads_the_ood_splits(tmp_path, monkeypatch):
    """Scrambling every OOD split of the pool (texts and labels) leaves the chosen classes unchanged; the kept
    classes' rows are relabelled in every split."""
    import dataclasses

    import numpy as np

    from tests.helpers import write_tiny_bert

    import rtd.tracks.text.candidates as candidates
    from rtd.tracks.text.data import _zeroshot_candidate

    write_tiny_bert(tmp_path / "bert")
    spec = {"name": "minilm", "num_classes": 3, "path": str(tmp_path / "bert")}
    cfg = {"dataset": "wordnet", "seed": 1234, "max_len": 24, "zeroshot_top_k": 3,
           "candidate": {"classes": ["noun.time", "noun.person", "verb.motion", "noun.location", "verb.contact"],
                         "train_per_class": 4, "id_val_per_class": 6, "id_test_per_class": 2,
                         "ood_val_per_class": 2, "ood_test_per_class": 2}}
    splits, chosen, record = _zeroshot_candidate(cfg, spec)
    assert len(chosen) == 3 and record["chosen"] == chosen and set(record["id_val_recall"]) == set(record["pool"])
    assert all(set(s.labels.tolist()) <= {0, 1, 2} for s in splits.values())
    build = candidates.build_candidate

    def scrambled(*args, **kwargs):
        out, classes = build(*args, **kwargs)
        rng = np.random.default_rng(0)
        for k in ("ood_val", "ood_test"):
            out[k] = dataclasses.replace(out[k], texts=["zzz"] * len(out[k]), labels=rng.permutation(out[k].labels))
        return out, classes

    monkeypatch.setattr(candidates, "build_candidate", scrambled)
    assert _zeroshot_candidate(cfg, spec)[1] == chosen


def test_wordnet_zeroshot_head_is_scale_times_the_class_embeddings():
    from rtd.tracks.text.zeroshot import wordnet_zeroshot_head

    from rtd.tracks.text.wordnet import read_synsets

    def lengths(texts: list[str]) -> torch.Tensor:   # a deterministic 2-d "encoder" of any text
        return torch.tensor([[float(len(t)), 1.0 + t.count("e")] for t in texts])

    classes = ["noun.time", "verb.motion"]
    feats = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    weight, bias, scale = wordnet_zeroshot_head(classes, lengths, feats, torch.tensor([0, 1]))
    synsets = read_synsets()
    emb = encode_prompts([supersense_prompts(c, synsets) for c in classes], lengths)
    assert torch.allclose(weight, scale * emb) and torch.equal(bias, torch.zeros(2))
    assert scale == fit_scale(feats, torch.tensor([0, 1]), emb)
