"""Ingest of tabular exports: wide CSV/XLSX (with and without numbered headers), the canonical long
format, column mappings, and broken tables."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import Workbook

from pipeline.ingest import ingest_paths, load_questionnaire
from pipeline.ingest.tabular import load_mapping, plan_wide

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
Q = load_questionnaire("itu_wsis20")
PARAMS = {"ingest": {"day_first": True}}


def form_header(numbered: bool = True) -> list[str]:
    head = ["Response ID", "Submitted"]
    for item in Q.items:
        head.append(f"{item.number}. {item.text}" if numbered else item.text)
    return head


def form_row(rid: object, when: object, org: str, n: int = 11) -> list[object]:
    return [rid, when, org, "Government", "Norway"] + [f"{org} answer {k}" for k in range(n)]


def test_wide_csv_with_numbered_headers(tmp_path: Path) -> None:
    df = pd.DataFrame([form_row("301", "11/02/2025 16:12", "Fjord Agency"),
                       form_row("302", "01/03/2025 08:00", "Cedar Lab")], columns=form_header())
    df.loc[0, form_header()[8]] = "- starts with a dash\n+ and a plus"
    path = tmp_path / "export.csv"
    df.to_csv(path, index=False)
    result = ingest_paths([path], Q, PARAMS)
    a = result.answers
    assert result.quarantine.empty
    assert len(a) == 22 and set(a["source_format"]) == {"tabular_wide"}
    first = a[a["response_id"] == "301"]
    assert first["submitted_at"].iloc[0] == "2025-02-11T16:12:00"
    assert first["question_id"].tolist() == [f"Q{n}" for n in range(4, 15)]
    assert first["answer"].tolist()[0] == "Fjord Agency answer 0"
    assert first.loc[first["question_id"] == "Q7", "answer"].item() == "- starts with a dash\n+ and a plus"
    assert first["stakeholder_group"].iloc[0] == "government" and first["region"].iloc[0] == "Europe"
    assert first["source_record"].iloc[0] == "row 2"


def test_wide_csv_without_numbers_and_with_odd_columns() -> None:
    result = ingest_paths([FIXTURES / "wide_no_numbers.csv"], Q, PARAMS)
    a, q = result.answers, result.quarantine
    subs = a.drop_duplicates("response_id").set_index("response_id")
    assert subs.index.tolist() == ["A-1", "A-2"]
    assert subs.loc["A-1", "submitted_at"] == "2025-02-03T14:30:00"
    assert subs.loc["A-2", "submitted_at"] == "2025-02-07"
    assert subs.loc["A-1", "country"] == "United Kingdom" and subs.loc["A-2", "country"] == "Viet Nam"
    assert subs.loc["A-2", "stakeholder_group"] == "academia"
    got = dict(zip(a["response_id"] + "/" + a["question_id"], a["answer"], strict=True))
    assert got["A-1/Q4"] == "Shared towers.\nCheaper data."
    assert got["A-1/Q7"] == "Power cuts." and got["A-2/Q7"] == "" and got["A-2/Q4"] == "N/A"
    assert got["A-1/Q5"] == ""  # questions missing from the export are empty rows
    assert a.groupby("response_id").size().eq(11).all()
    reasons = q["reason"].tolist()
    # the row with only an id is quarantined with its row number (the blank row is no record)
    assert any(r.startswith("row 5: submission has no organisation name and no answers") for r in reasons)


def test_xlsx_with_title_rows_above_the_header(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["Call for inputs: export of 26/03/2025"])
    ws.append([])
    ws.append(form_header())
    ws.append(form_row(451, "18/03/2025 09:10", "Reef Council"))
    path = tmp_path / "titled.xlsx"
    wb.save(path)
    result = ingest_paths([path], Q, PARAMS)
    a = result.answers
    assert result.quarantine.empty and a["response_id"].unique().tolist() == ["451"]
    assert a["source_record"].iloc[0].endswith("row 4") and a["org_name"].iloc[0] == "Reef Council"


def test_plan_matches_truncated_and_prefixed_headers() -> None:
    cols = ["Response Id", "Submission date (UTC)", "Q1 Organization name", "Organisation type",
            "3. Country", "4. What are the main achievements ...", "Q12", "Email"]
    plan = plan_wide(cols, Q)
    assert plan.id_col == "Response Id" and plan.date_col == "Submission date (UTC)"
    assert plan.fields == {"org_name": "Q1 Organization name", "org_type": "Organisation type",
                           "country": "3. Country"}
    assert plan.questions == {"Q4": "4. What are the main achievements ...", "Q12": "Q12"}
    assert plan.ignored == ["Email"]


def test_bare_number_headers_are_not_questions() -> None:
    plan = plan_wide(["participant", "group-id", "1", "2", "4", "12", "14"], Q)
    assert not plan.questions and not plan.fields


def test_xlsx_with_numeric_ids_and_date_cells(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = "Responses"
    ws.append(form_header())
    ws.append(form_row(401, datetime(2025, 3, 18, 9, 10), "Atoll Net"))
    ws.append(form_row(402, "04/03/2025 10:30", "Summit Guild"))
    ws["F3"], ws["G3"], ws["H3"] = "N/A", "NA", "null"  # kept as written, not read as missing
    ws["B2"].number_format = "dd/mm/yyyy hh:mm"
    path = tmp_path / "export.xlsx"
    wb.save(path)
    result = ingest_paths([path], Q, PARAMS)
    subs = result.answers.drop_duplicates("response_id").set_index("response_id")
    assert subs.index.tolist() == ["401", "402"]
    assert subs.loc["401", "submitted_at"] == "2025-03-18T09:10:00"
    assert subs.loc["402", "submitted_at"] == "2025-03-04T10:30:00"
    assert subs.loc["401", "source_record"] == "sheet Responses, row 2"
    a = result.answers
    assert a[a["response_id"] == "402"]["answer"].tolist()[:4] == ["N/A", "NA", "null", "Summit Guild answer 3"]


def test_rows_without_response_id_get_stable_ids(tmp_path: Path) -> None:
    header = [h for h in form_header() if h != "Response ID"]
    df = pd.DataFrame([form_row("x", "01/01/2025", "Org A")[1:], form_row("x", "02/01/2025", "Org B")[1:]],
                      columns=header)
    path = tmp_path / "noid.csv"
    df.to_csv(path, index=False)
    a = ingest_paths([path], Q, PARAMS).answers
    assert a["response_id"].unique().tolist() == ["noid-2", "noid-3"]
    again = ingest_paths([path], Q, PARAMS).answers
    assert again["response_id"].tolist() == a["response_id"].tolist()


def test_canonical_long_format() -> None:
    result = ingest_paths([FIXTURES / "long_canonical.csv"], Q, PARAMS)
    a, q = result.answers, result.quarantine
    assert len(a) + len(q) == 5  # rows in = answers out + quarantined
    assert a["question_id"].tolist() == ["Q4", "Q7", "Q7.2", "open-1"]
    assert set(a["source_format"]) == {"long"} and a["question_number"].isna().all()
    r1 = a[a["response_id"] == "r1"].iloc[0]
    assert r1["question_text"] == Q.question_by_id("Q4").text  # type: ignore[union-attr]
    assert r1["country"] == "Russian Federation" and r1["submitted_at"] == "2025-02-01T10:00:00"
    r2 = a[a["response_id"] == "r2"].iloc[0]
    assert r2["answer"] == "" and r2["question_text"] == "What else?"
    assert r2["stakeholder_group"] == "individual"
    assert q.iloc[0]["reason"] == "row 6: response id is empty"


def test_custom_mapping_by_path_and_autodetect(tmp_path: Path) -> None:
    mapping = FIXTURES / "custom_mapping.yaml"
    result = ingest_paths([FIXTURES / "custom_survey.csv"], Q, PARAMS, mapping=str(mapping))
    a = result.answers
    assert a["response_id"].tolist() == ["S-1", "S-1", "S-2"]
    assert a["question_id"].tolist() == ["item1", "item2", "item1"]
    assert set(a["country"]) == {"New Zealand"} and set(a["region"]) == {"Oceania"}
    assert a["org_name"].tolist()[0] == "Tama"
    # without --mapping the file matches neither the form nor the long format: quarantined with a reason
    plain = ingest_paths([FIXTURES / "custom_survey.csv"], Q, PARAMS)
    assert plain.answers.empty and "no answer columns recognised" in plain.quarantine.iloc[0]["reason"]


def test_builtin_mappings_load() -> None:
    for name in ("eu_ai_white_paper_2020", "au_srai_2023", "bc_ai_survey_2025", "global_dialogues_gd1_3"):
        m = load_mapping(name)
        assert m.signature and m.columns


@pytest.mark.parametrize("payload, reason", [
    (b"PK\x03\x04 this is not really a zip", "XLSX file is corrupt"),
    (b"", "file is empty"),
    (b"hello, this is plain text", "XLSX file is corrupt"),
])
def test_broken_xlsx_is_quarantined(tmp_path: Path, payload: bytes, reason: str) -> None:
    path = tmp_path / "broken.xlsx"
    path.write_bytes(payload)
    result = ingest_paths([path], Q, PARAMS)
    assert result.answers.empty
    assert result.quarantine.iloc[0]["reason"].startswith(reason)


def test_csv_without_recognisable_columns(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("alpha,beta\n1,2\n", encoding="utf-8")
    result = ingest_paths([path], Q, PARAMS)
    assert result.answers.empty
    assert "no answer columns recognised" in result.quarantine.iloc[0]["reason"]
