"""Reliability of the table readers (issue 10): malformed CSV rows are quarantined with their row number instead
of vanishing, extra fields never shift columns, a missing stakeholder type stays apart from "other", XLSX
decompression bombs are refused before parsing, and a seeded fuzz run loses no record."""

from __future__ import annotations

import json
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
