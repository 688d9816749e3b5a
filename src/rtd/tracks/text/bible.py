"""The KJV (1611 English) and WEB (modern English) Bibles, verse-aligned, from Debian's SWORD modules.

``diatheke -f internal`` prints one line per verse, ``<stale pre-verse markup> Book C:V: <OSIS markup>``,
and the markup is cleaned here (``clean_verse``). ``-f internal`` is used rather than ``-f plain`` because
plain already glues words together where WEB's markup had no space between two ``<w>`` elements
("Godcreated"), splits poetry across lines and prints Psalm titles on their own lines, where they cannot be
told from the previous verse's poetry; the raw markup keeps every boundary, so the cleaning can decide.

Cleaning rules:

- Everything on a line before the verse reference is dropped. That is where Psalm superscriptions ("A Psalm
  of David, when he fled from Absalom his son.") stand, and diatheke repeats the latest one before every later
  verse of the module. Superscriptions are dropped in both versions: KJV and WEB word them differently and
  neither numbers them as verse text, so keeping them would glue version-specific text into verse 1.
- Elements that are not verse text are dropped with their content: ``<note>``, ``<title>``, ``<speaker>``
  (WEB's speaker labels in the Song of Solomon). Everything after a book's end marker is dropped: WEB prints
  its glossary after Revelation 22:21.
- Every other tag is removed. A run of tags becomes one space where it separated two words: where it holds a
  line, paragraph or list tag, or where it opens a new ``<w>`` word or a quotation between a word (or a
  clause-ending punctuation mark) and a letter (WEB: ``God</w><w>created``, ``weeds</w></q><q><w>also``).
  A run holding only a closing ``</w>`` joins (KJV splits words: ``give</w>n``, ``day</w>’<w>s``).
- The pilcrow (¶) is dropped; curly quotes become ASCII (“ ” → ", ‘ ’ → '); whitespace is collapsed and
  spaces before , . ; : ? ! are removed.
- Empty verses (WEB's III John 1:15) are dropped. Only the 66 books of ``BOOKS`` are kept (WEB's module also
  holds the deuterocanon).
"""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from ...errors import RTDError

GENRES = ("law", "history", "wisdom", "prophets", "gospels_acts", "pauline", "general_epistles", "apocalyptic")

_GENRE_BOOKS = {
    "law": ("Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy"),
    "history": ("Joshua", "Judges", "Ruth", "I Samuel", "II Samuel", "I Kings", "II Kings", "I Chronicles",
                "II Chronicles", "Ezra", "Nehemiah", "Esther"),
    "wisdom": ("Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon"),
    "prophets": ("Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos", "Obadiah",
                 "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah", "Malachi"),
    "gospels_acts": ("Matthew", "Mark", "Luke", "John", "Acts"),
    "pauline": ("Romans", "I Corinthians", "II Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians",
                "I Thessalonians", "II Thessalonians", "I Timothy", "II Timothy", "Titus", "Philemon"),
    "general_epistles": ("Hebrews", "James", "I Peter", "II Peter", "I John", "II John", "III John", "Jude"),
    "apocalyptic": ("Revelation of John",),
}
# (book name as diatheke prints it, genre name), canonical order
BOOKS: tuple[tuple[str, str], ...] = tuple((b, g) for g in GENRES for b in _GENRE_BOOKS[g])
BOOK_INDEX = {b: i for i, (b, _) in enumerate(BOOKS)}
BOOK_GENRE = {b: GENRES.index(g) for b, g in BOOKS}

KJV, WEB = "engKJV2006eb", "engWEB2015eb"
FULL_RANGE = "Genesis 1:1-Revelation 22:21"
INSTALL_HINT = ("install the Bible modules with `scripts/install_text_data.sh` "
                "(or `sudo apt-get install sword-text-kjv sword-text-web diatheke`)")

_BOOK_ALT = "|".join(re.escape(b) for b in sorted(BOOK_INDEX, key=len, reverse=True))
_REF = re.compile(rf"(?:^|(?<=[\s>]))({_BOOK_ALT}) (\d+):(\d+): ")
_DROP_ELEMENTS = re.compile(r"<(note|title|speaker)\b[^>]*(?<!/)>.*?</\1\s*>", re.S)
_BOOK_END = re.compile(r"<div\b[^>]*\beID=[^>]*\btype=\"book\"")
_TAG_RUN = re.compile(r"(?:<[^>]*>)+")
_BLOCK_TAG = re.compile(r"</?(?:l|lb|lg|div|p|milestone|list|item|chapter|br|speaker|title|note)\b")
_WORD_START = re.compile(r"<w\b|</?q\b")
_CLAUSE_END = ",.;:?!"
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "¶": " ", "\u00a0": " "})


@dataclass(frozen=True)
class Verse:
    book: str
    chapter: int
    verse: int
    genre: int   # index into GENRES
    kjv: str
    web: str

    @property
    def ref(self) -> str:
        return f"{self.book} {self.chapter}:{self.verse}"


def genre_of(book: str) -> int:
    """The genre index (into GENRES) of a book named as diatheke prints it."""
    return BOOK_GENRE[book]


def _separates_words(text: str, start: int, end: int, run: str) -> bool:
    """Whether the tag run text[start:end] stood between two words (so removing it must leave a space)."""
    if _BLOCK_TAG.search(run):
        return True
    if start == 0 or end >= len(text) or not _WORD_START.search(run) or not text[end].isalnum():
        return False
    left = text[start - 1]
    if left.isalnum() or left in _CLAUSE_END or left == "”":
        return True
    return left == "’" and start >= 2 and text[start - 2] in _CLAUSE_END


def clean_verse(raw: str) -> str:
    """One verse's OSIS markup (the text after ``Book C:V: ``) -> plain text (see the module docstring)."""
    end = _BOOK_END.search(raw)
    text = raw[:end.start()] if end else raw
    text = _DROP_ELEMENTS.sub(" ", text)
    text = _TAG_RUN.sub(lambda m: " " if _separates_words(text, m.start(), m.end(), m.group()) else "", text)
    text = text.translate(_QUOTES)
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r" (?=[,.;:?!])", "", text)
    return text.strip()


def parse_diatheke(output: str) -> dict[tuple[str, int, int], str]:
    """diatheke ``-f internal`` output -> {(book, chapter, verse): cleaned text}, non-empty verses of BOOKS only."""
    verses: dict[tuple[str, int, int], str] = {}
    for line in output.splitlines():
        m = _REF.search(line)
        if m is None:
            continue
        key = (m.group(1), int(m.group(2)), int(m.group(3)))
        text = clean_verse(line[m.end():])
        if text and key not in verses:
            verses[key] = text
    return verses


def _run_diatheke(module: str) -> str:
    cmd = ["diatheke", "-b", module, "-f", "internal", "-l", "en", "-e", "UTF8", "-k", FULL_RANGE]  # English names
    try:
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=600)
    except FileNotFoundError as e:
        raise RTDError(f"diatheke is not installed: {INSTALL_HINT}") from e
    if proc.returncode != 0:
        raise RTDError(f"diatheke failed on module {module} (exit {proc.returncode}: "
                       f"{proc.stderr.decode('utf-8', 'replace').strip()[:200]}): {INSTALL_HINT}")
    return proc.stdout.decode("utf-8", "replace")


def read_bible(module: str) -> dict[tuple[str, int, int], str]:
    """(book, chapter, verse) -> cleaned verse text of one SWORD module, read with one diatheke call."""
    verses = parse_diatheke(_run_diatheke(module))
    if not verses:
        raise RTDError(f"the SWORD module {module} is missing (diatheke printed no verses; installed modules: "
                       f"`diatheke -b system -k modulelist`): {INSTALL_HINT}")
    return verses


def aligned_verses(kjv: str = KJV, web: str = WEB) -> list[Verse]:
    """The verses present and non-empty in both versions, in canonical order."""
    a, b = read_bible(kjv), read_bible(web)
    keys = sorted(a.keys() & b.keys(), key=lambda k: (BOOK_INDEX[k[0]], k[1], k[2]))
    return [Verse(k[0], k[1], k[2], BOOK_GENRE[k[0]], a[k], b[k]) for k in keys]
