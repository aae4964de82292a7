"""Shell of the clean stage: batch_dir/answers.parquet -> answers_clean.parquet + segments.parquet."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import io
from pipeline.clean.core import clean_answers, clean_params
from pipeline.clean.nlp import fallback_notes
from pipeline.errors import InputError

__all__ = ["run"]

logger = logging.getLogger(__name__)


def run(batch_dir: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Clean the batch's answers, write both artefacts atomically, return a summary of counts."""
    batch_dir = Path(batch_dir)
    source = batch_dir / "answers.parquet"
    if not source.exists():
        raise InputError(str(source), None, "not found: run `wsis ingest` first")
    answers = pd.read_parquet(source)
    t0 = time.perf_counter()
    clean, segments = clean_answers(answers, params)
    seconds = time.perf_counter() - t0
    io.write_parquet(clean, batch_dir / "answers_clean.parquet")
    io.write_parquet(segments, batch_dir / "segments.parquet")

    summary: dict[str, Any] = {
        **summarise(clean, segments),
        "seconds": round(seconds, 2),
        # One line per degraded step (a blank spaCy model); the runner puts them in the manifest and report.
        "fallbacks": fallback_notes(str(clean_params(params)["spacy_model"])),
    }
    logger.info("clean summary: %s", summary)
    return summary


def summarise(clean: pd.DataFrame, segments: pd.DataFrame) -> dict[str, Any]:
    """The counts the clean stage reports (also summed by the distributed run from its partitions)."""
    reasons = clean.loc[clean["is_nonanswer"], "nonanswer_reason"].value_counts()
    dup = clean[clean["dup_group"] != ""]
    return {
        "answers": len(clean),
        "nonanswers": int(clean["is_nonanswer"].sum()),
        "nonanswer_reasons": {str(k): int(v) for k, v in reasons.items()},
        "duplicate_groups": int(dup["dup_group"].nunique()),
        "duplicate_answers": {str(k): int(v) for k, v in dup["dup_kind"].value_counts().items()},
        "languages": {str(k): int(v) for k, v in clean["language"].value_counts().head(10).items()},
        "segments": len(segments),
        "boilerplate_segments": int(segments["is_boilerplate"].sum()) if "is_boilerplate" in segments else 0,
        "answers_with_action_line_mentions": int(clean["mentions_action_lines"].map(len).gt(0).sum()),
        "answers_with_sdg_mentions": int(clean["mentions_sdgs"].map(len).gt(0).sum()),
    }
