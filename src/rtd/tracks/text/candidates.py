"""Candidate benchmark splits of the language track (shared/PILOTS.md, "Text: candidate splits").

Each candidate returns the five splits ``train, id_val, id_test, ood_val, ood_test`` as ``TextSplit`` and the
class names. Sizes are per class (``DEFAULTS``); a class with fewer units than asked gets what there is.
No text appears twice in a candidate: a verse or gloss whose text was already drawn (formulae such as "And
the LORD spake unto Moses, saying," recur in many chapters; a few WordNet definitions are shared) is skipped.
Everything is a function of (cfg, seed): every random draw uses its own numpy Generator seeded from the seed
and a fixed label of the draw, so one draw does not depend on the order of the others. The unseen-books
sides and the assignment of test-side books to ood_val / ood_test do not depend on the seed.

- ``wordnet``: supersense classification of WordNet synsets. ID text = the definition, OOD text = one usage
  example. Splits are by synset. The four evaluation pools are drawn from the synsets with at least one usage
  example (so ID and OOD evaluation differ only in the kind of text), ``ood_*`` and ``id_*`` synsets disjoint;
  ``train`` takes definitions of the remaining synsets of the class (with or without examples).
- ``bible_books``: genre with unseen books. Within each genre the books alternate (canonical order) between
  the train side (even positions) and the test side. Revelation, the only apocalyptic book, is split by
  chapter instead: chapters 1-11 on the train side, 12-22 on the test side. ``train``/``id_val``/``id_test``
  are KJV verses of train-side books, split by chapter; ``ood_val``/``ood_test`` are WEB verses of test-side
  books, split by book (the assignment with the least shortfall against the sizes; by chapter where a genre
  has one test-side book: Revelation). Train-side chapters go to train / id_val / id_test in proportion to
  their sizes. Revelation's train side (chapters 1-11) holds about 190 verses, fewer than the defaults ask:
  the apocalyptic class is smaller in train / id_val / id_test.
- ``bible_style``: a spurious style shortcut. Chapters are split across all five splits; within a split every
  verse appears in one version. In ``train``/``id_*`` a fraction ``bias`` (rounded, per class and split) of
  the verses of genres 0-3 are KJV and the rest WEB, genres 4-7 the reverse; ``ood_*`` reverse the correlation.
  groups = genre * 2 + version (16), the same as label * n_domains + domain.
  Worst-group accuracy is noisy where groups are small (the minority version of a class is 10% of it, and
  apocalyptic has 404 verses in all): ``ood_test`` therefore takes at least ceil(min_group / (1 - bias))
  verses per class, its chapters are reserved first, and every ``ood_test`` group has >= ``min_group``
  verses (the minority share rises a little above 1 - bias where repeated texts were skipped; an RTDError
  where even that cannot be met). The other splits' minority groups stay small: with the defaults the
  apocalyptic minority group has about 10 verses in train and 2-6 in id_val / id_test / ood_val.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import RTDError

SPLITS = ("train", "id_val", "id_test", "ood_val", "ood_test")  # as rtd.data.splits.SPLITS
CANDIDATES = ("wordnet", "bible_books", "bible_style")
WORDNET_CLASSES = ("noun.act", "noun.artifact", "noun.attribute", "noun.communication",
                   "verb.change", "verb.communication", "verb.contact", "verb.motion")
_SIZES = {"train_per_class": 250, "id_val_per_class": 64, "id_test_per_class": 125,
          "ood_val_per_class": 64, "ood_test_per_class": 125}

DEFAULTS: dict[str, dict] = {
    # classes: WordNet lexicographer files (supersenses); example: "first" usage example or a seeded "random" one
    "wordnet": {**_SIZES, "classes": list(WORDNET_CLASSES), "example": "first", "root": "/usr/share/wordnet"},
    "bible_books": dict(_SIZES),
    # bias: P(majority version | genre) in train/id_*; ood_test_per_class is raised to ceil(min_group/(1-bias))
    "bible_style": {**_SIZES, "ood_test_per_class": 200, "bias": 0.9, "min_group": 20},
}


@dataclass
class TextSplit:
    texts: list[str]
    labels: np.ndarray        # (N,) int64
    domains: np.ndarray       # (N,) int64 index into domain_names
    domain_names: list[str]
    groups: np.ndarray        # (N,) int64 group id for worst-group accuracy (label * n_domains + domain)
    ids: list[str]            # provenance: "Genesis 1:1/kjv", "wn:n:02084071/def", ...

    def __len__(self) -> int:
        return len(self.texts)


def candidate_config(name: str, overrides: dict | None = None) -> dict:
    """DEFAULTS[name] with ``overrides`` on top; unknown keys are an error."""
    if name not in DEFAULTS:
        raise RTDError(f"unknown text candidate {name!r}: use one of {', '.join(CANDIDATES)}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DEFAULTS[name]))
    if unknown:
        raise RTDError(f"unknown option(s) {unknown} for text candidate {name!r}: "
                       f"valid options are {sorted(DEFAULTS[name])}")
    return {**DEFAULTS[name], **overrides}


def _rng(seed: int, *labels: object) -> np.random.Generator:
    """A Generator for one named draw: seeded by the seed and stable hashes of the labels."""
    return np.random.default_rng([int(seed)] + [zlib.crc32(str(x).encode()) for x in labels])


def _per_class(cfg: dict) -> dict[str, int]:
    sizes = {s: int(cfg[f"{s}_per_class"]) for s in SPLITS}
    if any(n < 1 for n in sizes.values()):
        raise RTDError(f"every <split>_per_class must be >= 1, got {sizes}: fix the text candidate's options")
    return sizes


def _make_split(rows: list[tuple[str, int, int, str]], domain_names: list[str],
                rng: np.random.Generator) -> TextSplit:
    """rows of (text, label, domain, id) -> a TextSplit in a seeded random order."""
    order = rng.permutation(len(rows))
    labels = np.array([rows[i][1] for i in order], dtype=np.int64).reshape(-1)
    domains = np.array([rows[i][2] for i in order], dtype=np.int64).reshape(-1)
    return TextSplit([rows[i][0] for i in order], labels, domains, list(domain_names),
                     labels * len(domain_names) + domains, [rows[i][3] for i in order])


def _allocate(sizes: Sequence[int], weights: Sequence[float], floors: Sequence[int] | None = None) -> list[int]:
    """Assign units (in the given order, ``sizes`` items each) to bins in proportion to ``weights``.

    First each bin with a floor takes units until it holds that many items; then each unit goes to the bin
    furthest below its share (smallest count / weight; ties to the lower bin).
    """
    counts = [0] * len(weights)
    out = [-1] * len(sizes)
    nxt = 0
    for b, floor in enumerate(floors or [0] * len(weights)):
        while counts[b] < floor and nxt < len(sizes):
            out[nxt], counts[b], nxt = b, counts[b] + sizes[nxt], nxt + 1
    for u in range(nxt, len(sizes)):
        b = min(range(len(weights)), key=lambda k: (counts[k] / weights[k], k))
        out[u], counts[b] = b, counts[b] + sizes[u]
    return out


def _take(pool: Sequence, n: int, rng: np.random.Generator) -> list:
    """n items of ``pool`` (all of them if it is smaller), drawn without replacement, in pool order."""
    if len(pool) <= n:
        return list(pool)
    return [pool[i] for i in sorted(rng.choice(len(pool), size=n, replace=False))]


def _fresh(pool: Sequence, keys: Callable[[object], tuple[str, ...]], seen: set[str]) -> list:
    """``pool`` without the items any of whose texts (``keys``) is in ``seen`` or came earlier in the pool."""
    out, local = [], set()
    for item in pool:
        k = keys(item)
        if not any(t in seen or t in local for t in k):
            out.append(item)
            local.update(k)
    return out


def _two_way(sizes: Sequence[int], targets: Sequence[int]) -> list[int]:
    """Assign whole units (books) to two bins: least total shortfall against ``targets``, then the most even
    fill (count / target), then the first such assignment in enumeration order."""
    best, best_key = [], None
    for mask in range(2 ** len(sizes)):
        where = [(mask >> u) & 1 for u in range(len(sizes))]
        counts = [sum(z for z, w in zip(sizes, where) if w == b) for b in (0, 1)]
        fill = [c / t for c, t in zip(counts, targets)]
        key = (sum(max(0, t - c) for c, t in zip(counts, targets)), max(fill) - min(fill))
        if best_key is None or key < best_key:
            best, best_key = where, key
    return best


# --- wordnet -------------------------------------------------------------------------------------------------

_WN_EVAL = ("ood_val", "ood_test", "id_val", "id_test")  # the order the evaluation pools are filled in


def _wordnet_row(s, split: str, label: int, example: str, seed: int) -> tuple[str, int, int, str]:
    """(text, label, domain, id): the definition on the ID side, one usage example on the OOD side."""
    if not split.startswith("ood"):
        return s.definition, label, 0, f"{s.id}/def"
    k = 0 if example == "first" else int(_rng(seed, "wordnet", "example", s.id).integers(len(s.examples)))
    return s.examples[k], label, 1, f"{s.id}/ex{k}"


def _build_wordnet(cfg: dict, seed: int) -> tuple[dict[str, TextSplit], list[str]]:
    from .wordnet import LEXNAMES, POS, read_synsets

    classes = list(cfg["classes"])
    bad = [c for c in classes if c not in LEXNAMES]
    if bad or len(set(classes)) != len(classes) or len(classes) < 2:
        raise RTDError(f"wordnet classes must be >= 2 distinct WordNet lexicographer names (e.g. noun.act), "
                       f"got {classes}: fix `classes`")
    if cfg["example"] not in ("first", "random"):
        raise RTDError(f"wordnet `example` must be 'first' or 'random', got {cfg['example']!r}")
    synsets = read_synsets(cfg["root"], pos=tuple(p for p in POS if any(c.startswith(p + ".") for c in classes)))
    n = _per_class(cfg)
    rows: dict[str, list[tuple[str, int, int, str]]] = {s: [] for s in SPLITS}
    seen: set[str] = set()  # every text is shown once in the whole candidate
    for label, lex in enumerate(classes):
        members = sorted((s for s in synsets if s.lexname == lex), key=lambda s: s.id)
        eligible = [s for s in members if s.examples]
        used: set[str] = set()
        got = dict.fromkeys(_WN_EVAL, 0)
        for i in _rng(seed, "wordnet", "eval", lex).permutation(len(eligible)):
            split = next((x for x in _WN_EVAL if got[x] < n[x]), None)
            if split is None:
                break
            row = _wordnet_row(eligible[i], split, label, cfg["example"], seed)
            if row[0] not in seen:
                seen.add(row[0])
                used.add(eligible[i].id)
                rows[split].append(row)
                got[split] += 1
        short = {x: n[x] - got[x] for x in _WN_EVAL}
        if any(v > 0 for v in short.values()):
            raise RTDError(f"wordnet class {lex} has too few synsets with usage examples for the evaluation "
                           f"splits (short by {short}): lower the *_per_class sizes or drop the class")
        rest = _fresh([s for s in members if s.id not in used], lambda s: (s.definition,), seen)
        for s in _take(rest, n["train"], _rng(seed, "wordnet", "train", lex)):
            rows["train"].append(_wordnet_row(s, "train", label, cfg["example"], seed))
            seen.add(s.definition)
    names = ["definition", "example"]
    return {s: _make_split(rows[s], names, _rng(seed, "wordnet", "order", s)) for s in SPLITS}, classes


# --- bible ---------------------------------------------------------------------------------------------------

def _chapters(verses: Sequence) -> dict[tuple[str, int], list[int]]:
    """(book, chapter) -> indices into ``verses`` (canonical order)."""
    out: dict[tuple[str, int], list[int]] = {}
    for i, v in enumerate(verses):
        out.setdefault((v.book, v.chapter), []).append(i)
    return out


def _sides(verses: Sequence) -> dict[tuple[str, int], str]:
    """(book, chapter) -> "train" or "test" side of the unseen-books split."""
    from .bible import BOOKS

    side = {}
    chapters = _chapters(verses)
    for g in dict.fromkeys(g for _, g in BOOKS):
        books = [b for b, gg in BOOKS if gg == g]
        for pos, book in enumerate(books):
            chs = sorted(c for b, c in chapters if b == book)
            for c in chs:
                if len(books) == 1:
                    side[(book, c)] = "train" if c <= (len(chs) + 1) // 2 else "test"
                else:
                    side[(book, c)] = "train" if pos % 2 == 0 else "test"
    return side


def _verse_rows(verses: Sequence, idx: Sequence[int], version: int) -> list[tuple[str, int, int, str]]:
    return [(verses[i].web if version else verses[i].kjv, verses[i].genre, version,
             f"{verses[i].ref}/{'web' if version else 'kjv'}") for i in idx]


def _build_bible_books(cfg: dict, seed: int, verses: Sequence) -> tuple[dict[str, TextSplit], list[str]]:
    from .bible import GENRES

    n = _per_class(cfg)
    chapters = _chapters(verses)
    side = _sides(verses)
    pools: dict[str, dict[int, list[int]]] = {s: {g: [] for g in range(len(GENRES))} for s in SPLITS}
    for g, genre in enumerate(GENRES):
        units = [u for u in chapters if verses[chapters[u][0]].genre == g]
        train_side = [u for u in units if side[u] == "train"]
        train_side = [train_side[i] for i in _rng(seed, "books", "id", genre).permutation(len(train_side))]
        ids = ("train", "id_val", "id_test")
        for u, b in zip(train_side, _allocate([len(chapters[u]) for u in train_side], [n[s] for s in ids])):
            pools[ids[b]][g].extend(chapters[u])
        test_side = [u for u in units if side[u] == "test"]
        books = list(dict.fromkeys(b for b, _ in test_side))
        oods = ("ood_val", "ood_test")
        if len(books) >= 2:  # disjoint books
            sizes = [sum(len(chapters[u]) for u in test_side if u[0] == b) for b in books]
            where = dict(zip(books, _two_way(sizes, [n[s] for s in oods])))
            for u in test_side:
                pools[oods[where[u[0]]]][g].extend(chapters[u])
        else:  # one test-side book: disjoint chapters
            order = [test_side[i] for i in _rng(seed, "books", "ood", genre).permutation(len(test_side))]
            for u, b in zip(order, _allocate([len(chapters[u]) for u in order], [n[s] for s in oods])):
                pools[oods[b]][g].extend(chapters[u])
    splits, seen = {}, set()
    for s in SPLITS:
        rows = []
        for g in range(len(GENRES)):
            pool = _fresh(sorted(pools[s][g]), lambda i: (verses[i].kjv, verses[i].web), seen)
            idx = _take(pool, n[s], _rng(seed, "books", "take", s, g))
            seen.update(t for i in idx for t in (verses[i].kjv, verses[i].web))
            rows += _verse_rows(verses, idx, 1 if s.startswith("ood") else 0)
        splits[s] = _make_split(rows, ["kjv", "web"], _rng(seed, "books", "order", s))
    return splits, list(GENRES)


def _build_bible_style(cfg: dict, seed: int, verses: Sequence) -> tuple[dict[str, TextSplit], list[str]]:
    from .bible import GENRES

    bias, min_group = float(cfg["bias"]), int(cfg["min_group"])
    if not 0.5 <= bias < 1:
        raise RTDError(f"bible_style `bias` must be in [0.5, 1), got {bias}")
    n = _per_class(cfg)
    n["ood_test"] = max(n["ood_test"], math.ceil(min_group / (1 - bias) - 1e-9))
    chapters = _chapters(verses)
    splits_rows: dict[str, list] = {s: [] for s in SPLITS}
    seen: set[str] = set()
    for g, genre in enumerate(GENRES):
        units = [u for u in chapters if verses[chapters[u][0]].genre == g]
        units = [units[i] for i in _rng(seed, "style", "chapters", genre).permutation(len(units))]
        floors = [n["ood_test"] if s == "ood_test" else 0 for s in SPLITS]
        where = _allocate([len(chapters[u]) for u in units], [n[s] for s in SPLITS], floors)
        for s in ("ood_test",) + SPLITS[:-1]:  # ood_test first: it keeps its verses when texts repeat
            pool = sorted(i for u, w in zip(units, where) if SPLITS[w] == s for i in chapters[u])
            pool = _fresh(pool, lambda i: (verses[i].kjv, verses[i].web), seen)
            idx = _take(pool, n[s], _rng(seed, "style", "take", s, g))
            seen.update(t for i in idx for t in (verses[i].kjv, verses[i].web))
            kjv_major = (g < len(GENRES) // 2) != s.startswith("ood")
            n_minor = len(idx) - math.floor(bias * len(idx) + 0.5)
            if s == "ood_test":  # a few repeated texts may have been skipped: keep min_group minority verses
                n_minor = max(n_minor, min(min_group, len(idx) // 2))
            minor = set(_rng(seed, "style", "version", s, g).permutation(len(idx))[:n_minor].tolist())
            for k, i in enumerate(idx):
                version = int(kjv_major) if k in minor else int(not kjv_major)  # 0 = kjv, 1 = web
                splits_rows[s] += _verse_rows(verses, [i], version)
    splits = {s: _make_split(splits_rows[s], ["kjv", "web"], _rng(seed, "style", "order", s)) for s in SPLITS}
    counts = np.bincount(splits["ood_test"].groups, minlength=2 * len(GENRES))
    if counts.min() < min_group:
        g = int(counts.argmin())
        raise RTDError(f"bible_style ood_test group {GENRES[g // 2]}/{('kjv', 'web')[g % 2]} has {counts.min()} "
                       f"verses, fewer than min_group={min_group}: lower `min_group` or `bias`")
    return splits, list(GENRES)


def build_candidate(name: str, cfg: dict, seed: int,
                    verses: Sequence | None = None) -> tuple[dict[str, TextSplit], list[str]]:
    """The five splits of candidate ``name`` and its class names; ``cfg`` overrides DEFAULTS[name].

    ``verses`` (from ``bible.aligned_verses()``) may be passed to reuse one read of the Bibles.
    """
    cfg = candidate_config(name, cfg)
    if name == "wordnet":
        return _build_wordnet(cfg, seed)
    if verses is None:
        from .bible import aligned_verses

        verses = aligned_verses()
    build = _build_bible_books if name == "bible_books" else _build_bible_style
    return build(cfg, seed, verses)
