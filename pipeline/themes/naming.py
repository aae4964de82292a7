"""Theme names and evidence: class-based TF-IDF keyphrases, short labels, representative quotes."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from pipeline.clean.pii import PLACEHOLDER_RE, redact_contacts

_TOKEN_RE = re.compile(r"[a-z][a-z0-9'-]*[a-z0-9]|[a-z]")
_URL_RE = re.compile(r"https?://\S+|www\.\S+")
# Words too generic to name a theme in any consultation (question boilerplate, fillers).
_GENERIC = frozenset(
    (
        "also", "would", "could", "should", "might", "may", "must", "shall", "will", "can", "need",
        "needs", "use", "used", "using", "make", "made", "way", "ways", "thing", "things", "lot",
        "lots", "etc", "e.g", "i.e", "like", "just", "really", "important", "example", "including",
        "include", "includes", "well", "many", "much", "more", "most", "new", "one", "two", "first",
        "however", "therefore", "whether", "within", "without", "among", "across", "ensure", "think",
        "believe", "feel", "people", "yes", "no", "don't", "doesn't", "it's", "i'm",
    )
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | _GENERIC


def redact_pii(text: str) -> str:
    """Second line of defence for quotes: mask e-mail addresses and phone numbers (the clean stage's patterns)."""
    return redact_contacts(text)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens; redaction placeholders ("[phone]") are not words of the text."""
    text = _URL_RE.sub(" ", PLACEHOLDER_RE.sub(" ", text.lower())).replace("’", "'")
    return [t[:-2] if t.endswith("'s") else t for t in _TOKEN_RE.findall(text)]


def _stem(word: str) -> str:
    """Crude plural folding so lemmatised keyphrases match inflected segment text."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zzes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "is", "us", "'s")):
        return word[:-1]
    return word


def ngram_terms(text: str) -> list[str]:
    """Fallback terms: content unigrams and bigrams of two content words (never across a placeholder)."""
    unigrams: list[str] = []
    bigrams: list[str] = []
    for part in PLACEHOLDER_RE.split(text.lower()):
        toks = [_stem(t) for t in tokens(part)]
        keep = [t if (t not in STOP_WORDS and len(t) > 2) else None for t in toks]
        unigrams += [t for t in keep if t]
        bigrams += [f"{a} {b}" for a, b in zip(keep, keep[1:], strict=False) if a and b]
    return unigrams + bigrams


def question_words(question_text: str) -> set[str]:
    """Stemmed content words of a question: terms made only of these echo the question, not a theme."""
    return {_stem(t) for t in tokens(question_text) if t not in STOP_WORDS and len(t) > 2}


def keyphrase_terms(text: str, keyphrases: Sequence[str]) -> list[str]:
    """The answer's lemmatised keyphrases that occur (plural-folded) in this segment's text."""
    if not keyphrases:
        return []
    seg = " " + " ".join(_stem(t) for t in tokens(text)) + " "
    out = []
    for kp in keyphrases:
        words = [w for w in tokens(str(kp)) if w not in STOP_WORDS]
        if not words or all(len(w) <= 2 for w in words):
            continue
        phrase = " ".join(_stem(w) for w in words)
        if f" {phrase} " in seg:
            out.append(phrase)
    return out


def class_tfidf(term_lists: Sequence[Sequence[str]], classes: np.ndarray, n_classes: int) -> tuple[
    np.ndarray, list[str]
]:
    """c-TF-IDF (BERTopic's formula): term frequency per class x log(1 + avg words per class / term freq)."""
    vocab: dict[str, int] = {}
    rows: list[int] = []
    cols: list[int] = []
    for doc, cls in zip(term_lists, classes, strict=True):
        if cls < 0:
            continue
        for term, count in Counter(doc).items():
            j = vocab.setdefault(term, len(vocab))
            rows.extend([int(cls)] * count)
            cols.append(j)
            cols.extend([j] * (count - 1))
    if not vocab:
        return np.zeros((n_classes, 0)), []
    mat = sparse.csr_matrix(
        (np.ones(len(cols)), (np.array(rows), np.array(cols))), shape=(n_classes, len(vocab))
    ).toarray()
    tf = mat / np.maximum(mat.sum(axis=1, keepdims=True), 1)
    avg = mat.sum() / max(n_classes, 1)
    idf = np.log(1 + avg / np.maximum(mat.sum(axis=0), 1))
    # A keyphrase used by a single segment is an idiosyncrasy, not a theme keyword.
    support = np.zeros_like(mat)
    for doc, cls in zip(term_lists, classes, strict=True):
        if cls >= 0:
            for term in set(doc):
                support[int(cls), vocab[term]] += 1
    raw = tf * idf
    score = raw * (support >= 2)
    empty = score.max(axis=1) <= 0
    score[empty] = raw[empty]  # tiny or very diverse themes: fall back to single-use terms
    names = [""] * len(vocab)
    for term, j in vocab.items():
        names[j] = term
    return score, names


def top_keywords(scores: np.ndarray, names: Sequence[str], n: int) -> list[list[str]]:
    """Top-n terms per class, dropping terms contained in a better-ranked phrase (or containing it)."""
    out: list[list[str]] = []
    for row in scores:
        order: Any = np.lexsort((np.array(names, dtype=object).astype(str), -row)) if len(names) else []
        chosen: list[str] = []
        for j in order:
            if row[j] <= 0 or len(chosen) >= n:
                break
            term = names[j]
            words = set(term.split())
            if any(words <= set(c.split()) or set(c.split()) <= words for c in chosen):
                continue
            chosen.append(term)
        out.append(chosen)
    return out


_ACRONYM_RE = re.compile(r"\b[A-Z][A-Z0-9]{1,5}s?\b")


def acronyms(texts: Sequence[str]) -> dict[str, str]:
    """Lower-case -> capitals for words mostly written in capitals in these texts (AI, LLM, IGF)."""
    upper: Counter[str] = Counter()
    for text in texts:
        for m in _ACRONYM_RE.findall(text):
            upper[m[:-1] if m.endswith("s") and len(m) > 2 else m] += 1
    if not upper:
        return {}
    lower: Counter[str] = Counter()
    wanted = {w.lower() for w in upper}
    for text in texts:
        for tok in re.findall(r"\b[A-Za-z][A-Za-z0-9]*\b", text):
            low = tok.lower()
            if low in wanted and not tok.isupper():
                lower[low] += 1
    return {w.lower(): w for w, n in upper.items() if n > lower[w.lower()]}


def make_label(keywords: Sequence[str], max_terms: int = 3, case: dict[str, str] | None = None) -> str:
    """A short human-readable label from the best keyphrases, e.g. 'Data protection, consent'."""
    picked = list(keywords[:max_terms])
    if not picked:
        return "Unlabelled theme"
    case = case or {}
    label = ", ".join(" ".join(case.get(w, w) for w in kw.split()) for kw in picked)
    return label[:1].upper() + label[1:]


def pick_quotes(
    order: Sequence[int] | np.ndarray,
    response_ids: Sequence[str] | np.ndarray,
    segment_ids: Sequence[str] | np.ndarray,
    texts: Sequence[str] | np.ndarray,
    n: int,
    max_chars: int = 300,
    min_words: int = 8,
) -> list[dict[str, str]]:
    """The first `n` segments of `order` (closest to the centre first) from different respondents.

    Quotes of at least `min_words` words are preferred (a three-word fragment rarely illustrates a theme);
    shorter ones fill the remaining places only when the theme has too few longer segments.
    """
    seen: set[str] = set()
    quotes: list[dict[str, str]] = []
    for floor in (min_words, 3):
        for i in order:
            rid = str(response_ids[i])
            text = redact_pii(str(texts[i]).strip())
            if rid in seen or len(text.split()) < floor:
                continue
            if len(text) > max_chars:
                text = text[: max_chars - 1].rsplit(" ", 1)[0] + "…"
            seen.add(rid)
            quotes.append({"response_id": rid, "segment_id": str(segment_ids[i]), "text": text})
            if len(quotes) >= n:
                return quotes
    return quotes
