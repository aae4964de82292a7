"""Reading CSV/XLSX/Parquet files into string DataFrames, with errors an analyst can read."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pandas as pd

from pipeline.ingest.textutil import DecodeError, decode_bytes


class TableError(ValueError):
    """A table file that cannot be read; the message is the quarantine reason."""


def _clean_frame(df: pd.DataFrame) -> pd.DataFrame:
    df = df.copy()
    df.columns = [str(c).strip() for c in df.columns]
    df = df.astype(object).where(pd.notna(df), "")
    df = df.map(lambda v: v if isinstance(v, str) else _cell_to_str(v))
    return df.astype(str)


def _cell_to_str(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S") if (value.hour or value.minute or value.second) \
            else value.strftime("%Y-%m-%d")
    return str(value)


def read_csv_text(data: bytes, name: str) -> pd.DataFrame:
    """Decode (UTF-8 / CP1252 / Latin-1), sniff the delimiter and parse every cell as a string."""
    try:
        text, _ = decode_bytes(data)
    except DecodeError as exc:
        raise TableError(str(exc)) from exc
    if not text.strip():
        raise TableError("file is empty")
    sample = text[:20000]
    delimiter = ","
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.split("\n", 1)[0]
        counts = {d: first.count(d) for d in ",;\t|"}
        delimiter = max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","
    if name.lower().endswith(".tsv"):
        delimiter = "\t"
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter,
                         skip_blank_lines=True)
    except (pd.errors.ParserError, csv.Error, ValueError) as exc:
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, sep=delimiter,
                             engine="python", on_bad_lines="skip")
        except Exception as exc2:  # noqa: BLE001 - any parser failure is a quarantine reason
            raise TableError(f"CSV file cannot be parsed: {exc2}") from exc
    return _clean_frame(df)


def read_tables(path: Path) -> list[tuple[str, pd.DataFrame]]:
    """(sheet name, frame) pairs of a table file; CSV and Parquet give one unnamed sheet."""
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        try:
            return [("", _clean_frame(pd.read_parquet(path)))]
        except Exception as exc:  # noqa: BLE001
            raise TableError(f"Parquet file is corrupt: {exc}") from exc
    if suffix in {".xlsx", ".xlsm"}:
        if not zipfile.is_zipfile(path):
            raise TableError("XLSX file is corrupt: not a valid Excel (zip) file")
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=object, engine="openpyxl",
                                   keep_default_na=False, na_values=[])
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many types on broken files
            raise TableError(f"XLSX file is corrupt: {type(exc).__name__}: {exc}") from exc
        return [(str(name), _clean_frame(df)) for name, df in sheets.items()]
    if suffix == ".xls":
        raise TableError("old Excel .xls format is not supported: save the file as .xlsx or .csv")
    return [("", read_csv_text(path.read_bytes(), path.name))]
