"""Pure core of the clean stage: answers -> (answers_clean, segments).

Order of work: normalise text -> flag non-answers -> language -> explicit mentions -> duplicates ->
one spaCy pass (sentences, keyphrases, entities, PERSON spans) -> passages -> redaction -> boilerplate
(passages repeated across documents, see boilerplate.py).
The input frame is never modified; both outputs are new frames in the column order of
docs/ARCHITECTURE.md. Row order follows the input; every value depends only on the row's own
content and the set of rows (not their order), so shuffling the input shuffles the output.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

import pandas as pd

from pipeline.clean.boilerplate import boilerplate_mask
from pipeline.clean.duplicates import find_duplicates
from pipeline.clean.language import LanguageDetector, prefetch_identifier
from pipeline.clean.mentions import find_mentions
from pipeline.clean.nlp import analyse_texts, load_nlp
from pipeline.clean.nonanswers import nonanswer_reason
from pipeline.clean.nonprose import segment_nonprose_kinds, with_set_aside
from pipeline.clean.normalise import normalise_text, word_count
from pipeline.clean.pii import looks_like_name, name_spans, redact
from pipeline.clean.segments import passages
from pipeline.errors import InputError
from pipeline.params import CleanParams

__all__ = ["CLEAN_COLUMNS", "REQUIRED_COLUMNS", "SEGMENT_COLUMNS", "clean_answers", "clean_params"]

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("response_id", "question_id", "answer")
LAST_TIMINGS: dict[str, dict[str, float]] = {}  # wall/CPU seconds per step of the latest call
CLEAN_COLUMNS = (
    "answer_id", "text_clean", "text_redacted", "is_nonanswer", "nonanswer_reason", "language",
    "dup_group", "dup_group_size", "dup_kind", "keyphrases", "entities", "mentions_action_lines",
    "mentions_sdgs", "n_words", "n_segments",
)
SEGMENT_COLUMNS = (
    "segment_id", "answer_id", "response_id", "question_id", "seg_index", "start", "end", "text",
    "text_redacted", "n_words", "is_nonanswer", "is_boilerplate", "boilerplate_kind",
)
# the clean parameters' defaults: one definition (pipeline.params; it was 60 words here vs 30 in params.yaml)
DEFAULTS: dict[str, Any] = {**CleanParams().model_dump(), "seed": 0}


def clean_params(params: dict[str, Any]) -> dict[str, Any]:
    """The clean section (accepts the whole params dict or the section itself) with defaults."""
    section = params.get("clean", params) if isinstance(params, dict) else {}
    out = dict(DEFAULTS)
    out.update({k: v for k, v in (section or {}).items() if v is not None})
    if "seed" in params and not isinstance(params.get("seed"), dict):
        out["seed"] = params["seed"]
    return out


def _str_col(df: pd.DataFrame, name: str) -> list[str]:
    if name not in df.columns:
        return [""] * len(df)
    return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in df[name].tolist()]


def clean_answers(answers: pd.DataFrame, params: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (answers_clean, segments) for an answers frame (see docs/ARCHITECTURE.md)."""
    cfg = clean_params(params)
    missing = [c for c in REQUIRED_COLUMNS if c not in answers.columns]
    if missing:
        raise InputError("answers.parquet", None, f"missing column(s): {', '.join(missing)}")
    timings: dict[str, dict[str, float]] = {}
    clock = _Clock()

    response_ids = _str_col(answers, "response_id")
    question_ids = _str_col(answers, "question_id")
    answer_ids = [f"{r}::{q}" for r, q in zip(response_ids, question_ids, strict=True)]
    dupes = [k for k, n in Counter(answer_ids).items() if n > 1]
    if dupes:
        raise InputError("answers.parquet", dupes[0], f"{len(dupes)} duplicate answer_id(s)")

    # langid's model loads on a thread (mostly GIL-free decompression) while spaCy loads here; neither changes
    # what the other computes. The thread is done before any worker process forks (detection waits for it).
    langid_load = prefetch_identifier(tuple(cfg["languages"]))
    load_nlp(str(cfg["spacy_model"]), bool(cfg.get("allow_blank_spacy", False)))
    timings["spacy+langid load"] = clock.lap()
    texts = [normalise_text(a) for a in answers["answer"].tolist()]
    questions = _str_col(answers, "question_text")
    reasons = [nonanswer_reason(t, q) for t, q in zip(texts, questions, strict=True)]
    is_non = [bool(r) for r in reasons]
    timings["normalise+nonanswers"] = clock.lap()

    detect = LanguageDetector(languages=tuple(cfg["languages"]))
    languages = detect.detect_many(["" if non else txt for txt, non in zip(texts, is_non, strict=True)])
    langid_load.join()
    mentions = [find_mentions(txt) for txt in texts]
    timings["language+mentions"] = clock.lap()

    groups = _str_col(answers, "submission_group")
    owners = [g or r for g, r in zip(groups, response_ids, strict=True)]
    dups = find_duplicates(
        answer_ids, texts, owners, eligible=[not n for n in is_non],
        threshold=float(cfg["near_duplicate_threshold"]),
        min_words=int(cfg["min_duplicate_words"]),
        min_exact_words=int(cfg["min_exact_duplicate_words"]),
        seed=int(cfg["seed"]),
    )
    timings["duplicates"] = clock.lap()

    kp_langs = set(cfg["keyphrase_languages"])
    redact_names = bool(cfg["redact_individual_names"])
    individual = [redact_names and g.strip().lower() == "individual"
                  for g in _str_col(answers, "stakeholder_group")]
    with_entities = bool(cfg["entities"])
    # NER (half of the spaCy time) only where its output is used: PERSON names of individual respondents in the
    # languages the English model reads (below), or every text when the entities column is asked for.
    redact_persons = [ind and lang in kp_langs for ind, lang in zip(individual, languages, strict=True)]
    analyses = analyse_texts(
        texts, skip=is_non, model=str(cfg["spacy_model"]),
        keyphrase_mask=[lang in kp_langs for lang in languages],
        ner_mask=[with_entities or r for r in redact_persons],
        batch_size=int(cfg["batch_size"]), n_process=int(cfg["n_process"]),
        allow_blank=bool(cfg.get("allow_blank_spacy", False)),
        batch_chars=int(cfg.get("batch_chars", 100_000)),
    )
    timings["spacy"] = clock.lap()

    org_names = _str_col(answers, "org_name")
    # The English model's PERSON entities are trusted only in the languages it reads (as for keyphrases):
    # on French or German text it tags ordinary words ("doivent [être auditables]"). The respondent's own
    # name from the form is looked for in every language.
    min_w, max_w = int(cfg["segment_min_words"]), int(cfg["segment_max_words"])
    text_redacted: list[str] = []
    n_segments: list[int] = []
    seg_rows: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        names: list[tuple[int, int]] = []
        if individual[i]:
            names = name_spans(text, org_names[i])
            if redact_persons[i]:
                names += [(s, e) for s, e in analyses[i].person_spans if looks_like_name(text[s:e])]
        text_redacted.append(redact(text, names))
        if is_non[i]:
            n_segments.append(0)
            continue
        spans = _passages(text, analyses[i], min_w, max_w)
        n_segments.append(len(spans))
        for k, (start, end) in enumerate(spans):
            seg_text = text[start:end]
            seg_names = [(max(s, start) - start, min(e, end) - start) for s, e in names if s < end and e > start]
            seg_rows.append({
                "segment_id": f"{answer_ids[i]}#{k}", "answer_id": answer_ids[i],
                "response_id": response_ids[i], "question_id": question_ids[i], "seg_index": k,
                "start": start, "end": end, "text": seg_text,
                "text_redacted": redact(seg_text, seg_names), "n_words": word_count(seg_text),
                "is_nonanswer": False, "is_boilerplate": False, "boilerplate_kind": "",
            })
    timings["segments+redaction"] = clock.lap()

    # Boilerplate: only passages of documents (answers with several passages) that are not campaign copies.
    row_of = {a: i for i, a in enumerate(answer_ids)}
    seg_answer = [row_of[r["answer_id"]] for r in seg_rows]
    min_seg = int(cfg["boilerplate_min_segments"])
    boiler = boilerplate_mask(
        [r["text"] for r in seg_rows], [owners[i] for i in seg_answer],
        [n_segments[i] >= min_seg and not dups.group[i] for i in seg_answer],
        min_share=float(cfg["boilerplate_min_share"]), min_documents=int(cfg["boilerplate_min_documents"]),
        min_coverage=float(cfg["boilerplate_min_coverage"]),
    )
    timings["boilerplate"] = clock.lap()

    clean = answers.copy()
    new_cols: dict[str, Any] = {
        "answer_id": answer_ids,
        "text_clean": texts,
        "text_redacted": text_redacted,
        "is_nonanswer": is_non,
        "nonanswer_reason": reasons,
        "language": languages,
        "dup_group": dups.group,
        "dup_group_size": dups.size,
        "dup_kind": dups.kind,
        "keyphrases": [a.keyphrases for a in analyses],
        "entities": [a.entities if with_entities else [] for a in analyses],
        "mentions_action_lines": [m.action_lines for m in mentions],
        "mentions_sdgs": [m.sdgs for m in mentions],
        "n_words": [word_count(x) for x in texts],
        "n_segments": n_segments,
    }
    for name in CLEAN_COLUMNS:
        clean[name] = pd.Series(new_cols[name], index=clean.index, dtype=_dtype(name))
    clean = clean[[*[c for c in answers.columns if c not in CLEAN_COLUMNS], *CLEAN_COLUMNS]]
    clean = clean.reset_index(drop=True)

    segments = pd.DataFrame(seg_rows, columns=list(SEGMENT_COLUMNS))
    segments = segments.astype({
        "segment_id": "str", "answer_id": "str", "response_id": "str", "question_id": "str",
        "seg_index": "int64", "start": "int64", "end": "int64", "text": "str",
        "text_redacted": "str", "n_words": "int64", "is_nonanswer": "bool", "is_boilerplate": "bool",
        "boilerplate_kind": "str",
    })
    # Non-prose passages of documents (references, tables, name lists): set aside like boilerplate, by kind.
    kinds = segment_nonprose_kinds(clean, segments, min_seg, bool(cfg["set_aside_nonprose"]))
    segments = with_set_aside(segments, boiler, kinds)
    timings["nonprose"] = clock.lap()
    logger.info(
        "clean: %d answers, %d non-answers, %d segments; timings %s", len(clean), sum(is_non),
        len(segments), timings,
    )
    LAST_TIMINGS.clear()
    LAST_TIMINGS.update(timings)  # read by benchmarks/bench_clean.py; not part of the outputs
    return clean, segments


class _Clock:
    """Wall and CPU seconds per step (CPU includes finished child processes of nlp.pipe)."""

    def __init__(self) -> None:
        self._wall, self._cpu = time.perf_counter(), self._cpu_now()

    @staticmethod
    def _cpu_now() -> float:
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    def lap(self) -> dict[str, float]:
        wall, cpu = time.perf_counter(), self._cpu_now()
        out = {"wall_s": round(wall - self._wall, 3), "cpu_s": round(cpu - self._cpu, 3)}
        self._wall, self._cpu = wall, cpu
        return out


def _dtype(name: str) -> Any:
    if name in {"is_nonanswer"}:
        return "bool"
    if name in {"dup_group_size", "n_words", "n_segments"}:
        return "int64"
    if name in {"keyphrases", "entities", "mentions_action_lines", "mentions_sdgs"}:
        return "object"
    return "str"


def _passages(text: str, analysis: Any, min_words: int, max_words: int) -> list[tuple[int, int]]:
    return passages(text, analysis.sentences, min_words, max_words)
