"""Make untrusted text inert and private in every output file (CSV, XLSX, HTML, Markdown, JSON).

One choke point for all writers: every text value that leaves the pipeline passes `safe_text`, which drops
bidi-override characters (they reorder what a reader sees) and redacts emails and phone numbers, wherever the
text came from (answers, organisation names, question texts, file names, quarantine excerpts). Spreadsheet apps
run a cell as a formula when it starts with = + - @ (and tab/CR, which some apps strip first), so such strings
get a leading apostrophe. HTML and Markdown escape every piece of text they show; bare URLs in Markdown are
shown as code so that no renderer turns respondents' links into live links.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any

import pandas as pd

from pipeline.clean.pii import redact_contacts, redact_emails

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# bidi embeddings/overrides/isolates and the invisible direction marks
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
# characters openpyxl refuses to write (C0 controls except tab, newline, carriage return)
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])")  # emphasis, code, links/images, table pipes, strikethrough
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # intraword underscores are inert
_MD_LEADING = re.compile(r"^([#>+=-])")  # headings, quotes, lists at the start of a block
_MD_ORDERED = re.compile(r"^(\d+)([.)])")  # "1." starts an ordered list: escape the dot
# what GitHub-flavoured Markdown autolinks: a scheme followed by :// or a bare www. host
_URL = re.compile(r"(?i)\b(?:[a-z][a-z0-9+.\-]{1,15}://|www\.)[^\s`<>\"']+")
XLSX_MAX_CHARS = 32_000  # Excel refuses cells longer than 32,767 characters


# identifier columns keep phone-shaped ids intact (they must stay joinable) but never show an email
ID_COLUMNS = frozenset({"id", "answer_id", "response_id", "segment_id", "question_id", "theme_id", "item",
                        "dup_group", "submission_group", "superseded_by"})


def safe_text(value: str, identifier: bool = False) -> str:
    """Text fit for any output: no bidi controls, emails and phone numbers redacted (ids: emails only)."""
    if not value:
        return value
    return _safe_text(value, identifier)


@functools.lru_cache(maxsize=16_384)
def _safe_text(value: str, identifier: bool) -> str:
    """Cached: a report writes the same labels, names and quotes into every table and format (ITU-size batch:
    58,000 calls, most of them repeats)."""
    value = _BIDI.sub("", value)
    return redact_emails(value) if identifier else redact_contacts(value)


def safe_obj(obj: Any) -> Any:
    """`safe_text` applied to every string (keys included) of a JSON-like object, e.g. the run manifest."""
    if isinstance(obj, str):
        return safe_text(obj)
    if isinstance(obj, dict):
        return {safe_obj(k) if isinstance(k, str) else k: safe_obj(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [safe_obj(v) for v in obj]
    return obj


def neutralise_formula(value: Any) -> Any:
    """Prefix text a spreadsheet would run as a formula with an apostrophe (nothing else changes)."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_cell(value: Any, identifier: bool = False) -> Any:
    """A safe string that a spreadsheet will not run as a formula (apostrophe prefix); numbers untouched."""
    return neutralise_formula(safe_text(value, identifier)) if isinstance(value, str) else value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells (and column names) are all safe and formula-free (numbers untouched)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            ident = str(col) in ID_COLUMNS
            out[col] = out[col].map(lambda v, i=ident: neutralise_cell(v, i))
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


def xlsx_text(value: Any) -> Any:
    """Safe, formula-free text without the control characters that corrupt an XLSX, within Excel's limit."""
    if isinstance(value, str):
        text = _ILLEGAL_XLSX.sub("", value)
        if len(text) > XLSX_MAX_CHARS:
            text = text[: XLSX_MAX_CHARS - 3] + "..."
        return neutralise_cell(text)
    return value


def esc(value: Any) -> str:
    """Safe, HTML-escaped text of any value (quotes included) for element text and attribute values."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return html.escape(safe_text(str(value)), quote=True)


def _md_escape(text: str) -> str:
    text = html.escape(text, quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return _MD_UNDERSCORE.sub(r"\\_", text)


def md_cell(value: Any) -> str:
    """Text for a Markdown table cell: safe, one line, HTML and Markdown syntax escaped, URLs as inert code."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    text = safe_text(" ".join(str(value).split()))
    parts: list[str] = []
    pos = 0
    for m in _URL.finditer(text):
        parts.append(_md_escape(text[pos : m.start()]))
        url = m.group(0).replace("|", "%7C")  # a pipe would end the table cell even inside code
        parts.append(f"`{url}`")
        pos = m.end()
    parts.append(_md_escape(text[pos:]))
    out = "".join(parts)
    out = _MD_ORDERED.sub(r"\1\\\2", out)
    return _MD_LEADING.sub(r"\\\1", out)


def md_text(value: Any) -> str:
    """Free text for a Markdown paragraph or quote (escaped like a cell, newlines kept as spaces)."""
    return md_cell(value)
