"""Theme names and evidence: class-based TF-IDF keyphrases, heading labels, descriptions, representative quotes."""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from pipeline.clean.language import language_stop_words
from pipeline.clean.normalise import mask_damaged_words
from pipeline.clean.pii import PLACEHOLDER_RE, redact_contacts
from pipeline.errors import InputError

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
    """Lower-case word tokens; redaction placeholders ("[phone]") and words that lost a letter before the text
    reached us ("esen?iale": `mask_damaged_words`) are not words of the text.

    Words are never cut at accents; in French, Italian and Catalan an elided article is split off its word
    ("l'intelligence" -> "intelligence"), so that the word is counted with its other forms.
    """
    text = _URL_RE.sub(" ", PLACEHOLDER_RE.sub(" ", mask_damaged_words(text, " ").lower())).replace("’", "'")
    out = [t[:-2] if t.endswith("'s") else t for t in _TOKEN_RE.findall(text)]
    elided = _ELISIONS.get(lang or "")
    if elided:
        out = [t.split("'", 1)[1] if "'" in t and t.split("'", 1)[0] in elided and t.split("'", 1)[1] else t
               for t in out]
    return out


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
    """Fallback terms: content unigrams and bigrams of two content words (never across a placeholder or a word
    that lost a letter).

    Function words are those of the text's language (`lang`, the clean stage's code) as well as English.
    """
    stop = stop_words(lang)
    unigrams: list[str] = []
    bigrams: list[str] = []
    parts = (p for chunk in mask_damaged_words(text, "\0").split("\0") for p in PLACEHOLDER_RE.split(chunk))
    for part in parts:
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
    return KeyphraseIndex(keyphrases, lang).terms_in(text)


class KeyphraseIndex:
    """An answer's keyphrases, tokenised and plural-folded once, to find those each of its segments contains.

    A long document has thousands of keyphrases and hundreds of segments: folding every keyphrase again for
    every segment was quadratic (a TRAI submission: minutes). Built once per answer, a lookup costs the
    segment's n-grams (a phrase occurs when its folded words are consecutive folded tokens of the segment)."""

    def __init__(self, keyphrases: Sequence[str], lang: str | None = None) -> None:
        self.lang = lang
        stop = stop_words(lang)
        self.positions: dict[str, list[int]] = {}  # folded phrase -> its places in keyphrase order
        self.longest = 0
        for i, kp in enumerate(keyphrases):
            words = [w for w in tokens(str(kp), lang) if w not in stop]
            if not words or all(len(w) <= 2 for w in words):
                continue
            self.positions.setdefault(" ".join(_stem(w) for w in words), []).append(i)
            self.longest = max(self.longest, len(words))

    def terms_in(self, text: str) -> list[str]:
        """The folded keyphrases occurring in `text`, in keyphrase order (a phrase once per keyphrase)."""
        if not self.positions:
            return []
        folded = [_stem(t) for t in tokens(text, self.lang)]
        hits: list[tuple[int, str]] = []
        seen: set[str] = set()
        for n in range(1, self.longest + 1):
            for i in range(len(folded) - n + 1):
                gram = " ".join(folded[i:i + n])
                if gram in self.positions and gram not in seen:
                    seen.add(gram)
                    hits.extend((pos, gram) for pos in self.positions[gram])
        return [gram for _, gram in sorted(hits)]


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


_POSSESSIVE = re.compile(r"(?i)^(.+?)(['’]s?)$")


def _all_caps(word: str) -> bool:
    """An acronym, also with a possessive ("ITU's"): kept in capitals at a sentence's start."""
    m = _POSSESSIVE.match(word)
    return (m.group(1) if m else word).isupper()


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
                if not before or before[-1] in _SENTENCE_END:  # a sentence's first word: capital by position
                    words[0] = words[0] if _all_caps(words[0]) else words[0].lower()
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


def _case_word(word: str, case: dict[str, str]) -> str:
    """`word` in its batch casing (acronyms), also with a possessive: "itu's" -> "ITU's"."""
    if word.lower() in case:
        return case[word.lower()]
    m = _POSSESSIVE.match(word)
    return case[m.group(1).lower()] + m.group(2) if m and m.group(1).lower() in case else word


def _cased(phrase: str, surface: dict[str, str], case: dict[str, str]) -> str:
    form = surface.get(phrase, phrase)
    return " ".join(_case_word(w, case) for w in form.split())


# Function words that may stand inside a heading ("freedom of expression", "accès aux données", "Schutz der
# Daten"), never at its ends. Other function words (pronouns, auxiliaries, modals) end a candidate phrase.
_CONNECTORS = frozenset(
    (
        "of", "for", "to", "in", "on", "and", "the", "a", "an", "with", "from", "by", "at", "against", "between",
        "der", "die", "das", "des", "dem", "den", "und", "von", "für", "zu", "zur", "zum", "im", "in", "mit", "auf",
        "bei", "de", "du", "la", "le", "les", "et", "à", "au", "aux", "pour", "en", "sur", "del", "el", "los",
        "las", "y", "para", "con", "al", "por", "di", "della", "dei", "delle", "degli", "e", "per", "il", "lo",
        "gli", "do", "da", "dos", "das", "em", "com", "o", "os", "as", "van", "het", "en", "voor", "op", "met",
    )
)
_COORDINATORS = frozenset(("and", "und", "et", "y", "e", "en"))
# Participles and adverbs that leave a heading dangling ("Risks related", "Data based").
_NOT_LAST = frozenset(
    (
        "related", "based", "regarding", "concerning", "associated", "involved", "used", "given", "needed",
        "caused", "posed", "made", "done", "such", "due", "able", "available", "possible", "necessary", "etc",
        "relevant", "concerned", "mentioned", "above", "below", "already", "always", "never", "today",
        "bzgl", "bzw", "usw", "ca", "vgl", "etc", "resp",
    )
)
_CLAUSE_RE = re.compile(r"[.,;:!?()\[\]{}\"“”«»„…/|•·*\n\t]+|\s[-–—]+\s|\s'|'\s")
_WORD_RE = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")
_STRIP = "'’‘`*_"


def _word_stem(word: str, elided: frozenset[str]) -> str:
    """The stem a surface word is counted under (the same folding as the theme's terms)."""
    low = word.lower().replace("’", "'")
    if low.endswith("'s"):
        low = low[:-2]
    if "'" in low and low.split("'", 1)[0] in elided and low.split("'", 1)[1]:
        low = low.split("'", 1)[1]
    return _stem(low)


def _clause_words(text: str) -> list[list[tuple[str, bool]]]:
    """Runs of words (surface form, starts a sentence) between punctuation, placeholders, URLs, numbers and words
    that lost a letter."""
    runs: list[list[tuple[str, bool]]] = []
    text = _URL_RE.sub(" | ", PLACEHOLDER_RE.sub(" | ", mask_damaged_words(text)))
    pos = 0
    for m in _CLAUSE_RE.finditer(text + "\n"):
        chunk = text[pos:m.start()]
        before = text[:pos].rstrip()
        starts = not before or before[-1] in _SENTENCE_END
        run: list[tuple[str, bool]] = []
        for raw in chunk.split():
            w = raw.strip(_STRIP)
            if not _WORD_RE.fullmatch(w):
                if len(run) >= 2:
                    runs.append(run)
                run, starts = [], False
                continue
            run.append((w, starts))
            starts = False
        if len(run) >= 2:
            runs.append(run)
        pos = m.end()
    return runs


@dataclass
class LabelCandidate:
    """A phrase written in a theme's passages: which passages hold it and its written forms."""

    held: set[int] = field(default_factory=set)
    forms: Counter[str] = field(default_factory=Counter)


def label_candidates(
    member_texts: Sequence[str],
    stop: frozenset[str],
    nouny: set[str] | frozenset[str] | None = None,
    elided: frozenset[str] = frozenset(),
    max_words: int = 6,
    german: bool = False,
) -> dict[tuple[str, ...], LabelCandidate]:
    """Heading-like phrases written in the theme's passages: stems -> `LabelCandidate`.

    A candidate is 2-`max_words` consecutive words within one clause, starting and ending with a content word,
    with only connecting function words inside ("access to information"), no word twice, and at least two
    content words. When `nouny` is given, every content word must be one of those (the words of the noun-chunk
    keyphrases found in the theme: a POS-free way to keep verbs and fillers out of headings).
    """
    out: dict[tuple[str, ...], LabelCandidate] = {}
    for i, text in enumerate(member_texts):
        for run in _clause_words(str(text)):
            lows = [w.lower().replace("’", "'") for w, _ in run]
            stems = [_word_stem(w, elided) for w, _ in run]
            content = [lo not in stop and len(lo) > 1 and (nouny is None or s in nouny)
                       for lo, s in zip(lows, stems, strict=True)]
            # German: a lower-case first word ending in -em/-en is an inflected adjective ("geringem Risiko")
            starts = [c and not (german and w[:1].islower() and lo.endswith(("em", "en")))
                      for c, (w, _), lo in zip(content, run, lows, strict=True)]
            conn = [lo in _CONNECTORS for lo in lows]
            for a in range(len(run)):
                if not starts[a]:
                    continue
                n_content = 1
                for b in range(a + 1, min(a + max_words, len(run))):
                    if not (content[b] or conn[b]):
                        break
                    if not content[b]:
                        continue
                    n_content += 1
                    if lows[b] in _NOT_LAST:
                        continue
                    key = tuple(s if content[j] else lows[j] for j, s in enumerate(stems[a:b + 1], a))
                    inner = [conn[j] for j in range(a, b + 1)]
                    if any(x and y and z for x, y, z in zip(inner, inner[1:], inner[2:], strict=False)):
                        break  # three function words in a row: a clause, not a heading
                    cstems = [s for j, s in enumerate(stems[a:b + 1], a) if content[j]]
                    if len(set(cstems)) < len(cstems) or n_content > 4:
                        continue
                    words = [w for w, _ in run[a:b + 1]]
                    if run[a][1] and not _all_caps(words[0]):
                        words[0] = words[0].lower()
                    entry = out.setdefault(key, LabelCandidate())
                    entry.held.add(i)
                    entry.forms[" ".join(words)] += 1
    return out


def _distinct(term: str, in_share: dict[str, float], out_share: dict[str, float]) -> float:
    """How much of a term's use is this theme's own: its share of the theme's passages above the others' share."""
    i = in_share.get(term, 0.0)
    return max(0.0, i - out_share.get(term, 0.0))


def _written(forms: Counter[str]) -> str:
    best, n = sorted(forms.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    low = forms.get(best.lower(), 0)
    return best.lower() if best != best.lower() and not best.isupper() and 3 * low >= n else best


def text_language(texts: Sequence[str], languages: Sequence[str] = ()) -> str:
    """Which of English and `languages` these texts are written in: the one whose function words they use most."""
    toks = [t for text in texts[:200] for t in tokens(str(text))[:200]]
    best, best_n = "en", sum(t in ENGLISH_STOP_WORDS for t in toks)
    for lang in sorted(set(languages) - {"en"}):
        n = sum(t in language_stop_words(lang) for t in toks)
        if n > best_n:
            best, best_n = lang, n
    return best


# English heading tags (Penn): nouns, adjectives, gerunds and participles ("Streamlining processes", "Proposed
# solution"), numbers, prepositions, articles and "and"; it ends with a noun. Verbs, adverbs, pronouns and
# "to"-infinitives make a clause ("Reduce government", "Goes away", "Tool to help").
_HEADING_TAGS = frozenset(("NN", "NNS", "NNP", "NNPS", "JJ", "JJR", "JJS", "VBG", "VBN", "CD", "IN", "DT", "CC",
                           "HYPH", "POS", "FW", "AFX"))
_HEAD_TAGS = frozenset(("NN", "NNS", "NNP", "NNPS", "CD", "FW"))


def _english_tagger(spacy_model: str | None = None) -> Any:
    """The clean stage's spaCy pipeline (`clean.spacy_model`; loaded once per process, shared with clean); None when
    it is not installed or has no tagger (no check then: clean has then failed or recorded its blank fallback)."""
    from pipeline.clean.nlp import load_nlp
    from pipeline.params import CleanParams

    try:
        nlp = load_nlp(spacy_model or CleanParams().spacy_model, False)  # clean's cache key: (model, allow_blank)
    except (InputError, ImportError):
        return None
    return nlp if "tagger" in nlp.pipe_names else None


def english_heading(labels: Sequence[str], spacy_model: str | None = None) -> list[bool]:
    """Whether each English label reads as a heading (noun phrase) by its part-of-speech tags (`spacy_model`:
    the clean stage's model, default `CleanParams().spacy_model`)."""
    nlp = _english_tagger(spacy_model)
    if nlp is None:
        return [True] * len(labels)
    tagging = [n for n in ("tok2vec", "tagger", "attribute_ruler") if n in nlp.pipe_names]
    with nlp.select_pipes(enable=tagging):  # tags only: the parser and NER do not change them
        return [bool(len(doc)) and all(t.tag_ in _HEADING_TAGS for t in doc) and doc[-1].tag_ in _HEAD_TAGS
                for doc in nlp.pipe(list(labels))]


def _languages_elided(languages: Sequence[str]) -> frozenset[str]:
    return frozenset().union(*(_ELISIONS.get(g, frozenset()) for g in languages)) if languages else frozenset()


def heading_label(
    keywords: Sequence[str],
    member_texts: Sequence[str],
    in_share: dict[str, float] | None = None,
    out_share: dict[str, float] | None = None,
    case: dict[str, str] | None = None,
    taken: set[str] | frozenset[str] = frozenset(),
    languages: Sequence[str] = (),
    max_words: int = 6,
    min_passages: int = 2,
    and_penalty: float = 0.8,
    length_penalty: float = 0.9,
    pos_batch: int = 12,
    spacy_model: str | None = None,
) -> str:
    """A heading an analyst would write: the phrase of the theme's own passages that best says what they share.

    Candidates are the 2-`max_words` word phrases written in at least `min_passages` passages that contain one
    of the theme's `keywords` (`label_candidates`). Score = distinctiveness of the theme terms it holds (their
    share of the theme's passages above their share in the question's other themes; the best term counts
    fully, the others a third) x coverage (square root of the share of passages holding the phrase) x form
    (`length_penalty` per word beyond three, `and_penalty` for two things joined by "and"); a phrase half or more of
    whose words are function words comes after every other candidate (it is mostly glue); in English the best
    one whose part-of-speech tags read as a noun phrase (`english_heading`, among the best 4 x `pos_batch`;
    beyond that the best one). A heading already used in the question (`taken`) gives way to the next one.
    Without any candidate (a tiny theme), the best multi-word keyword, else the best keyword.
    """
    in_share, out_share, case = in_share or {}, out_share or {}, case or {}
    langs = tuple(sorted(set(languages)))
    stop = name_stop_words(langs)
    kws = nameable(keywords, langs)
    if not kws:
        return "Unlabelled theme"
    shares = in_share or {k: 1.0 for k in kws}
    nouny = {w for t in shares for w in t.split()} | {w for k in kws for w in k.split()}
    texts = list(member_texts)
    written_in = text_language(texts, langs)
    german = written_in == "de"
    n = max(len(texts), 1)
    kw_words = [(k, set(k.split())) for k in kws]
    terms = [(t, set(t.split())) for t in shares if t not in kws and _distinct(t, in_share, out_share) > 0]
    taken_low = {t.lower() for t in taken}
    # nouns of the theme's keyphrases first; phrases written once, or with any word, only when nothing else is;
    # a written phrase that does not read as a heading still beats a single keyword
    loose: list[str] = []
    for vocabulary, floor in ((nouny, min_passages), (nouny, 1), (None, 1)):
        cands = label_candidates(texts, stop, vocabulary, _languages_elided(langs), max_words, german)
        scored: list[tuple[bool, float, int, str]] = []
        for key, cand in cands.items():
            held, forms = cand.held, cand.forms
            if len(held) < floor:
                continue
            words = set(key)
            anchors = [k for k, kw in kw_words if kw <= words]
            if not anchors:
                continue
            gains = sorted((_distinct(t, in_share, out_share) if in_share else 1.0
                            for t in anchors + [t for t, tw in terms if tw <= words]), reverse=True)
            strength = gains[0] + sum(gains[1:]) / 3
            if strength <= 0:
                continue
            form = length_penalty ** max(0, len(key) - 3)
            if any(w in _COORDINATORS for w in key):
                form *= and_penalty
            label = " ".join(case.get(w.lower(), w) for w in _written(forms).split())
            low = label.lower().split()
            glue = 2 * sum(w in stop for w in low) >= len(low)  # half function words: "Limits on the misuse"
            scored.append((glue, strength * (len(held) / n) ** 0.5 * form, len(key), label[:1].upper() + label[1:]))
        scored.sort(key=lambda s: (s[0], -s[1], s[2], s[3]))
        free = [label for _, _, _, label in scored if label.lower() not in taken_low]
        for start in range(0, min(len(free), 4 * pos_batch), pos_batch):  # English: the best that reads as one
            batch = free[start:start + pos_batch]
            ok = english_heading(batch, spacy_model) if written_in == "en" else [True] * len(batch)
            for label, good in zip(batch, ok, strict=True):
                if good:
                    return label
        if len(free) > 4 * pos_batch:
            return free[0]
        loose = loose or free[:1]
    fallback = [_cased(k, surface_forms([k], texts), case) for k in kws]
    fallback = loose + [f for f in fallback if len(f.split()) >= 2] + fallback
    for label in [f[:1].upper() + f[1:] for f in fallback]:
        if label.lower() not in taken_low:
            return label
    return fallback[0][:1].upper() + fallback[0][1:]


# A sentence ends at . ! ? followed by a capital letter, a quote or the end; "z. B.", "u." and "e.g." do not end
# one when the next word is in lower case.
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])[\"'”’)]*\s+(?=[\"“'‘(]?[^\W\d_]*[A-ZÀ-ÞĀ-Ž])")
_ABBREVIATED = re.compile(r"(?:\b[^\W\d_]{1,3}\.|\b(?:bzw|etc|ca|vgl|usw|resp)\.)$", re.IGNORECASE)


def sentences(text: str) -> list[str]:
    """The sentences of a passage (whitespace folded), split where a sentence end meets a capitalised word."""
    flat = " ".join(str(text).split())
    return [p.strip() for p in _SENTENCE_END_RE.split(flat) if p.strip()]


def central_sentence(
    keywords: Sequence[str],
    member_texts: Sequence[str],
    in_share: dict[str, float] | None = None,
    out_share: dict[str, float] | None = None,
    languages: Sequence[str] = (),
    min_words: int = 6,
    max_words: int = 30,
) -> str:
    """The sentence of the theme's passages that holds most of what the theme shares: its distinctive terms.

    Each real sentence (capitalised, ended by . or !) of `min_words`-`max_words` words, not a question, heading
    ("Subject: ..."), redaction placeholder or abbreviation, is scored by the summed distinctiveness
    of the theme terms it contains (as in `heading_label`), shorter sentences preferred at equal score; the
    sentence most like the theme's passages, never an answer's odd detail. "" when none qualifies.
    """
    in_share, out_share = in_share or {}, out_share or {}
    langs = tuple(sorted(set(languages)))
    elided = _languages_elided(langs)
    weights = {k: (_distinct(k, in_share, out_share) if in_share else 1.0) for k in nameable(keywords, langs)}
    weights = {k: w for k, w in weights.items() if w > 0}
    if not weights:
        return ""
    best: tuple[float, int, str] | None = None
    seen: set[str] = set()
    for text in member_texts:
        for sent in sentences(redact_pii(str(text))):
            sent = sent.strip(" -–—•*")
            n_words = len(sent.split())
            if (not (min_words <= n_words <= max_words) or sent[-1:] not in ".!" or sent.lower() in seen
                    or not sent[:1].isupper() or "?" in sent or PLACEHOLDER_RE.search(sent)
                    or ":" in sent or _ABBREVIATED.search(sent)):
                continue  # a real sentence: capitalised, ended, no question, heading, placeholder or abbreviation
            seen.add(sent.lower())
            stems = " " + " ".join(_word_stem(w, elided) for w in _WORD_RE.findall(sent)) + " "
            score = sum(w for k, w in weights.items() if f" {k} " in stems)
            cand = (score, -n_words, sent)
            if score > 0 and (best is None or cand[:2] > best[:2]):
                best = cand
    if best is None:
        return ""
    return best[2]


def describe_theme(
    keywords: Sequence[str],
    in_share: dict[str, float],
    out_share: dict[str, float],
    member_texts: Sequence[str] = (),
    case: dict[str, str] | None = None,
    languages: Sequence[str] = (),
) -> str:
    """A typical sentence of the theme's own passages, then what sets the theme apart from the question's others.

    The sentence is `central_sentence` (quoted, redacted); what sets it apart are the two keywords whose share
    of the theme's passages most exceeds their share in the question's other themes.
    """
    case = case or {}
    langs = tuple(sorted(set(languages)))
    kws = nameable(keywords, langs)
    if not kws:
        return ""
    surface = surface_forms(kws, list(member_texts))
    parts = []
    sent = central_sentence(kws, member_texts, in_share, out_share, langs)
    if sent:
        parts.append(f"Typical answer: “{sent}”")
    lift = sorted(((in_share.get(k, 0.0) - out_share.get(k, 0.0), k) for k in kws), key=lambda t: (-t[0], t[1]))
    apart: list[str] = []
    for gain, k in lift:  # two keywords that say different things: not "job" and "job losses"
        if gain > 0 and len(apart) < 2 and not any(set(k.split()) & set(a.split()) for a in apart):
            apart.append(k)
    if apart:
        said = " and ".join(
            f"{_cased(k, surface, case)} ({in_share.get(k, 0.0):.0%} of its passages,"
            f" {out_share.get(k, 0.0):.0%} in the question's other themes)" for k in apart
        )
        parts.append(f"Sets it apart: {said}.")
    elif not sent:
        parts.append(f"Answers about {', '.join(_cased(k, surface, case) for k in kws[:3])}.")
    return " ".join(parts)


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
    spacy_model: str | None = None,
) -> tuple[str, str]:
    """Label and description of one emergent theme: the one naming entry point discovery calls.

    `keywords` are the theme's ranked distinctive terms (class tf-idf), `member_texts` its redacted passages in
    the label language, `in_share`/`out_share` each term's share of its passages and of the question's other
    themes' passages, `case` the batch's acronym spellings, `taken` the labels the question already uses,
    `spacy_model` the clean stage's spaCy model (the part-of-speech check of English headings).
    The label is a phrase written in the passages (`heading_label`), the description a typical sentence of
    them and what sets the theme apart (`describe_theme`).
    """
    label = heading_label(keywords, member_texts, in_share, out_share, case, taken, languages,
                          spacy_model=spacy_model)
    return label, describe_theme(keywords, in_share, out_share, member_texts, case, languages)
