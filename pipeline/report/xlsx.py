"""The report workbook: an index sheet, then one sheet per table made for people (frozen header, widths,
percentages, autofilter); every text cell is formula-neutralised."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from pipeline.io import atomic_path
from pipeline.report.content import Report, Table, display_name, is_share
from pipeline.report.safety import xlsx_text

HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
HEADER_FONT = Font(bold=True, color="FFFFFF")
LINK_FILL = PatternFill("solid", fgColor="FCE4B6")
MAX_WIDTH = 60
WRAP_COLUMNS = {"quote", "excerpt", "description", "question_text", "keywords", "note", "organisations"}


def sheet_name(table: Table, used: set[str]) -> str:
    """Excel sheet names: at most 31 characters, no []:*?/\\, unique."""
    base = "".join(ch for ch in table.title if ch not in "[]:*?/\\")[:31]
    name, i = base, 2
    while name.lower() in used:
        suffix = f" {i}"
        name, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(name.lower())
    return name


SMALL_FONT = Font(color="A0A0A0", italic=True)


def _write_table(ws: Worksheet, df: pd.DataFrame, highlight: pd.DataFrame | None = None,
                 small: pd.DataFrame | None = None) -> None:
    """One sheet; `highlight` cells filled (matrix links), `small` cells greyed (shares of too-small groups)."""
    columns = list(df.columns)
    ws.append([xlsx_text(display_name(str(c))) for c in columns])
    for cell in ws[1]:
        cell.fill = HEADER_FILL
        cell.font = HEADER_FONT
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    for row in df.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    for j, col in enumerate(columns, start=1):
        letter = get_column_letter(j)
        values = [display_name(str(col))] + [str(v) for v in df[col].head(500).tolist()]
        width = min(MAX_WIDTH, max(8, max(len(v) for v in values) + 2))
        if col in WRAP_COLUMNS:
            width = MAX_WIDTH if col in {"quote", "excerpt", "description", "question_text"} else min(width, 40)
        ws.column_dimensions[letter].width = width
        if is_share(str(col)):
            for cell in ws[letter][1:]:
                cell.number_format = "0.0%"
        elif pd.api.types.is_integer_dtype(df[col]):
            for cell in ws[letter][1:]:
                cell.number_format = "#,##0"
        elif pd.api.types.is_float_dtype(df[col]):
            for cell in ws[letter][1:]:
                cell.number_format = "0.000"
        if col in WRAP_COLUMNS:
            for cell in ws[letter][1:]:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    if highlight is not None and len(highlight) == len(df):
        for j, col in enumerate(columns, start=1):
            if col not in highlight.columns or col == columns[0]:
                continue
            for i, flag in enumerate(highlight[col].tolist(), start=2):
                if bool(flag):
                    ws.cell(row=i, column=j).fill = LINK_FILL
    if small is not None and len(small) == len(df):
        for j, col in enumerate(columns, start=1):
            if col not in small.columns:
                continue
            for i, flag in enumerate(small[col].tolist(), start=2):
                if bool(flag):
                    ws.cell(row=i, column=j).font = SMALL_FONT
    ws.freeze_panes = "B2" if columns and columns[0] in {"question_id", "theme_id", "action_line", "sdg"} else "A2"
    if len(df.columns):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{max(len(df) + 1, 1)}"


def _cell(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and pd.isna(value):
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if hasattr(value, "item") and not isinstance(value, str):  # numpy scalars
        value = value.item()  # type: ignore[union-attr]
        if isinstance(value, bool):
            return "yes" if value else "no"
    if isinstance(value, int | float):  # numbers stay numbers: sorting, sums and formats work
        return None if isinstance(value, float) and pd.isna(value) else value
    if isinstance(value, list | tuple):
        return xlsx_text("; ".join(map(str, value)))
    return xlsx_text(value) if isinstance(value, str) else xlsx_text(str(value))


def write_workbook(report: Report, path: Path) -> Path:
    """Write `report.xlsx` atomically: index sheet first, then one sheet per table."""
    wb = Workbook()
    index = wb.active
    assert index is not None
    index.title = "Index"
    used = {"index"}
    names = [sheet_name(t, used) for t in report.tables]
    index.append([xlsx_text(f"WSIS themes report: {report.batch_name}")])
    index["A1"].font = Font(bold=True, size=14)
    index.append([xlsx_text(
        "One sheet per table, findings first. Counts are of current submissions (a re-submission replaces the "
        "earlier one); shares are of answering respondents, shown next to them; grey shares are of groups with "
        f"fewer than {report.min_group_size} answering respondents. Highlighted cells in 'Action Line x SDG' are "
        "linked in the WSIS-SDG matrix.")])
    index.append([])
    index.append(["Sheet", "Rows", "What it shows"])
    for cell in index[4]:
        cell.fill = HEADER_FILL
        cell.font = HEADER_FONT
    for table, name in zip(report.tables, names, strict=True):
        index.append([xlsx_text(name), len(table.df), xlsx_text(table.description)])
        link = index.cell(row=index.max_row, column=1)
        link.hyperlink = f"#'{name}'!A1"
        link.font = Font(color="0563C1", underline="single")
    index.column_dimensions["A"].width = 30
    index.column_dimensions["B"].width = 8
    index.column_dimensions["C"].width = 110
    for row in index.iter_rows(min_row=5):
        row[2].alignment = Alignment(wrap_text=True, vertical="top")
    index.freeze_panes = "A5"
    for table, name in zip(report.tables, names, strict=True):
        ws = wb.create_sheet(name)
        highlight = report.matrix_mask if table.name == "action_line_x_sdg" else None
        _write_table(ws, table.df, highlight, report.small_groups.get(table.name))
    with atomic_path(path) as tmp:
        wb.save(tmp)
    return Path(path)
