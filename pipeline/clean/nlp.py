"""The one spaCy pass of the clean stage: sentences, noun-chunk keyphrases, entities, PERSON spans.

Texts are cut into paragraph blocks first (bounded length, offsets kept) and streamed through
`nlp.pipe` in batches, so documents of any length fit spaCy's `max_length`, paragraph breaks are
known to the segmenter, and memory stays flat. Only the components these outputs need run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pipeline.clean.keyphrases import entities, keyphrases
from pipeline.clean.normalise import word_count
from pipeline.clean.segments import Sentence, paragraph_blocks
from pipeline.errors import InputError
from pipeline.imports import import_without_torch

__all__ = ["Analysis", "analyse_texts", "fallback_notes", "import_spacy", "lemmatizer_of", "load_nlp"]

logger = logging.getLogger(__name__)

# Components that run: parser (sentences, noun chunks), tagger + attribute_ruler (POS, morphology, the
# lemmatizer's input), ner (entities, PERSON spans), tok2vec (shared features). The lemmatizer is loaded but
# called only for the tokens whose lemma a keyphrase uses (`lemmatizer_of`).
_NEEDED = {"tok2vec", "tagger", "parser", "attribute_ruler", "ner", "senter"}
_FALLBACKS: dict[str, str] = {}  # model -> one-line note of a blank fallback (stage summary `fallbacks`)
_LINE_BREAK = re.compile(r"\n")
# spaCy's tokenizer is quadratic in the length of one whitespace-free token (prefix/suffix/infix splitting:
# a 20 KB run of punctuation takes 0.5 s, "ab-ab-..." becomes thousands of tokens). No word, URL or code is
# this long; such runs (pasted base64, punctuation art, a PDF's glued text) skip spaCy and become sentences
# of their own, so offsets stay exact and the text still reaches the passages.
MAX_TOKEN_CHARS = 1000
_LONG_TOKEN = re.compile(rf"(?<!\S)\S{{{MAX_TOKEN_CHARS + 1},}}+")


@dataclass
class Analysis:
    """What the spaCy pass found in one text (offsets are into that text)."""

    sentences: list[Sentence] = field(default_factory=list)
    keyphrases: list[str] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)
    person_spans: list[tuple[int, int]] = field(default_factory=list)


def import_spacy(model: str = "") -> Any:
    """`import spacy` without thinc importing torch (`pipeline.imports`: 2-3 s of the clean stage). A transformer
    pipeline (`*_trf`) needs thinc's torch layers: then spaCy is imported as usual."""
    if "trf" in model:
        import spacy

        return spacy
    return import_without_torch("spacy")


@lru_cache(maxsize=4)
def load_nlp(model: str, allow_blank: bool = False) -> Any:
    """Load the spaCy pipeline once per process with only what the outputs need, made faster but equivalent.

    The lemmatizer stays loaded but does not run: only the nouns of noun chunks need a lemma, and
    `lemmatizer_of` gives keyphrases that on demand (a tenth of the spaCy time saved, same lemmas). The
    attribute ruler's matcher is swapped for an exact, cached one (`ruler.py`). A missing model is an error
    unless `allow_blank` (`clean.allow_blank_spacy`): blank English + sentencizer, recorded in `fallback_notes`.
    """
    spacy = import_spacy(model)

    try:
        nlp = spacy.load(model, exclude=[])
    except OSError:
        if not allow_blank:
            raise InputError(
                "params.yaml", "clean.spacy_model",
                f"spaCy model {model!r} is not installed (install it in the environment, e.g. `make install`, "
                "or set clean.allow_blank_spacy: true to run with a blank English pipeline: no keyphrases, "
                "entities or PERSON-name redaction)",
            ) from None
        msg = (
            f"spaCy model {model!r} is not installed: falling back to spacy.blank('en') with a "
            "sentencizer (no lemmas, noun chunks or entities; keyphrases will be empty, names found by NER "
            "stay unredacted)"
        )
        logger.warning(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=2)
        _FALLBACKS[model] = (
            f"clean: spaCy model {model!r} not installed, blank English pipeline used "
            "(clean.allow_blank_spacy): no keyphrases or entities, PERSON names not redacted"
        )
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        return nlp
    _FALLBACKS.pop(model, None)
    for name in [n for n in nlp.pipe_names if n not in _NEEDED]:
        nlp.disable_pipe(name)
    if "parser" not in nlp.pipe_names and "senter" not in nlp.pipe_names:
        nlp.add_pipe("sentencizer")
    from pipeline.clean.ruler import install as install_fast_ruler  # imports spaCy: only when a model loads

    install_fast_ruler(nlp)
    return nlp


def fallback_notes(model: str) -> list[str]:
    """One line per fallback the latest load of `model` took (empty when the model itself was used)."""
    return [_FALLBACKS[model]] if model in _FALLBACKS else []


def lemmatizer_of(nlp: Any) -> Callable[[Any], str] | None:
    """Token -> lemma exactly as the (not running) lemmatizer would set it; None without a lemmatizer."""
    if "lemmatizer" not in nlp.component_names:
        return None
    lemmatizer = nlp.get_pipe("lemmatizer")
    if "lemmatizer" in nlp.pipe_names:  # running: lemmas are already on the tokens
        return None

    def lemma(token: Any) -> str:
        if token.lemma != 0:  # set by the attribute ruler; the lemmatizer (overwrite=False) keeps those
            return str(token.lemma_)
        return str(lemmatizer.lemmatize(token)[0])

    return lemma


def _blocks(
    texts: list[str], skip: list[bool], junk: list[tuple[int, Sentence]]
) -> Iterator[tuple[str, tuple[int, int, bool]]]:
    """(block text, (text index, offset, starts a paragraph)); over-long tokens go to `junk` instead."""
    for i, text in enumerate(texts):
        if skip[i] or not text:
            continue
        for start, end in paragraph_blocks(text):
            pos, para = start, True
            for m in _LONG_TOKEN.finditer(text[start:end]):  # a slice: the look-behind must not see before it
                part = text[pos : start + m.start()]
                if part.strip():
                    lead = len(part) - len(part.lstrip())
                    yield part.strip(), (i, pos + lead, para)
                    para = False
                junk.append((i, Sentence(start + m.start(), start + m.end(), 1, para_start=para)))
                pos, para = start + m.end(), False
            part = text[pos:end]
            if part.strip():
                lead = len(part) - len(part.lstrip())
                yield part.strip(), (i, pos + lead, para)


def _sentences(doc: Any, offset: int, para_start: bool = True) -> list[Sentence]:
    """Sentences of one paragraph block; also split at line breaks (bullets, list items)."""
    out: list[Sentence] = []
    first = para_start
    for sent in doc.sents:
        text = sent.text
        pos = 0
        for part in [*_LINE_BREAK.split(text)]:
            start = sent.start_char + pos
            pos += len(part) + 1
            stripped = part.strip()
            if not stripped:
                continue
            lead = len(part) - len(part.lstrip())
            s = offset + start + lead
            e = s + len(stripped)
            out.append(Sentence(start=s, end=e, n_words=word_count(stripped), para_start=first))
            first = False
    return out


# One block's findings, small enough to send back from a worker process (a spaCy Doc is not).
_BlockResult = tuple[list[Sentence], list[str], list[str], list[tuple[int, int]]]
# (text index, offset, starts a paragraph, wants keyphrases, wants NER)
_BlockKey = tuple[int, int, bool, bool, bool]
_WORKER: dict[str, Any] = {}


def _analyse_batch(nlp: Any, items: list[tuple[str, _BlockKey]]) -> list[_BlockResult]:
    """Sentences, keyphrases, entities and PERSON spans of each block of one batch (offsets into its text).

    NER (half of the spaCy time) runs only on the blocks that want it: its own tok2vec reads nothing the other
    components write, so it runs after them on those Docs alone, with the same result as in the full pipeline."""
    lemma = lemmatizer_of(nlp)
    has_parse, has_ner = nlp.has_pipe("parser"), nlp.has_pipe("ner")
    size = max(1, len(items))
    docs = list(nlp.pipe([text for text, _ in items], batch_size=size, disable=["ner"] if has_ner else []))
    want = [key[4] for _, key in items]
    if has_ner and any(want):
        ner = nlp.get_pipe("ner")
        tagged = iter(ner.pipe([d for d, w in zip(docs, want, strict=True) if w], batch_size=size))
        docs = [next(tagged) if w else d for d, w in zip(docs, want, strict=True)]
    out: list[_BlockResult] = []
    for doc, (_, (_, offset, para, want_kp, want_ner)) in zip(docs, items, strict=True):
        kps = keyphrases(doc, lemmatize=lemma) if has_parse and want_kp else []
        ner_ran = has_ner and want_ner
        ents = entities(doc) if ner_ran and want_kp else []
        persons = [(offset + e.start_char, offset + e.end_char) for e in doc.ents if e.label_ == "PERSON"] \
            if ner_ran else []
        out.append((_sentences(doc, offset, para), kps, ents, persons))
    return out


def _worker_init(model: str, allow_blank: bool) -> None:
    _WORKER["nlp"] = load_nlp(model, allow_blank)  # forked: already loaded in the parent, so no cost


def _worker_batch(items: list[tuple[str, _BlockKey]]) -> list[_BlockResult]:
    return _analyse_batch(_WORKER["nlp"], items)


def _batches(items: list[Any], batch_size: int, max_chars: int) -> Iterator[list[Any]]:
    """Consecutive batches of at most `batch_size` blocks and (unless one block alone is longer) `max_chars`.

    spaCy keeps a whole batch's activations in memory: 256 blocks of a long PDF (20k characters each) took
    1.7 GB; short answers still go 256 at a time."""
    batch: list[Any] = []
    chars = 0
    for item in items:
        if batch and (len(batch) >= batch_size or chars + len(item[0]) > max_chars):
            yield batch
            batch, chars = [], 0
        batch.append(item)
        chars += len(item[0])
    if batch:
        yield batch


def analyse_texts(
    texts: list[str],
    skip: list[bool],
    model: str,
    keyphrase_mask: list[bool] | None = None,
    ner_mask: list[bool] | None = None,
    batch_size: int = 256,
    n_process: int = 1,
    allow_blank: bool = False,
    batch_chars: int = 100_000,
) -> list[Analysis]:
    """Run spaCy over all non-skipped texts; one `Analysis` per input text (empty when skipped).

    `keyphrase_mask[i]` False keeps sentences and PERSON spans but drops keyphrases/entities
    (used for languages the English model cannot lemmatise); `ner_mask[i]` False skips NER on text i (no
    entities, no PERSON spans). With `n_process` > 1 batches are analysed
    in worker processes (forked: each holds the model loaded here) that send back only the findings,
    in order; the results are identical to one process.
    """
    load_nlp(model, allow_blank)  # loaded (or refused) here, before any worker forks
    results = [Analysis() for _ in texts]
    # Identical texts (campaigns, copy-paste) are analysed once.
    first: dict[tuple[str, bool, bool], int] = {}
    repeat = [False] * len(texts)
    for i, text in enumerate(texts):
        if skip[i]:
            continue
        key = (text, *_wants(i, keyphrase_mask, ner_mask))
        if key in first:
            repeat[i] = True
        else:
            first[key] = i
    todo = [s or r for s, r in zip(skip, repeat, strict=True)]
    junk: list[tuple[int, Sentence]] = []
    items = [
        (block, (i, offset, para, *_wants(i, keyphrase_mask, ner_mask)))
        for block, (i, offset, para) in _blocks(texts, todo, junk)
    ]
    batches = list(_batches(items, batch_size, batch_chars))
    n_proc = (os.cpu_count() or 1) if n_process < 0 else max(1, n_process)
    kp_seen: list[dict[str, None]] = [{} for _ in texts]
    ent_seen: list[dict[str, None]] = [{} for _ in texts]
    with _mapper(n_proc if len(batches) >= 2 * n_proc else 1, model, allow_blank) as run_batch:
        for batch, found in zip(batches, run_batch(batches), strict=True):
            for (_, (i, *_)), (sents, kps, ents, persons) in zip(batch, found, strict=True):
                results[i].sentences.extend(sents)
                kp_seen[i].update(dict.fromkeys(kps))
                ent_seen[i].update(dict.fromkeys(ents))
                results[i].person_spans.extend(persons)
    for i, sent in junk:
        results[i].sentences.append(sent)
    for i in {i for i, _ in junk}:
        results[i].sentences.sort(key=lambda sent: sent.start)
    for i, res in enumerate(results):
        res.keyphrases = list(kp_seen[i])
        res.entities = list(ent_seen[i])
    for i, text in enumerate(texts):
        if repeat[i]:
            src = results[first[(text, *_wants(i, keyphrase_mask, ner_mask))]]
            results[i] = Analysis(
                sentences=list(src.sentences), keyphrases=list(src.keyphrases),
                entities=list(src.entities), person_spans=list(src.person_spans),
            )
    return results


def _wants(i: int, keyphrase_mask: list[bool] | None, ner_mask: list[bool] | None) -> tuple[bool, bool]:
    """(wants keyphrases, wants NER) of text i; a text is analysed once per distinct (text, wants)."""
    return keyphrase_mask is None or keyphrase_mask[i], ner_mask is None or ner_mask[i]


@contextmanager
def _mapper(n_proc: int, model: str, allow_blank: bool) -> Iterator[Callable[[list[Any]], Iterator[Any]]]:
    """batches -> findings per batch, in order: in this process, or in `n_proc` forked workers."""
    if n_proc <= 1:
        nlp = load_nlp(model, allow_blank)
        yield lambda batches: (_analyse_batch(nlp, b) for b in batches)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with ctx.Pool(n_proc, initializer=_worker_init, initargs=(model, allow_blank)) as pool:
        yield lambda batches: pool.imap(_worker_batch, batches)
