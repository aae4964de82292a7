"""Keyphrases (lemmatised noun chunks) and named entities of a spaCy Doc, for theme labels.

Theme labels are later built with class-based TF-IDF over these phrases, so they must be
canonical: lower-case lemmas, without determiners, pronouns, stop words or numbers, 1-4 tokens.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pipeline.clean.normalise import damaged_words
from pipeline.clean.pii import PLACEHOLDER_RE, PLACEHOLDERS

__all__ = ["ENTITY_LABELS", "entities", "keyphrases"]

ENTITY_LABELS = frozenset(
    {"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE"}
)
_DROP_POS = frozenset({"DET", "PRON", "NUM", "SYM", "PUNCT", "SPACE", "X", "PART", "CCONJ", "ADP", "INTJ"})
_HAS_LETTERS = re.compile(r"[^\W\d_]{2,}")
_SPACES = re.compile(r"\s+")
# spaCy lemmatises "data" to "datum" and "media" to "medium": wrong for this domain.
_KEEP_AS_WRITTEN = {"data": "data", "media": "media", "news": "news", "icts": "ict", "sdgs": "sdg",
                    "ais": "ai", "ngos": "ngo", "smes": "sme", "msmes": "msme", "llms": "llm"}
_LETTER = re.compile(r"[^\W\d_]")
# number words that name a thing rather than count one ("zero rating", "zero trust", "net zero"): spaCy calls
# them like_num, and dropping them turned "zero rating programs" into "rating programs"
_NAMING_NUMBERS = frozenset({"zero"})
_LEADING_THE = re.compile(r"^the\s+", re.I)


def _keep(tok: Any) -> bool:
    return not (
        tok.is_stop or tok.is_punct or tok.is_space or tok.like_url or tok.like_email
        or (tok.like_num and tok.lower_ not in _NAMING_NUMBERS)
        or (tok.pos_ in _DROP_POS and not (tok.pos_ in {"NUM", "X"} and _HAS_LETTERS.search(tok.text)))
    )


def _in_placeholder(tok: Any) -> bool:
    """The "name" of "[name]": noun chunks leave the brackets out, so look at the neighbours."""
    doc, i = tok.doc, tok.i
    return (
        f"[{tok.lower_}]" in PLACEHOLDERS and 0 < i < len(doc) - 1 and not tok.whitespace_
        and doc[i - 1].text == "[" and not doc[i - 1].whitespace_ and doc[i + 1].text == "]"
    )


def _words(chunk: Any) -> list[list[Any]]:
    """Tokens grouped into whitespace-delimited words ("e-health", "5G" stay one word)."""
    words: list[list[Any]] = []
    for tok in chunk:
        if words and not words[-1][-1].whitespace_:
            words[-1].append(tok)
        else:
            words.append([tok])
    return words


def _form(tok: Any, lemmatize: Callable[[Any], str] | None = None) -> str:
    """Lemma for nouns (plural -> singular), surface form otherwise; a few lemmas kept as written.

    `lemmatize` computes a noun's lemma when the lemmatizer did not run over the whole Doc
    (`nlp.lemmatizer_of`: only these tokens need one)."""
    low = tok.text.lower()
    if low in _KEEP_AS_WRITTEN:
        return _KEEP_AS_WRITTEN[low]
    if tok.pos_ not in {"NOUN", "PROPN"}:
        return str(tok.text).lower()
    lemma = lemmatize(tok) if lemmatize is not None else tok.lemma_
    return str(lemma or tok.text).lower()


def _word_form(word: list[Any], lemmatize: Callable[[Any], str] | None = None) -> str | None:
    """Lower-case form of one word: lemma for nouns (plural -> singular), surface form otherwise.

    A redaction placeholder written in the text ("[name]" in a template) is no keyphrase.
    """
    if any(_in_placeholder(tok) for tok in word):
        return None
    if len(word) == 1:
        tok = word[0]
        if not _keep(tok):
            return None
        return _form(tok, lemmatize)
    text = "".join(t.text for t in word[:-1]).lower()
    last = word[-1]
    form = text + _form(last, lemmatize)
    form = form.strip("-\u2010\u2011'\"’()[]:;,.!?")
    return form if _LETTER.search(form) and not all(t.is_stop or t.is_punct for t in word) else None


def _damaged(word: list[Any]) -> bool:
    return damaged_words("".join(t.text for t in word)) > 0


def keyphrases(doc: Any, max_tokens: int = 4, lemmatize: Callable[[Any], str] | None = None) -> list[str]:
    """Lemmatised lower-case noun chunks of `doc` (order of first occurrence, unique); see `_form` for `lemmatize`."""
    seen: dict[str, None] = {}
    for chunk in doc.noun_chunks:
        forms: list[str] = []
        for word in _words(chunk):
            if _damaged(word):  # a letter lost before the text reached us: "Sk?odowska" is no word, and the
                forms = []      # words before it do not join the ones after it
                continue
            form = _word_form(word, lemmatize)
            if form:
                forms.append(form)
        if not forms:
            continue
        phrase = " ".join(forms[-max_tokens:])  # the head noun is at the end of an English chunk
        if _HAS_LETTERS.search(phrase):
            seen.setdefault(phrase, None)
    return list(seen)


def entities(doc: Any) -> list[str]:
    """Named entities (surface form, whitespace normalised), order of first occurrence, unique."""
    seen: dict[str, None] = {}
    for ent in doc.ents:
        if ent.label_ not in ENTITY_LABELS:
            continue
        if PLACEHOLDER_RE.search(ent.text.lower()):
            continue
        text = _LEADING_THE.sub("", _SPACES.sub(" ", ent.text)).strip(" \"'“”‘’()[].,;:")
        if _HAS_LETTERS.search(text):
            seen.setdefault(text, None)
    return list(seen)
