"""Stage shell: batch_dir/answers_clean.parquet + segments.parquet -> batch_dir/embeddings.npz.

Every passage a later stage scores is encoded here, in one call: answers, clean segments and the tag stage's
sentence passages (`pipeline.embed.passages.sentence_passages`), so no stage encodes batch text again."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import config, io
from pipeline.embed.backends import AUTO, resolve_backend
from pipeline.embed.core import embed_section, encode_with_stats
from pipeline.embed.passages import passage_digest, sentence_passages, sentence_scoring
from pipeline.errors import InputError

log = logging.getLogger(__name__)

ANSWERS_FILE = "answers_clean.parquet"
SEGMENTS_FILE = "segments.parquet"
OUTPUT_FILE = "embeddings.npz"


def _texts(df: pd.DataFrame, text_col: str, file: str) -> list[str]:
    """Texts to embed; non-answers become "" so they get zero vectors."""
    if text_col not in df.columns:
        raise InputError(file, None, f"missing column {text_col!r}")
    text = df[text_col].fillna("").astype(str)
    if "is_nonanswer" in df.columns:
        text = text.where(~df["is_nonanswer"].fillna(False).astype(bool), "")
    return text.tolist()


NON_ENGLISH_WARN_SHARE = 0.2


def _non_english(answers: pd.DataFrame) -> pd.Series:
    """Per real answer (non-answers left out): its detected language is neither English nor undetermined."""
    if "language" not in answers.columns or answers.empty:
        return pd.Series([], dtype=bool)
    real = answers
    if "is_nonanswer" in answers.columns:
        real = answers[~answers["is_nonanswer"].fillna(False).astype(bool)]
    return ~real["language"].fillna("und").astype(str).isin(["en", "und", ""])


def non_english_share(answers: pd.DataFrame) -> float:
    """Share of real answers whose detected language is neither English nor undetermined."""
    flags = _non_english(answers)
    return float(flags.mean()) if len(flags) else 0.0


def non_english_count(answers: pd.DataFrame) -> int:
    """Number of real answers whose detected language is neither English nor undetermined."""
    return int(_non_english(answers).sum())


def tag_section(params: dict[str, Any]) -> dict[str, Any]:
    return dict(params.get("tag", {}) or {})


def batch_sentences(answers: pd.DataFrame, params: dict[str, Any]) -> tuple[list[str], list[str], str | None]:
    """(passages, owner answer ids, switch line) of the tag stage's sentence scoring: the same texts
    (`text_clean`), non-answers skipped, `tag.sentence_max_words`, and `tag.sentence_scoring`."""
    texts = answers["text_clean"].fillna("").astype(str).tolist() if "text_clean" in answers else []
    skip = (answers["is_nonanswer"].fillna(False).astype(bool).to_numpy() if "is_nonanswer" in answers
            else np.array([not t.strip() for t in texts], dtype=bool))
    section = tag_section(params)
    on, switch = sentence_scoring(section, int((~skip).sum()))
    if not on or not texts:
        return [], [], switch
    sents, owners = sentence_passages(texts, int(section.get("sentence_max_words", 20)), skip)
    ids = answers["answer_id"].astype(str).tolist()
    return sents, [ids[i] for i in owners], switch


def resolved_section(answers: pd.DataFrame, params: dict[str, Any]) -> tuple[dict[str, Any], float, str, list[str]]:
    """(embed section with `auto` resolved for these answers, their non-English share, why, switch lines): the
    one place a batch's encoder is chosen, used by the embed stage and by `wsis themes --input FILE`."""
    section = embed_section(params)
    share = non_english_share(answers)
    chosen, reason = resolve_backend(section, share, non_english_count(answers))
    switches = [reason] if str(section.get("backend")) == AUTO else []
    section["backend"] = chosen
    return section, share, reason, switches


def embed_frames(
    answers: pd.DataFrame, segments: pd.DataFrame, params: dict[str, Any], cache_dir: Path | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Pure core of the stage: the arrays of embeddings.npz and the encode statistics."""
    section, share, reason, switches = resolved_section(answers, params)
    chosen = str(section["backend"])
    a_texts = _texts(answers, "text_clean", ANSWERS_FILE)
    s_texts = _texts(segments, "text", SEGMENTS_FILE) if len(segments) else []
    sents, sent_owner, sent_switch = batch_sentences(answers, params)
    if sent_switch:
        switches.append(sent_switch)
    # one encode call: texts shared by answers, segments and sentences are encoded once
    vectors, stats = encode_with_stats(a_texts + s_texts + sents, section, cache_dir)
    n_a, n_s = len(a_texts), len(s_texts)
    arrays = {
        "answer_ids": np.asarray(answers["answer_id"].astype(str).tolist(), dtype=str),
        "answer_vectors": vectors[:n_a],
        "segment_ids": np.asarray(
            segments["segment_id"].astype(str).tolist() if len(segments) else [], dtype=str
        ),
        "segment_vectors": vectors[n_a:n_a + n_s],
        "sentence_owner": np.asarray(sent_owner, dtype=str),
        "sentence_digests": np.asarray([passage_digest(t) for t in sents], dtype=str),
        "sentence_vectors": vectors[n_a + n_s:],
        "model_id": np.asarray(f"{stats.backend}:{stats.model_id}"),
    }
    summary = stats.as_dict()
    summary.update(answers=n_a, segments=n_s, sentence_passages=len(sents), dim=int(vectors.shape[1]),
                   non_english_share=round(share, 3), backend_chosen=chosen, backend_reason=reason,
                   switches=switches, fallbacks=[])
    if share > NON_ENGLISH_WARN_SHARE and chosen != "multilingual":
        log.warning(
            "%.0f%% of answers are not in English but embed.backend=%s (English-only model); "
            "consider embed.backend=multilingual or auto", 100 * share, chosen,
        )
    return arrays, summary


def batch_params(batch_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Params whose `embed.backend` is the one the embed stage chose for this batch (`auto` resolved from
    embeddings.npz), so label and theme texts are encoded in the batch's space."""
    if str(embed_section(params).get("backend")) != AUTO:
        return params
    path = Path(batch_dir) / OUTPUT_FILE
    if not path.exists():
        raise InputError(str(path), None, "not found: run `wsis embed` first (embed.backend=auto is chosen there)")
    backend = str(io.read_npz(path).get("model_id", "")).split(":", 1)[0]
    return config.deep_merge(params, {"embed": {"backend": backend}})


def run(batch_dir: Path, params: dict[str, Any], cache_dir: Path | None = None) -> dict[str, Any]:
    """Embed a batch folder's answers and segments, writing embeddings.npz atomically."""
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    a_path = batch_dir / ANSWERS_FILE
    s_path = batch_dir / SEGMENTS_FILE
    if not a_path.exists():
        raise InputError(str(a_path), None, "not found: run `wsis clean` first")
    answers = pd.read_parquet(a_path)
    if "answer_id" not in answers.columns:
        raise InputError(str(a_path), None, "missing column 'answer_id'")
    if s_path.exists():
        segments = pd.read_parquet(s_path)
        if len(segments) and "segment_id" not in segments.columns:
            raise InputError(str(s_path), None, "missing column 'segment_id'")
    else:
        log.warning("%s not found: embedding answers only", s_path)
        segments = pd.DataFrame({"segment_id": pd.Series([], dtype=str), "text": pd.Series([], dtype=str)})
    arrays, summary = embed_frames(answers, segments, params, cache_dir or config.cache_dir())
    io.write_npz(batch_dir / OUTPUT_FILE, **arrays)
    summary["seconds"] = round(time.perf_counter() - t0, 3)
    summary["output"] = str(batch_dir / OUTPUT_FILE)
    return summary
