"""Text OOD transforms: synonym swaps, back-translation, jargon, HotFlip and generate_text_ood."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from rtd.errors import RTDError
from rtd.tracks.text import ood as T
from rtd.tracks.text.nltk_data import LEXNAMES, ensure_nltk_data

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Patient presents with acute chest pain and elevated troponin levels.",
    "The court dismissed the appeal because the contract was signed under duress.",
    "She quickly walked to the old market to buy fresh bread.",
    "Engineers discovered serious cracks in the bridge.",
    "Researchers believe the new drug reduces symptoms in most patients.",
]
LABELS = np.array([0, 1, 2, 0, 1, 2])
HAVE_WORDNET = Path("/usr/share/wordnet/data.noun").is_file()
HAVE_APERTIUM = shutil.which("apertium") is not None and Path("/usr/share/apertium/modes/eng-spa.mode").exists()
INSTALL = "install the Debian text data: scripts/install_text_data.sh (apt-get install {})"
needs_wordnet = pytest.mark.skipif(not HAVE_WORDNET, reason=INSTALL.format("wordnet-base wordnet-sense-index"))
needs_apertium = pytest.mark.skipif(not HAVE_APERTIUM, reason=INSTALL.format("apertium apertium-eng-spa"))


@pytest.fixture(scope="module")
def nltk_root(tmp_path_factory) -> Path:
    if not HAVE_WORDNET:
        pytest.skip(INSTALL.format("wordnet-base wordnet-sense-index"))
    root = tmp_path_factory.mktemp("nltk") / "nltk_data"
    ensure_nltk_data(str(root))
    return root


@pytest.fixture(scope="module")
def synonym(nltk_root) -> T.SynonymSwap:
    return T.SynonymSwap(0.3)


@pytest.fixture(scope="module")
def tokenizer():
    from rtd.tracks.text.models import load_tokenizer

    return load_tokenizer({"name": "minilm"})


def tiny_classifier(vocab_size: int, num_classes: int = 3, seed: int = 0):
    from transformers import BertConfig, BertModel

    from rtd.tracks.text.models import TextClassifier

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    return TextClassifier(BertModel(cfg, add_pooling_layer=False), 16, num_classes, pad_id=0).eval()


# ------------------------------------------------------------------------------------ nltk data
def test_nltk_data_layout_is_complete_and_idempotent(nltk_root):
    wordnet = nltk_root / "corpora" / "wordnet"
    assert not (wordnet / "data.noun").is_symlink() and (wordnet / "data.noun").is_file()
    lex = (wordnet / "lexnames").read_text().splitlines()
    assert len(lex) == len(LEXNAMES) == 45 and lex[0] == "00\tadj.all\t3" and lex[44] == "44\tadj.ppl\t3"
    assert "the" in (nltk_root / "corpora" / "stopwords" / "english").read_text().split()
    assert (nltk_root / "textattack" / "post_install_check_3").is_file()
    assert os.environ["NLTK_DATA"] == str(nltk_root.resolve())
    start = time.perf_counter()
    ensure_nltk_data(str(nltk_root))
    assert time.perf_counter() - start < 0.5
    assert not [p for p in (nltk_root / "corpora").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_missing_wordnet_names_the_install_script(tmp_path, monkeypatch):
    from rtd.tracks.text import nltk_data

    monkeypatch.setattr(nltk_data, "DEBIAN_WORDNET", tmp_path / "absent")
    with pytest.raises(RTDError, match="install_text_data.sh"):
        ensure_nltk_data(str(tmp_path / "root"))
    assert not (tmp_path / "root" / "corpora" / "wordnet").exists()


# ------------------------------------------------------------------------------------ synonyms
@needs_wordnet
def test_synonym_swap_changes_text_deterministically(synonym):
    a = synonym(SENTENCES, np.random.default_rng(0))
    assert len(a) == len(SENTENCES) and all(x != s for x, s in zip(a, SENTENCES))
    assert a == synonym(SENTENCES, np.random.default_rng(0))
    assert a != synonym(SENTENCES, np.random.default_rng(1))
    assert all(x[0].isupper() and x.endswith(".") for x in a)            # case and punctuation kept
    assert synonym(["the of and", ""], np.random.default_rng(0)) == ["the of and", ""]   # stopwords only


# ------------------------------------------------------------------------------------ jargon
def test_jargon_list_inserts_ceil_rate_terms_deterministically():
    j = T.JargonInsert(0.2, ["idiopathic", "sequelae"])
    a = j(SENTENCES, np.random.default_rng(0))
    assert a == j(SENTENCES, np.random.default_rng(0)) and a != j(SENTENCES, np.random.default_rng(1))
    for before, after in zip(SENTENCES, a):
        added = len(after.split()) - len(before.split())
        assert added == T.n_edits(0.2, before) and (after.count("idiopathic") + after.count("sequelae")) == added


def test_jargon_dict_substitutes_matches_first():
    j = T.JargonInsert(0.5, {"chest pain": ["angina"], "Dog": ["canine"], "fast": ["expeditious"]})
    out = j(["The DOG saw the dog.", "Acute chest  pain today.", "Nothing matches here."], np.random.default_rng(0))
    assert out[0] == "The CANINE saw the canine."                       # ceil(0.5 * 5) = 3 >= 2 matches
    assert out[1] == "Acute angina today."
    assert len(out[2].split()) == 3 + T.n_edits(0.5, "Nothing matches here.")   # no match: insert instead


# ------------------------------------------------------------------------------------ back-translation
@needs_apertium
def test_apertium_back_translation_keeps_one_output_per_input_in_order():
    bt = T.BackTranslate("apertium")
    inputs = SENTENCES + ["", "...!!! ???", "the red", "car is fast", "*** @@ <b>x</b> [y] \\ ^z^ #tag", "two\nlines"]
    out = bt(inputs, np.random.default_rng(0))
    assert len(out) == len(inputs)
    assert out[6] == "" and out[7] == "...!!! ???" and out[8].lower() == "the red"   # no reordering across lines
    assert out[10].startswith("*** @@ <b>") and "^z^" in out[10] and "\n" not in out[11]   # markup passes through
    assert sum(o != s for o, s in zip(out[:6], SENTENCES)) >= 3               # a real paraphrase
    assert not any(w.startswith(("*", "@")) for o in out[:6] for w in o.split())
    assert out == bt(inputs, np.random.default_rng(1))                       # rule-based: no randomness


def test_marian_offline_fails_fast_with_one_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(RTDError) as err:
        T.BackTranslate("marian")
    assert time.perf_counter() - start < 5
    msg = str(err.value)
    assert "huggingface-cli download" in msg and "opus-mt-en-ROMANCE" in msg and "engine: apertium" in msg


def test_unknown_engine_and_options_are_rejected():
    with pytest.raises(RTDError, match="apertium, marian"):
        T.BackTranslate("google")
    with pytest.raises(RTDError, match="unknown option"):
        T.build_text_transform("jargon", {"rate": 0.1, "vocabulary": ["x"], "ratio": 2})


# ------------------------------------------------------------------------------------ HotFlip
def _hotflip_setup():
    model = tiny_classifier(50)
    ids = torch.tensor([[1, 11, 23, 7, 40, 2, 0, 0],
                        [1, 5, 9, 33, 18, 27, 44, 2],
                        [1, 8, 2, 0, 0, 0, 0, 0]])
    labels = torch.tensor([0, 2, 1])
    return model, ids, labels, torch.arange(5, 50), [1, 2]


def _loss(model, ids, labels):
    with torch.no_grad():
        return F.cross_entropy(model(ids), labels, reduction="none")


def test_hotflip_picks_the_largest_first_order_estimate():
    model, ids, labels, cand, special = _hotflip_setup()
    out = T.hotflip(model, ids, labels, 1, cand, special)
    assert all(p.grad is None for p in model.parameters()) and not model.training
    emb = model.input_embeddings().weight.detach()
    embeds = model.input_embeddings()(ids).detach().requires_grad_(True)
    loss = F.cross_entropy(model.head(model.features_from_embeds(embeds, ids != 0)), labels, reduction="sum")
    (g,) = torch.autograd.grad(loss, embeds)
    for n in range(len(ids)):
        best, best_at = -float("inf"), None
        for i in range(ids.shape[1]):
            if ids[n, i] in (0, *special):
                continue
            for v in cand.tolist():
                if v != ids[n, i]:
                    est = float((emb[v] - emb[ids[n, i]]) @ g[n, i])
                    if est > best:
                        best, best_at = est, (i, v)
        changed = (out[n] != ids[n]).nonzero().flatten().tolist()
        assert changed == [best_at[0]] and int(out[n, best_at[0]]) == best_at[1]
    assert (out[ids == 0] == 0).all() and (out[:, 0] == 1).all()


def test_hotflip_swap_increases_the_true_loss_and_respects_swap_count():
    model, ids, labels, cand, special = _hotflip_setup()
    one = T.hotflip(model, ids, labels, 1, cand, special)
    assert (_loss(model, one, labels) > _loss(model, ids, labels)).all()
    three = T.hotflip(model, ids, labels, 3, cand, special)
    n_changed = (three != ids).sum(dim=1).tolist()
    assert n_changed == [3, 3, 1]      # the last sentence has a single swappable position
    assert torch.equal(three, T.hotflip(model, ids, labels, 3, cand, special))


def test_candidate_vocab_is_whole_alphabetic_words(tokenizer):
    cand = T.candidate_vocab(tokenizer)
    tokens = tokenizer.convert_ids_to_tokens(cand.tolist())
    assert len(tokens) > 10000 and all(t.isalpha() and len(t) >= 3 and not t.startswith("##") for t in tokens)
    assert not set(cand.tolist()) & set(tokenizer.all_special_ids)


# ------------------------------------------------------------------------------------ generate_text_ood
@needs_apertium
@needs_wordnet
def test_generate_text_ood_returns_aligned_arrays(tokenizer, nltk_root):
    from rtd.tracks.text.models import tokenize

    max_len = 32
    ids = tokenize(SENTENCES, tokenizer, max_len, 0)
    teacher = tiny_classifier(tokenizer.vocab_size)
    cfg = {"seed": 3, "copies_per_example": 4, "transforms": list(T.TEXT_TRANSFORMS),
           "synonym": {"fraction": 0.2}, "backtranslate": {"engine": "apertium"},
           "jargon": {"rate": 0.1, "vocabulary": ["idiopathic", "estoppel"]}, "hotflip": {"swaps": 2, "batch_size": 5}}
    d = T.generate_text_ood(SENTENCES, ids, LABELS, cfg, tokenizer, max_len, 0, teacher=teacher)
    m = len(SENTENCES) * 4
    assert d["ids"].shape == (m, max_len) and d["ids"].dtype == np.int64 and len(d["texts"]) == m
    assert np.array_equal(d["source"], np.repeat(np.arange(6), 4)) and np.array_equal(d["labels"], LABELS[d["source"]])
    assert set(d["transform"].tolist()) == {0, 1, 2, 3}
    hot = d["transform"] == 3
    assert (d["ids"][hot] != ids[d["source"][hot]]).sum(axis=1).min() == 2
    text_made = [t for t, h in zip(d["texts"], hot) if not h]
    assert np.array_equal(d["ids"][~hot], tokenize(text_made, tokenizer, max_len, 0))
    again = T.generate_text_ood(SENTENCES, ids, LABELS, cfg, tokenizer, max_len, 0, teacher=teacher)
    assert again["texts"] == d["texts"] and np.array_equal(again["ids"], d["ids"])
    with pytest.raises(RTDError, match="teacher"):
        T.generate_text_ood(SENTENCES, ids, LABELS, {**cfg, "transforms": ["hotflip"]}, tokenizer, max_len, 0)
