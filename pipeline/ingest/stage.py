"""CLI shell of ingest: read inputs, write answers.parquet and quarantine.csv atomically, summarise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline import io
from pipeline.ingest.core import ingest_paths

log = logging.getLogger(__name__)


def run(inputs: list[Path], out_dir: Path, params: dict[str, Any], questionnaire: Path | None = None,
        mapping: str | None = None) -> dict[str, Any]:
    """Ingest `inputs` into `out_dir`; returns counts (the CLI prints them, the runner stores them)."""
    out_dir = Path(out_dir)
    result = ingest_paths([Path(p) for p in inputs], questionnaire, params, mapping)
    answers, quarantine = result.answers, result.quarantine
    io.write_parquet(answers, out_dir / "answers.parquet")
    io.write_csv(quarantine, out_dir / "quarantine.csv")
    subs = answers.drop_duplicates("response_id")
    groups = subs.groupby("submission_group").size() if len(subs) else subs
    summary: dict[str, Any] = {
        "files": result.files,
        "files_read": result.files_read,
        "submissions": int(len(subs)),
        "current_submissions": int(subs["is_current"].sum()) if len(subs) else 0,
        "resubmissions": int(len(subs) - len(groups)),
        "answers": int(len(answers)),
        "empty_answers": int((answers["answer"].str.strip() == "").sum()) if len(answers) else 0,
        "documents": int(subs["is_document"].sum()) if len(subs) else 0,
        "quarantined": int(len(quarantine)),
        "formats": subs["source_format"].value_counts().to_dict() if len(subs) else {},
        "out_dir": str(out_dir),
    }
    if len(quarantine):
        log.warning("%d quarantine line(s) written to %s", len(quarantine), out_dir / "quarantine.csv")
    return summary
