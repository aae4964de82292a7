"""Stage shell: batch_dir/answers_clean.parquet + segments.parquet -> batch_dir/embeddings.npz."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import config, io
from pipeline.embed.core import encode_with_stats
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


def non_english_share(answers: pd.DataFrame) -> float:
    """Share of real answers whose detected language is neither English nor undetermined."""
    if "language" not in answers.columns or answers.empty:
        return 0.0
    real = answers
    if "is_nonanswer" in answers.columns:
        real = answers[~answers["is_nonanswer"].fillna(False).astype(bool)]
    if real.empty:
        return 0.0
    lang = real["language"].fillna("und").astype(str)
    return float((~lang.isin(["en", "und", ""])).mean())


def embed_frames(
    answers: pd.DataFrame, segments: pd.DataFrame, params: dict[str, Any], cache_dir: Path | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Pure core of the stage: the arrays of embeddings.npz and the encode statistics."""
    a_texts = _texts(answers, "text_clean", ANSWERS_FILE)
    s_texts = _texts(segments, "text", SEGMENTS_FILE) if len(segments) else []
    # one encode call: answers that are a single segment share the cached vector
    vectors, stats = encode_with_stats(a_texts + s_texts, params, cache_dir)
    n_a = len(a_texts)
    arrays = {
        "answer_ids": np.asarray(answers["answer_id"].astype(str).tolist(), dtype=str),
        "answer_vectors": vectors[:n_a],
        "segment_ids": np.asarray(
            segments["segment_id"].astype(str).tolist() if len(segments) else [], dtype=str
        ),
        "segment_vectors": vectors[n_a:],
        "model_id": np.asarray(f"{stats.backend}:{stats.model_id}"),
    }
    summary = stats.as_dict()
    share = non_english_share(answers)
    summary.update(answers=n_a, segments=len(s_texts), dim=int(vectors.shape[1]),
                   non_english_share=round(share, 3))
    if share > NON_ENGLISH_WARN_SHARE and stats.backend != "multilingual":
        log.warning(
            "%.0f%% of answers are not in English but embed.backend=%s (English-only model); "
            "consider embed.backend=multilingual", 100 * share, stats.backend,
        )
    return arrays, summary


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
