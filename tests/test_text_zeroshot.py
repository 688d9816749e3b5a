"""The zero-shot text head (rtd.text.zeroshot): prompt ensembles, cosine logits, the scale, WordNet prompts."""
from __future__ import annotations

import math

import pytest
import torch

from rtd.errors import RTDError
from rtd.text.zeroshot import class_embeddings, encode_prompts, fit_scale, supersense_prompts, zeroshot_logits

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
    from rtd.text.wordnet import read_synsets

    synsets = read_synsets()
    prompts = supersense_prompts("noun.animal", synsets)
    assert prompts[0] == "nouns denoting animals"
    assert prompts[1].startswith("animal, animate being, beast, brute, creature, fauna: a living organism")
    assert prompts[2:] == ["a word about animal", "the meaning of animal", "something to do with animal"]
    assert supersense_prompts("verb.motion", synsets)[1].startswith("travel, go, move, locomote: change location")
    with pytest.raises(RTDError, match="no prompts"):
        supersense_prompts("noun.unicorn", synsets)
