"""Theme names and evidence: class-based TF-IDF keyphrases, heading labels, descriptions, representative quotes."""

from __future__ import annotations

import functools
import importlib
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from pipeline.clean.pii import PLACEHOLDER_RE, redact_contacts

# Letters of any script: "möglicht" is one word, not "m" + "glicht" (an ASCII class cut words at accents).
_TOKEN_RE = re.compile(r"[^\W\d_](?:[\w'-]*[^\W_])?")
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


# second line of defence for quotes: e-mail addresses and phone numbers (the one masker, in pipeline.clean.pii)
redact_pii = redact_contacts


# Elided articles and prepositions written onto the next word: "l'intelligence" is "intelligence".
_ELISIONS = {
    "fr": frozenset(("l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu")),
    "it": frozenset(
        ("l", "d", "un", "dell", "all", "dall", "nell", "sull", "coll", "quell", "quest", "c", "s", "m", "t")
    ),
    "ca": frozenset(("l", "d", "s", "m", "t", "n")),
}


def tokens(text: str, lang: str | None = None) -> list[str]:
    """Lower-case word tokens; redaction placeholders ("[phone]") are not words of the text.

    Words are never cut at accents; in French, Italian and Catalan an elided article is split off its word
    ("l'intelligence" -> "intelligence"), so that the word is counted with its other forms.
    """
    text = _URL_RE.sub(" ", PLACEHOLDER_RE.sub(" ", text.lower())).replace("’", "'")
    out = [t[:-2] if t.endswith("'s") else t for t in _TOKEN_RE.findall(text)]
    elided = _ELISIONS.get(lang or "")
    if elided:
        out = [t.split("'", 1)[1] if "'" in t and t.split("'", 1)[0] in elided and t.split("'", 1)[1] else t
               for t in out]
    return out


@functools.cache
def language_stop_words(lang: str) -> frozenset[str]:
    """spaCy's stop-word list of one language (shipped without any model download); empty when it has none."""
    if not re.fullmatch(r"[a-z]{2,3}", lang or ""):
        return frozenset()
    try:
        mod = importlib.import_module(f"spacy.lang.{lang}.stop_words")
    except ImportError:
        return frozenset()
    return frozenset(str(w).lower().replace("’", "'") for w in getattr(mod, "STOP_WORDS", ()))


@functools.cache
def stop_words(lang: str | None = None) -> frozenset[str]:
    """The English list (with generic consultation words) plus the function words of `lang`."""
    return STOP_WORDS | language_stop_words(lang) if lang and lang != "en" else STOP_WORDS


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


def ngram_terms(text: str, lang: str | None = None) -> list[str]:
    """Fallback terms: content unigrams and bigrams of two content words (never across a placeholder).

    Function words are those of the text's language (`lang`, the clean stage's code) as well as English.
    """
    stop = stop_words(lang)
    unigrams: list[str] = []
    bigrams: list[str] = []
    for part in PLACEHOLDER_RE.split(text.lower()):
        raw = tokens(part, lang)
        toks = [_stem(t) for t in raw]
        keep = [t if (r not in stop and len(t) > 2) else None for r, t in zip(raw, toks, strict=True)]
        unigrams += [t for t in keep if t]
        bigrams += [f"{a} {b}" for a, b in zip(keep, keep[1:], strict=False) if a and b]
    return unigrams + bigrams


def question_words(question_text: str) -> set[str]:
    """Stemmed content words of a question: terms made only of these echo the question, not a theme."""
    return {_stem(t) for t in tokens(question_text) if t not in STOP_WORDS and len(t) > 2}


def keyphrase_terms(text: str, keyphrases: Sequence[str], lang: str | None = None) -> list[str]:
    """The answer's lemmatised keyphrases that occur (plural-folded) in this segment's text."""
    if not keyphrases:
        return []
    stop = stop_words(lang)
    seg = " " + " ".join(_stem(t) for t in tokens(text, lang)) + " "
    out = []
    for kp in keyphrases:
        words = [w for w in tokens(str(kp), lang) if w not in stop]
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


_SURFACE_RE = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")
_SENTENCE_END = frozenset(".!?:;\n\"“(")


def surface_forms(phrases: Sequence[str], texts: Sequence[str]) -> dict[str, str]:
    """The most common written form of each stemmed lower-case phrase in these texts ('human right' ->
    'human rights', 'icann' -> 'ICANN'). Words at a sentence start do not vote for a capital letter."""
    wanted: dict[int, set[tuple[str, ...]]] = {}
    for ph in phrases:
        key = tuple(ph.split())
        wanted.setdefault(len(key), set()).add(key)
    votes: dict[tuple[str, ...], Counter[str]] = {}
    for text in texts:
        toks = [(m.start(), m.group(0)) for m in _SURFACE_RE.finditer(text)]
        stems = [_stem(w.lower().replace("’", "'")) for _, w in toks]
        for n, keys in wanted.items():
            for i in range(len(toks) - n + 1):
                key = tuple(stems[i:i + n])
                if key not in keys:
                    continue
                start = toks[i][0]
                before = text[:start].rstrip()
                words = [w for _, w in toks[i:i + n]]
                if not before or before[-1] in _SENTENCE_END:
                    words[0] = words[0].lower() if not words[0].isupper() else words[0]
                votes.setdefault(key, Counter())[" ".join(words)] += 1
    out = {}
    for ph in phrases:
        c = votes.get(tuple(ph.split()))
        if not c:
            out[ph] = ph
            continue
        best, n = sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        # Title Case from headings ("Paragraph", "Conference") yields to the lower-case form when that is common too.
        low = c.get(best.lower(), 0)
        out[ph] = best.lower() if best != best.lower() and not best.isupper() and 3 * low >= n else best
    return out


NAME_LANGUAGES = ("de", "fr", "es", "it", "pt", "nl")


@functools.cache
def name_stop_words(languages: tuple[str, ...] = ()) -> frozenset[str]:
    """English plus German, French, Spanish, Italian, Portuguese, Dutch and `languages` function words (spaCy).

    Used to choose names only (keywords keep every term): a theme of German answers is not "Und and die",
    and a Swedish or Romanian word of a batch in those languages ("och", "pentru") is no name either.
    """
    out = set(STOP_WORDS)
    for lang in dict.fromkeys(NAME_LANGUAGES + tuple(languages)):
        out |= language_stop_words(lang)
    return frozenset(out)


def nameable(keywords: Sequence[str], languages: Sequence[str] = ()) -> list[str]:
    """Keywords that can name a theme: not made only of function words (of the main languages and `languages`)."""
    stop = name_stop_words(tuple(sorted(set(languages))))
    return [k for k in keywords if k.strip() and not all(w in stop for w in k.split())]


def _cased(phrase: str, surface: dict[str, str], case: dict[str, str]) -> str:
    form = surface.get(phrase, phrase)
    return " ".join(case.get(w.lower(), w) for w in form.split())


def heading_label(
    keywords: Sequence[str],
    surface: dict[str, str] | None = None,
    case: dict[str, str] | None = None,
    taken: set[str] | frozenset[str] = frozenset(),
    max_words: int = 6,
) -> str:
    """A heading an analyst would write (2-6 words), from the theme's most distinctive noun chunks.

    The head is the best-ranked multi-word keyphrase among the top three (a noun chunk such as 'digital
    divide'), else the best keyword; a second keyphrase sharing no word with it is joined with 'and' when the
    heading stays within `max_words` words. A heading already used in the question (`taken`) gives way to the
    next candidate pair, so two themes of a question never share a name.
    """
    surface, case = surface or {}, case or {}
    cands = nameable(keywords)
    if not cands:
        return "Unlabelled theme"
    heads = [k for k in cands[:3] if len(k.split()) >= 2] + cands[:3]
    options: list[str] = []
    def parts(phrase: str) -> set[str]:  # "zero-rating" shares a word with "rating"
        return set(re.split(r"[\s-]+", phrase))

    for head in dict.fromkeys(heads):
        hw = parts(head)
        for other in cands:
            if other == head or hw & parts(other):
                continue
            if len(head.split()) + len(other.split()) + 1 <= max_words:
                options.append(f"{_cased(head, surface, case)} and {_cased(other, surface, case)}")
                break
        if len(head.split()) >= 2:
            options.append(_cased(head, surface, case))
    options += [_cased(k, surface, case) for k in cands]
    for opt in options:
        label = opt[:1].upper() + opt[1:]
        if label.lower() not in {t.lower() for t in taken}:
            return label
    label = options[0]
    return label[:1].upper() + label[1:]


def describe_theme(
    keywords: Sequence[str],
    in_share: dict[str, float],
    out_share: dict[str, float],
    surface: dict[str, str] | None = None,
    case: dict[str, str] | None = None,
) -> str:
    """One sentence on what the theme's passages say and one on what sets it apart from the question's others.

    Built from the theme's own keyphrases: the best-ranked ones say what it is about, and the keyphrase whose
    share of the theme's passages most exceeds its share in the question's other themes is what sets it apart.
    """
    surface, case = surface or {}, case or {}
    kws = nameable(keywords)
    if not kws:
        return ""
    names = [_cased(k, surface, case) for k in kws]
    about = " and ".join(names[:2])
    also = names[2:5]
    text = f"Answers about {about}"
    if also:
        text += ", often mentioning " + (", ".join(also[:-1]) + " and " + also[-1] if len(also) > 1 else also[0])
    text += "."
    lift = sorted(((in_share.get(k, 0.0) - out_share.get(k, 0.0), k) for k in kws), key=lambda t: (-t[0], t[1]))
    if lift and lift[0][0] > 0:
        k = lift[0][1]
        text += (
            f" Sets it apart: {_cased(k, surface, case)} ({in_share.get(k, 0.0):.0%} of its passages,"
            f" {out_share.get(k, 0.0):.0%} in the question's other themes)."
        )
    return text


def term_shares(term_lists: Sequence[Sequence[str]], labels: np.ndarray, k: int) -> tuple[
    list[dict[str, float]], list[dict[str, float]]
]:
    """Per theme: share of its passages that hold each term, and that share among the question's other themes."""
    present: list[Counter[str]] = [Counter() for _ in range(k)]
    sizes = np.zeros(k, dtype=int)
    for terms, lab in zip(term_lists, labels, strict=True):
        if lab < 0:
            continue
        sizes[int(lab)] += 1
        present[int(lab)].update(set(terms))
    total: Counter[str] = Counter()
    for c in present:
        total.update(c)
    n_all = int(sizes.sum())
    ins = [{t: n / max(int(sizes[c]), 1) for t, n in present[c].items()} for c in range(k)]
    outs = [
        {t: (total[t] - present[c][t]) / max(n_all - int(sizes[c]), 1) for t in present[c]} for c in range(k)
    ]
    return ins, outs


def name_theme(
    keywords: Sequence[str],
    member_texts: Sequence[str],
    in_share: dict[str, float],
    out_share: dict[str, float],
    case: dict[str, str],
    taken: set[str] | frozenset[str] = frozenset(),
    languages: Sequence[str] = (),
) -> tuple[str, str]:
    """Label and description of one emergent theme: the one naming entry point discovery calls.

    `keywords` are the theme's ranked distinctive terms (class tf-idf), `member_texts` its redacted passages in
    the label language, `in_share`/`out_share` each term's share of its passages and of the question's other
    themes' passages, `case` the batch's acronym spellings, `taken` the labels the question already uses.
    """
    cands = nameable(keywords, languages)
    surface = surface_forms(cands, member_texts)
    return heading_label(cands, surface, case, taken), describe_theme(cands, in_share, out_share, surface, case)
