"""Passages of answers that stages score separately, defined once so the embed stage encodes them and the
tag stage reads their vectors from embeddings.npz instead of encoding them again."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.embed.vectors import normalise
from pipeline.tagger import features


def sentence_passages(
    texts: Sequence[str], max_words: int, skip: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Short passages (sentences, merged up to `max_words`) of every multi-sentence text, with owners.

    Real answers list several topics in one paragraph; scored whole, each topic is diluted, scored per
    sentence and max-aggregated, each can reach its threshold (dev set of real answers: AL micro-F1
    0.67 -> 0.72 at equal precision)."""
    passages: list[str] = []
    owners: list[int] = []
    for i, text in enumerate(texts):
        if (skip is not None and skip[i]) or len(text.split()) <= max_words:
            continue
        parts = features.segment_text(text, max_words=max_words, min_words=4)
        if len(parts) > 1:
            kept = [p for p in parts if not features.is_boilerplate(p)]
            passages += kept
            owners += [i] * len(kept)
    return passages, np.asarray(owners, dtype=np.int64)


def passage_mean_vectors(answer_vectors: np.ndarray, passage_vectors: np.ndarray, owners: np.ndarray,
                         min_passages: int = 2) -> np.ndarray:
    """Answer vectors where every answer with `min_passages`+ passages gets the normalised mean of its passages'
    vectors (zero passage vectors ignored); other answers keep their own vector."""
    out = np.array(answer_vectors, dtype=np.float32, copy=True)
    owners = np.asarray(owners, dtype=np.int64)
    if not owners.size:
        return out
    pv = np.asarray(passage_vectors, dtype=np.float32)
    live = np.linalg.norm(pv, axis=1) > 0
    sums = np.zeros_like(out)
    np.add.at(sums, owners[live], pv[live])
    counts = np.bincount(owners[live], minlength=len(out))[: len(out)]
    many = counts >= max(int(min_passages), 1)
    out[many] = normalise(sums[many])
    return out


SENTENCE_SCORING_MAX_ANSWERS = 5000


def sentence_scoring(tag_section: dict[str, Any], n_answers: int) -> tuple[bool, str | None]:
    """Whether the tag stage scores sentence passages (`tag.sentence_scoring`: auto | always | never), and, when
    `auto` turns it off for a large batch, the one-line switch the stage summaries report."""
    mode = str(tag_section.get("sentence_scoring", "auto")).lower()
    if mode in {"never", "false", "off"}:
        return False, None
    if mode in {"always", "true", "on"}:
        return True, None
    limit = int(tag_section.get("sentence_scoring_max_answers", SENTENCE_SCORING_MAX_ANSWERS))
    if n_answers <= limit:
        return True, None
    return False, (f"tag.sentence_scoring=auto: sentence passages not scored ({n_answers} real answers > "
                   f"tag.sentence_scoring_max_answers={limit}); tags come from whole texts and clean passages")


def passage_digest(text: str) -> str:
    """Short content id of a passage: the tag stage checks that the passages embeddings.npz holds are its own."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
