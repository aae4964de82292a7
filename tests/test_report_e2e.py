"""A crafted consultation (formulas, <script>, PII in answers and names) through `wsis run`: every report
output is inert. Runs the real stages (spaCy, embeddings, tagger), hence `slow`."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook

from pipeline import config, runner

pytestmark = pytest.mark.slow

FORMULA = '=HYPERLINK("http://evil.example","click")'
ROWS = [
    ("c1", "Q1", "<script>alert(1)</script> Broadband reached rural schools and clinics across the country.", FORMULA),
    ("c1", "Q2", f"{FORMULA} Affordability of devices remains the main barrier for poor households.", FORMULA),
    ("c2", "Q1", "Community networks connected villages; write to jane.doe@example.org or +44 20 7946 0958.",
     "@Open Networks"),
    ("c2", "Q2", "+cmd|' /C calc'!A0 funding for community networks is scarce and unpredictable.", "@Open Networks"),
    ("c3", "Q1", "Submarine cables reached the islands and broadband prices fell sharply for households.", "-Pacific"),
    ("c3", "Q2", "Digital skills for older people and teachers are still lacking in many places.", "-Pacific"),
    ("c4", "Q1", "Mobile money and digital identity brought financial services to millions of people.", "Uni"),
    ("c4", "Q2", "<img src=x onerror=alert(2)> Cybersecurity threats to critical infrastructure keep growing.", "Uni"),
]


def test_crafted_input_comes_out_inert(tmp_path: Path, isolated_cache: Path) -> None:
    model = runner.current_model_dir()
    if model.name == "tagger" or not model.is_dir():
        pytest.skip("no trained tagger model (run `wsis train-tagger`)")
    src = tmp_path / "crafted.csv"
    with open(src, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["response_id", "question_id", "question_text", "answer", "org_name", "org_type", "country"])
        for rid, qid, text, org in ROWS:
            w.writerow([rid, qid, f"Question {qid}?", text, org, "Civil society", "Kenya"])
    out = tmp_path / "crafted"
    result = runner.run_all([src], out, config.load_params())
    names = {p.name for p in result.report_files}
    assert {"report.html", "report.md", "report.xlsx", "run_manifest.json"} <= names
    report = out / "report"
    html = (report / "report.html").read_text(encoding="utf-8")
    md = (report / "report.md").read_text(encoding="utf-8")
    for text in (html, md):
        assert "<script" not in text.lower() and "<img" not in text.lower()
        assert "jane.doe@example.org" not in text and "7946" not in text
    assert "&lt;script&gt;" in html + md
    for path in (report / "tables").glob("*.csv"):
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                assert not any(c.startswith(("=", "+", "-", "@")) for c in row), (path.name, row)
    wb = load_workbook(report / "report.xlsx")
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f"
                assert not (isinstance(cell.value, str) and cell.value.startswith(("=", "+", "-", "@")))
