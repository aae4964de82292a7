"""Passages: sentences grouped into analysis units of bounded length, with exact char offsets.

Themes are assigned per passage (one answer can raise several themes) and quotes are cut from
`text_clean` by offset, so every passage satisfies `text_clean[start:end] == text`. Passages never
cross answers; they prefer to end at paragraph breaks; sentences shorter than `min_words` are
merged with a neighbour; a sentence longer than `max_words` (e.g. a PDF run-on line without
punctuation) is cut at word boundaries so that embeddings never silently truncate it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Sentence", "group_sentences", "paragraph_blocks", "passages", "regex_sentences", "split_long", "text_passages",
]

_WORD = re.compile(r"\S+")
_PARA_BREAK = re.compile(r"\n\s*\n")
# Without spaCy: a sentence ends at . ! ? ; before whitespace and a capital, digit, quote, bracket or bullet;
# every line break ends one too (bullets, list items), as in the spaCy pass (nlp._sentences).
_SENT_END = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[A-Z0-9•\-])|\n")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    n_words: int
    para_start: bool = False  # first sentence of a paragraph


def paragraph_blocks(text: str, max_chars: int = 20000) -> list[tuple[int, int]]:
    """(start, end) of paragraphs (blank-line separated), long ones cut at a line/space boundary."""
    blocks: list[tuple[int, int]] = []
    pos = 0
    for m in [*_PARA_BREAK.finditer(text), None]:
        end = m.start() if m else len(text)
        start = pos
        while start < end:
            stop = end
            if stop - start > max_chars:
                cut = text.rfind("\n", start, start + max_chars)
                if cut <= start:
                    cut = text.rfind(" ", start, start + max_chars)
                stop = cut if cut > start else start + max_chars
            s, e = _strip(text, start, stop)
            if e > s:
                blocks.append((s, e))
            start = stop
        pos = m.end() if m else len(text)
    return blocks


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def split_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    """Cut text[start:end] into near-equal word chunks of at most `max_words` words."""
    words = [(start + m.start(), start + m.end()) for m in _WORD.finditer(text[start:end])]
    if len(words) <= max_words:
        return [(start, end)] if words else []
    n_chunks = -(-len(words) // max_words)
    per = -(-len(words) // n_chunks)
    return [(words[i][0], words[min(i + per, len(words)) - 1][1]) for i in range(0, len(words), per)]


def group_sentences(sentences: list[Sentence], min_words: int, max_words: int) -> list[tuple[int, int]]:
    """Greedy grouping of consecutive sentences into (start, end) passages of <= max_words words.

    A new passage starts when the next sentence would overflow it, or at a paragraph start once
    the current passage has at least `min_words` words; short sentences stay with a neighbour.
    """
    groups: list[list[Sentence]] = []
    words: list[int] = []
    for sent in sentences:
        if sent.n_words == 0:
            continue
        if groups:
            cur = words[-1]
            if cur + sent.n_words > max_words:
                new = True
            elif cur < min_words:
                new = False
            else:
                new = sent.para_start
            if not new:
                groups[-1].append(sent)
                words[-1] += sent.n_words
                continue
        groups.append([sent])
        words.append(sent.n_words)
    # A short tail joins the previous passage when it fits.
    if len(groups) >= 2 and words[-1] < min_words and words[-2] + words[-1] <= max_words:
        tail, tail_words = groups.pop(), words.pop()
        groups[-1].extend(tail)
        words[-1] += tail_words
    return [(g[0].start, g[-1].end) for g in groups]


def regex_sentences(text: str) -> list[Sentence]:
    """Sentences of `text` by punctuation and line breaks (no model): for callers that cannot wait for spaCy."""
    out: list[Sentence] = []
    for block_start, block_end in paragraph_blocks(text):
        pos, first = block_start, True
        for m in [*_SENT_END.finditer(text, block_start, block_end), None]:
            stop = m.start() if m else block_end
            s, e = _strip(text, pos, stop)
            if e > s:
                out.append(Sentence(s, e, len(_WORD.findall(text[s:e])), para_start=first))
                first = False
            pos = m.end() if m else block_end
    return out


def text_passages(
    text: str, max_words: int, min_words: int, cut_long: bool = True,
) -> list[tuple[int, int]]:
    """(start, end) passages of one text with the clean stage's grouping rules, sentences found by `regex_sentences`.

    The one passage splitter for code that works on raw text outside the clean stage (the tagger's ad-hoc
    input and its sentence passages): same bounds, paragraph preference, short-sentence merging and over-long
    sentence cuts as segments.parquet, so `text[start:end]` are passages of the same kind. `cut_long=False`
    keeps a sentence longer than `max_words` whole (one passage of its own) instead of cutting it at words.
    """
    return passages(text, regex_sentences(text), min_words, max_words, cut_long)


def passages(
    text: str, sentences: list[Sentence], min_words: int, max_words: int, cut_long: bool = True,
) -> list[tuple[int, int]]:
    """(start, end) passages from a text's sentences: over-long sentences cut (unless not `cut_long`), then
    `group_sentences`."""
    out: list[Sentence] = []
    for sent in sentences:
        if cut_long and sent.n_words > max_words:
            for j, (s, e) in enumerate(split_long(text, sent.start, sent.end, max_words)):
                out.append(Sentence(s, e, len(_WORD.findall(text[s:e])), sent.para_start and j == 0))
        else:
            out.append(sent)
    return group_sentences(out, min_words, max_words)
