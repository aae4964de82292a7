"""The pure core of ingest: files and folders in, `answers` and `quarantine` frames out."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
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
from pipeline.ingest.textutil import (
    MIXED_ENCODING,
    DecodeError,
    collapse_ws,
    decode_bytes,
    fold,
    is_mixed_encoding,
    junk_reason,
    normalise_newlines,
)
from pipeline.progress import track

log = logging.getLogger(__name__)

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
TABLE_SUFFIXES = {".csv", ".tsv", ".xlsx", ".xlsm", ".xls", ".parquet", ".pq"}
DOC_SUFFIXES = {".docx", ".pdf"}
SKIP_NAMES = ("readme", "license", "licence", "changelog")  # file-name prefixes of batch documentation
_NO_ORG = {"", "na", "n a", "none", "individual", "private individual", "anonymous", "not applicable",
           "unknown", "self", "personal", "personal capacity", "me"}
MIXED_ENCODING_FLAG = "mixed_encoding"
NOT_CONSULTATION_FLAG = documents.NOT_CONSULTATION_FLAG
FLAGS = (MIXED_ENCODING_FLAG, NOT_CONSULTATION_FLAG)  # values of the `ingest_flags` column (";"-joined)


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
    flags: list[str] = field(default_factory=list)  # warnings about the whole file (`ingest_flags`)


@dataclass
class _Extra:
    """What ingest knows about a submission beyond the reader's record."""

    origin_id: str  # the id readers gave before ids were made unique per source (for exact-copy detection)
    flags: list[str]
    superseded_by: str = ""
    superseded_reason: str = ""


def _walk_inputs(paths: list[Path]) -> tuple[list[tuple[Path, str, Path]], list[QuarantineLine]]:
    """(file, name shown in outputs, path relative to the input folder) for every file under `paths`."""
    files: list[tuple[Path, str, Path]] = []
    missing: list[QuarantineLine] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                rel = f.relative_to(path)
                if f.is_file() and not any(part.startswith(".") for part in rel.parts):
                    files.append((f, str(Path(path.name) / rel), rel))
        elif path.is_file():
            files.append((path, path.name, Path(path.name)))
        else:
            missing.append(QuarantineLine(str(path), "file", "input path does not exist", ""))
    return files, missing


def list_input_files(paths: list[Path]) -> tuple[list[tuple[Path, str]], list[QuarantineLine]]:
    """Every file under `paths` (folders recursively, sorted), with the name shown in outputs."""
    files, missing = _walk_inputs(paths)
    return [(f, name) for f, name, _ in files], missing


def id_bases(files: list[tuple[Path, str, Path]]) -> list[str]:
    """The base of the response ids generated for each file (documents, exports without `Response N`, tables
    without an id column): unique per file and stable across runs, so two files never share an id.

    It is the path inside the input folder without extension ("position", "a/position"); with the extension
    when two files differ only by it ("good.docx", "good.pdf"); with the input folder's name when two inputs
    hold the same path; numbered "~2", "~3" in input order if still equal.
    """
    def candidates(name: str, rel: Path) -> list[str]:
        return [rel.with_suffix("").as_posix(), rel.as_posix(), Path(name).as_posix()]

    chosen = [candidates(name, rel)[0] for _, name, rel in files]
    for level in (1, 2):
        counts: dict[str, int] = {}
        for base in chosen:
            counts[base] = counts.get(base, 0) + 1
        chosen = [candidates(name, rel)[level] if counts[base] > 1 else base
                  for base, (_, name, rel) in zip(chosen, files, strict=True)]
    seen: dict[str, int] = {}
    out: list[str] = []
    for base in chosen:
        seen[base] = seen.get(base, 0) + 1
        out.append(base if seen[base] == 1 else f"{base}~{seen[base]}")
    return out


def _resolve_questionnaire(questionnaire: Questionnaire | Path | str | None,
                           params: dict[str, Any]) -> Questionnaire:
    if isinstance(questionnaire, Questionnaire):
        return questionnaire
    return load_questionnaire(questionnaire, params)


def read_file(path: Path, name: str, q: Questionnaire, params: dict[str, Any],
              mapping: tabular.Mapping | None, builtin: list[tabular.Mapping],
              id_base: str | None = None) -> _FileOutcome:
    """Read one file into submissions, or explain in quarantine lines why it could not be read.

    `id_base` starts the ids generated for records without one (default: the file's stem; see `id_bases`).
    """
    section = params.get("ingest", {}) or {}
    day_first = bool(section.get("day_first", True))
    max_mb = float(section.get("max_file_mb", 200))
    suffix = path.suffix.lower()
    stem = path.stem
    base = id_base or stem

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
        limits = tables.TableLimits.from_params(section)
        outcome = _read_table_file(path, name, base, q, day_first, mapping, builtin, limits)
        if suffix in {".csv", ".tsv"} and outcome.subs and is_mixed_encoding(path.read_bytes()):
            log.warning("%s: lines in UTF-8 and lines in CP1252 (decoded line by line)", name)
            outcome.flags.append(MIXED_ENCODING_FLAG)
        return outcome
    if suffix in TEXT_SUFFIXES or suffix in DOC_SUFFIXES:
        meta: dict[str, str] = {}
        encoding = ""
        try:
            if suffix == ".docx":
                text, meta = documents.extract_docx(path)
            elif suffix == ".pdf":
                text, meta = documents.extract_pdf(path)
            else:
                text, encoding = decode_bytes(path.read_bytes())
        except (documents.DocumentError, DecodeError) as exc:
            return reject(str(exc), _peek(path))
        text = normalise_newlines(text).replace("\ufeff", "")
        if not text.strip():
            return reject("file is empty (no text)")
        if junk := junk_reason(text, encoding):
            return reject(junk, text[:120])
        outcome = _read_text(text, meta, name, base, q, day_first)
        if encoding == MIXED_ENCODING and outcome.subs:
            log.warning("%s: lines in UTF-8 and lines in CP1252 (decoded line by line)", name)
            outcome.flags.append(MIXED_ENCODING_FLAG)
        return outcome
    kind = suffix or "(no extension)"
    return reject(f"unsupported file type {kind}: expected .txt, .md, .csv, .xlsx, .docx or .pdf",
                  _peek(path))


def _peek(path: Path) -> str:
    try:
        return path.read_bytes()[:120].decode("latin-1", errors="replace")
    except OSError:
        return ""


def _read_text(text: str, meta: dict[str, str], name: str, id_base: str, q: Questionnaire,
               day_first: bool) -> _FileOutcome:
    """A form export when the questionnaire's headings are found; else one document, unless it is only an
    e-mail cover note (quarantined); documents that do not read as a consultation answer are flagged."""
    parser = TextFormParser(q, day_first)
    subs, quarantine, n_headings = parser.parse(text, name, id_base)
    if n_headings:
        return _FileOutcome(subs, quarantine)
    if cover := documents.cover_note_reason(text):
        return _FileOutcome([], [QuarantineLine(name, "file", cover, text[:200])])
    outcome = _FileOutcome([documents.document_submission(text, meta, name, id_base, day_first)], [])
    if odd := documents.not_consultation_reason(text):
        log.warning("%s: %s (kept, flagged %s)", name, odd, NOT_CONSULTATION_FLAG)
        outcome.flags.append(NOT_CONSULTATION_FLAG)
    return outcome


def _read_table_file(path: Path, name: str, id_base: str, q: Questionnaire, day_first: bool,
                     mapping: tabular.Mapping | None, builtin: list[tabular.Mapping],
                     limits: tables.TableLimits | None = None) -> _FileOutcome:
    try:
        sheets = tables.read_tables(path, limits)
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
            s, qlines = tabular.read_mapped(df, chosen, q, name, id_base, path.parent, day_first,
                                            sheet)
        else:
            wide = tabular.read_wide(df, q, name, id_base, day_first, sheet)
            if wide is None and (row := tabular.find_header_row(df, q)) is not None:
                body = df.iloc[row + 1:].set_axis([str(v).strip() for v in df.iloc[row]], axis=1)
                wide = tabular.read_wide(body.reset_index(drop=True), q, name, id_base, day_first,
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
    files, quarantine = _walk_inputs([Path(p) for p in paths])
    bases = id_bases(files)
    subs: list[Submission] = []
    extras: list[_Extra] = []
    files_read = 0
    for (path, name, _rel), base in track(list(zip(files, bases, strict=True)), "ingest", total=len(files)):
        try:
            outcome = read_file(path, name, q, params, chosen, builtin, base)
        except Exception as exc:  # noqa: BLE001 - one bad file must never stop the batch
            log.exception("unexpected error reading %s", name)
            outcome = _FileOutcome([], [QuarantineLine(
                name, "file", f"file could not be read ({type(exc).__name__}: {exc})", "")])
        if outcome.subs:
            files_read += 1
        for s in outcome.subs:
            s.order = len(subs)
            subs.append(s)
            extras.append(_Extra(_origin_id(s.response_id, base, path.stem), list(outcome.flags)))
        quarantine.extend(outcome.quarantine)
    subs, dup_lines = _resolve_resubmissions(subs, extras)
    quarantine.extend(dup_lines)
    answers = _to_frame(subs, q, extras)
    qframe = pd.DataFrame([line.as_dict() for line in quarantine], columns=QUARANTINE_COLUMNS)
    return IngestResult(answers=answers, quarantine=qframe, files=len(files), files_read=files_read)


def _origin_id(rid: str, base: str, stem: str) -> str:
    """The id a reader would have generated from the file's stem alone ("position-2" for "a/position-2"):
    two files with the same name and identical content are one submission copied, not two."""
    if base == stem or not (rid == base or re.fullmatch(re.escape(base) + r"-\d+", rid)):
        return rid
    return stem + rid[len(base):]


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


_ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4}
_ROUND_NUMBER = re.compile(r"\b(?:round|phase)\s*(\d{1,2})\b|\b(first|second|third|fourth|1st|2nd|3rd|4th)"
                           r"\s+(?:round|phase)\b")
_REPLY_ROUND = re.compile(r"\b(?:counter\b|repl(?:y|ies)\b|rebuttals?\b|rejoinders?\b)")


def round_key(sub: Submission) -> str:
    """The consultation round a submission belongs to, read from its file path and id ("" = the first round):
    `counter_comments/`, `replies`, `round 2`, `second phase`. A later round answers other submissions, so it
    is never a re-submission of the first."""
    # the deepest folder (or file name) that names a round decides: "round-2/" inside "consultation round 1/"
    parts = [*reversed(re.split(r"[/\\]", sub.response_id)),
             *reversed(Path(sub.source_file).with_suffix("").parts)]
    for part in parts:
        text = re.sub(r"[_\-.]+", " ", part.lower())
        if _REPLY_ROUND.search(text):
            return "counter-comments/replies"
        m = _ROUND_NUMBER.search(text)
        if m:
            n = int(m.group(1)) if m.group(1) else _ORDINALS[m.group(2)]
            return "" if n <= 1 else f"round {n}"
    return ""


def _is_document_like(sub: Submission) -> bool:
    """One free-form text (a document, or a corpus row holding a whole submission), not a form's answers."""
    return sub.is_document or {a.question_id for a in sub.answers} == {documents.DOCUMENT_QUESTION_ID}


def _form_key(sub: Submission) -> frozenset[str]:
    return frozenset(re.sub(r"\.\d+$", "", a.question_id) for a in sub.answers)


_SHINGLE_WORDS = 4
DOCUMENT_VERSION_MIN = 0.5  # share of the shorter text's word 4-grams found in the other: a revised version


def _shingles(sub: Submission) -> set[int]:
    words = fold(" ".join(a.answer for a in sub.answers)[:400000]).split()
    return {hash(tuple(words[i:i + _SHINGLE_WORDS])) for i in range(max(1, len(words) - _SHINGLE_WORDS + 1))}


def _why_not_same(a: Submission, b: Submission, shingles: dict[int, set[int]]) -> str:
    """"" when two submissions of the same organisation can be one re-submitted answer, else why not."""
    if round_key(a) != round_key(b):
        return "different round"
    if _is_document_like(a) != _is_document_like(b):
        return "different document type"
    if not _is_document_like(a):
        return "" if _form_key(a) & _form_key(b) else "different form"
    sa = shingles.setdefault(a.order, _shingles(a))
    sb = shingles.setdefault(b.order, _shingles(b))
    shared = len(sa & sb) / max(1, min(len(sa), len(sb)))
    return "" if shared >= DOCUMENT_VERSION_MIN else "different documents"


def _resolve_resubmissions(subs: list[Submission], extras: list[_Extra] | None = None
                           ) -> tuple[list[Submission], list[QuarantineLine]]:
    """Drop exact duplicates (same id, same content: the same submission exported twice), group
    re-submissions (same response id, or same organisation answering the same form in the same round, or the
    same organisation's document in a revised version), mark the latest current, record in `extras` what
    superseded the others and why, keep ids unique."""
    if extras is None:
        extras = [_Extra(s.response_id, []) for s in subs]
    for s in subs:
        s.submitted_at = parse_date(s.submitted_raw, s.day_first)
    kept: list[Submission] = []
    lines: list[QuarantineLine] = []
    first_by_key: dict[tuple[str, tuple[Any, ...]], Submission] = {}
    for s in subs:
        key = (extras[s.order].origin_id, _content_key(s))
        if key in first_by_key:
            other = first_by_key[key]
            lines.append(QuarantineLine(
                s.source_file, s.source_record,
                f"duplicate of response {other.response_id} already read from {other.source_file} "
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
    by_org: dict[str, list[tuple[str, int]]] = {}  # name -> (country, submission) in input order
    shingles: dict[int, set[int]] = {}
    original_ids = [s.response_id for s in kept]
    for i, s in enumerate(kept):
        if s.response_id in by_id:
            union(i, by_id[s.response_id])
        else:
            by_id[s.response_id] = i
        name_key = org_key(s.org_name)
        if name_key:
            # same name in two countries ("Ministry of Communications") is two organisations
            # (a country left empty matches any country)
            ckey = _country_key(s.country_raw)
            same_org = by_org.setdefault(name_key, [])
            for other_country, j in same_org:
                if (not ckey or not other_country or other_country == ckey) and find(i) != find(j):
                    why_not = _why_not_same(kept[j], s, shingles)
                    if why_not:
                        log.info("%s and %s: same organisation, not a re-submission (%s)",
                                 kept[j].response_id, s.response_id, why_not)
                    else:
                        union(i, j)
            same_org.append((ckey, i))
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
        for m in ordered[:-1]:
            extra = extras[kept[m].order]
            extra.superseded_by = kept[current].response_id
            extra.superseded_reason = _superseded_reason(kept[m], kept[current], original_ids[m],
                                                         original_ids[current])
    return kept, lines


def _superseded_reason(old: Submission, new: Submission, old_id: str, new_id: str) -> str:
    """One sentence for the report: what links the two submissions and why the other one counts."""
    if old_id == new_id:
        link = f"same response id {new_id}"
    elif org_key(old.org_name) and org_key(old.org_name) == org_key(new.org_name):
        link = f"same organisation ({collapse_ws(new.org_name)})"
    else:
        link = "same organisation or response id as other submissions of its group"
    if new.submitted_at and old.submitted_at and new.submitted_at != old.submitted_at:
        when = f"submitted later ({new.submitted_at}, this one {old.submitted_at})"
    elif new.submitted_at and not old.submitted_at:
        when = f"dated ({new.submitted_at}; this one has no date)"
    else:
        when = "later in the input order (no later submission date to tell them apart)"
    return f"re-submission: {link}; {new.response_id} was {when} and counts instead"


def _to_frame(subs: list[Submission], q: Questionnaire, extras: list[_Extra] | None = None) -> pd.DataFrame:
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
        extra = extras[s.order] if extras is not None else _Extra(s.response_id, [])
        base = {
            "response_id": s.response_id, "org_name": collapse_ws(s.org_name),
            "org_type": collapse_ws(s.org_type), "stakeholder_group": group, **geo,
            "submitted_at": s.submitted_at, "source_file": s.source_file,
            "source_record": s.source_record, "source_format": s.source_format,
            "is_document": s.is_document, "submission_group": s.group_id or s.response_id,
            "is_current": s.is_current, "superseded_by": extra.superseded_by,
            "superseded_reason": extra.superseded_reason, "ingest_flags": ";".join(dict.fromkeys(extra.flags)),
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
