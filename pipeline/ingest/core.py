"""The pure core of ingest: files and folders in, `answers` and `quarantine` frames out."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.ingest import documents, tables, tabular
from pipeline.ingest.itu_text import TextFormParser
from pipeline.ingest.normalise import country_fields, country_index, parse_date, stakeholder_mapper
from pipeline.ingest.questionnaire import Questionnaire, load_questionnaire
from pipeline.ingest.records import (
    ANSWER_COLUMNS,
    QUARANTINE_COLUMNS,
    QuarantineLine,
    Submission,
)
from pipeline.ingest.textutil import DecodeError, collapse_ws, decode_bytes, fold, normalise_newlines
from pipeline.progress import track

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq"}
DOC_SUFFIXES = {".docx", ".pdf"}
SKIP_NAMES = ("readme", "license", "licence", "changelog")  # file-name prefixes of batch documentation
_NO_ORG = {"", "na", "n a", "none", "individual", "private individual", "anonymous", "not applicable",
           "unknown", "self", "personal", "personal capacity", "me"}


@dataclass
class IngestResult:
    """What ingest produces: one row per (submission, question), and what could not be read."""

    answers: pd.DataFrame
    quarantine: pd.DataFrame
    files: int = 0
    files_read: int = 0


@dataclass
class _FileOutcome:
    subs: list[Submission]
    quarantine: list[QuarantineLine]


def list_input_files(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[QuarantineLine]]:
    """Every file under `paths` (folders recursively, sorted), with the name shown in outputs."""
    files: list[tuple[Path, str]] = []
    missing: list[QuarantineLine] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    files.append((f, str(Path(path.name) / rel)))
        elif path.is_file():
            files.append((path, path.name))
        else:
            missing.append(QuarantineLine(str(path), "file", "input path does not exist", ""))
    return files, missing


def _resolve_questionnaire(questionnaire: Questionnaire | Path | str | None,
                           params: dict[str, Any]) -> Questionnaire:
    if isinstance(questionnaire, Questionnaire):
        return questionnaire
    return load_questionnaire(questionnaire, params)


def read_file(path: Path, name: str, q: Questionnaire, params: dict[str, Any],
              mapping: tabular.Mapping | None, builtin: list[tabular.Mapping]) -> _FileOutcome:
    """Read one file into submissions, or explain in quarantine lines why it could not be read."""
    section = params.get("ingest", {}) or {}
    day_first = bool(section.get("day_first", True))
    max_mb = float(section.get("max_file_mb", 200))
    suffix = path.suffix.lower()
    stem = path.stem

    def reject(reason: str, excerpt: str = "") -> _FileOutcome:
        return _FileOutcome([], [QuarantineLine(name, "file", reason, excerpt)])

    if stem.lower().startswith(SKIP_NAMES) and suffix in TEXT_SUFFIXES:
        return reject("README/licence file describing the batch, not a submission: skipped")
    if stem.startswith("~$"):
        return reject("Office lock file, not a submission: skipped")
    size = path.stat().st_size
    if size == 0:
        return reject("file is empty")
    if size > max_mb * 1e6:
        return reject(f"file is larger than ingest.max_file_mb ({max_mb:g} MB)")
    if suffix in TABLE_SUFFIXES:
        return _read_table_file(path, name, q, day_first, mapping, builtin)
    if suffix in TEXT_SUFFIXES or suffix in DOC_SUFFIXES:
        meta: dict[str, str] = {}
        try:
            if suffix == ".docx":
                text, meta = documents.extract_docx(path)
            elif suffix == ".pdf":
                text, meta = documents.extract_pdf(path)
            else:
                text, _ = decode_bytes(path.read_bytes())
        except (documents.DocumentError, DecodeError) as exc:
            return reject(str(exc), _peek(path))
        text = normalise_newlines(text).replace("\ufeff", "")
        if not text.strip():
            return reject("file is empty (no text)")
        return _read_text(text, meta, name, stem, q, day_first)
    kind = suffix or "(no extension)"
    return reject(f"unsupported file type {kind}: expected .txt, .md, .csv, .xlsx, .docx or .pdf",
                  _peek(path))


def _peek(path: Path) -> str:
    try:
        return path.read_bytes()[:120].decode("latin-1", errors="replace")
    except OSError:
        return ""


def _read_text(text: str, meta: dict[str, str], name: str, stem: str, q: Questionnaire,
               day_first: bool) -> _FileOutcome:
    parser = TextFormParser(q, day_first)
    subs, quarantine, n_headings = parser.parse(text, name, stem)
    if n_headings:
        return _FileOutcome(subs, quarantine)
    return _FileOutcome([documents.document_submission(text, meta, name, stem, day_first)], [])


def _read_table_file(path: Path, name: str, q: Questionnaire, day_first: bool,
                     mapping: tabular.Mapping | None, builtin: list[tabular.Mapping]) -> _FileOutcome:
    try:
        sheets = tables.read_tables(path)
    except tables.TableError as exc:
        return _FileOutcome([], [QuarantineLine(name, "file", str(exc), _peek(path))])
    subs: list[Submission] = []
    quarantine: list[QuarantineLine] = []
    unrecognised: list[QuarantineLine] = []
    for sheet, df in sheets:
        if df.empty and not len(df.columns):
            unrecognised.append(QuarantineLine(name, f"sheet {sheet}" if sheet else "file",
                                               "table is empty", ""))
            continue
        columns = list(df.columns)
        chosen = mapping or tabular.detect_mapping(columns, builtin) \
            or tabular.canonical_long_mapping(columns)
        if chosen is not None:
            s, qlines = tabular.read_mapped(df, chosen, q, name, path.stem, path.parent, day_first,
                                            sheet)
        else:
            wide = tabular.read_wide(df, q, name, path.stem, day_first, sheet)
            if wide is None and (row := tabular.find_header_row(df, q)) is not None:
                body = df.iloc[row + 1:].set_axis([str(v).strip() for v in df.iloc[row]], axis=1)
                wide = tabular.read_wide(body.reset_index(drop=True), q, name, path.stem, day_first,
                                         sheet, header_row=row + 2)
            if wide is None:
                unrecognised.append(QuarantineLine(
                    name, f"sheet {sheet}" if sheet else "file",
                    "no answer columns recognised: the header matches neither the questionnaire "
                    "nor the long format (response_id, question_id, answer) nor a known mapping",
                    "; ".join(columns)[:200]))
                continue
            s, qlines = wide
        if df.empty:
            quarantine.append(QuarantineLine(name, f"sheet {sheet}" if sheet else "file",
                                             "table has a header but no rows", ""))
        subs.extend(s)
        quarantine.extend(qlines)
    if subs:
        # other sheets of a workbook that holds submissions (notes, lookups) are not records
        for line in unrecognised:
            log.warning("%s, %s: not read (%s)", name, line.record, line.reason.split(":")[0])
    else:
        quarantine = unrecognised + quarantine
    return _FileOutcome(subs, quarantine)


def ingest_paths(paths: list[Path], questionnaire: Questionnaire | Path | str | None = None,
                 params: dict[str, Any] | None = None, mapping: str | None = None) -> IngestResult:
    """Read every file under `paths` into one answers frame (see docs/ARCHITECTURE.md) + quarantine."""
    params = params or {}
    q = _resolve_questionnaire(questionnaire, params)
    chosen = tabular.load_mapping(mapping) if mapping else None
    builtin = tabular.builtin_mappings()
    files, quarantine = list_input_files([Path(p) for p in paths])
    subs: list[Submission] = []
    files_read = 0
    for path, name in track(files, "ingest", total=len(files)):
        try:
            outcome = read_file(path, name, q, params, chosen, builtin)
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
            log.exception("unexpected error reading %s", name)
            outcome = _FileOutcome([], [QuarantineLine(
                name, "file", f"file could not be read ({type(exc).__name__}: {exc})", "")])
        if outcome.subs:
            files_read += 1
        for s in outcome.subs:
            s.order = len(subs)
            subs.append(s)
        quarantine.extend(outcome.quarantine)
    subs, dup_lines = _resolve_resubmissions(subs)
    quarantine.extend(dup_lines)
    answers = _to_frame(subs, q)
    qframe = pd.DataFrame([line.as_dict() for line in quarantine], columns=QUARANTINE_COLUMNS)
    return IngestResult(answers=answers, quarantine=qframe, files=len(files), files_read=files_read)


# ---- re-submissions ----------------------------------------------------------------------------
def org_key(name: str) -> str:
    """Organisation name folded for matching re-submissions ("" when it names no organisation)."""
    key = fold(re.sub(r"\([^)]*\)", " ", name)) or fold(name)  # "(OSRG)" acronyms do not count
    if key.startswith("the "):
        key = key[4:]
    return "" if key in _NO_ORG else key


def _country_key(raw: str) -> str:
    hit = country_index().lookup(raw)
    return hit.iso3 if hit else fold(raw)


def _content_key(sub: Submission) -> tuple[Any, ...]:
    """Content compared after folding (case, accents, punctuation, markdown), so the same submission
    exported as text and as a table counts as one."""
    return (fold(sub.org_name), fold(sub.org_type), fold(sub.country_raw),
            tuple((a.question_id, fold(a.answer)) for a in sub.answers))


def _resolve_resubmissions(subs: list[Submission]) -> tuple[list[Submission], list[QuarantineLine]]:
    """Drop exact duplicates (same id, same content: the same submission exported twice), group
    re-submissions (same response id or same organisation), mark the latest current, keep ids unique."""
    for s in subs:
        s.submitted_at = parse_date(s.submitted_raw, s.day_first)
    kept: list[Submission] = []
    lines: list[QuarantineLine] = []
    first_by_key: dict[tuple[str, tuple[Any, ...]], Submission] = {}
    for s in subs:
        key = (s.response_id, _content_key(s))
        if key in first_by_key:
            other = first_by_key[key]
            lines.append(QuarantineLine(
                s.source_file, s.source_record,
                f"duplicate of response {s.response_id} already read from {other.source_file} "
                f"({other.source_record}) with identical content: not counted twice", s.org_name))
            continue
        first_by_key[key] = s
        kept.append(s)
    parent = list(range(len(kept)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    by_id: dict[str, int] = {}
    by_org: dict[str, dict[str, int]] = {}  # name -> country -> first submission
    for i, s in enumerate(kept):
        if s.response_id in by_id:
            union(i, by_id[s.response_id])
        else:
            by_id[s.response_id] = i
        name_key = org_key(s.org_name)
        if name_key:
            # same name in two countries ("Ministry of Communications") is two organisations
            # (a country left empty matches any country)
            countries = by_org.setdefault(name_key, {})
            ckey = _country_key(s.country_raw)
            for other_country, j in countries.items():
                if not ckey or not other_country or other_country == ckey:
                    union(i, j)
            countries.setdefault(ckey, i)
    groups: dict[int, list[int]] = {}
    for i in range(len(kept)):
        groups.setdefault(find(i), []).append(i)
    for root, members in groups.items():
        group_id = kept[root].response_id
        ordered = sorted(members, key=lambda m: (kept[m].submitted_at, kept[m].order))
        current = ordered[-1]
        by_rid: dict[str, list[int]] = {}
        for m in ordered:
            kept[m].group_id = group_id
            kept[m].is_current = m == current
            by_rid.setdefault(kept[m].response_id, []).append(m)
        for rid, same in by_rid.items():
            if len(same) < 2:
                continue
            keeper = current if current in same else same[-1]
            for n, m in enumerate([x for x in same if x != keeper], start=1):
                kept[m].response_id = f"{rid}~v{n}"
    return kept, lines


def _to_frame(subs: list[Submission], q: Questionnaire) -> pd.DataFrame:
    mapper = stakeholder_mapper()
    geo_cache: dict[str, dict[str, str]] = {}
    group_cache: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    for s in subs:
        geo = geo_cache.get(s.country_raw)
        if geo is None:
            geo = geo_cache[s.country_raw] = country_fields(s.country_raw)
        group = group_cache.get(s.org_type)
        if group is None:
            group = group_cache[s.org_type] = mapper.group(s.org_type)
        base = {
            "response_id": s.response_id, "org_name": collapse_ws(s.org_name),
            "org_type": collapse_ws(s.org_type), "stakeholder_group": group, **geo,
            "submitted_at": s.submitted_at, "source_file": s.source_file,
            "source_record": s.source_record, "source_format": s.source_format,
            "is_document": s.is_document, "submission_group": s.group_id or s.response_id,
            "is_current": s.is_current,
        }
        for a in s.answers:
            rows.append({**base, "question_id": a.question_id, "question_number": a.question_number,
                         "question_text": a.question_text, "answer": a.answer})
    df = pd.DataFrame(rows, columns=ANSWER_COLUMNS)
    df["question_number"] = pd.array(df["question_number"].tolist(), dtype="Int64")
    for col in ANSWER_COLUMNS:
        if col in {"question_number", "is_document", "is_current"}:
            continue
        df[col] = df[col].fillna("").astype(str)
    df["is_document"] = df["is_document"].astype(bool)
    df["is_current"] = df["is_current"].astype(bool)
    return df
