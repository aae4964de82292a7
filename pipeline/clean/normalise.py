"""Text normalisation: Unicode, whitespace, PDF de-hyphenation and form/page boilerplate.

Answers arrive from web forms, spreadsheets and PDF extraction. Later stages (embeddings, theme
quotes, offsets of segments) need one stable, readable version of each text: `text_clean`.
Curly quotes and apostrophes are kept (they are what the respondent wrote and NFKC leaves them
alone); only invisible or layout characters are changed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter

import pandas as pd

__all__ = ["normalise_text", "word_count"]

# Invisible characters that only break tokenisation: zero-width, BOM, soft hyphen, word joiner.
_INVISIBLE: dict[int, str | None] = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
# PDF extraction leaves Symbol/Wingdings bullets in the private use area (U+F0B7 etc.).
_INVISIBLE.update({cp: "\u2022" for cp in range(0xF000, 0xF100)})
# Control characters except \n and \t.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LINE_SEP = re.compile(r"\r\n?|[\u2028\u2029\x85\x0b\x0c]")
_SPACES = re.compile(r"[^\S\n]+")
_MANY_NEWLINES = re.compile(r"\n{3,}")
_WORD = re.compile(r"\S+")

# Common cp1252-as-latin-1 mojibake left by some exports ("donâ€™t" -> "don’t").
_MOJIBAKE = {
    "\u00e2\u20ac\u2122": "\u2019",
    "\u00e2\u20ac\u02dc": "\u2018",
    "\u00e2\u20ac\u0153": "\u201c",
    "\u00e2\u20ac\u009d": "\u201d",
    "\u00e2\u20ac\u201c": "\u2013",
    "\u00e2\u20ac\u201d": "\u2014",
    "\u00e2\u20ac\u00a6": "\u2026",
}
_MOJIBAKE_RE = re.compile("|".join(map(re.escape, _MOJIBAKE)))
# An apostrophe lost in a code-page conversion: "world?s", "don?t" (a real "?" is followed by a space).
_LOST_APOSTROPHE = re.compile(r"(?<=[^\W\d_])\?(?=(?:s|t|re|ll|ve|d|m)\b)")
# Any other letter lost before the text reached us: an export that wrote characters outside its code page as
# "?" ("esen?iale", "Sk?odowska", "Tako?e") or a U+FFFD replacement character. It cannot be restored; the words
# holding one are counted (data quality) and kept out of theme names and keywords, whose fragments
# ("esen", "iale") are not words. Links are not text ("papers.cfm?abstract_id=...").
# A "?" between a lower-case and an upper-case letter is a question without its space ("why?Because").
# A "?" at a word's end cannot be told from a question mark ("conteaz?." stays as it is).
_LOST_CHARACTER = r"(?:(?<=[^\W\d_])(?<![a-z])\?+(?=[^\W\d_])|(?<=[a-z])\?+(?=[^\W\dA-Z_])|\ufffd)"
_LOST_CHARACTER_RE = re.compile(_LOST_CHARACTER)
_WORD_TAIL = re.compile(r"[\w'’\-?\ufffd]*+")
_WORD_CHARS = frozenset("'’-?_\ufffd")
_LINK = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)

# Page furniture lines: "Page 3 of 12", "- 3 -", "3/12", "p. 4", a bare page number.
_PAGE_LINE = re.compile(
    r"^\s*(?:(?:page|p\.|seite|página|pagina)\s*\d{1,4}(?:\s*(?:of|/|von|de|sur|di)\s*\d{1,4})?"
    r"|[-\u2013\u2014]\s*\d{1,4}\s*[-\u2013\u2014]|\d{1,4}\s*/\s*\d{1,4}|\d{1,4})\s*$",
    re.I,
)
# "infor-\nmation": a hyphen at a line end inside a word. Prefixes that keep their hyphen.
# It starts only at a word start and never backtracks into a word (possessive), so it is linear in the word
# length; the unanchored form re-scanned a long word from every position (a 64 KB word took 21 s).
_HYPHEN_BREAK = re.compile(r"(?<!\w)(\w++)-\n[ \t]*+([a-z]\w*+)")
# Hyphenated compounds written on one line elsewhere ("self-regulation"); overlapping, so chains all count.
_HYPHENATED = re.compile(r"(?<!\w)(?=(\w++-\w++))")
_KEEP_HYPHEN_PREFIXES = {
    "e", "m", "self", "non", "co", "cross", "well", "high", "low", "long", "short", "multi",
    "inter", "pre", "post", "anti", "semi", "sub", "cyber", "open", "user", "data", "human",
    "rights", "state", "evidence", "risk", "community", "people", "gender",
}
_BULLET = re.compile(r"^\s*(?:[-\u2022\u2023\u25e6\u2043\u2219*\u25aa\u25cf\u2013]|\(?\d{1,3}[.)]|\(?[a-z][.)])\s")
_SENT_END = re.compile(r"[.!?:;\u2026\"\u201d)]\s*$")


def word_count(text: str) -> int:
    """Whitespace-separated words (the unit of segment bounds and of `n_words`)."""
    return len(_WORD.findall(text))


def _dehyphenate(text: str) -> str:
    if "-\n" not in text:
        return text
    compounds = set(_HYPHENATED.findall(text))  # one pass, not one scan of the text per line break

    def join(m: re.Match[str]) -> str:
        left, right = m.group(1), m.group(2)
        if left.lower() in _KEEP_HYPHEN_PREFIXES or f"{left}-{right}" in compounds:
            return f"{left}-{right}"
        return left + right

    return _HYPHEN_BREAK.sub(join, text)


def _drop_boilerplate(lines: list[str]) -> list[str]:
    """Remove page numbers and header/footer lines repeated on many pages of a long text."""
    if len(lines) < 12:
        return [ln for ln in lines if not (_PAGE_LINE.match(ln) and len(lines) > 1 and ln.strip())]
    counts = Counter(ln.strip() for ln in lines if ln.strip())
    repeated = {
        ln for ln, n in counts.items()
        if n >= 3 and len(ln) <= 120 and word_count(ln) <= 15 and not _BULLET.match(ln)
    }
    return [ln for ln in lines if ln.strip() not in repeated and not _PAGE_LINE.match(ln)]


def _unwrap(lines: list[str]) -> str:
    """Join hard-wrapped lines of one paragraph; keep bullets and sentence-final line ends.

    Joined lines are collected per output line and concatenated once (re-building the growing line at
    every wrap was quadratic in the paragraph length); only the last line joined decides the next join.
    """
    out: list[list[str]] = []
    length = 0  # of the output line being built
    for line in lines:
        if not out or not line or not out[-1][-1]:
            out.append([line])
            length = len(line)
            continue
        wrapped = (
            not _BULLET.match(line)
            and not _SENT_END.search(out[-1][-1])
            and (line[0].islower() or length >= 50)
        )
        if wrapped:
            out[-1].append(line)
            length += 1 + len(line)
        else:
            out.append([line])
            length = len(line)
    return "\n".join(" ".join(parts) for parts in out)


def normalise_text(text: object) -> str:
    """Return the clean text of one answer (idempotent: normalising twice changes nothing)."""
    if not isinstance(text, str):
        if text is None or text is pd.NA or (isinstance(text, float) and text != text):
            return ""
        text = str(text)
    s = text
    if not s.strip():
        return ""
    s = _MOJIBAKE_RE.sub(lambda m: _MOJIBAKE[m.group(0)], s)
    s = _LOST_APOSTROPHE.sub("\u2019", s)
    s = unicodedata.normalize("NFKC", s).translate(_INVISIBLE)
    s = _LINE_SEP.sub("\n", s).replace("\t", " ")
    s = _CONTROL.sub("", s)
    s = _SPACES.sub(" ", s)
    lines = [ln.strip() for ln in s.split("\n")]
    lines = _drop_boilerplate(lines)
    s = _dehyphenate("\n".join(lines))
    s = _unwrap(s.split("\n"))
    s = _MANY_NEWLINES.sub("\n\n", s)
    return s.strip()


def damaged_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of every word of `text` that lost a character before it reached the tool, outside links.
    Linear: each lost character is found once and its word widened to both sides once."""
    if "?" not in text and "\ufffd" not in text:
        return []
    links = [m.span() for m in _LINK.finditer(text)]
    spans: list[tuple[int, int]] = []
    for m in _LOST_CHARACTER_RE.finditer(text):
        if (spans and m.start() < spans[-1][1]) or any(a <= m.start() < b for a, b in links):
            continue
        start = m.start()
        floor = spans[-1][1] if spans else 0
        while start > floor and (text[start - 1].isalnum() or text[start - 1] in _WORD_CHARS):
            start -= 1
        tail = _WORD_TAIL.match(text, m.end())
        spans.append((start, tail.end() if tail else m.end()))
    return spans


def mask_damaged_words(text: str, mask: str = " | ") -> str:
    """`text` with every word that lost a character (`damaged_spans`) replaced by `mask`: the words a theme
    name or keyword may be built from."""
    spans = damaged_spans(text)
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        out += [text[pos:start], mask]
        pos = end
    out.append(text[pos:])
    return "".join(out)


def damaged_words(text: str) -> int:
    """How many words of `text` lost a character before it reached the tool (links not counted)."""
    return len(damaged_spans(text))
