"""Ingest of ITU-style text/markdown exports: headings, variants, encodings, lists inside answers."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.ingest import ingest_paths, load_questionnaire
from pipeline.ingest.itu_text import TextFormParser

FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
Q = load_questionnaire("itu_wsis20")
TITLE = "# ITU CWG WSIS&SDG Call for Inputs on the WSIS+20 Review: Response"
LINK = "<https://www.itu.int/net4/wsis/forum/2024/Home/About#actionLines>"


def build_export(rid: str, date: str, org: str, otype: str, country: str, answers: dict[int, str],
                 heading: str = "{n}. {text}") -> str:
    """A synthetic export in the ITU layout (form texts from the questionnaire, our own answers)."""
    out = ["", "", TITLE, "", f"Response {rid} \u2013 {date}", "", "## Respondent", ""]
    for field, value in zip(Q.fields, (org, otype, country), strict=True):
        out += [f"{field.number}. {field.text}", "", value, ""]
    section = ""
    for item in Q.questions:
        if item.section != section:
            section = item.section
            out += [f"## {section}", ""]
        out += [heading.format(n=item.number, text=item.text), ""]
        out += [*item.trailing_lines, ""] if item.trailing_lines else []
        if answers.get(item.number):
            out += [answers[item.number], ""]
    return "\n".join(out)


ANSWERS = {n: f"Answer to question {n}: more rural libraries online." for n in range(4, 15)}


def ingest_text(tmp_path: Path, text: str | bytes, name: str = "export.txt",
                params: dict | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    result = ingest_paths([path], Q, params or {"ingest": {"day_first": True}})
    return result.answers, result.quarantine


def answer_map(df: pd.DataFrame, rid: str) -> dict[str, str]:
    sub = df[df["response_id"] == rid]
    return dict(zip(sub["question_id"], sub["answer"], strict=True))


def test_plain_export_fields_and_answers(tmp_path: Path) -> None:
    text = build_export("501", "11/02/2025 16:12", "Harbour Skills Trust", "Civil Society", "USA", ANSWERS)
    answers, quarantine = ingest_text(tmp_path, text)
    assert quarantine.empty
    assert len(answers) == 11 and answers["question_id"].tolist() == [f"Q{n}" for n in range(4, 15)]
    row = answers.iloc[0]
    assert row["response_id"] == "501"
    assert row["submitted_at"] == "2025-02-11T16:12:00"  # day first
    assert row["org_name"] == "Harbour Skills Trust"
    assert row["stakeholder_group"] == "civil society"
    assert (row["country"], row["country_raw"], row["region"]) == ("United States", "USA", "Americas")
    assert row["source_format"] == "itu_text" and not row["is_document"] and row["is_current"]
    assert answers["question_number"].tolist() == list(range(4, 15))
    assert answer_map(answers, "501") == {f"Q{n}": ANSWERS[n] for n in range(4, 15)}


def test_question_10_link_belongs_to_the_question(tmp_path: Path) -> None:
    text = build_export("502", "01/03/2025 10:00", "Org", "Academia", "Kenya", ANSWERS)
    assert LINK in text
    answers, _ = ingest_text(tmp_path, text)
    assert answer_map(answers, "502")["Q10"] == ANSWERS[10]
    empty = dict(ANSWERS)
    empty[10] = ""
    answers, _ = ingest_text(tmp_path, build_export("503", "01/03/2025", "Org", "Academia", "Kenya", empty))
    assert answer_map(answers, "503")["Q10"] == ""


@pytest.mark.parametrize("style", ["Q{n}. {text}", "{n}) {text}", "Question {n}: {text}", "Q{n}: {text}",
                                   "**{n}. {text}**", "### {n}. {text}", "_{n}. {text}_", "{text}"])
def test_heading_styles(tmp_path: Path, style: str) -> None:
    text = build_export("504", "02/03/2025 09:00", "Org", "Government", "Peru", ANSWERS, heading=style)
    answers, quarantine = ingest_text(tmp_path, text)
    assert quarantine.empty
    assert answer_map(answers, "504") == {f"Q{n}": ANSWERS[n] for n in range(4, 15)}


def test_fixture_with_many_variants() -> None:
    result = ingest_paths([FIXTURES / "variants.md"], Q, {})
    a = result.answers
    assert result.quarantine.empty
    assert sorted(a["response_id"].unique()) == ["901", "902"]
    first = a[a["response_id"] == "901"].iloc[0]
    assert first["org_name"] == "Lakeside Digital Commons"  # emphasis stripped from fields
    assert first["org_type"] == "Civil Society"
    assert first["country"] == "Côte d'Ivoire" and first["region"] == "Africa"
    assert first["submitted_at"] == "2025-03-03T08:05:00"
    got = answer_map(a, "901")
    assert got["Q5"] == "N/A"
    # the numbered list (including a line numbered 8) stays inside the answer to Q6
    assert got["Q6"].startswith("Keep the doors open") and got["Q6"].count("\n") == 4
    assert "8. This line keeps its odd number" in got["Q6"]
    assert got["Q7"] == "- affordability of devices\n- electricity in rural areas"
    assert got["Q8"].startswith("C2 and C4")  # reworded question heading
    assert got["Q9"] == ""
    assert got["Q10"].startswith("Milestones") and got["Q10"].endswith("is the page we read.")
    assert got["Q11"].startswith("Link every Action Line")  # "Question 11:" with the text on the next line
    assert got["Q13"] == "One joint calendar."  # unnumbered heading
    assert got["Q14"] == "Low-orbit satellites and small language models."  # trailing rule dropped
    second = a[a["response_id"] == "902"].iloc[0]
    assert second["org_name"] == "Northwind Telecom Regulators Forum"  # inline "label: value"
    assert second["stakeholder_group"] == "international organisation"
    assert second["country"] == "Republic of Korea"
    got2 = answer_map(a, "902")
    assert got2["Q5"] == "Standards and statistics."  # reworded Q5
    assert got2["Q6"] == "Shared secretariat."  # question text wrapped over two lines
    assert got2["Q11"] == "No comment." and got2["Q7"] == "" and got2["Q14"] == "Quantum-safe encryption."


def test_crlf_and_cp1252(tmp_path: Path) -> None:
    answers_in = dict(ANSWERS)
    answers_in[4] = "Caf\u00e9 networks \u2013 the \u2018last mile\u2019 matters."
    text = build_export("505", "25/12/2024 23:59", "R\u00e9seau Num\u00e9rique", "NGO", "T\u00fcrkiye",
                        answers_in)
    data = text.replace("\n", "\r\n").encode("cp1252")
    answers, quarantine = ingest_text(tmp_path, data)
    assert quarantine.empty
    row = answers.iloc[0]
    assert row["org_name"] == "R\u00e9seau Num\u00e9rique" and row["country"] == "T\u00fcrkiye"
    assert row["submitted_at"] == "2024-12-25T23:59:00"
    assert answer_map(answers, "505")["Q4"] == answers_in[4]
    assert "\r" not in "".join(answers["answer"])


def test_double_encoded_utf8_is_repaired(tmp_path: Path) -> None:
    text = build_export("506", "25/12/2024 23:59", "Caf\u00e9 Num\u00e9rique", "NGO", "Senegal", ANSWERS)
    mojibake = text.encode("utf-8").decode("cp1252").encode("utf-8")  # "â€“", "Ã©"
    answers, quarantine = ingest_text(tmp_path, mojibake)
    assert quarantine.empty and answers["response_id"].iloc[0] == "506"
    assert answers["org_name"].iloc[0] == "Caf\u00e9 Num\u00e9rique"


def test_multi_submission_file_and_repeated_headers(tmp_path: Path) -> None:
    parts = [build_export(str(600 + i), f"0{i + 1}/04/2025 12:00", f"Org {i}", "Private Sector", "Fiji",
                          {n: f"Text {i}-{n}" for n in range(4, 15)}) for i in range(3)]
    answers, quarantine = ingest_text(tmp_path, "\n\n".join(parts))
    assert quarantine.empty
    assert answers["response_id"].unique().tolist() == ["600", "601", "602"]
    assert answer_map(answers, "601")["Q14"] == "Text 1-14"  # no header/marker leaked into the last answer
    assert answers.groupby("response_id")["submitted_at"].first().tolist() == [
        "2025-04-01T12:00:00", "2025-04-02T12:00:00", "2025-04-03T12:00:00"]


def test_answer_on_the_heading_line(tmp_path: Path) -> None:
    q7 = Q.question_by_id("Q7").text  # type: ignore[union-attr]
    q8 = Q.question_by_id("Q8").text  # type: ignore[union-attr]
    text = build_export("540", "01/02/2025 10:00", "Org", "Academia", "Chile", ANSWERS)
    text = text.replace(f"7. {q7}\n\n{ANSWERS[7]}", f"7. {q7} Power and devices.\nAnd skills.")
    text = text.replace(f"8. {q8}", f"8. {q8} (max. 300 words)")
    answers, _ = ingest_text(tmp_path, text)
    got = answer_map(answers, "540")
    assert got["Q7"] == "Power and devices.\nAnd skills." and got["Q8"] == ANSWERS[8]


def test_unknown_extra_field_does_not_leak_into_a_field(tmp_path: Path) -> None:
    text = build_export("530", "01/02/2025 10:00", "Org", "Academia", "Chile", ANSWERS)
    text = text.replace("Academia\n", "Academia\n\nContact e-mail\n\nnobody@example.org\n")
    answers, _ = ingest_text(tmp_path, text)
    assert answers["org_type"].iloc[0] == "Academia" and answers["country"].iloc[0] == "Chile"


def test_page_header_repeated_inside_a_submission(tmp_path: Path) -> None:
    long_answers = dict(ANSWERS)
    long_answers[7] = f"First paragraph.\n\n{TITLE}\n\nResponse 520 \u2013 01/02/2025 10:00\n\nSecond paragraph."
    text = build_export("520", "01/02/2025 10:00", "Org", "Academia", "Chile", long_answers)
    answers, quarantine = ingest_text(tmp_path, text)
    assert quarantine.empty and answers["response_id"].unique().tolist() == ["520"]
    got = answer_map(answers, "520")
    assert " ".join(got["Q7"].split()) == "First paragraph. Second paragraph."
    assert got["Q14"] == ANSWERS[14]


def test_submissions_without_response_lines_get_stable_ids(tmp_path: Path) -> None:
    one = build_export("X", "x", "Alpha Org", "Academia", "Chile", ANSWERS)
    one = "\n".join(ln for ln in one.split("\n") if not ln.startswith("Response "))
    answers, _ = ingest_text(tmp_path, one + "\n\n" + one.replace("Alpha Org", "Beta Org"), "batch.txt")
    assert answers["response_id"].unique().tolist() == ["batch-1", "batch-2"]
    assert answers.drop_duplicates("response_id")["org_name"].tolist() == ["Alpha Org", "Beta Org"]
    assert answers.drop_duplicates("response_id")["submitted_at"].tolist() == ["", ""]


def test_empty_submission_is_quarantined(tmp_path: Path) -> None:
    empty = build_export("700", "01/01/2025 00:00", "", "", "", {})
    full = build_export("701", "01/01/2025 00:00", "Org", "Other", "Nepal", ANSWERS)
    answers, quarantine = ingest_text(tmp_path, empty + "\n" + full)
    assert answers["response_id"].unique().tolist() == ["701"]
    assert len(quarantine) == 1
    assert quarantine.iloc[0]["reason"] == "submission has no organisation name and no answers"


def test_answer_lines_that_look_like_headings_are_kept(tmp_path: Path) -> None:
    tricky = dict(ANSWERS)
    tricky[6] = "Our priorities:\n7. Skills\n8. Finance\n9) Standards\nQ10. Trust"
    tricky[4] = "Response 3 of our members: more access."
    # a list whose item 8 talks about Action Lines, right before the real question 8
    tricky[7] = ("Remaining gaps:\n6. Skills\n7. Finance\n"
                 "8. Action Lines C2, C5 and C7 were most significant because of their reach.")
    answers, _ = ingest_text(tmp_path, build_export("800", "05/05/2025 05:05", "Org", "Other", "Niger", tricky))
    got = answer_map(answers, "800")
    assert got["Q6"] == tricky[6] and got["Q4"] == tricky[4]
    assert got["Q7"] == tricky[7] and got["Q8"] == ANSWERS[8]


def test_short_reworded_question_heading(tmp_path: Path) -> None:
    text = build_export("810", "05/05/2025 05:05", "Org", "Other", "Niger", ANSWERS)
    text = text.replace(Q.question_by_id("Q7").text, "What challenges remain?")  # type: ignore[union-attr]
    text = text.replace(Q.question_by_id("Q12").text,  # type: ignore[union-attr]
                        "How can the WSIS Forum and the IGF be strengthened?")
    answers, _ = ingest_text(tmp_path, text)
    assert answer_map(answers, "810") == {f"Q{n}": ANSWERS[n] for n in range(4, 15)}


def test_unnumbered_reworded_question_where_it_is_due(tmp_path: Path) -> None:
    text = build_export("811", "05/05/2025 05:05", "Org", "Other", "Niger", ANSWERS, heading="{text}")
    text = text.replace(Q.question_by_id("Q4").text,  # type: ignore[union-attr]
                        "What has the WSIS process achieved in the last two decades?")
    answers, _ = ingest_text(tmp_path, text)
    got = answer_map(answers, "811")
    assert got == {f"Q{n}": ANSWERS[n] for n in range(4, 15)}
    assert answers["country_raw"].iloc[0] == "Niger"


def test_parser_reports_no_form_for_prose() -> None:
    parser = TextFormParser(Q)
    prose = "A contribution.\n\n1. First we think the forum matters.\n2. Second, funding."
    subs, quarantine, n = parser.parse(prose, "doc.txt", "doc")
    assert n == 0


@pytest.mark.shared
def test_seed_file_field_by_field(shared_dir: Path) -> None:
    """The one real export: every field as an independent reading of the raw file says it should be."""
    seed = shared_dir / "seed" / "itu-wsis20-response-83.txt"
    raw = seed.read_text(encoding="utf-8")
    result = ingest_paths([seed], Q, {"ingest": {"day_first": True}})
    a = result.answers
    assert result.quarantine.empty and len(a) == 11
    lines = raw.split("\n")

    def after(prefix: str) -> str:
        i = next(k for k, ln in enumerate(lines) if ln.startswith(prefix))
        return next(ln for ln in lines[i + 1:] if ln.strip()).strip()

    row = a.iloc[0]
    m = re.search(r"^Response (\d+) \u2013 (\d\d)/(\d\d)/(\d{4}) (\d\d:\d\d)$", raw, re.M)
    assert m
    assert row["response_id"] == m.group(1) == "83"
    assert row["submitted_at"] == f"{m.group(4)}-{m.group(3)}-{m.group(2)}T{m.group(5)}:00"
    assert row["submitted_at"] == "2025-02-11T16:12:00"
    assert row["org_name"] == after("1. Organization name")
    assert row["org_type"] == after("2. Organization type") and row["stakeholder_group"] == "private sector"
    assert row["country_raw"] == after("3. Organization country") == row["country"] == "Canada"
    assert (row["region"], row["subregion"]) == ("Americas", "Northern America")
    # answers: the text between consecutive question headings, minus section headings and the Q10 link
    starts = [next(k for k, ln in enumerate(lines) if ln.startswith(f"{n}. ")) for n in range(4, 15)]
    for n, start, end in zip(range(4, 15), starts, [*starts[1:], len(lines)], strict=True):
        body = [ln for ln in lines[start + 1:end] if not ln.startswith("## ") and ln.strip() != LINK]
        expected = "\n".join(body).strip()
        got = a.loc[a["question_number"] == n, "answer"].item()
        assert " ".join(got.split()) == " ".join(expected.split()) and got, n
        assert LINK not in got and "##" not in got
