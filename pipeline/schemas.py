"""Column contracts of every artefact, read from the one catalog (`pipeline.catalog`); checked after each stage
by the runner, and the code lists that ingest and the report build their frames from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import catalog


def _columns(name: str) -> list[str]:
    return catalog.BY_NAME[name].column_names


ANSWERS = _columns("answers")
QUARANTINE = _columns("quarantine")
ANSWERS_CLEAN = _columns("answers_clean")
SEGMENTS = _columns("segments")
THEMES = _columns("themes")
THEME_ASSIGNMENTS = _columns("theme_assignments")
SEGMENT_ASSIGNMENTS = _columns("segment_assignments")
TAGS = _columns("tags")

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
    a.path: a.column_names for a in catalog.ARTEFACTS if a.kind == "parquet" and a.columns
}
PARQUET_DTYPES: dict[str, dict[str, str]] = {
    a.path: dict(a.columns) for a in catalog.ARTEFACTS if a.kind == "parquet" and a.columns
}


class SchemaError(ValueError):
    """An artefact lacks columns that later stages rely on, or a column has another type."""


def missing_columns(df: pd.DataFrame, required: list[str]) -> list[str]:
    return [c for c in required if c not in df.columns]


def dtype_family(arrow_type: Any) -> str | None:
    """The catalog's name for a pyarrow type; None for the null type (an all-null column fits any)."""
    import pyarrow as pa

    t = pa.types
    if t.is_null(arrow_type):
        return None
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return catalog.STRING
    if t.is_boolean(arrow_type):
        return catalog.BOOL
    if t.is_integer(arrow_type):
        return catalog.INT
    if t.is_floating(arrow_type):
        return catalog.FLOAT
    if (t.is_list(arrow_type) or t.is_large_list(arrow_type)) and dtype_family(arrow_type.value_type) in {
            catalog.STRING, None}:
        return catalog.STRINGS
    return str(arrow_type)


def check_artefact(path: Path) -> None:
    """Raise SchemaError when a known parquet artefact lacks required columns or one has another dtype."""
    required = PARQUET_SCHEMAS.get(path.name)
    if required is None or not path.exists():
        return
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    names = set(schema.names)
    missing = [c for c in required if c not in names]
    if missing:
        raise SchemaError(f"{path}: missing columns {missing}")
    wanted = PARQUET_DTYPES[path.name]
    wrong = []
    for column, family in wanted.items():
        found = dtype_family(schema.field(column).type)
        if found is not None and found != family:
            wrong.append(f"{column} is {found}, expected {family}")
    if wrong:
        raise SchemaError(f"{path}: {'; '.join(wrong)}")
