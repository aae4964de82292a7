"""Tabular submissions: wide exports (one row per submission, one column per question), the canonical
long format (`response_id, question_id, answer`), and corpus column mappings (YAML)."""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from pipeline import config
from pipeline.errors import InputError
from pipeline.ingest.questionnaire import Item, Questionnaire
from pipeline.ingest.records import Answer, QuarantineLine, Submission
from pipeline.ingest.tables import BAD_ROWS, ROW_NUMBERS
from pipeline.ingest.textutil import fold, prefix_similarity, strip_markdown_line

log = logging.getLogger(__name__)

MAPPING_DIR = config.RESOURCES_DIR / "corpus_mappings"
ID_HEADERS = {
    "response id", "responseid", "response", "response no", "response number", "response nr", "id",
    "respondent id", "respondent", "submission id", "submission", "submission no", "submission number",
    "record id", "entry id", "ref", "reference", "response ref", "response reference", "response_id",
}
DATE_HEADERS = {
    "submitted", "submitted at", "submitted on", "submission date", "date submitted", "date",
    "timestamp", "time submitted", "created", "created at", "completed", "completed at", "date time",
    "datetime", "response date", "date of submission", "submitted date", "end date", "submitted_at",
}
LONG_REQUIRED = ("response_id", "question_id", "answer")
LONG_OPTIONAL = ("question_text", "org_name", "org_type", "country", "submitted_at")
_HEADER_NUM = re.compile(r"^(?:q(?:uestion)?\s*)?(\d{1,3})(?:\s*[.):\-_\s]\s*(.*))?$", re.IGNORECASE)


@dataclass
class ColumnPlan:
    """Which column holds what in a wide table."""

    id_col: str | None = None
    date_col: str | None = None
    fields: dict[str, str] = field(default_factory=dict)      # role -> column
    questions: dict[str, str] = field(default_factory=dict)   # question id -> column
    ignored: list[str] = field(default_factory=list)


def _header_parts(header: str) -> tuple[int | None, str]:
    """(number, text) of a column header; a bare number ("12", as in vote matrices) is no question."""
    clean = strip_markdown_line(header)
    m = _HEADER_NUM.match(clean)
    if m:
        text = (m.group(2) or "").strip()
        if not text and not re.match(r"^q", clean, re.IGNORECASE):
            return None, ""
        return int(m.group(1)), text
    return None, clean


def _header_score(item: Item, number: int | None, text: str) -> float:
    text = re.sub(r"(\.\.\.|\u2026)\s*$", "", text).strip()
    sim = item.label_similarity(text) if text else 0.0
    psim = max(prefix_similarity(text, label) for label in item.labels) if len(text) >= 12 else 0.0
    best = max(sim, psim)
    if number is not None and item.number is not None:
        if number == item.number:
            return best + 0.5 if (not text or best >= 0.3) else 0.0
        return best if best >= 0.9 else 0.0
    threshold = 0.85 if item.kind == "field" else 0.7
    return best if best >= threshold else 0.0


def plan_wide(columns: list[str], q: Questionnaire) -> ColumnPlan:
    """Match column headers to the form's items (by number and/or text), plus id and date columns.

    Fuzzy matching costs about a second per long header, and a batch's files share their header, so plans
    are cached per (header, questionnaire)."""
    return copy.deepcopy(_plan_wide(tuple(str(c) for c in columns), q))


@lru_cache(maxsize=256)
def _plan_wide(columns: tuple[str, ...], q: Questionnaire) -> ColumnPlan:
    plan = ColumnPlan()
    scores: list[tuple[float, str, Item]] = []
    for col in columns:
        key = fold(col)
        if plan.id_col is None and (key in ID_HEADERS or key.replace(" ", "_") in ID_HEADERS):
            plan.id_col = col
            continue
        if plan.date_col is None and (key in DATE_HEADERS or key.replace(" ", "_") in DATE_HEADERS):
            plan.date_col = col
            continue
        number, text = _header_parts(col)
        found = False
        for item in q.items:
            s = _header_score(item, number, text)
            if s > 0:
                scores.append((s, col, item))
                found = True
        if not found:
            words = set(key.split())
            if plan.id_col is None and "id" in words and words & {"response", "submission", "respondent"}:
                plan.id_col = col
            elif plan.date_col is None and words & {"date", "submitted", "timestamp"} and len(words) <= 4:
                plan.date_col = col
    used_cols: set[str] = set()
    used_items: set[str] = set()
    for _score, col, item in sorted(scores, key=lambda t: -t[0]):
        key = f"{item.kind}:{item.id}"
        if col in used_cols or key in used_items:
            continue
        used_cols.add(col)
        used_items.add(key)
        if item.kind == "field":
            plan.fields[item.role] = col
        else:
            plan.questions[item.id] = col
    plan.ignored = [c for c in columns if c not in used_cols and c not in {plan.id_col, plan.date_col}]
    return plan


def row_numbers(df: pd.DataFrame, first_row: int = 2) -> list[int]:
    """Spreadsheet row number of each row of `df`: as the CSV reader recorded them (rows it could not read leave
    gaps), else counted from `first_row` (the header is row 1). A frame cut below a title row keeps the reader's
    numbers of its last rows."""
    known = df.attrs.get(ROW_NUMBERS)
    if known is not None and len(known) >= len(df):
        return [int(n) for n in known[len(known) - len(df):]]
    return list(range(first_row, first_row + len(df)))


def bad_row_lines(df: pd.DataFrame, source_file: str, where: str = "") -> list[QuarantineLine]:
    """Quarantine lines for the rows the table reader could not read (row number and reason each)."""
    return [QuarantineLine(source_file, where + record, where + reason, text)
            for record, reason, text in df.attrs.get(BAD_ROWS, ())]


def _norm_id(value: str) -> str:
    value = value.strip()
    return value[:-2] if re.fullmatch(r"\d+\.0", value) else value


def find_header_row(df: pd.DataFrame, q: Questionnaire, max_rows: int = 10) -> int | None:
    """Index of a data row that is the real header (title rows above the header in some exports)."""
    for r in range(min(max_rows, len(df))):
        values = [str(v) for v in df.iloc[r].tolist()]
        if plan_wide(values, q).questions:
            return r
    return None


def read_wide(df: pd.DataFrame, q: Questionnaire, source_file: str, stem: str, day_first: bool,
              sheet: str = "", header_row: int = 1
              ) -> tuple[list[Submission], list[QuarantineLine]] | None:
    """Submissions of a wide export, or None when no question column is recognised.

    `header_row` is the spreadsheet row number of the header (for the row numbers shown to analysts).
    Columns that match nothing are logged (they are not records, so they do not go to quarantine).
    """
    plan = plan_wide(list(df.columns), q)
    if not plan.questions:
        return None
    where = f"sheet {sheet}, " if sheet else ""
    quarantine = bad_row_lines(df, source_file, where)
    if plan.ignored:
        log.warning("%s: columns not in the questionnaire were not read: %s", source_file,
                    "; ".join(plan.ignored)[:300])
    subs: list[Submission] = []
    records = df.to_dict("records")
    for row_no, row in zip(row_numbers(df, header_row + 1), records, strict=True):
        record = f"{where}row {row_no}"
        rid = _norm_id(str(row.get(plan.id_col, ""))) if plan.id_col else ""
        sub = Submission(
            response_id=rid or f"{stem}-{row_no}", source_file=source_file, source_record=record,
            source_format="tabular_wide",
            org_name=strip_markdown_line(str(row.get(plan.fields.get("org_name", ""), ""))),
            org_type=strip_markdown_line(str(row.get(plan.fields.get("org_type", ""), ""))),
            country_raw=strip_markdown_line(str(row.get(plan.fields.get("country", ""), ""))),
            submitted_raw=str(row.get(plan.date_col, "")) if plan.date_col else "",
            day_first=day_first,
        )
        for item in q.questions:
            col = plan.questions.get(item.id)
            value = str(row.get(col, "")) if col else ""
            sub.answers.append(Answer(item.id, _clean_cell(value), item.number, item.text))
        if not sub.has_content():
            quarantine.append(QuarantineLine(
                source_file, record, f"{record}: submission has no organisation name and no answers",
                _row_excerpt(row)))
            continue
        subs.append(sub)
    return subs, quarantine


def _row_excerpt(row: dict[Any, Any]) -> str:
    """The non-empty cells of a quarantined row, so an analyst can find it (and its id) in the file."""
    return " | ".join(str(v) for v in row.values() if str(v).strip())


def _clean_cell(value: str) -> str:
    return value.replace("\r\n", "\n").replace("\r", "\n").strip()


# ---- long format and corpus mappings ------------------------------------------------------------
@dataclass
class Mapping:
    """How a corpus's columns map to the canonical fields (see resources/corpus_mappings/README.md)."""

    name: str
    layout: str = "long"                                     # long | wide
    signature: list[str] = field(default_factory=list)       # columns that identify the corpus
    columns: dict[str, str] = field(default_factory=dict)    # canonical -> column or "{template}"
    constants: dict[str, str] = field(default_factory=dict)  # canonical -> fixed value
    questions: list[dict[str, str]] = field(default_factory=list)  # wide: column, id, text
    question_lookup: dict[str, str] = field(default_factory=dict)  # file, key, text
    day_first: bool | None = None
    description: str = ""
    source: str = ""


def mapping_from_dict(raw: dict[str, Any], source: str = "") -> Mapping:
    if not isinstance(raw, dict) or not raw.get("columns"):
        raise InputError(source, None, "column mapping needs a `columns` section")
    layout = str(raw.get("layout", "long"))
    if layout not in {"long", "wide"}:
        raise InputError(source, None, "mapping layout must be `long` or `wide`")
    cols = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
    if layout == "long":
        missing = [k for k in ("response_id", "question_id", "answer") if k not in cols]
        if missing:
            raise InputError(source, None, f"long mapping lacks columns for: {', '.join(missing)}")
    elif not raw.get("questions"):
        raise InputError(source, None, "wide mapping needs a `questions` list")
    day_first = raw.get("day_first")
    return Mapping(
        name=str(raw.get("name", Path(source).stem)), layout=layout,
        signature=[str(s) for s in raw.get("signature", []) or []], columns=cols,
        constants={str(k): str(v) for k, v in (raw.get("constants") or {}).items()},
        questions=[{str(k): str(v) for k, v in q.items()} for q in raw.get("questions", []) or []],
        question_lookup={str(k): str(v) for k, v in (raw.get("question_lookup") or {}).items()},
        day_first=None if day_first is None else bool(day_first),
        description=str(raw.get("description", "")), source=source,
    )


def load_mapping(name_or_path: str) -> Mapping:
    """A mapping by name (resources/corpus_mappings/NAME.yaml) or by path to a YAML file."""
    cand = Path(name_or_path)
    if not cand.is_file():
        cand = MAPPING_DIR / f"{name_or_path}.yaml"
    if not cand.is_file():
        known = ", ".join(sorted(p.stem for p in MAPPING_DIR.glob("*.yaml")))
        raise InputError(name_or_path, None, f"unknown column mapping (known: {known})")
    try:
        raw = yaml.safe_load(cand.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(str(cand), None, f"mapping is not valid YAML: {exc}") from exc
    return mapping_from_dict(raw, str(cand))


def builtin_mappings() -> list[Mapping]:
    return [load_mapping(str(p)) for p in sorted(MAPPING_DIR.glob("*.yaml"))]


def detect_mapping(columns: list[str], mappings: list[Mapping]) -> Mapping | None:
    """The first built-in mapping whose signature columns are all present."""
    present = {c.strip() for c in columns}
    for m in mappings:
        if m.signature and all(s in present for s in m.signature):
            return m
    return None


def canonical_long_mapping(columns: list[str]) -> Mapping | None:
    """The canonical long format of DESIGN.md (header names matched case/punctuation-insensitively)."""
    by_key = {fold(c).replace(" ", "_"): c for c in columns}
    if not all(k in by_key for k in LONG_REQUIRED):
        return None
    cols = {k: by_key[k] for k in (*LONG_REQUIRED, *LONG_OPTIONAL) if k in by_key}
    return Mapping(name="canonical long", layout="long", columns=cols)


_TEMPLATE = re.compile(r"\{([^{}]+)\}")


def _getter(spec: str, columns: list[str]) -> Any:
    """A function row -> value for a column name, a "{col}-{col}" template or a literal "=value";
    raises KeyError on unknown columns."""
    if spec.startswith("="):
        return lambda row: spec[1:]
    if "{" in spec:
        names = _TEMPLATE.findall(spec)
        missing = [n for n in names if n not in columns]
        if missing:
            raise KeyError(", ".join(missing))
        return lambda row: _TEMPLATE.sub(lambda m: str(row.get(m.group(1), "")).strip(), spec)
    if spec not in columns:
        raise KeyError(spec)
    return lambda row: str(row.get(spec, ""))


def _lookup_table(mapping: Mapping, base_dir: Path) -> dict[str, str]:
    spec = mapping.question_lookup
    if not spec:
        return {}
    path = base_dir / spec.get("file", "")
    if not path.is_file():
        log.warning("question lookup %s not found; question texts left empty", path)
        return {}
    from pipeline.ingest.tables import read_tables

    df = read_tables(path)[0][1]
    key, text = spec.get("key", ""), spec.get("text", "")
    if key not in df.columns or text not in df.columns:
        log.warning("question lookup %s lacks columns %s/%s", path, key, text)
        return {}
    return dict(zip(df[key].astype(str), df[text].astype(str), strict=False))


def read_mapped(df: pd.DataFrame, mapping: Mapping, q: Questionnaire, source_file: str, stem: str,
                base_dir: Path, day_first: bool, sheet: str = ""
                ) -> tuple[list[Submission], list[QuarantineLine]]:
    """Submissions of a table read through a column mapping (long or wide)."""
    columns = list(df.columns)
    where = f"sheet {sheet}, " if sheet else ""
    getters: dict[str, Any] = {}
    try:
        for canon, spec in mapping.columns.items():
            getters[canon] = _getter(spec, columns)
    except KeyError as exc:
        return [], [QuarantineLine(source_file, f"{where}header",
                                   f"mapping '{mapping.name}' names columns the file lacks: {exc}",
                                   "; ".join(columns)[:200])]
    lookup = _lookup_table(mapping, base_dir)
    dfirst = day_first if mapping.day_first is None else mapping.day_first
    subs: dict[str, Submission] = {}
    wide_subs: list[Submission] = []
    quarantine = bad_row_lines(df, source_file, where)
    seen_q: dict[str, dict[str, int]] = {}
    fmt = "long" if mapping.layout == "long" else "tabular_wide"

    def meta(row: dict[Any, Any], name: str) -> str:
        if name in getters:
            return strip_markdown_line(str(getters[name](row)))
        return mapping.constants.get(name, "")

    for row_no, row in zip(row_numbers(df), df.to_dict("records"), strict=True):
        record = f"{where}row {row_no}"
        rid = _norm_id(str(getters["response_id"](row))) if "response_id" in getters else ""
        if mapping.layout == "wide" and not rid:
            rid = f"{stem}-{row_no}"
        if not rid:
            quarantine.append(QuarantineLine(source_file, record, f"{record}: response id is empty",
                                             _row_excerpt(row)))
            continue
        sub = subs.get(rid) if mapping.layout == "long" else None
        if sub is None:
            sub = Submission(
                response_id=rid, source_file=source_file, source_record=record, source_format=fmt,
                org_name=meta(row, "org_name"), org_type=meta(row, "org_type"),
                country_raw=meta(row, "country"), submitted_raw=meta(row, "submitted_at"),
                day_first=dfirst,
            )
            if mapping.layout == "long":
                subs[rid] = sub
            else:
                wide_subs.append(sub)
        if mapping.layout == "wide":
            for qspec in mapping.questions:
                col = qspec.get("column", "")
                value = _clean_cell(str(row.get(col, ""))) if col in columns else ""
                sub.answers.append(Answer(qspec.get("id", col), value, None, qspec.get("text", "")))
            continue
        qid = str(getters["question_id"](row)).strip()
        if not qid:
            quarantine.append(QuarantineLine(source_file, record, f"{record}: question id is empty",
                                             _row_excerpt(row)))
            continue
        counts = seen_q.setdefault(rid, {})
        counts[qid] = counts.get(qid, 0) + 1
        unique_qid = qid if counts[qid] == 1 else f"{qid}.{counts[qid]}"
        qtext = str(getters["question_text"](row)) if "question_text" in getters else ""
        if not qtext:
            qtext = lookup.get(qid, "")
            if not qtext and (item := q.question_by_id(qid)) is not None:
                qtext = item.text
        sub.answers.append(Answer(unique_qid, _clean_cell(str(getters["answer"](row))), None,
                                  qtext.strip()))
    return list(subs.values()) + wide_subs, quarantine
