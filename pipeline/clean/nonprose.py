"""Non-prose passages of documents: references and footnotes, tables of figures, lists of names or addresses.

Why: PDF submissions carry pages of citations ("See Yoo, supra note 12, at 40"), statistics tables, signature
lists and tables of contents. None of it is what the respondent argues, yet left in it forms themes of its own
(TRAI: "Economic Consulting", "Founding director", "Human rights law" from legal citations and signature blocks),
collects tags and fills quote slots. Repeated boilerplate (`boilerplate.py`) catches text shared by many
documents; these passages are unique to one document, so they are recognised by their form. Prose is made of
function words (a third to a half of its words); references, tables and lists have few:

- ``reference``: at least 2 citation markers (supra, ibid, id., et al., "available at", URLs, docket or volume
  numbers, a year in brackets, a dated source, "Surname, I."; a passage's links count once) and function words
  under 25% of the words, or one marker and under 15%, or a footnote form (supra, ibid, op. cit., id. at: nearly
  only in footnotes and citation sentences) and under 60%;
- ``table``: numbers make at least 40% of the tokens and function words under 20% of the words;
- ``list``: at least 6 words, function words under 10%, at least 60% of the words capitalised.

Function words are those of the passage's language (spaCy's stop-word lists), so German or French prose is not
read as a list. Only passages of documents are candidates (the caller passes the same eligibility as for
boilerplate), so a survey answer listing topics ("Privacy, Transparency, Accountability") stays an answer.
Thresholds were chosen by reading TRAI passages and checked on NETmundial and the AU consultation
(benchmarks/nonprose_passages.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.clean.language import language_stop_words

__all__ = ["KINDS", "nonprose_kind", "nonprose_kinds", "segment_nonprose_kinds", "with_set_aside"]

KINDS = ("reference", "table", "list")

_MARKERS = re.compile(
    r"\bet al\b|\bibid\b|\bop\.? cit\b|\bdoi\b|\bpp?\.\s*\d|\bvol\.\s*\d|\bno\.\s*\d|"
    r"\bavailable (?:at|from|online)\b|\bretrieved\b|\baccessed\b|(?-i:\b[A-Z][A-Za-z]+,\s+[A-Z]\.)|"
    r"\bjournal\b|\bworking paper\b|\bdocket\b|\bsupra(?= note\b|,| at\b)|\bid\.|\(\d{4}\)|"
    r"\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)\.? \d{1,2},? (?:19|20)\d\d\b",
    re.IGNORECASE,
)
# legal and scholarly footnote forms: one is enough in a short footnote ("12 Open Internet Order, supra note 1, at 4.")
_STRONG = re.compile(r"\bsupra(?= note\b|,| at\b| n\.)|\bibid\b|\bop\.? cit\b|\bid\. at\b", re.IGNORECASE)
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)  # all of a passage's links count as one marker
_WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*%?")

REFERENCE_MAX_FUNCTION = 0.25 # with >= 2 markers
REFERENCE_ONE_MARKER_MAX_FUNCTION = 0.15
REFERENCE_STRONG_MAX_FUNCTION = 0.6  # with a footnote form (supra, ibid, op. cit., id. at)
TABLE_MIN_NUMBERS = 0.4
TABLE_MAX_FUNCTION = 0.2
LIST_MIN_WORDS = 6
LIST_MAX_FUNCTION = 0.1
LIST_MIN_CAPITALISED = 0.6


def _function_words(lang: str) -> frozenset[str]:
    """The passage language's function words; English for undetermined text or a language without a list."""
    return language_stop_words(lang) or language_stop_words("en")


def nonprose_kind(text: str, lang: str = "en") -> str:
    """'reference', 'table', 'list' or '' (prose) for one passage (rules in the module docstring)."""
    words = _WORD.findall(text)
    numbers = len(_NUMBER.findall(text))
    if not words and not numbers:
        return ""
    stops = _function_words(lang)
    n = max(len(words), 1)
    function = sum(w.lower().replace("’", "'") in stops for w in words) / n
    markers = len(_MARKERS.findall(_URL.sub(" ", text))) + bool(_URL.search(text))  # "doi" in a link: no marker
    if (markers >= 2 and function < REFERENCE_MAX_FUNCTION) or (
            markers >= 1 and function < REFERENCE_ONE_MARKER_MAX_FUNCTION) or (
            function < REFERENCE_STRONG_MAX_FUNCTION and _STRONG.search(text)):
        return "reference"
    if numbers / (len(words) + numbers) >= TABLE_MIN_NUMBERS and function < TABLE_MAX_FUNCTION:
        return "table"
    capitalised = sum(w[0].isupper() for w in words) / n
    if len(words) >= LIST_MIN_WORDS and function < LIST_MAX_FUNCTION and capitalised >= LIST_MIN_CAPITALISED:
        return "list"
    return ""


def nonprose_kinds(texts: Sequence[str], languages: Sequence[str], eligible: Sequence[bool]) -> list[str]:
    """`nonprose_kind` of each eligible passage ('' for the others)."""
    return [nonprose_kind(str(t), str(lang)) if ok else ""
            for t, lang, ok in zip(texts, languages, eligible, strict=True)]


def segment_nonprose_kinds(clean: pd.DataFrame, segments: pd.DataFrame, min_segments: int,
                           enabled: bool = True) -> list[str]:
    """`nonprose_kinds` of a segments table: eligible are the passages of documents (answers of `clean` with
    >= `min_segments` passages), in the answer's language; all '' when not `enabled` (`clean.set_aside_nonprose`).
    The one rule of the clean stage and of a cluster partition."""
    if not enabled:
        return [""] * len(segments)
    by_answer = clean.set_index("answer_id")
    ids = segments["answer_id"].astype(str)
    languages = ids.map(by_answer["language"]).fillna("en").astype(str).tolist()
    eligible = (ids.map(by_answer["n_segments"]).fillna(0) >= int(min_segments)).tolist()
    return nonprose_kinds(segments["text"].astype(str).tolist(), languages, eligible)


def with_set_aside(segments: pd.DataFrame, repeated: Sequence[bool] | np.ndarray, kinds: Sequence[str]
                   ) -> pd.DataFrame:
    """`segments` with `boilerplate_kind` ('repeated' wins over a passage's own non-prose kind) and
    `is_boilerplate` (any kind) set from them."""
    kind = ["repeated" if r else str(k) for r, k in zip(repeated, kinds, strict=True)]
    out = segments.copy()
    out["boilerplate_kind"] = pd.Series(kind, index=segments.index, dtype="str")
    out["is_boilerplate"] = out["boilerplate_kind"] != ""
    return out
