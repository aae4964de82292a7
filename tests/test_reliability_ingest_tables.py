"""Reliability of the table readers (issue 10): malformed CSV rows are quarantined with their row number instead
of vanishing, extra fields never shift columns, a missing stakeholder type stays apart from "other", XLSX
decompression bombs are refused before parsing, and a seeded fuzz run loses no record."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook

from pipeline.ingest import ingest_paths, load_questionnaire
from pipeline.ingest import tables as T
from pipeline.ingest.normalise import GROUPS, StakeholderMapper

Q = load_questionnaire("itu_wsis20")
PARAMS = {"ingest": {"day_first": True, "max_file_mb": 200}}
LONG_HEADER = "response_id,question_id,answer,org_name,org_type\n"


def form_header() -> list[str]:
    return ["Response ID", *[f"{item.number}. {item.text}" for item in Q.items]]


def form_row(rid: str, org: str, org_type: str = "Government") -> list[str]:
    return [rid, org, org_type, "Norway"] + [f"{org} answer {k}" for k in range(len(Q.questions))]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def reasons(result: object) -> list[str]:
    return [str(r) for r in result.quarantine["reason"]]  # type: ignore[attr-defined]


# ---- defect 1: malformed CSV rows vanish ------------------------------------------------------------
def test_defect01_unterminated_quote_row_is_quarantined_and_later_rows_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", LONG_HEADER
                 + "r1,Q4,first answer,Org One,NGO\n"
                 + 'r2,Q4,"an answer whose quote never closes,Org Two,NGO\n'
                 + "r3,Q4,third answer,Org Three,NGO\n"
                 + "r4,Q4,fourth answer,Org Four,NGO\n")
    result = ingest_paths([path], Q, PARAMS)
    a, q = result.answers, result.quarantine
    assert a["response_id"].tolist() == ["r1", "r3", "r4"]
    assert a["answer"].tolist() == ["first answer", "third answer", "fourth answer"]
    assert a["source_record"].tolist() == ["row 2", "row 4", "row 5"]
    assert q["record"].tolist() == ["row 3"]
    assert "unterminated quote" in q.iloc[0]["reason"] and q.iloc[0]["reason"].startswith("row 3")
    assert q.iloc[0]["excerpt"].startswith("r2,Q4")


def test_defect01_row_with_extra_fields_is_quarantined(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", LONG_HEADER
                 + "r1,Q4,first answer,Org One,NGO\n"
                 + "r2,Q4,an answer, with a comma,Org Two,NGO\n"
                 + "r3,Q4,third answer,Org Three,NGO\n")
    result = ingest_paths([path], Q, PARAMS)
    assert result.answers["response_id"].tolist() == ["r1", "r3"]
    assert result.quarantine["record"].tolist() == ["row 3"]
    assert "6 fields" in reasons(result)[0] and "header has 5" in reasons(result)[0]


def test_defect01_wide_export_bad_rows_keep_their_numbers(tmp_path: Path) -> None:
    header = ",".join(f'"{h}"' for h in form_header())
    rows = [",".join(form_row(f"W{i}", f"Org {i}")) for i in range(1, 6)]
    rows[1] = rows[1] + ",surplus"               # row 3: one field too many
    rows[2] = rows[2].replace("Org 3 answer 0", '"Org 3 answer 0')  # row 4: stray quote at a field start
    path = write(tmp_path / "wide.csv", "\n".join([header, *rows]) + "\n")
    result = ingest_paths([path], Q, PARAMS)
    subs = result.answers.drop_duplicates("response_id")
    assert subs["response_id"].tolist() == ["W1", "W4", "W5"]
    assert subs["source_record"].tolist() == ["row 2", "row 5", "row 6"]
    assert sorted(result.quarantine["record"]) == ["row 3", "row 4"]


def test_defect01_stray_quote_closed_by_a_later_field_does_not_swallow_rows(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", LONG_HEADER
                 + 'r1,Q4,"stray quote opens here,Org One,NGO\n'
                 + "r2,Q4,plain,Org Two,NGO\n"
                 + 'r3,Q4,"quoted, properly",Org Three,NGO\n')
    result = ingest_paths([path], Q, PARAMS)
    assert result.answers["response_id"].tolist() == ["r2", "r3"]
    assert result.answers["answer"].tolist() == ["plain", "quoted, properly"]
    assert result.quarantine["record"].tolist() == ["row 2"]


def test_defect01_well_formed_multiline_and_short_rows_still_read(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", LONG_HEADER
                 + 'r1,Q4,"two\nlines, and ""quotes""",Org One,NGO\n'
                 + "\n"
                 + "r2,Q4,short row\n"
                 + "r3,Q4,trailing empty field,Org Three,NGO,\n")
    result = ingest_paths([path], Q, PARAMS)
    a = result.answers
    assert result.quarantine.empty
    assert a["answer"].tolist() == ['two\nlines, and "quotes"', "short row", "trailing empty field"]
    assert a["org_name"].tolist() == ["Org One", "", "Org Three"]


def test_defect01_title_lines_above_a_csv_header_lose_no_row(tmp_path: Path) -> None:
    # pandas could not parse the wider lines under a one-cell title and skipped every row
    rows = [",".join(form_row(f"T{i}", f"Org {i}")) for i in range(1, 4)]
    header = ",".join(f'"{h}"' for h in form_header())
    path = write(tmp_path / "titled.csv", "\n".join(["Call for inputs: export of 26/03/2025,", "", header, *rows]))
    result = ingest_paths([path], Q, PARAMS)
    subs = result.answers.drop_duplicates("response_id")
    assert result.quarantine.empty
    assert subs["response_id"].tolist() == ["T1", "T2", "T3"]
    assert subs["source_record"].tolist() == ["row 3", "row 4", "row 5"]


# ---- defect 2: extra fields in the first data row shift the columns -----------------------------------
def test_defect02_extra_fields_in_first_data_row_do_not_shift_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", LONG_HEADER
                 + "r1,Q4,first answer,Org One,NGO,EXTRA\n"
                 + "r2,Q4,second answer,Org Two,NGO\n"
                 + "r3,Q7,third answer,Org Three,Government\n")
    result = ingest_paths([path], Q, PARAMS)
    a = result.answers
    assert a["response_id"].tolist() == ["r2", "r3"]
    assert a["question_id"].tolist() == ["Q4", "Q7"]
    assert a["answer"].tolist() == ["second answer", "third answer"]
    assert result.quarantine["record"].tolist() == ["row 2"]
    assert "6 fields" in reasons(result)[0]


# ---- defect 5: a missing stakeholder type is merged into "other" --------------------------------------
@pytest.mark.parametrize("raw, group", [
    ("", "not given"), ("  ", "not given"), ("N/A", "not given"), ("none", "not given"),
    ("Unknown", "not given"), ("Not specified", "not given"), ("Prefer not to say", "not given"), ("-", "not given"),
    ("Other", "other"), ("Youth council", "other"), ("NGO", "civil society"),
])
def test_defect05_missing_stakeholder_type_is_not_other(raw: str, group: str) -> None:
    assert "not given" in GROUPS
    assert StakeholderMapper().group(raw) == group


def test_defect05_ingest_keeps_not_given_apart(tmp_path: Path) -> None:
    path = write(tmp_path / "long.csv", LONG_HEADER
                 + "r1,Q4,an answer,,\n" + "r2,Q4,an answer,Org Two,Other\n" + "r3,Q4,an answer,Org 3,n/a\n")
    a = ingest_paths([path], Q, PARAMS).answers
    assert a.set_index("response_id")["stakeholder_group"].to_dict() == {
        "r1": "not given", "r2": "other", "r3": "not given"}


# ---- defect 9: XLSX decompression bomb ---------------------------------------------------------------
PLACEHOLDER = "BOMB-PLACEHOLDER-STRING"


def write_bomb(path: Path, cells: int = 2000, string_mb: float = 60.0) -> Path:
    """A small-on-disk XLSX whose one shared string (string_mb MB) fills `cells` answer cells, as Excel stores a
    repeated string: openpyxl writes the template (inline strings), the placeholder cells are then pointed at
    shared string 0, which is streamed into the zip."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["response_id", "question_id", "answer"])
    for i in range(cells):
        ws.append([f"b{i}", "Q4", PLACEHOLDER])
    template = path.with_suffix(".template.xlsx")
    wb.save(template)
    chunk = b"A" * 1_000_000
    ss_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    ss_rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
    with zipfile.ZipFile(template) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename).decode("utf-8")
            if info.filename.startswith("xl/worksheets/"):
                data = data.replace(f'"inlineStr"><is><t>{PLACEHOLDER}</t></is>', '"s"><v>0</v>')
            elif info.filename == "[Content_Types].xml":
                data = data.replace("</Types>", f'<Override PartName="/xl/sharedStrings.xml" '
                                    f'ContentType="{ss_type}"/></Types>')
            elif info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace("</Relationships>", f'<Relationship Id="rIdSS" Type="{ss_rel}" '
                                    'Target="sharedStrings.xml"/></Relationships>')
            dst.writestr(info, data)
        ss = zipfile.ZipInfo("xl/sharedStrings.xml")
        ss.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(ss, "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
                     b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>')
            for _ in range(int(string_mb)):
                fh.write(chunk)
            fh.write(b"</t></si></sst>")
    template.unlink()
    return path


_BOMB_SCRIPT = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, 3 * 2**30))  # a safety cap: never exhaust the machine
from pipeline.ingest import ingest_paths
result = ingest_paths([sys.argv[1]], "itu_wsis20", {"ingest": {"day_first": True}})
print(json.dumps({"answers": len(result.answers), "reasons": result.quarantine["reason"].tolist(),
                  "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def test_defect09_xlsx_decompression_bomb_is_quarantined_with_bounded_memory(tmp_path: Path) -> None:
    bomb = write_bomb(tmp_path / "bomb.xlsx")
    assert bomb.stat().st_size < 300_000  # small on disk ...
    with zipfile.ZipFile(bomb) as zf:
        assert sum(i.file_size for i in zf.infolist()) > 60e6  # ... huge unpacked
    out = subprocess.run([sys.executable, "-c", _BOMB_SCRIPT, str(bomb)], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["answers"] == 0
    assert len(got["reasons"]) == 1 and "decompression bomb" in got["reasons"][0], got["reasons"]
    assert got["maxrss_mb"] < 2048


def _small_xlsx(path: Path, rows: list[list[object]]) -> Path:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    for row in rows:
        ws.append(row)
    wb.save(path)
    return path


def test_defect09_each_xlsx_bound_is_checked_before_parsing(tmp_path: Path) -> None:
    big = _small_xlsx(tmp_path / "big.xlsx", [["response_id", "question_id", "answer"],
                                              *[[f"r{i}", "Q4", "x" * 5000 + str(i)] for i in range(300)]])
    unpacked = T.xlsx_unpacked_bytes(big)
    assert unpacked > 1.5e6
    cases = {
        "ingest.max_unpacked_mb": T.TableLimits(max_unpacked_mb=unpacked / 2e6),
        "ingest.max_compression_ratio": T.TableLimits(max_compression_ratio=1.5, ratio_min_unpacked_mb=0.1),
        "ingest.max_cells": T.TableLimits(max_cells=500),
        "ingest.max_cell_chars": T.TableLimits(max_cell_chars=4000),
        "ingest.max_text_mb": T.TableLimits(max_text_mb=1.0),
    }
    for param, limits in cases.items():
        with pytest.raises(T.TableError, match=param.replace(".", r"\.")):
            T.read_tables(big, limits)
    sheets = T.read_tables(big, T.TableLimits())  # within the default bounds the file reads as before
    assert len(sheets[0][1]) == 300


def test_defect09_shared_string_cell_length_is_bounded(tmp_path: Path) -> None:
    # 2 MB unpacked: under the (relaxed) size and ratio bounds, but one cell is longer than max_cell_chars
    path = write_bomb(tmp_path / "long_cell.xlsx", cells=3, string_mb=2)
    with pytest.raises(T.TableError, match=r"ingest\.max_cell_chars"):
        T.read_tables(path, T.TableLimits(max_unpacked_mb=100, max_compression_ratio=10_000))
    params = {"max_cell_chars": 5_000_000, "max_unpacked_mb": 100, "max_compression_ratio": 10_000}
    sheets = T.read_tables(path, T.TableLimits.from_params(params))
    assert len(sheets[0][1]) == 3 and len(sheets[0][1]["answer"].iloc[0]) == 2_000_000


def test_defect09_limits_come_from_params_yaml() -> None:
    from pipeline import config

    section = config.load_params()["ingest"]
    limits = T.TableLimits.from_params(section)
    assert limits == T.TableLimits()  # the code defaults are the documented params.yaml values
    assert {"max_unpacked_mb", "max_compression_ratio", "max_cells", "max_cell_chars", "max_text_mb"} <= set(section)


# ---- seeded fuzz: nothing lost, nothing crashes -----------------------------------------------------------
FUZZ_SEED = 20251
FUZZ_CSV = 1000
FUZZ_XLSX = 100
WIDE_HEADER = form_header()


def _fuzz_field(rng: random.Random, rid: str) -> str:
    """A cell value, sometimes with commas, quotes, semicolons, unicode or line breaks (quoted properly)."""
    text = rng.choice(["plain", "two words", "comma, inside", 'a "quoted" word', "semi;colon", "tab\there",
                       "ünïcødé – ok", "=SUM(A1)", "  padded  ", "", "N/A", "line one\nline two"])
    text = f"{text} {rid}" if rng.random() < 0.5 else text
    if any(ch in text for ch in ',;\t"\n') or rng.random() < 0.1:
        return '"' + text.replace('"', '""') + '"'
    return text


def _corrupt(rng: random.Random, fields: list[str], width: int) -> list[str]:
    """One damage a hand-edited or truncated export shows; field 0 (the id) keeps its value."""
    kind = rng.randrange(9)
    if len(fields) < 2:
        fields.append("")
    i = rng.randrange(1, len(fields))
    if kind == 0:    # stray opening quote at a field start
        fields[i] = '"' + fields[i].strip('"')
    elif kind == 1:  # quote inside a field
        fields[i] = fields[i][:1] + '"' + fields[i][1:]
    elif kind == 2:  # fields the header does not have
        fields += [f"extra {n}" for n in range(rng.randint(1, 3))]
    elif kind == 3:  # trailing empty fields
        fields += [""] * rng.randint(1, 2)
    elif kind == 4:  # fields missing at the end
        del fields[max(1, width - rng.randint(1, width - 1)):]
    elif kind == 5:  # an unquoted delimiter inside a text (a bare line break would make it two records)
        fields[i] = fields[i].strip('"').replace("\n", " ") + ",more"
    elif kind == 6:  # a quoted field 'closed' early and continued
        fields[i] = '"closed"' + "continued"
    elif kind == 7:  # an unterminated quote with a line break
        fields[i] = '"opens\nand runs on'
    else:            # an empty quoted field
        fields[i] = '""'
    return fields


def _fuzz_csv(rng: random.Random, k: int) -> tuple[str, list[tuple[str, int]]]:
    """A malformed CSV and its data rows as (response id, physical line the row starts on)."""
    wide = rng.random() < 0.5
    header = WIDE_HEADER if wide else ["response_id", "question_id", "answer", "org_name", "org_type"]
    lines: list[str] = []
    if rng.random() < 0.1:
        lines += ["Export of the call for inputs", ""]
    sep = rng.choice([",", ",", ";", "\t"])
    lines.append(sep.join(f'"{h}"' if sep in h else h for h in header))
    expected: list[tuple[str, int]] = []
    for j in range(rng.randint(0, 8)):
        rid = f"F{k}R{j}"
        if wide:
            fields = [rid, f"Org {rid}", rng.choice(["NGO", "", "Government", "n/a"]), "Kenya"]
            fields += [_fuzz_field(rng, rid) for _ in range(len(header) - 4)]
        else:
            fields = [rid, rng.choice(["Q4", "Q7", "open-1"]), _fuzz_field(rng, rid), f"Org {rid}",
                      rng.choice(["NGO", "", "Other"])]
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            fields = _corrupt(rng, fields, len(header))
        expected.append((rid, sum(part.count("\n") + 1 for part in lines) + 1))
        lines.append(sep.join(fields))
        if rng.random() < 0.1:
            lines.append(rng.choice(["", "   "]))
    newline = rng.choice(["\n", "\n", "\r\n", "\r"])
    text = newline.join(lines) + (newline if rng.random() < 0.8 else "")
    return text, [(rid, line) for rid, line in expected if not _swallowed(text, sep, line, expected)]


def _swallowed(text: str, sep: str, line: int, rows: list[tuple[str, int]]) -> bool:
    """Whether damage that happens to be valid CSV (two stray quotes pairing up across rows) makes the row on
    `line` part of an earlier row's quoted field: any CSV reader must then read it so, it is no record."""
    physical = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for _, start in rows:
        if start >= line:
            return False
        reader = csv.reader(io.StringIO("\n".join(physical[start - 1:])), delimiter=sep, strict=True)
        try:
            next(reader)
        except (csv.Error, StopIteration):
            continue
        if start + reader.line_num - 1 >= line:
            return True
    return False


def _fuzz_xlsx(rng: random.Random, k: int, path: Path) -> list[tuple[str, int]]:
    """An XLSX-ish file: a workbook with ragged rows, a damaged or truncated one, junk bytes, or a bomb."""
    kind = rng.randrange(5)
    if kind == 4:
        write_bomb(path, cells=rng.randint(1, 5), string_mb=rng.choice([1, 2]))  # longer than max_cell_chars
        return []
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["response_id", "question_id", "answer", "org_name", "org_type"])
    expected: list[tuple[str, int]] = []
    for j in range(rng.randint(0, 6)):
        rid = f"X{k}R{j}"
        cells: list[object] = [rid, "Q4", rng.choice([f"answer {rid}", 12.5, None, "", "=1+1"]), f"Org {rid}"]
        cells += rng.choice([[], ["NGO"], ["NGO", "surplus cell"], ["", None, "x"]])
        ws.append(cells)
        expected.append((rid, -ws.max_row))  # XLSX rows: minus the row number
    wb.save(path)
    if kind == 1:    # truncated download
        data = path.read_bytes()
        path.write_bytes(data[: rng.randint(0, len(data) - 1)])
        return []
    if kind == 2:    # flipped bytes
        data = bytearray(path.read_bytes())
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path.write_bytes(bytes(data))
        return []
    if kind == 3:    # junk with an .xlsx name
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randint(0, 400))))
        return []
    return expected


def test_fuzz_malformed_tables_lose_no_record(tmp_path: Path) -> None:
    """>= 1,000 seeded malformed CSV/XLSX inputs in one ingest run: every data row is an answer row or a
    quarantine line (or its whole file is quarantined with a reason), and nothing ends in the catch-all for
    unexpected exceptions."""
    rng = random.Random(FUZZ_SEED)
    folder = tmp_path / "fuzz"
    folder.mkdir()
    expected: dict[str, list[tuple[str, int]]] = {}
    for k in range(FUZZ_CSV):
        text, rows = _fuzz_csv(rng, k)
        (folder / f"c{k:04d}.csv").write_bytes(text.encode("utf-8"))
        expected[f"fuzz/c{k:04d}.csv"] = rows
    for k in range(FUZZ_XLSX):
        expected[f"fuzz/x{k:04d}.xlsx"] = _fuzz_xlsx(rng, k, folder / f"x{k:04d}.xlsx")
    result = ingest_paths([folder], Q, PARAMS)
    a, q = result.answers, result.quarantine
    unexpected = q[q["reason"].str.startswith("file could not be read (")]
    assert unexpected.empty, unexpected.to_dict("records")[:3]
    answered: dict[str, set[str]] = {}
    for f, rid in zip(a["source_file"], a["response_id"], strict=True):
        answered.setdefault(f, set()).add(rid.split("~")[0])
    lines_out: dict[str, list[tuple[int, int]]] = {}
    labels: dict[str, set[str]] = {}
    excerpts: dict[str, str] = {}
    whole_file: set[str] = set()
    for f, record, reason, excerpt in q[["source_file", "record", "reason", "excerpt"]].itertuples(index=False):
        if record in {"file", "header"} or record.endswith("header") or " row " not in f" {record}":
            whole_file.add(f)
        labels.setdefault(f, set()).add(record.split(", ")[-1])
        excerpts[f] = excerpts.get(f, "") + "\n" + excerpt
        if m := re.search(r"\(lines? (\d+)(?:-(\d+))?\)", reason):
            lines_out.setdefault(f, []).append((int(m.group(1)), int(m.group(2) or m.group(1))))
    lost: list[str] = []
    for name, rows in expected.items():
        if name in whole_file:
            continue
        for rid, where in rows:
            if rid in answered.get(name, set()) or rid in excerpts.get(name, ""):
                continue
            if where < 0 and f"row {-where}" in labels.get(name, set()):
                continue
            if any(lo <= where <= hi for lo, hi in lines_out.get(name, [])):
                continue
            lost.append(f"{name} {rid} (line {where})")
    assert not lost, f"{len(lost)} rows unaccounted for, e.g. {lost[:5]}"
    n_rows = sum(len(r) for r in expected.values())
    assert n_rows > 3000 and len(q) > 300  # the inputs really are large and malformed
    # the other way round: rows that are no generated row are the tail of a damaged row whose line break
    # left as many fields as a row has (the damaged row itself is quarantined); they must stay rare
    ids = {rid for r in expected.values() for rid, _ in r}
    subs = a.drop_duplicates(["source_file", "response_id"])
    bogus = subs[~subs["response_id"].str.split("~").str[0].isin(ids)]
    assert len(bogus) <= 0.005 * n_rows, bogus[["source_file", "source_record", "response_id"]].to_dict("records")
    assert set(bogus["source_file"]) <= set(q.loc[q["reason"].str.contains("quote"), "source_file"])


def test_defect09_ingest_params_bound_xlsx_files(tmp_path: Path) -> None:
    """The bounds in params.yaml's ingest section reach the XLSX reader through ingest itself."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["response_id", "question_id", "answer"])
    for i in range(10):
        ws.append([f"r{i}", "q1", "An answer about digital inclusion in rural areas."])
    path = tmp_path / "long.xlsx"
    wb.save(path)
    ok = ingest_paths([path], None, {"ingest": {"questionnaire": "itu_wsis20"}})
    assert len(ok.answers) == 10 and ok.quarantine.empty
    bounded = ingest_paths([path], None, {"ingest": {"questionnaire": "itu_wsis20", "max_cells": 5}})
    assert bounded.answers.empty and "cells" in bounded.quarantine["reason"].iloc[0]
