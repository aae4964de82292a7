"""Required columns of every artefact (docs/ARCHITECTURE.md); checked after each stage by the runner."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ANSWERS = [
    "response_id", "question_id", "question_number", "question_text", "answer", "org_name", "org_type",
    "stakeholder_group", "country", "country_raw", "region", "subregion", "submitted_at", "source_file",
    "source_record", "source_format", "is_document", "submission_group", "is_current",
    "superseded_by", "superseded_reason", "ingest_flags",
]
QUARANTINE = ["source_file", "record", "reason", "excerpt"]
ANSWERS_CLEAN = ANSWERS + [
    "answer_id", "text_clean", "text_redacted", "is_nonanswer", "nonanswer_reason", "language", "dup_group",
    "dup_group_size", "dup_kind", "keyphrases", "entities", "mentions_action_lines", "mentions_sdgs", "n_words",
    "n_segments",
]
SEGMENTS = [
    "segment_id", "answer_id", "response_id", "question_id", "seg_index", "start", "end", "text", "text_redacted",
    "n_words", "is_nonanswer", "is_boilerplate",
]
THEMES = ["theme_id", "scope", "label", "keywords", "size", "n_segments", "n_respondents", "origin", "quotes"]
THEME_ASSIGNMENTS = ["answer_id", "response_id", "question_id", "themes"]
SEGMENT_ASSIGNMENTS = ["segment_id", "answer_id", "question_id", "theme_id", "score"]
TAGS = ["answer_id", "response_id", "question_id", "action_lines", "sdgs"]

STAKEHOLDER_GROUPS = [
    "government", "private sector", "civil society", "academia", "technical community",
    "international organisation", "individual", "other", "not given",
]
ACTION_LINES = [
    "C1", "C2", "C3", "C4", "C5", "C6", "C7", "C7.e-government", "C7.e-business", "C7.e-learning", "C7.e-health",
    "C7.e-employment", "C7.e-environment", "C7.e-agriculture", "C7.e-science", "C8", "C9", "C10", "C11",
]
SDGS = [str(i) for i in range(1, 18)]

PARQUET_SCHEMAS: dict[str, list[str]] = {
    "answers.parquet": ANSWERS,
    "answers_clean.parquet": ANSWERS_CLEAN,
    "segments.parquet": SEGMENTS,
    "themes.parquet": THEMES,
    "theme_assignments.parquet": THEME_ASSIGNMENTS,
    "segment_assignments.parquet": SEGMENT_ASSIGNMENTS,
    "tags.parquet": TAGS,
}


class SchemaError(ValueError):
    """An artefact lacks columns that later stages rely on."""


def missing_columns(df: pd.DataFrame, required: list[str]) -> list[str]:
    return [c for c in required if c not in df.columns]


def check_artefact(path: Path) -> None:
    """Raise SchemaError when a known parquet artefact lacks required columns."""
    required = PARQUET_SCHEMAS.get(path.name)
    if required is None or not path.exists():
        return
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    missing = [c for c in required if c not in names]
    if missing:
        raise SchemaError(f"{path}: missing columns {missing}")
