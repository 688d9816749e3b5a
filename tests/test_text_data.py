"""The language track's text sources (Bible via diatheke, WordNet 3.0) and its candidate benchmark splits."""
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rtd.errors import RTDError
from rtd.tracks.text import bible, candidates, wordnet
from rtd.tracks.text.bible import BOOKS, GENRES, clean_verse
from rtd.tracks.text.candidates import CANDIDATES, SPLITS, build_candidate, candidate_config

INSTALL = "scripts/install_text_data.sh (sudo apt-get install sword-text-kjv sword-text-web diatheke wordnet-base)"
WORDNET_ROOT = Path("/usr/share/wordnet")


def _have_bibles() -> bool:
    if shutil.which("diatheke") is None:
        return False
    out = subprocess.run(["diatheke", "-b", "system", "-k", "modulelist"], capture_output=True, text=True).stdout
    return bible.KJV in out and bible.WEB in out


need_bible = pytest.mark.skipif(not _have_bibles(), reason=f"needs the SWORD Bibles: {INSTALL}")
need_wordnet = pytest.mark.skipif(not (WORDNET_ROOT / "data.noun").is_file(), reason=f"needs WordNet: {INSTALL}")


@pytest.fixture(scope="module")
def verses():
    if not _have_bibles():
        pytest.skip(f"needs the SWORD Bibles: {INSTALL}")
    return bible.aligned_verses()


@pytest.fixture(scope="module")
def by_ref(verses):
    return {(v.book, v.chapter, v.verse): v for v in verses}


@pytest.fixture(scope="module")
def synsets():
    if not (WORDNET_ROOT / "data.noun").is_file():
        pytest.skip(f"needs WordNet: {INSTALL}")
    return wordnet.read_synsets()


def _splits_equal(a: dict, b: dict) -> bool:
    return all(a[s].texts == b[s].texts and a[s].ids == b[s].ids and np.array_equal(a[s].labels, b[s].labels)
               and np.array_equal(a[s].domains, b[s].domains) and np.array_equal(a[s].groups, b[s].groups)
               for s in SPLITS)


def _chapter(provenance: str) -> tuple[str, int]:
    ref = provenance.split("/")[0]
    book, cv = ref.rsplit(" ", 1)
    return book, int(cv.split(":")[0])


# --- Bible cleaning ------------------------------------------------------------------------------------------

def test_clean_verse_rules():
    assert clean_verse('In the <w savlm="x">beginning</w>, <w savlm="y">God</w><w savlm="z">created</w> it.') \
        == "In the beginning, God created it."
    assert clean_verse('shall more be <w savlm="x">give</w>n.</q>') == "shall more be given."
    assert clean_verse('a sabbath <w savlm="a">day</w>’<w savlm="b">s</w> journey') == "a sabbath day's journey"
    assert clean_verse('<w>weeds</w></q><q marker=""><w>also</w> among') == "weeds also among"
    assert clean_verse('said, “<w>Let</w> there be light.”</q><w>Then</w>') == 'said, "Let there be light." Then'
    assert clean_verse('¶ The <title type="psalm">A Psalm.</title>end<note>n</note>.') == "The end."
    assert clean_verse('Amen. <div eID="g1" osisID="Rev" type="book"/> <div type="glossary"/> Abba is') == "Amen."
    assert clean_verse('<l eID="1"/>') == ""


@need_bible
def test_known_verses(by_ref):
    gen = by_ref[("Genesis", 1, 1)]
    assert gen.kjv == "In the beginning God created the heaven and the earth."
    assert gen.web == "In the beginning, God created the heavens and the earth."  # raw: God</w><w>created
    ps = by_ref[("Psalms", 3, 1)]  # superscription "A Psalm of David, when he fled from Absalom his son."
    assert ps.kjv == "LORD, how are they increased that trouble me! many are they that rise up against me."
    assert ps.web.startswith("Yahweh, how my adversaries have increased!")
    assert "Absalom" not in ps.kjv + ps.web + by_ref[("Psalms", 3, 2)].kjv
    assert by_ref[("Psalms", 42, 8)].web.startswith("Yahweh will command")  # raw: Yahweh<w>will
    assert "darnel weeds also among" in by_ref[("Matthew", 13, 25)].web  # raw: weeds</w></q><q><w>also
    assert by_ref[("Acts", 1, 12)].kjv.endswith("a sabbath day's journey.")  # raw: day</w>'<w>s
    rev = by_ref[("Revelation of John", 22, 21)]
    assert rev.web == "The grace of the Lord Jesus Christ be with all the saints. Amen."
    assert rev.kjv == "The grace of our Lord Jesus Christ be with you all. Amen."


@need_bible
def test_all_verses_clean(verses):
    assert 31_000 <= len(verses) <= 31_102
    texts = [t for v in verses for t in (v.kjv, v.web)]
    assert all(t and t == t.strip() and "  " not in t for t in texts)
    assert not [t for t in texts if re.search(r"[<>{}¶“”‘’]", t)]
    assert not [v.ref for v in verses if re.search(r"[cC]hief [mM]usician|Psalm (of|by) David", v.kjv + v.web)]
    assert not [t for t in texts if "glossary" in t.lower()]
    order = [(bible.BOOK_INDEX[v.book], v.chapter, v.verse) for v in verses]
    assert order == sorted(order) and len(set(order)) == len(order)
    assert {v.book for v in verses} == {b for b, _ in BOOKS}
    assert all(v.genre == GENRES.index(dict(BOOKS)[v.book]) for v in verses)


def test_books_and_genres():
    names = [b for b, _ in BOOKS]
    assert len(BOOKS) == 66 and len(set(names)) == 66
    assert names[0] == "Genesis" and names[-1] == "Revelation of John"
    assert {g for _, g in BOOKS} == set(GENRES) and len(GENRES) == 8
    genre = dict(BOOKS)
    assert genre["Deuteronomy"] == "law" and genre["Esther"] == "history" and genre["Song of Solomon"] == "wisdom"
    assert genre["Malachi"] == "prophets" and genre["Acts"] == "gospels_acts" and genre["Philemon"] == "pauline"
    assert genre["Hebrews"] == "general_epistles" and genre["Jude"] == "general_epistles"


def test_missing_bible_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RTDError, match="install_text_data.sh"):
        bible.read_bible(bible.KJV)


@pytest.mark.skipif(shutil.which("diatheke") is None, reason=f"needs diatheke: {INSTALL}")
def test_missing_module_is_one_clear_error():
    with pytest.raises(RTDError, match="sudo apt-get install sword-text-kjv sword-text-web diatheke"):
        bible.read_bible("engNoSuchModule")


# --- WordNet -------------------------------------------------------------------------------------------------

def test_lexnames():
    assert len(wordnet.LEXNAMES) == 45 and len(set(wordnet.LEXNAMES)) == 45
    assert wordnet.LEXNAMES[5] == "noun.animal" and wordnet.LEXNAMES[44] == "adj.ppl"


def test_gloss_split():
    assert wordnet.split_gloss('bite gently; "The woman nibbled"; " she  ate "  ') == \
        ("bite gently", ("The woman nibbled", "she ate"))
    gloss = 'progress (especially in the phrase "make strides")'
    assert wordnet.split_gloss(gloss) == (gloss, ())


@need_wordnet
def test_wordnet_dog(synsets):
    dog = next(s for s in synsets if s.pos == "n" and s.offset == "02084071")
    assert dog.lexname == "noun.animal" and "dog" in dog.words
    assert dog.definition.startswith("a member of the genus Canis")
    assert any("bark" in e for e in dog.examples) and not any('"' in e for e in dog.examples)
    assert len(synsets) == 82115 + 13767  # WordNet 3.0 nouns + verbs
    assert {s.pos for s in synsets} == {"n", "v"}


def test_missing_wordnet_is_one_clear_error(tmp_path):
    with pytest.raises(RTDError, match="install_text_data.sh.*wordnet-base"):
        wordnet.read_synsets(str(tmp_path))


# --- candidates ----------------------------------------------------------------------------------------------

def test_candidate_config():
    assert set(candidates.DEFAULTS) == set(CANDIDATES)
    assert candidate_config("wordnet", {"train_per_class": 10})["train_per_class"] == 10
    with pytest.raises(RTDError, match="valid options"):
        candidate_config("wordnet", {"no_such_option": 1})
    with pytest.raises(RTDError, match="bible_books"):
        candidate_config("nope")


def _check_common(splits: dict, names: list[str]) -> None:
    assert set(splits) == set(SPLITS)
    for s in splits.values():
        n = len(s)
        assert len(s.texts) == len(s.ids) == n == len(s.labels) == len(s.domains) == len(s.groups) > 0
        assert s.labels.dtype == s.domains.dtype == s.groups.dtype == np.int64
        assert s.labels.min() >= 0 and s.labels.max() < len(names)
        assert np.array_equal(s.groups, s.labels * len(s.domain_names) + s.domains)
    texts = [t for s in splits.values() for t in s.texts]
    assert len(texts) == len(set(texts))  # no text is shown twice in a candidate


@need_wordnet
def test_wordnet_candidate(synsets):
    splits, names = build_candidate("wordnet", {}, seed=0)
    _check_common(splits, names)
    assert names == list(candidates.WORDNET_CLASSES)
    assert [len(splits[s]) for s in SPLITS] == [2000, 512, 1000, 512, 1000]
    assert all((np.bincount(splits[s].labels) == np.bincount(splits[s].labels)[0]).all() for s in SPLITS)
    by_id = {s.id: s for s in synsets}
    units = {s: {i.split("/")[0] for i in splits[s].ids} for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not units[a] & units[b], (a, b)
    for name, split in splits.items():
        ood = name.startswith("ood")
        assert split.domain_names == ["definition", "example"]
        assert (split.domains == int(ood)).all()
        for text, pid, label in zip(split.texts, split.ids, split.labels):
            syn = by_id[pid.split("/")[0]]
            assert syn.lexname == names[label]
            assert text in syn.examples if ood else text == syn.definition
            assert pid.endswith("/def") != ood
            assert name == "train" or syn.examples  # evaluation synsets all have a usage example
    again, _ = build_candidate("wordnet", candidate_config("wordnet"), seed=0)
    assert _splits_equal(splits, again)
    other, _ = build_candidate("wordnet", {"example": "random"}, seed=1)
    assert other["train"].ids != splits["train"].ids


@need_bible
def test_bible_books_candidate(verses, by_ref):
    splits, names = build_candidate("bible_books", {}, seed=0, verses=verses)
    _check_common(splits, names)
    assert names == list(GENRES)
    chapters = {s: {_chapter(i) for i in splits[s].ids} for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not chapters[a] & chapters[b], (a, b)
    books = {s: {b for b, _ in chapters[s]} for s in SPLITS}
    id_books = books["train"] | books["id_val"] | books["id_test"]
    rev = "Revelation of John"  # the only apocalyptic book: split by chapter instead
    assert (books["ood_val"] | books["ood_test"]) & id_books == {rev}
    assert books["ood_val"] & books["ood_test"] == {rev}
    assert max(c for b, c in chapters["train"] if b == rev) < min(c for b, c in chapters["ood_test"] if b == rev)
    for name, split in splits.items():
        web = name.startswith("ood")
        assert split.domain_names == ["kjv", "web"] and (split.domains == int(web)).all()
        for text, pid, label in zip(split.texts, split.ids, split.labels):
            ref, version = pid.split("/")
            book, cv = ref.rsplit(" ", 1)
            v = by_ref[(book, *map(int, cv.split(":")))]
            assert version == ("web" if web else "kjv") and text == (v.web if web else v.kjv)
            assert label == v.genre
    for s in SPLITS:  # balanced, except apocalyptic, which has too few verses
        counts = np.bincount(splits[s].labels, minlength=8)
        target = candidates.DEFAULTS["bible_books"][f"{s}_per_class"]
        assert (counts[:7] == target).all() and 0 < counts[7] <= target, s
    assert _splits_equal(splits, build_candidate("bible_books", {}, seed=0, verses=verses)[0])


@need_bible
def test_bible_style_candidate(verses):
    cfg = candidate_config("bible_style")
    splits, names = build_candidate("bible_style", cfg, seed=0, verses=verses)
    _check_common(splits, names)
    chapters = {s: {_chapter(i) for i in splits[s].ids} for s in SPLITS}
    for a in SPLITS:
        for b in SPLITS:
            assert a == b or not chapters[a] & chapters[b], (a, b)
    for split in splits.values():
        refs = [i.split("/")[0] for i in split.ids]
        assert len(refs) == len(set(refs))  # one version per verse
        assert all(i.endswith(("/kjv", "/web")[d]) for i, d in zip(split.ids, split.domains))
    for name, split in splits.items():
        early = split.labels < 4
        kjv_early = (split.domains[early] == 0).mean()
        kjv_late = (split.domains[~early] == 0).mean()
        if name.startswith("ood"):
            assert kjv_early < 0.15 and kjv_late > 0.85, name  # the correlation is reversed
        else:
            assert kjv_early > 0.85 and kjv_late < 0.15, name
    counts = np.bincount(splits["ood_test"].groups, minlength=16)
    assert counts.min() >= cfg["min_group"] and len(counts) == 16
    assert _splits_equal(splits, build_candidate("bible_style", cfg, seed=0, verses=verses)[0])
    assert splits["train"].ids != build_candidate("bible_style", cfg, seed=1, verses=verses)[0]["train"].ids
