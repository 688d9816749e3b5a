"""WordNet 3.0 synsets from Debian's ``wordnet-base`` (/usr/share/wordnet/data.<pos>).

Each data line is ``offset lex_filenum ss_type w_cnt (word lex_id)* p_cnt pointers* [frames] | gloss``
(w_cnt is two hex digits). Words keep WordNet's spelling except that underscores become spaces and the
adjective position markers ("(a)", "(p)", "(ip)") are removed. The gloss is split into the definition (the
text before the first ``; "``) and the usage examples (the double-quoted strings after it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ...errors import RTDError

# the 45 lexicographer files, indexed by lex_filenum (Debian omits WordNet's own `lexnames` file)
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact", "noun.attribute",
    "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling", "noun.food", "noun.group",
    "noun.location", "noun.motive", "noun.object", "noun.person", "noun.phenomenon", "noun.plant",
    "noun.possession", "noun.process", "noun.quantity", "noun.relation", "noun.shape", "noun.state",
    "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition", "verb.communication",
    "verb.competition", "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
POS = ("noun", "verb", "adj", "adv")
INSTALL_HINT = ("install WordNet 3.0 with `scripts/install_text_data.sh` (or `sudo apt-get install wordnet-base`)")

_ADJ_MARKER = re.compile(r"\((?:a|p|ip)\)$")
_QUOTED = re.compile(r'"([^"]*)"')


@dataclass(frozen=True)
class Synset:
    offset: str                 # 8 digits, unique within one data.<pos> file
    pos: str                    # ss_type: n, v, a, s (adjective satellite) or r
    lexname: str                # supersense, e.g. "noun.animal"
    words: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"wn:{self.pos}:{self.offset}"


def split_gloss(gloss: str) -> tuple[str, tuple[str, ...]]:
    """'def; "ex 1"; "ex 2"' -> ('def', ('ex 1', 'ex 2')); quotes inside the definition stay in it."""
    gloss = gloss.strip()
    cut = gloss.find('; "')
    if cut < 0:
        return gloss.rstrip(";").strip(), ()
    examples = tuple(e for e in (" ".join(x.split()) for x in _QUOTED.findall(gloss[cut + 1:])) if e)
    return gloss[:cut].strip(), examples


def parse_line(line: str) -> Synset:
    """One synset line of a data.<pos> file -> Synset."""
    head, _, gloss = line.partition(" | ")
    f = head.split()
    offset, lex_filenum, ss_type, w_cnt = f[0], int(f[1]), f[2], int(f[3], 16)
    words = tuple(_ADJ_MARKER.sub("", f[4 + 2 * i]).replace("_", " ") for i in range(w_cnt))
    definition, examples = split_gloss(gloss)
    return Synset(offset, ss_type, LEXNAMES[lex_filenum], words, definition, examples)


def read_synsets(root: str = "/usr/share/wordnet", pos: tuple[str, ...] = ("noun", "verb")) -> list[Synset]:
    """Every synset of the data.<pos> files under ``root``, in file order (pos by pos)."""
    out: list[Synset] = []
    for p in pos:
        if p not in POS:
            raise RTDError(f"unknown WordNet part of speech {p!r}: use one of {', '.join(POS)}")
        path = Path(root) / f"data.{p}"
        if not path.is_file():
            raise RTDError(f"WordNet file {path} is missing: {INSTALL_HINT}")
        with open(path, encoding="utf-8", errors="replace") as fh:
            out.extend(parse_line(line) for line in fh if not line.startswith("  ") and line.strip())
    return out
