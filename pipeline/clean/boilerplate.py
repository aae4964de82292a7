"""Boilerplate: passages whose text recurs across many documents (headers, letterheads, disclaimers, signatures).

A corpus header, a letter's address block or a legal disclaimer repeated across submissions is not what the
respondents say: left in, it becomes a theme held by every document and fills the quote slots. A passage is
boilerplate when most of its words are covered by word 5-shingles that occur in at least `min_share` of the
batch's documents (and in at least `min_documents` of them). Digits are folded (page numbers, file ids,
dates differ) and words are compared lower-cased. Only passages of documents are candidates (answers with at
least `min_segments` passages); campaign answers (`dup_group`) are excluded by the caller: the same text sent
by many respondents is an opinion and stays counted.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

__all__ = ["boilerplate_mask", "shingles", "words"]

_WORD = re.compile(r"\w+", re.UNICODE)
_DIGITS = re.compile(r"\d+")


def words(text: str) -> list[str]:
    """Lower-cased word tokens with digit runs folded to '0' (page numbers and ids do not hide a repeat)."""
    return [_DIGITS.sub("0", w) for w in _WORD.findall(text.lower())]


def shingles(tokens: Sequence[str], n: int = 5) -> list[tuple[str, ...]]:
    """Word n-grams; a passage shorter than n words is its own single shingle."""
    if len(tokens) < n:
        return [tuple(tokens)] if tokens else []
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def boilerplate_mask(
    texts: Sequence[str],
    documents: Sequence[str],
    eligible: Sequence[bool] | np.ndarray,
    min_share: float = 0.2,
    min_documents: int = 3,
    min_coverage: float = 0.5,
    n: int = 5,
) -> np.ndarray:
    """True for eligible passages whose words are mostly (>= `min_coverage`) inside shingles held by many documents.

    `documents[i]` is the document (respondent or submission group) passage i belongs to; the share is of the
    documents that have at least one eligible passage. Independent of row order.
    """
    ok = np.asarray(eligible, dtype=bool)
    out = np.zeros(len(texts), dtype=bool)
    if not ok.any():
        return out
    toks = [words(t) if e else [] for t, e in zip(texts, ok, strict=True)]
    holders: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for tk, doc, e in zip(toks, documents, ok, strict=True):
        if e:
            for sh in set(shingles(tk, n)):
                holders[sh].add(str(doc))
    n_docs = len({str(d) for d, e in zip(documents, ok, strict=True) if e})
    need = max(int(min_documents), math.ceil(float(min_share) * n_docs))
    if n_docs < need:
        return out
    common = {sh for sh, docs in holders.items() if len(docs) >= need}
    if not common:
        return out
    for i, tk in enumerate(toks):
        if not tk:
            continue
        if len(tk) < n:
            out[i] = tuple(tk) in common
            continue
        covered = np.zeros(len(tk), dtype=bool)
        for j in range(len(tk) - n + 1):
            if tuple(tk[j:j + n]) in common:
                covered[j:j + n] = True
        out[i] = covered.mean() >= float(min_coverage)
    return out
