"""Load a processed batch folder into one object; optional artefacts may be absent (recorded, not fatal)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import catalog
from pipeline.errors import InputError
from pipeline.tagger.taxonomy import TAXONOMY_DIR, output_code
from pipeline.tagger.taxonomy import load_taxonomy as taxonomy_of

log = logging.getLogger(__name__)

# what the report stage reads, from the catalog (the runner hashes the same files into its cache key)
_REPORT = next(s for s in catalog.STAGES if s.name == "report")
REQUIRED = tuple(catalog.path_of(n) for n in _REPORT.reads)
OPTIONAL = tuple(catalog.path_of(n) for n in _REPORT.optional_reads)


ABSENT_IS_NORMAL = {"theme_edits.parquet"}  # written only when the analyst gave an edits file
SCORE_PREFIX = "score_"
ANSWER_EMBEDDING_KEYS = ("answer_ids", "answer_vectors", "model_id")


@dataclass(frozen=True)
class Taxonomy:
    """Action Line and SDG titles in display order, and the WSIS-SDG matrix as (action line, sdg) pairs."""

    action_lines: dict[str, str]
    sdgs: dict[str, str]
    matrix: frozenset[tuple[str, str]]


@dataclass
class Batch:
    """Everything the report reads from a batch folder; absent optional artefacts are None."""

    batch_dir: Path
    answers: pd.DataFrame
    quarantine: pd.DataFrame
    answers_clean: pd.DataFrame | None = None
    segments: pd.DataFrame | None = None
    themes: pd.DataFrame | None = None
    theme_assignments: pd.DataFrame | None = None
    segment_assignments: pd.DataFrame | None = None
    theme_by_question: pd.DataFrame | None = None
    tags: pd.DataFrame | None = None
    tag_consistency: pd.DataFrame | None = None
    theme_edits: pd.DataFrame | None = None
    theme_stance: pd.DataFrame | None = None
    embeddings: dict[str, np.ndarray] | None = None
    taxonomy: Taxonomy | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.batch_dir.name


@lru_cache(maxsize=4)
def load_taxonomy(directory: Path = TAXONOMY_DIR) -> Taxonomy:
    """The report's view of the one taxonomy (`pipeline.tagger.taxonomy`): titles by code as written in outputs,
    in the fixed label order, and the WSIS-SDG matrix as output-code pairs; cached."""
    tax = taxonomy_of(directory)
    return Taxonomy(
        action_lines={lab.code: lab.title for lab in tax.labels if lab.kind == "action_line"},
        sdgs={lab.code: lab.title for lab in tax.labels if lab.kind == "sdg"},
        matrix=frozenset((output_code(a), output_code(s)) for a, s in tax.matrix),
    )


def load_batch(batch_dir: Path | str) -> Batch:
    """Read every artefact that exists; raise InputError when the batch has no answers.parquet."""
    batch_dir = Path(batch_dir)
    path = batch_dir / "answers.parquet"
    if not path.exists():
        raise InputError(str(path), None, "no answers.parquet: run `wsis ingest` (or `wsis run`) first")
    missing = [name for name in OPTIONAL if not (batch_dir / name).exists() and name not in ABSENT_IS_NORMAL]
    for name in missing:
        log.warning("report: %s is absent; the tables that need it are left out", name)

    def parquet(name: str, skip_prefix: str | None = None) -> pd.DataFrame | None:
        p = batch_dir / name
        if not p.exists():
            return None
        if skip_prefix is None:
            return pd.read_parquet(p)
        names = pq.read_schema(p).names
        return pd.read_parquet(p, columns=[c for c in names if not c.startswith(skip_prefix)])

    qpath = batch_dir / "quarantine.csv"
    quarantine = (
        pd.read_csv(qpath, dtype=str, keep_default_na=False) if qpath.exists()
        else pd.DataFrame(columns=["source_file", "record", "reason", "excerpt"])
    )
    emb_path = batch_dir / "embeddings.npz"
    return Batch(
        batch_dir=batch_dir,
        answers=pd.read_parquet(path),
        quarantine=quarantine,
        answers_clean=parquet("answers_clean.parquet"),
        segments=parquet("segments.parquet"),
        themes=parquet("themes.parquet"),
        # one score column per theme (1000+ at 50k answers, ~0.5 GB while read); the report ranks by `themes`
        theme_assignments=parquet("theme_assignments.parquet", skip_prefix=SCORE_PREFIX),
        segment_assignments=parquet("segment_assignments.parquet"),
        theme_by_question=parquet("theme_by_question.parquet"),
        tags=parquet("tags.parquet"),
        tag_consistency=parquet("tag_consistency.parquet"),
        theme_edits=parquet("theme_edits.parquet"),
        theme_stance=parquet("theme_stance.parquet"),
        embeddings=_answer_embeddings(emb_path) if emb_path.exists() else None,
        taxonomy=load_taxonomy(),
        missing=missing,
    )


def _answer_embeddings(path: Path) -> dict[str, np.ndarray]:
    """Only the answer ids and vectors (the map's input): segment vectors are as big and the report never
    reads them."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in ANSWER_EMBEDDING_KEYS if k in data.files}


def quotes_of(themes: pd.DataFrame) -> pd.DataFrame:
    """Explode the JSON `quotes` column of themes.parquet into one row per quote (rank from 1)."""
    rows: list[dict[str, Any]] = []
    for r in themes.itertuples(index=False):
        try:
            items = json.loads(str(r.quotes or "[]"))
        except (TypeError, ValueError):
            items = []
        for rank, q in enumerate(items, start=1):
            rows.append({
                "theme_id": str(r.theme_id), "scope": str(r.scope), "rank": rank,
                "response_id": str(q.get("response_id", "")), "segment_id": str(q.get("segment_id", "")),
                "text": str(q.get("text", "")),
            })
    return pd.DataFrame(rows, columns=["theme_id", "scope", "rank", "response_id", "segment_id", "text"])
