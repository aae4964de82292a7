"""Reading CSV/XLSX/Parquet files into string DataFrames, with errors an analyst can read.

Nothing is dropped silently: a CSV row that cannot be read (an unterminated quote, more fields than the header)
is kept out of the frame and listed in `frame.attrs["bad_rows"]` with its row number and reason, and
`frame.attrs["row_numbers"]` gives the spreadsheet row number of every row that was kept (the readers in
`tabular` turn both into record labels and quarantine lines). XLSX files are checked against size bounds
(`TableLimits`) before openpyxl parses them, so a decompression bomb is refused instead of filling memory.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import re
import sys
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from xml.parsers import expat

import pandas as pd

from pipeline.ingest.textutil import DecodeError, decode_bytes, normalise_newlines

log = logging.getLogger(__name__)

BAD_ROWS = "bad_rows"        # frame.attrs key: list of (record, reason, excerpt) of rows that were not read
ROW_NUMBERS = "row_numbers"  # frame.attrs key: spreadsheet row number of each row of the frame
_END = "\x00wsis-end-of-csv\x00"  # sentinel line (decode_bytes removes NUL bytes, so no input contains it)
_MAX_TITLE_ROWS = 10
_RESUME_WINDOW = 20  # lines after a damaged row searched for the next well-formed row
_RESUME_SPAN = 50    # lines one candidate row may span


class TableError(ValueError):
    """A table file that cannot be read; the message is the quarantine reason."""


@dataclass(frozen=True)
class TableLimits:
    """Bounds an XLSX file must stay within before it is parsed (`ingest:` section of params.yaml).

    `max_file_mb` bounds only the size on disk; a zip can unpack to thousands of times that, and one shared
    string can fill any number of cells, so the unpacked size, the compression ratio, the number of cells, the
    longest cell and the total cell text (shared strings counted once per cell that uses them) are bounded too.
    """

    max_unpacked_mb: float = 1000.0       # sum of the uncompressed sizes of the zip members
    max_compression_ratio: float = 100.0  # uncompressed / compressed size ...
    ratio_min_unpacked_mb: float = 10.0   # ... checked once the file unpacks to this much (tiny files are harmless)
    max_cells: int = 5_000_000            # cells with a value, all sheets together
    max_cell_chars: int = 100_000         # longest cell text (Excel itself stops at 32,767 characters)
    max_text_mb: float = 500.0            # all cell text, in millions of characters

    @classmethod
    def from_params(cls, section: Mapping[str, Any] | None) -> TableLimits:
        """The bounds of an `ingest:` parameter section (missing keys keep their defaults)."""
        section = section or {}
        values: dict[str, Any] = {}
        for f in fields(cls):
            if section.get(f.name) is not None:
                values[f.name] = int(section[f.name]) if f.type == "int" else float(section[f.name])
        return cls(**values)


# ---- frames ----------------------------------------------------------------------------------------------
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


def _column_names(header: list[str]) -> list[str]:
    """Header cells as unique column names, as pandas names them: "Unnamed: 3" for an empty cell, "x.1" for a
    repeated one."""
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header):
        name = raw if raw.strip() else f"Unnamed: {i}"
        base, n = name, 0
        while name in seen:
            n += 1
            name = f"{base}.{n}"
        seen.add(name)
        names.append(name)
    return names


# ---- CSV -------------------------------------------------------------------------------------------------
def _sniff_delimiter(text: str, name: str) -> str:
    if name.lower().endswith(".tsv"):
        return "\t"
    sample = text[:20000]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        first = sample.split("\n", 1)[0]
        counts = {d: first.count(d) for d in ",;\t|"}
        return max(counts, key=lambda d: counts[d]) if max(counts.values()) else ","


@dataclass
class _Record:
    fields: list[str]
    first: int  # physical line numbers (1-based) the record spans
    last: int
    unterminated: bool = False


def _records(lines: list[str], start: int, delimiter: str, stop: int | None = None) -> Iterator[_Record]:
    """Logical CSV records from physical line index `start` on (to `stop`), with the lines each one spans. A
    quoted field still open at the end is flagged (the sentinel line ends up inside it)."""
    reader = csv.reader(itertools.chain(itertools.islice(lines, start, stop), [_END + "\n"]),
                        delimiter=delimiter)
    done = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error:
            # the csv module gave up on this record: treat its first line as unreadable
            yield _Record([], start + done + 1, start + reader.line_num, unterminated=True)
            return
        first, last = start + done + 1, start + reader.line_num
        done = reader.line_num
        if row == [_END]:
            return
        if row and _END in row[-1]:
            yield _Record(row, first, last - 1, unterminated=True)
            return
        yield _Record(row, first, last)


def _strictly_valid(lines: list[str], rec: _Record, delimiter: str) -> bool:
    """Whether the record's quoting is well formed. A stray quote that is 'closed' by the opening quote of a
    later field (so a multi-line record swallows rows), or a quoted field that closes and goes on (`"a"b`), is
    followed by text, which strict CSV refuses."""
    chunk = "".join(lines[rec.first - 1:rec.last])
    if '"' not in chunk:
        return True
    try:
        rows = list(csv.reader(io.StringIO(chunk), delimiter=delimiter, strict=True))
    except csv.Error:
        return False
    return len(rows) == 1


def _good_start(lines: list[str], line: int, delimiter: str, width: int) -> bool:
    """Whether a row of at least `width` fields (or the end of the file) starts on `line` (1-based): where
    reading resumes after a damaged row, so the rest of a damaged row is not misread as rows."""
    for rec in _records(lines, line - 1, delimiter, stop=line - 1 + _RESUME_SPAN):
        if rec.unterminated:
            return False
        if len(rec.fields) <= 1 and not "".join(rec.fields).strip():
            continue  # blank line
        # the tail of a damaged row (after a line break in one of its fields) has fewer fields than the header;
        # a row has them all, even a row that is damaged itself (it is then read or quarantined on its own)
        return len(rec.fields) >= width
    return True


def _resume_line(lines: list[str], rec: _Record, delimiter: str, width: int) -> int:
    """The first line after the start of the damaged record `rec` where a row starts (within a few lines: a
    damaged row may hold line breaks of its own), else the line after the record (the next line when the record
    runs to the end)."""
    stop = min(rec.first + _RESUME_WINDOW, len(lines) + 1)
    for line in range(rec.first + 1, stop + 1):
        if _good_start(lines, line, delimiter, width):
            return line
    return rec.first + 1 if rec.unterminated else rec.last + 1


def parse_csv(text: str, delimiter: str) -> pd.DataFrame:
    """A frame of every well-formed row; unreadable rows go to `attrs["bad_rows"]` with their row number.

    Rows are numbered as a spreadsheet shows them (the header is row 1 when it is the first line, blank lines do
    not count); reasons also give the physical line. A row with more non-empty fields than the header is not
    read (its fields cannot be placed), a shorter row is padded. A row whose quoting is broken (a quoted field
    that never closes, that only 'closes' at a later field's quote, or that goes on after its closing quote) is
    not read, and reading resumes at the next line that starts a row, so neither the following rows nor the
    remaining lines of the broken row are misread.
    Title lines above the header (one non-empty cell, followed by a wider line) are skipped.
    """
    lines = normalise_newlines(text).split("\n")
    lines = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
    header: list[str] | None = None
    header_row = 0
    rows: list[list[str]] = []
    numbers: list[int] = []
    bad: list[tuple[str, str, str]] = []
    row_no = 0
    start: int | None = 0
    budget = 20 * len(lines) + 1000  # re-reads after damaged lines; beyond this the file is hopeless

    def reject(rec: _Record, why: str, last: int | None = None) -> None:
        last = rec.last if last is None else last
        where = f"line {rec.first}" if rec.first == last else f"lines {rec.first}-{last}"
        text = "".join(lines[rec.first - 1:last]).rstrip("\n")
        bad.append((f"row {row_no}", f"row {row_no} ({where}): {why}", text))

    limit = csv.field_size_limit()
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long answers are legitimate; max_file_mb bounds them
    try:
        while start is not None:
            resume: int | None = None
            for rec in _records(lines, start, delimiter):
                budget -= rec.last - rec.first + 1
                if budget < 0:
                    raise TableError(f"CSV file cannot be parsed: quoting is broken beyond repair from line "
                                     f"{rec.first} on")
                multi = rec.last > rec.first
                if not rec.unterminated and len(rec.fields) <= 1 and not "".join(rec.fields).strip():
                    continue  # a blank line is no record
                if header is None:
                    if rec.unterminated or (multi and not _strictly_valid(lines, rec, delimiter)):
                        raise TableError(f"CSV header (line {rec.first}) has an unterminated quote")
                    header, header_row = rec.fields, row_no + 1
                    row_no += 1
                    continue
                row_no += 1
                if not rows and not bad and row_no - header_row < _MAX_TITLE_ROWS and not rec.unterminated \
                        and len(rec.fields) > len(header) and sum(bool(h.strip()) for h in header) <= 1:
                    # the "header" was a title line above the real header
                    log.info("title line above the CSV header skipped: %s", header[0][:80])
                    header, header_row = rec.fields, row_no
                    continue
                broken = ""
                if rec.unterminated:
                    broken = "unterminated quote: a quoted field opened here never closes"
                elif not _strictly_valid(lines, rec, delimiter):
                    broken = (f"unbalanced quote: a quoted field opened here runs on to line {rec.last}" if multi
                              else "misplaced quote: a quoted field is followed by more text before the delimiter")
                if broken:
                    line = _resume_line(lines, rec, delimiter, len(header))
                    reject(rec, f"{broken}; reading resumes on line {line}", last=line - 1)
                    resume = line - 1
                    break
                values = rec.fields
                if len(values) > len(header):
                    if any(v.strip() for v in values[len(header):]):
                        reject(rec, f"{len(values)} fields where the header has {len(header)}: the extra "
                                    "fields cannot be placed in a column")
                        continue
                    values = values[:len(header)]
                elif len(values) < len(header):
                    values = values + [""] * (len(header) - len(values))
                rows.append(values)
                numbers.append(row_no)
            start = resume
    finally:
        csv.field_size_limit(limit)
    if header is None:
        raise TableError("file is empty")
    names = [c.strip() for c in _column_names(header)]
    # every cell is already a string, so the frame needs none of _clean_frame's conversions
    df = pd.DataFrame(rows, columns=names, dtype=object) if rows else pd.DataFrame(columns=names, dtype=object)
    df.attrs[ROW_NUMBERS] = tuple(numbers)  # a tuple: pandas deep-copies and compares attrs
    df.attrs[BAD_ROWS] = bad
    return df


def read_csv_text(data: bytes, name: str) -> pd.DataFrame:
    """Decode (UTF-8 / CP1252 / Latin-1), sniff the delimiter and parse every cell as a string."""
    try:
        text, _ = decode_bytes(data)
    except DecodeError as exc:
        raise TableError(str(exc)) from exc
    if not text.strip():
        raise TableError("file is empty")
    return parse_csv(text, _sniff_delimiter(text, name))


# ---- XLSX bounds -----------------------------------------------------------------------------------------
def xlsx_unpacked_bytes(path: Path) -> int:
    """Sum of the uncompressed sizes the zip directory declares (zipfile never reads past a declared size)."""
    with zipfile.ZipFile(path) as zf:
        return sum(info.file_size for info in zf.infolist())


class _CellScan:
    """Streams the XML of shared strings and worksheets through expat, keeping only counts and lengths, so a
    huge file is measured without being held in memory."""

    def __init__(self, limits: TableLimits) -> None:
        self.limits = limits
        self.shared: list[int] = []  # length of each shared string
        self.cells = 0
        self.chars = 0
        self._depth_text = 0
        self._in_text = False
        self._cell_type = ""
        self._cell_len = 0
        self._value = ""

    def _too_long(self, n: int, what: str) -> TableError:
        return TableError(f"XLSX cell text is longer than ingest.max_cell_chars ({self.limits.max_cell_chars:,} "
                          f"characters; {what} has at least {n:,}): file not read (possible decompression bomb)")

    def _feed(self, parser: Any, fh: Any) -> None:
        try:
            while chunk := fh.read(1 << 20):
                parser.Parse(chunk, False)
            parser.Parse(b"", True)
        except expat.ExpatError as exc:
            raise TableError(f"XLSX file is corrupt: XML error: {exc}") from exc

    def shared_strings(self, fh: Any) -> None:
        parser = expat.ParserCreate()
        length = [0]

        def start(name: str, _attrs: dict[str, str]) -> None:
            local = name.rsplit(":", 1)[-1]
            if local == "si":
                length[0] = 0
            elif local == "t":
                self._in_text = True
            elif local in {"rPh", "phoneticPr"}:
                self._depth_text += 1  # phonetic hints are not cell text

        def end(name: str) -> None:
            local = name.rsplit(":", 1)[-1]
            if local == "si":
                self.shared.append(length[0])
            elif local == "t":
                self._in_text = False
            elif local in {"rPh", "phoneticPr"}:
                self._depth_text -= 1

        def text(data: str) -> None:
            if self._in_text and not self._depth_text:
                length[0] += len(data)
                if length[0] > self.limits.max_cell_chars:
                    raise self._too_long(length[0], f"shared string {len(self.shared) + 1}")

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        self._feed(parser, fh)

    def worksheet(self, fh: Any, sheet: str) -> None:
        parser = expat.ParserCreate()
        state = {"in_v": False, "in_t": False}

        def start(name: str, attrs: dict[str, str]) -> None:
            local = name.rsplit(":", 1)[-1]
            if local == "c":
                self._cell_type, self._cell_len, self._value = attrs.get("t", ""), 0, ""
            elif local == "v":
                state["in_v"] = True
            elif local == "t":
                state["in_t"] = True

        def end(name: str) -> None:
            local = name.rsplit(":", 1)[-1]
            if local == "v":
                state["in_v"] = False
            elif local == "t":
                state["in_t"] = False
            elif local == "c":
                n = self._cell_len
                if self._cell_type == "s":
                    try:
                        n = self.shared[int(self._value.strip())]
                    except (ValueError, IndexError):
                        n = 0
                if n or self._value:
                    self.cells += 1
                    self.chars += n
                if n > self.limits.max_cell_chars:
                    raise self._too_long(n, f"a cell of {sheet}")
                if self.cells > self.limits.max_cells:
                    raise TableError(f"XLSX file has more than ingest.max_cells ({self.limits.max_cells:,}) "
                                     "cells: file not read (possible decompression bomb)")
                if self.chars > self.limits.max_text_mb * 1e6:
                    raise TableError(f"XLSX cells hold more than ingest.max_text_mb ({self.limits.max_text_mb:g}"
                                     " million characters) of text once shared strings are expanded: file not "
                                     "read (possible decompression bomb)")

        def text(data: str) -> None:
            if state["in_v"] or state["in_t"]:
                self._cell_len += len(data)
                if state["in_v"] and len(self._value) < 32:
                    self._value += data[:32]
                if self._cell_len > self.limits.max_cell_chars:
                    raise self._too_long(self._cell_len, f"a cell of {sheet}")

        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.CharacterDataHandler = text
        self._feed(parser, fh)


def check_xlsx_bounds(path: Path, limits: TableLimits) -> None:
    """Raise TableError when an XLSX file would unpack or expand beyond `limits` (checked before parsing)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            unpacked = sum(i.file_size for i in infos)
            packed = sum(i.compress_size for i in infos)
            mb = unpacked / 1e6
            if mb > limits.max_unpacked_mb:
                raise TableError(f"XLSX file unpacks to {mb:,.0f} MB, more than ingest.max_unpacked_mb "
                                 f"({limits.max_unpacked_mb:g} MB): file not read (possible decompression bomb)")
            ratio = unpacked / max(packed, 1)
            if mb >= limits.ratio_min_unpacked_mb and ratio > limits.max_compression_ratio:
                raise TableError(f"XLSX file unpacks to {ratio:,.0f} times its compressed size ({mb:,.1f} MB), "
                                 f"more than ingest.max_compression_ratio ({limits.max_compression_ratio:g}): "
                                 "file not read (possible decompression bomb)")
            names = {i.filename for i in infos}
            scan = _CellScan(limits)
            for member in sorted(n for n in names if re.fullmatch(r"(?i)xl/sharedStrings\d*\.xml", n)):
                with zf.open(member) as fh:
                    scan.shared_strings(fh)
            for member in sorted(n for n in names if re.fullmatch(r"(?i)xl/worksheets/[^/]+\.xml", n)):
                with zf.open(member) as fh:
                    scan.worksheet(fh, Path(member).stem)
    except TableError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/zlib raise many types on damaged archives
        raise TableError(f"XLSX file is corrupt: {type(exc).__name__}: {exc}") from exc


# ---- any table -------------------------------------------------------------------------------------------
def read_tables(path: Path, limits: TableLimits | None = None) -> list[tuple[str, pd.DataFrame]]:
    """(sheet name, frame) pairs of a table file; CSV and Parquet give one unnamed sheet.

    `limits` bounds XLSX files before they are parsed (default: `TableLimits()`, the params.yaml defaults).
    """
    suffix = path.suffix.lower()
    if suffix in {".parquet", ".pq"}:
        try:
            return [("", _clean_frame(pd.read_parquet(path)))]
        except Exception as exc:  # noqa: BLE001
            raise TableError(f"Parquet file is corrupt: {exc}") from exc
    if suffix in {".xlsx", ".xlsm"}:
        if not zipfile.is_zipfile(path):
            raise TableError("XLSX file is corrupt: not a valid Excel (zip) file")
        check_xlsx_bounds(path, limits or TableLimits())
        try:
            sheets = pd.read_excel(path, sheet_name=None, dtype=object, engine="openpyxl",
                                   keep_default_na=False, na_values=[])
        except Exception as exc:  # noqa: BLE001 - openpyxl raises many types on broken files
            raise TableError(f"XLSX file is corrupt: {type(exc).__name__}: {exc}") from exc
        return [(str(name), _clean_frame(df)) for name, df in sheets.items()]
    if suffix == ".xls":
        raise TableError("old Excel .xls format is not supported: save the file as .xlsx or .csv")
    return [("", read_csv_text(path.read_bytes(), path.name))]
