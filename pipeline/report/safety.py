"""Make untrusted respondent text inert in every output format (spreadsheets, HTML, Markdown).

Spreadsheet apps run a cell as a formula when it starts with = + - @ (and tab/CR, which some apps strip
first), so such strings get a leading apostrophe. HTML and Markdown escape every piece of text they show.
"""

from __future__ import annotations

import html
import re
from typing import Any

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# characters openpyxl refuses to write (C0 controls except tab, newline, carriage return)
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_MD_SPECIAL = re.compile(r"([\\`*\[\]|~])")  # emphasis, code, links/images, table pipes, strikethrough
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # intraword underscores are inert
_MD_LEADING = re.compile(r"^([#>+=-])")  # headings, quotes, lists at the start of a block
_MD_ORDERED = re.compile(r"^(\d+)([.)])")  # "1." starts an ordered list: escape the dot


def neutralise_cell(value: Any) -> Any:
    """Prefix strings that a spreadsheet would run as a formula with an apostrophe; leave numbers alone."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` whose text cells are all formula-safe (numbers untouched)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise_cell)
    out.columns = [neutralise_cell(str(c)) for c in out.columns]
    return out


XLSX_MAX_CHARS = 32_000  # Excel refuses cells longer than 32,767 characters


def xlsx_text(value: Any) -> Any:
    """Formula-safe text without the control characters that corrupt an XLSX file, within Excel's cell limit."""
    if isinstance(value, str):
        text = _ILLEGAL_XLSX.sub("", value)
        if len(text) > XLSX_MAX_CHARS:
            text = text[: XLSX_MAX_CHARS - 3] + "..."
        return neutralise_cell(text)
    return value


def esc(value: Any) -> str:
    """HTML-escape any value (quotes included) for element text and attribute values."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return html.escape(str(value), quote=True)


def md_cell(value: Any) -> str:
    """Text for a Markdown table cell: HTML-escaped, Markdown syntax escaped, one line."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    text = " ".join(str(value).split())
    text = html.escape(text, quote=False)
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_UNDERSCORE.sub(r"\\_", text)
    text = _MD_ORDERED.sub(r"\1\\\2", text)
    return _MD_LEADING.sub(r"\\\1", text)


def md_text(value: Any) -> str:
    """Free text for a Markdown paragraph or quote (escaped like a cell, newlines kept as spaces)."""
    return md_cell(value)
