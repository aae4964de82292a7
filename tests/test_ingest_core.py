"""Ingest as a whole: re-submissions, duplicate exports, normalisation tables, the stage shell, and a
property-based check that garbled input never crashes ingest nor loses a record silently."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import ingest_paths, load_questionnaire, stage
from pipeline.ingest.normalise import country_fields, parse_date, stakeholder_mapper
from pipeline.ingest.records import ANSWER_COLUMNS, QUARANTINE_COLUMNS

Q = load_questionnaire("itu_wsis20")
PARAMS = {"ingest": {"day_first": True, "max_file_mb": 200}}


def export(rid: str, date: str, org: str, answer: str = "More public Wi-Fi.") -> str:
    lines = [f"Response {rid} \u2013 {date}", ""]
    for item, value in zip(Q.fields, [org, "Civil Society", "Ghana"], strict=True):
        lines += [f"{item.number}. {item.text}", "", value, ""]
    for item in Q.questions:
        lines += [f"{item.number}. {item.text}", "", f"{answer} ({item.id})", ""]
    return "\n".join(lines)


def test_resubmission_by_org_name_latest_is_current(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(export("10", "05/03/2025 10:00", "The Open Lab") + "\n"
                                    + export("11", "20/02/2025 10:00", "Another Org"), encoding="utf-8")
    (tmp_path / "b.txt").write_text(export("12", "01/03/2025 09:00", "open lab", "Revised text."),
                                    encoding="utf-8")
    a = ingest_paths([tmp_path], Q, PARAMS).answers
    subs = a.drop_duplicates("response_id").set_index("response_id")
    assert subs.loc["10", "submission_group"] == subs.loc["12", "submission_group"] == "10"
    assert subs.loc["10", "is_current"] and not subs.loc["12", "is_current"]  # 10 is later by date
    assert subs.loc["11", "is_current"] and subs.loc["11", "submission_group"] == "11"


def test_same_id_twice_identical_content_is_counted_once(tmp_path: Path) -> None:
    text = export("20", "01/01/2025 10:00", "Same Org")
    (tmp_path / "one.txt").write_text(text, encoding="utf-8")
    (tmp_path / "two.txt").write_text(text, encoding="utf-8")
    result = ingest_paths([tmp_path], Q, PARAMS)
    assert result.answers["response_id"].unique().tolist() == ["20"]
    assert len(result.quarantine) == 1 and "duplicate of response 20" in result.quarantine.iloc[0]["reason"]


def test_same_id_resubmitted_with_new_content_keeps_both_unique(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text(export("30", "01/01/2025 10:00", "Org X"), encoding="utf-8")
    (tmp_path / "two.txt").write_text(export("30", "02/01/2025 10:00", "Org X", "Changed."), encoding="utf-8")
    a = ingest_paths([tmp_path], Q, PARAMS).answers
    subs = a.drop_duplicates("response_id").set_index("response_id")
    assert sorted(subs.index) == ["30", "30~v1"]
    assert subs.loc["30", "is_current"] and subs.loc["30", "answer"].startswith("Changed.")
    assert not subs.loc["30~v1", "is_current"]
    assert set(subs["submission_group"]) == {"30"}
    assert not a.duplicated(["response_id", "question_id"]).any()


def test_same_name_in_two_countries_is_not_a_resubmission(tmp_path: Path) -> None:
    one = export("45", "01/01/2025 10:00", "Ministry of Communications")
    two = export("46", "02/01/2025 10:00", "Ministry of Communications").replace("\nGhana\n", "\nMalawi\n")
    (tmp_path / "a.txt").write_text(one + "\n" + two, encoding="utf-8")
    a = ingest_paths([tmp_path], Q, PARAMS).answers
    subs = a.drop_duplicates("response_id")
    assert subs["is_current"].all() and subs["submission_group"].tolist() == ["45", "46"]
    assert subs["country"].tolist() == ["Ghana", "Malawi"]


def test_resubmission_with_acronym_and_missing_country(tmp_path: Path) -> None:
    one = export("47", "01/01/2025 10:00", "Open Routing Group")
    two = export("48", "02/01/2025 10:00", "Open Routing Group (ORG)").replace("\nGhana\n", "\n\n")
    (tmp_path / "a.txt").write_text(one + "\n" + two, encoding="utf-8")
    subs = ingest_paths([tmp_path], Q, PARAMS).answers.drop_duplicates("response_id").set_index("response_id")
    assert subs.loc["48", "country"] == "" and subs.loc["48", "submission_group"] == "47"
    assert subs.loc["48", "is_current"] and not subs.loc["47", "is_current"]


def test_individuals_without_org_are_not_grouped(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(export("40", "01/01/2025 10:00", "N/A") + "\n"
                                    + export("41", "02/01/2025 10:00", "Individual"), encoding="utf-8")
    a = ingest_paths([tmp_path], Q, PARAMS).answers
    assert a.drop_duplicates("response_id")["is_current"].all()


@pytest.mark.parametrize("raw, name, region", [
    ("USA", "United States", "Americas"), ("UK", "United Kingdom", "Europe"),
    ("Republic of Korea", "Republic of Korea", "Asia"), ("Korea (Rep. of)", "Republic of Korea", "Asia"),
    ("Côte d'Ivoire", "Côte d'Ivoire", "Africa"), ("Cote d\u2019Ivoire", "Côte d'Ivoire", "Africa"),
    ("Turkey", "Türkiye", "Asia"), ("Vietnam", "Viet Nam", "Asia"), ("Russia", "Russian Federation", "Europe"),
    ("United Republic of Tanzania", "Tanzania", "Africa"), ("  **Brazil** ", "Brazil", "Americas"),
    ("Geneva, Switzerland", "Switzerland", "Europe"), ("fiji", "Fiji", "Oceania"), ("DE", "Germany", "Europe"),
    ("Atlantis", "", ""), ("", "", ""),
])
def test_country_normalisation(raw: str, name: str, region: str) -> None:
    got = country_fields(raw)
    assert (got["country"], got["region"]) == (name, region)


def test_country_file_covers_every_un_member() -> None:
    from pipeline.ingest.normalise import GEO_FILE

    geo = pd.read_csv(GEO_FILE, dtype=str, keep_default_na=False)
    assert (geo["un_member"] == "true").sum() == 193
    assert set(geo["region"]) == {"Africa", "Americas", "Asia", "Europe", "Oceania"}
    assert geo["iso3"].is_unique and geo["name"].is_unique


@pytest.mark.parametrize("raw, group", [
    ("Private Sector", "private sector"), ("Government", "government"), ("NGO", "civil society"),
    ("Civil society organisation", "civil society"), ("Academic institution", "academia"),
    ("Technical community", "technical community"), ("Intergovernmental organisation", "international organisation"),
    ("International Organization", "international organisation"), ("Individual", "individual"),
    ("Other", "other"), ("NGO (Non-governmental organisation)", "civil society"),
    ("Company/Business organisation", "private sector"), ("Public authority", "government"),
    ("EU Citizen", "individual"), ("", "not given"), ("Youth council", "other"),
])
def test_stakeholder_groups(raw: str, group: str) -> None:
    assert stakeholder_mapper().group(raw) == group


@pytest.mark.parametrize("raw, day_first, iso", [
    ("11/02/2025 16:12", True, "2025-02-11T16:12:00"), ("11/02/2025 16:12", False, "2025-11-02T16:12:00"),
    ("25/12/2024", True, "2024-12-25"), ("2025-02-11 16:12", True, "2025-02-11T16:12:00"),
    ("2025-02-11T16:12:30", True, "2025-02-11T16:12:30"), ("19.06.2020 23:58", True, "2020-06-19T23:58:00"),
    ("11 February 2025", True, "2025-02-11"), ("13/13/2025", True, ""), ("soon", True, ""), ("", True, ""),
])
def test_dates(raw: str, day_first: bool, iso: str) -> None:
    assert parse_date(raw, day_first) == iso


def test_stage_run_writes_outputs_and_summary(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    (inp / "a.txt").write_text(export("50", "01/02/2025 10:00", "Org A") + "\n"
                               + export("51", "02/02/2025 10:00", "Org A"), encoding="utf-8")
    (inp / "bad.xlsx").write_bytes(b"broken")
    out = tmp_path / "out"
    summary = stage.run([inp], out, PARAMS)
    answers = pd.read_parquet(out / "answers.parquet")
    quarantine = pd.read_csv(out / "quarantine.csv", dtype=str, keep_default_na=False)
    assert list(answers.columns) == ANSWER_COLUMNS and list(quarantine.columns) == QUARANTINE_COLUMNS
    assert str(answers["question_number"].dtype) == "Int64"
    assert answers["is_current"].dtype == bool and answers["is_document"].dtype == bool
    assert {k: summary[k] for k in ("files", "submissions", "current_submissions", "resubmissions",
                                    "answers", "empty_answers", "quarantined")} == {
        "files": 2, "submissions": 2, "current_submissions": 1, "resubmissions": 1, "answers": 22,
        "empty_answers": 0, "quarantined": 1}
    assert quarantine.iloc[0]["reason"].startswith("XLSX file is corrupt")


def test_inputs_are_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(export("60", "01/02/2025 10:00", "Org").encode("utf-8"))
    before = path.read_bytes()
    ingest_paths([path], Q, PARAMS)
    assert path.read_bytes() == before


# ---- property-based: garbled exports --------------------------------------------------------------
_noise = st.text(alphabet=string.printable + "\u2013\u00e9\u2019*_#", max_size=60)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(min_value=1, max_value=3),
    cut=st.floats(min_value=0.0, max_value=1.0),
    noise=st.lists(_noise, min_size=0, max_size=6),
    encoding=st.sampled_from(["utf-8", "cp1252", "utf-16"]),
    crlf=st.booleans(),
)
def test_garbled_text_export_never_crashes_nor_loses_records(
        tmp_path_factory: pytest.TempPathFactory, n: int, cut: float, noise: list[str], encoding: str,
        crlf: bool) -> None:
    text = "\n\n".join(export(str(100 + i), "03/03/2025 10:00", f"Org {i}") for i in range(n))
    lines = text.split("\n")
    for k, junk in enumerate(noise):  # sprinkle junk lines, then truncate the file somewhere
        lines.insert((k * 7919) % (len(lines) + 1), junk)
    text = "\n".join(lines)[: max(1, int(len(text) * cut))]
    if crlf:
        text = text.replace("\n", "\r\n")
    data = text.encode(encoding, errors="replace")
    folder = tmp_path_factory.mktemp("garbled")
    (folder / "x.txt").write_bytes(data)
    result = ingest_paths([folder], Q, PARAMS)
    assert list(result.answers.columns) == ANSWER_COLUMNS
    markers = len(re.findall(r"(?m)^Response \d+ \u2013", text))
    subs = result.answers.drop_duplicates(["response_id", "source_record"])
    if len(result.quarantine) and (result.quarantine["record"] == "file").any():
        return  # the whole file was rejected, with a reason
    if result.answers["is_document"].any():
        assert result.answers["answer"].str.len().sum() >= len(text.replace("\r\n", "\n").strip()) - 2
        return
    # every "Response N" marker became a submission or a quarantine line
    assert len(subs[subs["source_format"] == "itu_text"]) + len(result.quarantine) >= markers
    assert result.answers.groupby("response_id").size().isin([1, 11]).all()


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(st.text(max_size=20), min_size=3, max_size=3), min_size=0, max_size=8),
       header=st.sampled_from([["response_id", "question_id", "answer"], ["Response ID", "Organization name",
                                "4. What are the main achievements"], ["a", "b", "c"]]))
def test_garbled_tables_reconcile(tmp_path_factory: pytest.TempPathFactory, rows: list[list[str]],
                                  header: list[str]) -> None:
    folder = tmp_path_factory.mktemp("tables")
    path = folder / "t.csv"
    pd.DataFrame(rows, columns=header).to_csv(path, index=False)
    result = ingest_paths([path], Q, PARAMS)
    q = result.quarantine
    if (q["record"].isin(["file", "header"])).any():
        return
    n_read = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=True)
    records = result.answers.drop_duplicates(["response_id", "source_record"])
    if header[0] == "response_id":
        assert len(result.answers) + len(q) == len(n_read)  # one answer per row, or a quarantine line
    else:
        assert len(records) + len(q[q["record"] != "columns"]) == len(n_read)


def test_cli_exit_codes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    good = tmp_path / "good"
    good.mkdir()
    (good / "a.txt").write_text(export("70", "01/02/2025 10:00", "Org"), encoding="utf-8")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.xlsx").write_bytes(b"not excel")
    runner = CliRunner()
    ok = runner.invoke(app, ["ingest", str(good), "--out", str(tmp_path / "o1")])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "o1" / "answers.parquet").is_file()
    nothing = runner.invoke(app, ["ingest", str(bad), "--out", str(tmp_path / "o2")])
    assert nothing.exit_code != 0
    quarantine = pd.read_csv(tmp_path / "o2" / "quarantine.csv")
    assert quarantine["reason"].str.startswith("XLSX file is corrupt").all()
