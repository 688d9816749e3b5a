"""Offline NLTK data for textattack: WordNet 3.0 from Debian's wordnet-base and sklearn's stopwords.

``import textattack`` runs ``nltk.download`` (network) unless ``$TA_CACHE_DIR/post_install_check_3`` exists,
and its WordNet swaps and stopword constraint read ``$NLTK_DATA/corpora/{wordnet,stopwords}``. Nothing here
touches the network: ``ensure_nltk_data`` lays these files out from local packages, atomically and once.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ...errors import RTDError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
INSTALL_HINT = ("run `scripts/install_text_data.sh` "
                "(apt-get install wordnet-base wordnet-sense-index apertium apertium-eng-spa)")

# WordNet 3.0's 45 lexicographer files (number, name, syntactic category); Debian's wordnet-base omits this file
LEXNAMES = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1), ("noun.animal", 1),
    ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1), ("noun.cognition", 1),
    ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1), ("noun.food", 1), ("noun.group", 1),
    ("noun.location", 1), ("noun.motive", 1), ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1),
    ("noun.plant", 1), ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1), ("verb.body", 2),
    ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2), ("verb.competition", 2),
    ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2), ("verb.emotion", 2), ("verb.motion", 2),
    ("verb.perception", 2), ("verb.possession", 2), ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2),
    ("adj.ppl", 3),
)
# environment variables that `import textattack` overwrites with $TA_CACHE_DIR (it would move the HF hub cache)
_TA_HIJACKED_ENV = ("TFHUB_CACHE_DIR", "PYTORCH_TRANSFORMERS_CACHE", "HF_HOME", "XDG_CACHE_HOME")
_READY: Path | None = None   # the root of the last ensure_nltk_data in this process


def lexnames_text() -> str:
    """The ``lexnames`` file: ``NN<TAB>name<TAB>category`` per line, numbered from 00."""
    return "".join(f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES))


def _publish(tmp: Path, final: Path) -> None:
    """Rename a finished ``tmp`` into place; if another process won the race, drop ours."""
    try:
        os.rename(tmp, final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(tmp, ignore_errors=True) if tmp.is_dir() else tmp.unlink(missing_ok=True)


def _ensure_wordnet(corpora: Path) -> None:
    final = corpora / "wordnet"
    if final.is_dir():
        return
    if not (DEBIAN_WORDNET / "data.noun").is_file():
        raise RTDError(f"WordNet is not installed ({DEBIAN_WORDNET}/data.noun is missing): {INSTALL_HINT}")
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=corpora))
    try:
        shutil.copytree(DEBIAN_WORDNET, tmp, dirs_exist_ok=True, symlinks=False)  # nltk refuses symlinks
        (tmp / "lexnames").write_text(lexnames_text())
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _write_atomic(path: Path, text: str) -> None:
    if path.is_file():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _stopwords_text() -> str:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return "".join(f"{w}\n" for w in sorted(ENGLISH_STOP_WORDS))


def ensure_nltk_data(root: str = ".nltk_data") -> None:
    """Lay out WordNet, English stopwords and textattack's post-install marker under ``root``; set
    ``NLTK_DATA`` and ``TA_CACHE_DIR``. Idempotent; each piece appears whole or not at all."""
    base = Path(root).resolve()
    corpora = base / "corpora"
    corpora.mkdir(parents=True, exist_ok=True)
    _ensure_wordnet(corpora)
    _write_atomic(corpora / "stopwords" / "english", _stopwords_text())
    _write_atomic(base / "textattack" / "post_install_check_3", "")
    global _READY
    _READY = base
    os.environ["NLTK_DATA"] = str(base)
    os.environ["TA_CACHE_DIR"] = str(base / "textattack")
    import nltk  # nltk reads NLTK_DATA once, at import: keep an already-imported nltk in step

    if str(base) not in nltk.data.path:
        nltk.data.path.insert(0, str(base))


@contextmanager
def no_nltk_download() -> Iterator[None]:
    """Turn ``nltk.download`` into a no-op (textattack's WordSwapWordNet calls it in ``__init__``)."""
    import nltk

    original = nltk.download
    nltk.download = lambda *args, **kwargs: True
    try:
        yield
    finally:
        nltk.download = original


def import_textattack(root: str | None = None):
    """``import textattack`` offline (data under ``root``, by default the last ``ensure_nltk_data`` root or
    ``.nltk_data``), keeping the HF cache settings that its import would point at TA_CACHE_DIR."""
    ensure_nltk_data(root or str(_READY or ".nltk_data"))
    import huggingface_hub  # noqa: F401  fix their cache paths (read at import) before textattack moves HF_HOME
    import transformers  # noqa: F401

    saved = {k: os.environ.get(k) for k in _TA_HIJACKED_ENV}
    try:
        with no_nltk_download():
            import textattack
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return textattack
