"""CLI shell of ingest: read inputs, write answers.parquet and quarantine.csv atomically, summarise."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline import io
from pipeline.ingest.core import FLAGS, ingest_paths

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
        "flagged_submissions": int((subs["ingest_flags"] != "").sum()) if len(subs) else 0,
        "flagged": flag_counts(subs),
        "out_dir": str(out_dir),
    }
    for flag, n in summary["flagged"].items():
        log.warning("%d submission(s) flagged %s (column ingest_flags of answers.parquet)", n, flag)
    if len(quarantine):
        log.warning("%d quarantine line(s) written to %s", len(quarantine), out_dir / "quarantine.csv")
    return summary


def flag_counts(subs: pd.DataFrame) -> dict[str, int]:
    """Submissions per warning flag (`ingest_flags`: mixed encodings, text that is no consultation answer)."""
    if not len(subs) or "ingest_flags" not in subs.columns:
        return {}
    counts = {flag: int(subs["ingest_flags"].str.split(";").map(lambda fs, f=flag: f in fs).sum()) for flag in FLAGS}
    return {flag: n for flag, n in counts.items() if n}
