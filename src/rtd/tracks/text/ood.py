"""Text transform families for D_OOD (proposal Sec. 2.3): WordNet synonym swaps, back-translation, domain
jargon, and gradient-guided HotFlip token swaps against the teacher.

Each family is built from its params section (its severity). Text families map sentences to sentences and
draw every random choice from the ``numpy.random.Generator`` they are given; HotFlip maps token ids to token
ids. None of them touches a label. ``generate_text_ood`` mirrors the vision ``generate_ood``.
"""
from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...errors import RTDError
from .classifier import TextClassifier
from .models import tokenize

TEXT_TRANSFORMS = ("synonym", "backtranslate", "jargon", "hotflip")
BACKTRANSLATE_ENGINES = ("apertium", "marian")
MARIAN_MODELS = ("Helsinki-NLP/opus-mt-en-ROMANCE", "Helsinki-NLP/opus-mt-ROMANCE-en")
MARIAN_LANG = {"spa": "es", "fra": "fr", "ita": "it", "por": "pt", "cat": "ca", "ron": "ro"}

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")   # words, for counting edits (digits are not words)
_LINE_BREAKS = re.compile(r"[\r\n\x00\x0b\x0c\x1c-\x1e\x85\u2028\u2029]+")
_APERTIUM_MARK = re.compile(r"(?<![\w*#@])[*#@]\w+")       # *unknown, #generation error, @transfer error


def n_edits(rate: float, text: str) -> int:
    """ceil(rate * number of words in ``text``)."""
    return math.ceil(rate * len(_WORD.findall(text)))


def match_case(template: str, word: str) -> str:
    """``word`` in the capitalisation of ``template`` (UPPER, Capitalised or lower)."""
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word.lower()


# ----------------------------------------------------------------------------------------- synonyms
class SynonymSwap:
    """Replace ceil(fraction * n_words) words per sentence by a WordNet synonym (textattack's
    ``WordSwapWordNet``); stopwords (textattack's ``StopwordModification`` list) are never swapped and no
    word is swapped twice. Case and surrounding punctuation are kept; inflection is not (WordNet lemmas)."""

    def __init__(self, fraction: float):
        if not 0.0 < fraction <= 1.0:
            raise RTDError(f"ood.synonym.fraction must be in (0, 1], got {fraction}")
        from .nltk_data import import_textattack, no_nltk_download

        import_textattack()
        from textattack.constraints.pre_transformation import StopwordModification
        from textattack.transformations import WordSwapWordNet

        with no_nltk_download():    # WordSwapWordNet.__init__ calls nltk.download("omw-1.4")
            self._wordnet = WordSwapWordNet()
        self.stopwords = frozenset(StopwordModification().stopwords)
        self.fraction = fraction
        self._cache: dict[str, tuple[str, ...]] = {}

    def synonyms(self, word: str) -> tuple[str, ...]:
        """Sorted single-word alphabetic WordNet synonyms of lower-cased ``word`` (sorted: set order varies)."""
        if word not in self._cache:
            from nltk.corpus import wordnet

            same = {word} | {wordnet.morphy(word, pos) for pos in "nvar"}   # "patients" -> "patient" is no swap
            found = {s.lower() for s in self._wordnet._get_replacement_words(word) if s.isalpha()}
            self._cache[word] = tuple(sorted(found - same))
        return self._cache[word]

    def _eligible(self, text: str) -> list[re.Match]:
        return [m for m in _WORD.finditer(text) if m.group().isalpha() and len(m.group()) > 2
                and m.group().lower() not in self.stopwords and self.synonyms(m.group().lower())]

    def swap(self, text: str, rng: np.random.Generator) -> str:
        """One sentence with its swaps applied."""
        eligible = self._eligible(text)
        k = min(n_edits(self.fraction, text), len(eligible))
        if k == 0:
            return text
        chosen = sorted(rng.choice(len(eligible), size=k, replace=False), reverse=True)
        for i in chosen:    # right to left: earlier spans stay valid
            m = eligible[i]
            options = self.synonyms(m.group().lower())
            text = text[:m.start()] + match_case(m.group(), options[rng.integers(len(options))]) + text[m.end():]
        return text

    def __call__(self, texts: list[str], rng: np.random.Generator) -> list[str]:
        return [self.swap(t, rng) for t in texts]


# ----------------------------------------------------------------------------------------- jargon
class JargonInsert:
    """The proposal's "out-of-vocabulary terms and specialized jargon synonyms", ceil(rate * n_words) edits.

    ``vocabulary`` a list: insert its terms at random word boundaries. A dict word -> jargon synonyms:
    substitute matching words (case-insensitive, whole words), inserting synonyms only where none matched.
    """

    def __init__(self, rate: float, vocabulary: list[str] | dict[str, list[str]]):
        if not 0.0 < rate <= 1.0:
            raise RTDError(f"ood.jargon.rate must be in (0, 1], got {rate}")
        if isinstance(vocabulary, dict):
            self.synonyms = {" ".join(k.lower().split()): [str(v) for v in vs] for k, vs in vocabulary.items() if vs}
            terms = list(dict.fromkeys(v for vs in self.synonyms.values() for v in vs))
            keys = sorted(self.synonyms, key=len, reverse=True)
            self.pattern = re.compile(r"(?<!\w)(?:" + "|".join(r"\s+".join(map(re.escape, k.split())) for k in keys)
                                      + r")(?!\w)", re.IGNORECASE) if keys else None
        else:
            self.synonyms, self.pattern, terms = {}, None, [str(v) for v in vocabulary]
        if not terms:
            raise RTDError("ood.jargon.vocabulary is empty: give a list of domain terms "
                           "or a dict word -> [jargon synonyms]")
        self.rate, self.terms = rate, terms

    def substitute(self, text: str, k: int, rng: np.random.Generator) -> str | None:
        """Up to ``k`` matched words replaced by a jargon synonym; None if no word matched."""
        matches = list(self.pattern.finditer(text)) if self.pattern is not None else []
        if not matches:
            return None
        chosen = sorted(rng.choice(len(matches), size=min(k, len(matches)), replace=False), reverse=True)
        for i in chosen:
            m = matches[i]
            options = self.synonyms[" ".join(m.group().lower().split())]
            text = text[:m.start()] + match_case(m.group(), options[rng.integers(len(options))]) + text[m.end():]
        return text

    def insert(self, text: str, k: int, rng: np.random.Generator) -> str:
        """``k`` terms inserted at word boundaries (before a whitespace-separated token, or at the end)."""
        bounds = [m.start() for m in re.finditer(r"\S+", text)] + [len(text.rstrip())]
        at = rng.integers(len(bounds), size=k)
        terms = rng.integers(len(self.terms), size=k)
        for pos, t in sorted(zip((bounds[a] for a in at), terms), key=lambda p: p[0], reverse=True):
            term = self.terms[t]
            text = text[:pos] + (f" {term}" if pos == bounds[-1] else f"{term} ") + text[pos:]
        return text

    def edit(self, text: str, rng: np.random.Generator) -> str:
        k = n_edits(self.rate, text)
        if k == 0:
            return text
        substituted = self.substitute(text, k, rng)
        return substituted if substituted is not None else self.insert(text, k, rng)

    def __call__(self, texts: list[str], rng: np.random.Generator) -> list[str]:
        return [self.edit(t, rng) for t in texts]


# ----------------------------------------------------------------------------------------- back-translation
def apertium_pipeline(pivot: str) -> list[str]:
    """The shell command ``apertium -u eng-P | apertium -u P-eng`` after checking both modes are installed."""
    exe = shutil.which("apertium")
    hint = f"install them: apt-get install apertium apertium-eng-{pivot} (or run `scripts/install_text_data.sh`)"
    if exe is None:
        raise RTDError(f"back-translation with engine apertium needs the apertium program: {hint}")
    modes = subprocess.run([exe, "-l"], capture_output=True, text=True).stdout.split()
    missing = [m for m in (f"eng-{pivot}", f"{pivot}-eng") if m not in modes]
    if missing:
        raise RTDError(f"apertium lacks the {'/'.join(missing)} translation direction(s): {hint}")
    a = shlex.quote(exe)
    return ["bash", "-o", "pipefail", "-c", f"{a} -u eng-{pivot} | {a} -u {pivot}-eng"]


def strip_apertium_marks(out: str, src: str) -> str:
    """Drop apertium's ``*``/``#``/``@`` word marks, keeping any marked word that was in the source as is."""
    return _APERTIUM_MARK.sub(lambda m: m.group() if m.group() in src else m.group()[1:], out)


class BackTranslate:
    """Round-trip translation English -> ``pivot`` -> English.

    ``apertium`` (rule-based, offline): every sentence on its own line, separated by lines holding only "."
    so that no transfer rule reorders words across sentences; one subprocess pipeline per call.
    ``marian``: textattack's ``BackTranslation`` models (MarianMT); their weights must already be cached.
    Deterministic (neither engine samples); ``rng`` is unused.
    """

    SEPARATOR = "."

    def __init__(self, engine: str = "apertium", pivot: str = "spa", marian_models: Sequence[str] = MARIAN_MODELS):
        if engine not in BACKTRANSLATE_ENGINES:
            raise RTDError(f"ood.backtranslate.engine {engine!r} is unknown; "
                           f"choose one of {', '.join(BACKTRANSLATE_ENGINES)}")
        self.engine, self.pivot = engine, pivot
        if engine == "apertium":
            self.command = apertium_pipeline(pivot)
        else:
            self._marian = load_marian(tuple(marian_models), pivot)

    def _apertium_run(self, lines: list[str]) -> list[str] | None:
        sep = f"\n{self.SEPARATOR}\n"
        proc = subprocess.run(self.command, input=sep.join(lines) + "\n", capture_output=True, text=True,
                              encoding="utf-8", errors="replace")
        if proc.returncode != 0:
            raise RTDError(f"apertium failed ({proc.stderr.strip()[:300]}): reinstall it with "
                           f"apt-get install --reinstall apertium apertium-eng-{self.pivot}")
        out = proc.stdout.split("\n")
        out = out[:-1] if out and out[-1] == "" else out
        aligned = len(out) == 2 * len(lines) - 1 and all(s.strip() == self.SEPARATOR for s in out[1::2])
        return out[0::2] if aligned else None

    def apertium(self, texts: list[str]) -> list[str]:
        """One translation per input, in order; sentences that misalign a batch are retried one by one."""
        lines = [_LINE_BREAKS.sub(" ", t) for t in texts]
        if not lines:
            return []
        out = self._apertium_run(lines)
        if out is None:
            out = [(self._apertium_run([line]) or [line])[0] for line in lines]
        return [strip_apertium_marks(o, s).strip() if s.strip() else s for o, s in zip(out, lines)]

    def marian(self, texts: list[str], batch_size: int = 16) -> list[str]:
        forward, backward = self._marian
        tag = f">>{MARIAN_LANG.get(self.pivot, self.pivot)}<< "
        middle = _marian_translate(forward, [tag + t for t in texts], batch_size)
        return _marian_translate(backward, middle, batch_size)

    def __call__(self, texts: list[str], rng: np.random.Generator | None = None) -> list[str]:
        return self.apertium(texts) if self.engine == "apertium" else self.marian(texts)


def _hub_cached(repo: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    files = ("config.json", "source.spm")
    weights = ("pytorch_model.bin", "model.safetensors")
    return (all(isinstance(try_to_load_from_cache(repo, f), str) for f in files)
            and any(isinstance(try_to_load_from_cache(repo, w), str) for w in weights))


def marian_missing_message(models: Sequence[str]) -> str:
    from huggingface_hub import constants

    names = " ".join(models)
    return (f"back-translation with engine marian needs the MarianMT models {', '.join(models)}, which are not in the "
            f"Hugging Face cache ({constants.HF_HUB_CACHE}) and are never downloaded here: "
            f"on a machine with internet run "
            f"`for m in {names}; do huggingface-cli download $m; done` (or `python -c \"from transformers import "
            f"MarianMTModel as M, MarianTokenizer as T; [(M.from_pretrained(m), T.from_pretrained(m)) for m in "
            f"{list(models)!r}]\"`), copy its ~/.cache/huggingface/hub/models--Helsinki-NLP--* folders into "
            f"{constants.HF_HUB_CACHE} here, or set `ood.backtranslate.engine: apertium`")


def load_marian(models: tuple[str, ...], pivot: str):
    """((model, tokenizer) en->pivot, (model, tokenizer) pivot->en) through textattack's BackTranslation;
    fails fast, before any network access, when the weights are not cached."""
    if len(models) != 2:
        raise RTDError(f"ood.backtranslate.marian_models must name two models (to pivot, back), got {list(models)}")
    if not all(_hub_cached(m) for m in models):
        raise RTDError(marian_missing_message(models))
    from .nltk_data import import_textattack

    import_textattack()
    from textattack.transformations.sentence_transformations import BackTranslation

    bt = BackTranslation(target_lang=MARIAN_LANG.get(pivot, pivot), target_model=models[0], src_model=models[1])
    return (bt.target_model.eval(), bt.target_tokenizer), (bt.src_model.eval(), bt.src_tokenizer)


def _marian_translate(model_tok, texts: list[str], batch_size: int) -> list[str]:
    model, tok = model_tok
    out: list[str] = []
    for start in range(0, len(texts), batch_size):
        enc = tok(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            gen = model.generate(**enc)
        out += tok.batch_decode(gen, skip_special_tokens=True)
    return out


# ----------------------------------------------------------------------------------------- HotFlip
def candidate_vocab(tokenizer, min_len: int = 3) -> torch.LongTensor:
    """Ids of whole-word ASCII-alphabetic tokens of at least ``min_len`` characters: no special tokens,
    no '##' continuation pieces, no punctuation or digits (HotFlip's replacement candidates)."""
    special = set(tokenizer.all_special_ids)
    ids = [i for t, i in tokenizer.get_vocab().items()
           if i not in special and not t.startswith("##") and t.isascii() and t.isalpha() and len(t) >= min_len]
    return torch.tensor(sorted(ids), dtype=torch.long)


def hotflip_scores(grad: torch.Tensor, ids: torch.Tensor, weight: torch.Tensor,
                   candidate_ids: torch.LongTensor) -> torch.Tensor:
    """First-order loss change (e_v - e_{x_i}) . g_i of every (position i, candidate v): (N, L, K)."""
    cand = weight[candidate_ids]                                   # (K, d)
    current = (grad * weight[ids]).sum(-1, keepdim=True)           # (N, L, 1)
    return grad @ cand.T - current


def _best_flips(grad: torch.Tensor, ids: torch.Tensor, allowed: torch.Tensor, weight: torch.Tensor,
                candidate_ids: torch.LongTensor, where: torch.Tensor, chunk_elems: int = 2 ** 25):
    """Per sentence, the (position, candidate index) with the largest estimate among ``allowed`` positions
    and candidates != the current token; ``ok`` is False where no position is left. Chunked over sentences."""
    n, length = ids.shape
    rows = max(1, chunk_elems // max(1, length * len(candidate_ids)))
    best_val, best_flat = [], []
    for s in range(0, n, rows):
        score = hotflip_scores(grad[s:s + rows], ids[s:s + rows], weight, candidate_ids)
        same = where[ids[s:s + rows]]                                    # index of x_i in candidates, or -1
        r, p = torch.nonzero(same >= 0, as_tuple=True)
        score[r, p, same[r, p]] = float("-inf")                          # v == x_i is no swap
        score.masked_fill_(~allowed[s:s + rows].unsqueeze(-1), float("-inf"))
        val, flat = score.flatten(1).max(dim=1)
        best_val.append(val)
        best_flat.append(flat)
    val, flat = torch.cat(best_val), torch.cat(best_flat)
    k = len(candidate_ids)
    return flat // k, flat % k, torch.isfinite(val)


def hotflip(model: TextClassifier, ids: torch.LongTensor, labels: torch.LongTensor, n_swaps: int,
            candidate_ids: torch.LongTensor, special_ids: Sequence[int] = ()) -> torch.LongTensor:
    """HotFlip (Ebrahimi et al. 2018): ``n_swaps`` greedy token swaps per sentence that most increase the
    teacher's cross-entropy to first order, recomputing the gradient after each swap.

    Positions holding ``pad_id`` or one of ``special_ids`` are never swapped, nor is a position twice.
    Returns new ids (same shape); the model's parameters get no gradients and its mode is restored.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    full = ids.to(device)
    mask_full = full != model.pad_id
    length = max(1, int(mask_full.sum(dim=1).max()))
    x, mask = full[:, :length].clone(), mask_full[:, :length]
    labels = labels.to(device)
    emb = model.input_embeddings()
    weight = emb.weight.detach()
    candidate_ids = candidate_ids.to(device)
    where = torch.full((weight.shape[0],), -1, dtype=torch.long, device=device)
    where[candidate_ids] = torch.arange(len(candidate_ids), device=device)
    allowed = mask & ~torch.isin(x, torch.as_tensor(list(special_ids), dtype=torch.long, device=device))
    rows = torch.arange(len(x), device=device)
    try:
        for _ in range(n_swaps):
            if not allowed.any():
                break
            embeds = emb(x).detach().requires_grad_(True)
            loss = F.cross_entropy(model.head(model.features_from_embeds(embeds, mask)), labels, reduction="sum")
            (grad,) = torch.autograd.grad(loss, embeds)
            pos, cand, ok = _best_flips(grad, x, allowed, weight, candidate_ids, where)
            x[rows[ok], pos[ok]] = candidate_ids[cand[ok]]
            allowed[rows[ok], pos[ok]] = False
    finally:
        model.train(was_training)
    out = full.clone()
    out[:, :length] = x
    return out.to(ids.device)


# ----------------------------------------------------------------------------------------- D_OOD
_OPTIONS = {"synonym": ("fraction",), "backtranslate": ("engine", "pivot", "marian_models"),
            "jargon": ("rate", "vocabulary"), "hotflip": ("swaps", "min_len")}
_RUNTIME_OPTIONS = ("batch_size",)


def build_text_transform(name: str, opts: dict):
    """One text family from its params section (``batch_size`` is read by ``generate_text_ood``)."""
    if name not in TEXT_TRANSFORMS:
        raise RTDError(f"unknown text OOD transform {name!r}; choose from {', '.join(TEXT_TRANSFORMS)}")
    unknown = set(opts) - set(_OPTIONS[name]) - set(_RUNTIME_OPTIONS)
    if unknown:
        raise RTDError(f"ood.{name} has unknown option(s) {sorted(unknown)}; "
                       f"allowed: {list(_OPTIONS[name] + _RUNTIME_OPTIONS)}")
    kwargs = {k: opts[k] for k in _OPTIONS[name] if k in opts}
    if name == "synonym":
        return SynonymSwap(**kwargs)
    if name == "backtranslate":
        return BackTranslate(**kwargs)
    if name == "jargon":
        return JargonInsert(**kwargs)
    return None   # hotflip is a function of the teacher, called by generate_text_ood


def _run_text(name: str, opts: dict, texts: list[str], rng: np.random.Generator, bar) -> list[str]:
    transform = build_text_transform(name, opts)
    batch = int(opts.get("batch_size", 4096))   # apertium runs once per batch, not once per sentence
    out: list[str] = []
    for start in range(0, len(texts), batch):
        out += transform(texts[start:start + batch], rng)
        bar.update(min(batch, len(texts) - start))
    return out


def _run_hotflip(opts: dict, ids: np.ndarray, labels: np.ndarray, teacher, tokenizer, bar) -> np.ndarray:
    if teacher is None:
        raise RTDError("the hotflip text transform needs the teacher model: "
                       "pass teacher=..., or drop hotflip from ood.transforms")
    build_text_transform("hotflip", opts)
    for p in teacher.parameters():
        p.requires_grad_(False)
    candidates = candidate_vocab(tokenizer, int(opts.get("min_len", 3)))
    batch = int(opts.get("batch_size", 64))
    out = np.empty_like(ids)
    for start in range(0, len(ids), batch):
        chunk = slice(start, start + batch)
        out[chunk] = hotflip(teacher, torch.as_tensor(ids[chunk]), torch.as_tensor(labels[chunk]),
                             int(opts.get("swaps", 1)), candidates, tokenizer.all_special_ids).cpu().numpy()
        bar.update(len(ids[chunk]))
    return out


def generate_text_ood(texts: list[str], ids: np.ndarray, labels: np.ndarray, cfg: dict, tokenizer, max_len: int,
                      pad_id: int, teacher: TextClassifier | None = None) -> dict:
    """D_OOD for text: ``copies_per_example`` transformed copies of every ID training example.

    Each copy gets one family drawn uniformly (seeded) from ``cfg['transforms']``; each family runs once over
    all its copies with its own seeded generator. Text families are re-tokenized; HotFlip edits ``ids`` and
    its text is their decoding. Returns ids (M, max_len) int64, labels, source index, family index, texts.
    """
    from tqdm import tqdm

    names = list(cfg["transforms"])
    bad = [n for n in names if n not in TEXT_TRANSFORMS]
    if bad or not names:
        raise RTDError(f"ood.transforms {names} must be a non-empty list from {', '.join(TEXT_TRANSFORMS)}")
    rng = np.random.default_rng(cfg["seed"])
    source = np.repeat(np.arange(len(labels)), cfg["copies_per_example"])
    family = rng.integers(len(names), size=len(source))
    out_ids = np.full((len(source), max_len), pad_id, dtype=np.int64)
    out_texts = [""] * len(source)
    for f, name in enumerate(names):
        idx = np.flatnonzero(family == f)
        opts = dict(cfg.get(name) or {})
        with tqdm(total=len(idx), desc=f"D_OOD {name}", unit="ex") as bar:
            if len(idx) == 0:
                continue
            if name == "hotflip":
                src = np.asarray(ids)[source[idx]]
                flipped = _run_hotflip(opts, src, np.asarray(labels)[source[idx]], teacher, tokenizer, bar)
                width = min(max_len, flipped.shape[1])
                out_ids[idx, :width] = flipped[:, :width]
                new = tokenizer.batch_decode(flipped, skip_special_tokens=True)
            else:
                sub_rng = np.random.default_rng([cfg["seed"], TEXT_TRANSFORMS.index(name)])
                new = _run_text(name, opts, [texts[s] for s in source[idx]], sub_rng, bar)
                out_ids[idx] = tokenize(new, tokenizer, max_len, pad_id)
        for i, t in zip(idx, new):
            out_texts[i] = t
    return {"ids": out_ids, "labels": np.asarray(labels)[source].astype(np.int64), "source": source.astype(np.int64),
            "transform": family.astype(np.int64), "texts": out_texts}
