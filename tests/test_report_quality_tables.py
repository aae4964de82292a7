"""The data-quality appendix lists every fallback and scale switch the stages recorded, and the languages of the
answers per question (tables `fallbacks` and `languages`: CSV, XLSX sheet)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import report_fixtures as F
from openpyxl import load_workbook

from pipeline.report import stage as report_stage
from pipeline.report import tables as T

PARAMS = {"seed": 1, "report": {"top_quotes": 5}}
NOTE = "sentence scoring off above 5,000 answers"


def _sheet(batch: Path, title: str) -> list[tuple]:
    wb = load_workbook(batch / "report" / "report.xlsx", read_only=True)
    return [tuple(r) for r in wb[title].iter_rows(values_only=True)]


def test_fallbacks_table_lists_each_line_and_says_none_when_empty() -> None:
    empty = T.fallbacks_table({})
    assert empty.to_dict("records") == [{"stage": "", "fallback": "none"}]
    assert T.fallbacks_table(None).equals(empty)
    table = T.fallbacks_table({"clean": ["spaCy model missing: blank English used"], "tag": [NOTE, "x"]})
    assert table.values.tolist() == [["clean", "spaCy model missing: blank English used"], ["tag", NOTE],
                                     ["tag", "x"]]
    # a fallback line is text like any other output text: contact details never reach the report
    assert "jane.doe@example.org" not in T.fallbacks_table({"x": ["mail jane.doe@example.org"]}).to_string()


def test_languages_by_question_counts_current_answered_answers_with_shares() -> None:
    answers = pd.DataFrame({
        "response_id": ["r1", "r2", "r3", "r4", "r1", "r2", "r5"],
        "question_id": ["Q1", "Q1", "Q1", "Q1", "Q2", "Q2", "Q1"],
        "question_number": [1, 1, 1, 1, 2, 2, 1],
        "question_text": ["a"] * 7,
        "language": ["en", "fr", "en", "", "es", "es", "de"],
        "is_nonanswer": [False, False, False, False, False, True, False],
        "is_current": [True, True, True, True, True, True, False],
    })
    table = T.languages_by_question(answers)
    assert table.to_dict("records") == [
        {"question_id": "Q1", "language": "en", "answers": 2, "share_of_answers": 0.5},
        {"question_id": "Q1", "language": "fr", "answers": 1, "share_of_answers": 0.25},
        {"question_id": "Q1", "language": "und", "answers": 1, "share_of_answers": 0.25},
        {"question_id": "Q2", "language": "es", "answers": 1, "share_of_answers": 1.0},
    ]
    assert T.languages_by_question(answers.drop(columns=["language"])).empty


def test_report_shows_fallbacks_from_the_run_manifest(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "batch")
    manifest = {"stages": {}, "fallbacks": {"embed": [NOTE], "clean": ["=cmd|' /C calc'!A0 fallback"]}}
    report_stage.run(batch, PARAMS, manifest)
    csv = pd.read_csv(batch / "report" / "tables" / "fallbacks.csv", dtype=str, keep_default_na=False)
    assert csv["stage"].tolist() == ["embed", "clean"]
    assert csv["fallback"].iloc[0] == NOTE and not csv["fallback"].iloc[1].startswith("=")
    rows = _sheet(batch, "Fallbacks and scale switches")
    assert ("embed", NOTE) in rows[1:]
    assert not any(str(v).startswith("=") for row in rows for v in row if v is not None)
    written = json.loads((batch / "report" / "run_manifest.json").read_text(encoding="utf-8"))
    assert written["fallbacks"]["embed"] == [NOTE]
    for name in ("report.html", "report.md"):  # named at the top, next to the other notes
        text = (batch / "report" / name).read_text(encoding="utf-8")
        assert "Fallbacks and scale switches in this run" in text and f"embed: {NOTE}" in text, name


def test_wsis_report_alone_reads_fallbacks_from_the_recorded_stages(tmp_path: Path) -> None:
    """Without the runner (`wsis report`), the fallbacks come from the stage summaries in .stages.json."""
    batch = F.build_batch(tmp_path / "batch")
    (batch / ".stages.json").write_text(json.dumps({"clean": {"summary": {"fallbacks": ["blank spaCy"]}},
                                                     "tag": {"summary": {"answers": 3}}}), encoding="utf-8")
    report_stage.run(batch, PARAMS)
    assert ("clean", "blank spaCy") in _sheet(batch, "Fallbacks and scale switches")[1:]
    manifest = json.loads((batch / "report" / "run_manifest.json").read_text(encoding="utf-8"))
    assert manifest["fallbacks"] == {"clean": ["blank spaCy"]}


@pytest.mark.parametrize("drop", [(), ("answers_clean.parquet",)])
def test_empty_fallbacks_say_none_and_languages_sheet_matches_csv(tmp_path: Path, drop: tuple[str, ...]) -> None:
    batch = F.build_batch(tmp_path / "batch", drop=drop)
    report_stage.run(batch, PARAMS, {"stages": {}})
    assert _sheet(batch, "Fallbacks and scale switches")[1:] == [(None, "none")]
    assert "Fallbacks and scale switches in this run" not in (batch / "report" / "report.html").read_text()
    langs = pd.read_csv(batch / "report" / "tables" / "languages.csv", dtype=str, keep_default_na=False)
    rows = _sheet(batch, "Languages")
    assert len(rows) - 1 == len(langs)
    if not drop:
        assert set(langs["language"]) == {"en"} and len(langs) == langs["question_id"].nunique()


def test_appendix_of_html_and_markdown_renders_both_tables(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "batch")
    report_stage.run(batch, PARAMS, {"stages": {}, "fallbacks": {"tag": [NOTE]}})
    html = (batch / "report" / "report.html").read_text(encoding="utf-8")
    assert 'id="t-fallbacks"' in html and 'id="t-languages"' in html
    quality = html[html.index('<section id="quality">'):]
    assert quality.index('id="t-data_quality"') < quality.index('id="t-fallbacks"') < quality.index('id="t-languages"')
    md = (batch / "report" / "report.md").read_text(encoding="utf-8")
    appendix = md[md.index("Data quality"):]
    assert "Fallbacks and scale switches" in appendix and "Languages" in appendix


def test_switches_of_a_stage_summary_are_collected_with_its_fallbacks() -> None:
    from pipeline.provenance import collect_fallbacks

    stages = {"embed": {"summary": {"switches": ["embed.backend=auto: multilingual (34% not English)"],
                                    "fallbacks": []}},
              "tag": {"summary": {"fallbacks": ["old npz: sentences encoded here"], "switches": [NOTE]}},
              "clean": {"summary": {"answers": 3}}}
    assert collect_fallbacks(stages) == {
        "embed": ["embed.backend=auto: multilingual (34% not English)"],
        "tag": ["old npz: sentences encoded here", NOTE]}
