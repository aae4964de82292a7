"""The report is made for people (issue 15, part 3): findings first, group sizes next to every share, shares of
small groups greyed out, numbers stored as numbers in the workbook, chart labels not cut."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import report_fixtures as F
from openpyxl import load_workbook

from pipeline.report import stage as report_stage

PARAMS = {"seed": 1, "report": {"top_quotes": 5, "min_group_size": 2}}


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    batch = F.build_batch(tmp_path_factory.mktemp("people") / "people-batch")
    report_stage.run(batch, PARAMS)
    return batch / "report"


def test_findings_come_first_everywhere(out: Path) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.index('id="findings"') < html.index('id="quality"') < html.index('id="t-reconciliation"')
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.index("## Findings by question") < md.index("## Appendix") < md.index("### Data quality")
    wb = load_workbook(out / "report.xlsx")
    assert wb.sheetnames[1] == "Findings by question"


def test_findings_give_description_figures_groups_and_quote(out: Path) -> None:
    f = pd.read_csv(out / "tables" / "findings.csv", dtype=str, keep_default_na=False)
    row = f[(f["question_id"] == "Q2") & (f["theme_id"] == "Q2.emergent-1")].iloc[0]
    assert row["respondents"] == "4" and row["answering_respondents"] == "4"
    assert row["description"] == "About funding, financing, budget."
    # civil society: 2 answering respondents for Q2 (>= min_group_size 2), both raised it; smaller groups left out
    assert row["raised_most_by"] == "civil society 100% (2 of 2)"
    assert row["quote"] and row["quote_by"].startswith("response ")


def test_every_group_share_has_its_group_size_next_to_it(out: Path) -> None:
    for name in ("themes_by_stakeholder", "themes_by_region", "theme_x_stakeholder"):
        cols = list(pd.read_csv(out / "tables" / f"{name}.csv", nrows=0).columns)
        shares = [c for c in cols if c.endswith(" (share)")]
        assert shares, name
        for c in shares:
            size = c.replace(" (share)", " (answering)")
            assert size in cols and cols.index(size) == cols.index(c) - 1, (name, c)


def test_shares_of_small_groups_are_greyed(out: Path) -> None:
    html = (out / "report.html").read_text(encoding="utf-8")
    # government answered with 1 respondent (< 2): its share cells are greyed in tables and in the heatmap
    assert re.search(r'<td class="num small" title="group too small', html)
    assert 'class="cell small"' in html
    md = (out / "report.md").read_text(encoding="utf-8")
    assert " †" in md and "Shares marked † are of groups with fewer than 2" in md
    wb = load_workbook(out / "report.xlsx")
    ws = wb["Theme x stakeholder group"]
    header = [c.value for c in ws[1]]
    col = header.index("government (share)") + 1
    assert ws.cell(row=2, column=col).font.color.rgb.endswith("A0A0A0")


def test_workbook_stores_numbers_as_numbers(out: Path) -> None:
    wb = load_workbook(out / "report.xlsx")
    code_columns = {"SDG"}  # identifiers that look like numbers stay text
    as_text = []
    for ws in wb.worksheets[1:]:
        header = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            for cell, head in zip(row, header, strict=False):
                if isinstance(cell.value, str) and re.fullmatch(r"-?\d+(\.\d+)?%?", cell.value) \
                        and head not in code_columns:
                    as_text.append((ws.title, cell.coordinate, head, cell.value))
    assert not as_text
    ws = wb["Themes by question"]
    header = [c.value for c in ws[1]]
    share = ws.cell(row=2, column=header.index("Share of answering respondents") + 1)
    assert isinstance(share.value, int | float) and share.number_format == "0.0%"


def test_bar_labels_wrap_instead_of_being_cut() -> None:
    from pipeline.report.charts import bar_chart

    label = "Meaningful connectivity for rural schools and community networks in small island states"
    svg = bar_chart([label], [0.4], "t", counts=[4], total=10)
    shown = " ".join(re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg))
    assert shown == label
    assert "40% (4 of 10)" in svg


def test_stance_in_tables_findings_and_quotes(out: Path) -> None:
    tbq = pd.read_csv(out / "tables" / "themes_by_question.csv", dtype=str, keep_default_na=False)
    row = tbq[(tbq["question_id"] == "Q2") & (tbq["theme_id"] == "Q2.emergent-1")].iloc[0]
    assert row["stance"] == "2 support, 1 oppose, 1 conditional"  # r6 (superseded) is not counted
    assert set(tbq.loc[tbq["question_id"] == "Q1", "stance"]) == {""}  # open question: no stance
    sbt = pd.read_csv(out / "tables" / "stance_by_theme.csv", dtype=str, keep_default_na=False)
    assert sbt.loc[sbt["theme_id"] == "Q2.emergent-1", "stance_target"].iloc[0] == \
        "Rural networks should get public funding."
    quotes = pd.read_csv(out / "tables" / "quotes.csv", dtype=str, keep_default_na=False)
    q2 = quotes[(quotes["question_id"] == "Q2") & (quotes["theme_id"] == "Q2.emergent-1")]
    assert list(q2["stance"][:3]) == ["support", "oppose", "conditional"]  # each side quoted first
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Stance toward \u201cRural networks should get public funding.\u201d" in html
    assert '<span class="side oppose">oppose</span>' in html
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Stance: 2 support, 1 oppose, 1 conditional." in md and "No stance for Q1, Q3" in md


def test_boilerplate_passages_are_counted_in_data_quality(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "bp-batch")
    seg = pd.read_parquet(batch / "segments.parquet")
    seg["is_boilerplate"] = seg["segment_id"].isin(["r1::Q1#0", "r2::Q1#0"])
    seg.to_parquet(batch / "segments.parquet", index=False)
    report_stage.run(batch, PARAMS)
    dq = pd.read_csv(batch / "report" / "tables" / "data_quality.csv", dtype=str, keep_default_na=False)
    dq = dq.set_index("measure")["value"]
    assert dq["passages set aside as repeated boilerplate"] == "2"
    assert dq["answers with passages set aside"] == "2"


def test_answers_that_lost_letters_are_counted_in_data_quality(tmp_path: Path) -> None:
    """An export that wrote letters outside its code page as "?" ("esen?iale"): the report says how many answers
    and words, by language (the words are kept out of names and keywords)."""
    batch = F.build_batch(tmp_path / "lost-batch")
    ans = pd.read_parquet(batch / "answers_clean.parquet")
    first = ans.index[~ans["is_nonanswer"]][:2]
    ans.loc[first, "text_clean"] = ["Datele esen?iale sunt protejate de cet??eni.", "Marie Sk?odowska-Curie grants."]
    ans.loc[first, "language"] = ["ro", "en"]
    ans.to_parquet(batch / "answers_clean.parquet", index=False)
    report_stage.run(batch, PARAMS)
    dq = pd.read_csv(batch / "report" / "tables" / "data_quality.csv", dtype=str, keep_default_na=False)
    row = dq.set_index("measure").loc["answered, with letters lost before reading"]
    assert row["value"] == "2"
    assert "3 words" in row["note"] and "'en' 1, 'ro' 1" in row["note"]
    clean = F.build_batch(tmp_path / "clean-batch")
    report_stage.run(clean, PARAMS)
    dq = pd.read_csv(clean / "report" / "tables" / "data_quality.csv", dtype=str, keep_default_na=False)
    assert "answered, with letters lost before reading" not in set(dq["measure"])


def test_framework_runs_say_how_answers_were_coded(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "coded-batch")
    assign = pd.read_parquet(batch / "theme_assignments.parquet")
    assign["source"] = "machine"
    assign.loc[assign["answer_id"] == "r1::Q1", "source"] = "analyst-coded"
    assign["confidence"] = 0.9
    assign.loc[assign["answer_id"].isin(["r2::Q1", "r3::Q1"]), "confidence"] = 0.3
    assign.to_parquet(batch / "theme_assignments.parquet", index=False)
    report_stage.run(batch, {"seed": 1, "report": {}, "themes": {"framework": {"high_confidence": 0.6}}})
    dq = pd.read_csv(batch / "report" / "tables" / "data_quality.csv", dtype=str, keep_default_na=False)
    dq = dq.set_index("measure")["value"]
    assert dq["answered, analyst-coded"] == "1" and dq["answered, machine, low confidence"] == "2"
    assert int(dq["answered, machine, high confidence"]) == F.N_ANSWERED - 3
    md = (batch / "report" / "report.md").read_text(encoding="utf-8")
    assert "Coding frame: 1 analyst-coded" in md
