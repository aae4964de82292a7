"""The report stage on a hand-built batch: figures, reconciliation, safety of every output, robustness."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import report_fixtures as F
from openpyxl import load_workbook

from pipeline.io import sha256_file
from pipeline.report import ReconciliationError, build_report, load_batch
from pipeline.report import stage as report_stage
from pipeline.report import tables as T
from pipeline.report.safety import md_cell, neutralise_cell, neutralise_frame

PARAMS = {"seed": 1, "report": {"top_quotes": 5}}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    batch = F.build_batch(tmp_path_factory.mktemp("batch") / "fixture-batch")
    summary = report_stage.run(batch, PARAMS)
    return batch, summary


def _csv(batch: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(batch / "report" / "tables" / f"{name}.csv", dtype=str, keep_default_na=False)


def test_writes_every_output(built: tuple[Path, dict]) -> None:
    batch, summary = built
    out = batch / "report"
    for name in ("report.xlsx", "report.md", "report.html", "run_manifest.json"):
        assert (out / name).stat().st_size > 0, name
    assert summary["tables"] == len(list((out / "tables").glob("*.csv"))) >= 15
    assert summary["submissions"] == F.N_CURRENT
    assert summary["answered"] == F.N_ANSWERED


def test_theme_counts_use_current_answering_respondents(built: tuple[Path, dict]) -> None:
    batch, _ = built
    tbq = _csv(batch, "themes_by_question")
    row = tbq[(tbq["question_id"] == "Q1") & (tbq["theme_id"] == "connectivity")].iloc[0]
    assert int(row["respondents"]) == F.N_CONNECTIVITY_Q1  # the superseded r6 does not count
    assert int(row["answering_respondents"]) == F.N_ANSWERING_Q1
    assert float(row["share_of_answering"]) == pytest.approx(1.0)
    q2 = tbq[tbq["question_id"] == "Q2"]
    # r3/Q2 is empty: 4 answering respondents; 4 of them in the funding theme
    assert set(q2["answering_respondents"].astype(int)) == {4}
    assert int(q2.loc[q2["theme_id"] == "Q2.emergent-1", "respondents"].iloc[0]) == 4
    q3 = tbq[tbq["question_id"] == "Q3"]
    assert q3["theme_id"].tolist()[-1] == "other"  # the other bucket comes last
    assert list(dict.fromkeys(tbq["question_id"])) == ["Q1", "Q2", "Q3"]


def test_stakeholder_and_region_shares(built: tuple[Path, dict]) -> None:
    batch, _ = built
    sh = _csv(batch, "themes_by_stakeholder")
    row = sh[(sh["question_id"] == "Q2") & (sh["theme_id"] == "Q2.emergent-1")].iloc[0]
    assert int(row["civil society (n)"]) == 2 and float(row["civil society (share)"]) == pytest.approx(1.0)
    assert int(row["government (n)"]) == 1
    assert "academia (n)" in sh.columns and float(row["academia (share)"]) == 0.0  # academia did not answer Q2
    rg = _csv(batch, "themes_by_region")
    row = rg[(rg["question_id"] == "Q1") & (rg["theme_id"] == "connectivity")].iloc[0]
    assert [int(row[f"{r} (n)"]) for r in T.REGIONS] == [1, 1, 1, 1, 1]


def test_data_quality_reconciles_with_ingest(built: tuple[Path, dict]) -> None:
    batch, _ = built
    dq = _csv(batch, "data_quality").set_index("measure")["value"]
    assert int(dq["submissions read"]) == F.N_SUBMISSIONS_READ
    assert int(dq["current submissions"]) == F.N_CURRENT
    assert int(dq["answers read"]) == F.N_ANSWERS
    assert int(dq["non-answers"]) == F.N_NONANSWERS
    assert int(dq["answered, in the 'other' bucket"]) == F.N_OTHER
    assert int(dq["quarantined records"]) == 1
    assert int(dq["exact duplicate groups"]) == 1
    rec = _csv(batch, "reconciliation")
    assert len(rec) >= 12 and set(rec["ok"]) == {"True"}


def test_reconciliation_fails_loudly(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "b")
    clean = pd.read_parquet(batch / "answers_clean.parquet")
    clean.iloc[:-1].to_parquet(batch / "answers_clean.parquet", index=False)  # one answer lost after ingest
    with pytest.raises(ReconciliationError, match="answers in clean = answers from ingest"):
        report_stage.run(batch, PARAMS)
    assert not (batch / "report" / "report.html").exists()


def test_reconciliation_checks_ingest_summary(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "b")
    manifest = {"stages": {"ingest": {"summary": {"answers": F.N_ANSWERS + 1}}}}
    with pytest.raises(ReconciliationError, match="ingest summary"):
        report_stage.run(batch, PARAMS, manifest)


def test_action_line_sdg_tables_mark_the_matrix(built: tuple[Path, dict]) -> None:
    batch, _ = built
    pairs = _csv(batch, "action_line_sdg_pairs").set_index(["action_line", "sdg"])
    assert int(pairs.loc[("C2", "9"), "answers"]) == 8
    assert pairs.loc[("C2", "9"), "in_wsis_sdg_matrix"] == "yes"
    assert int(pairs.loc[("C2", "10"), "answers"]) == 1 and pairs.loc[("C2", "10"), "in_wsis_sdg_matrix"] == "no"
    assert len(pairs) == 19 * 17
    wide = _csv(batch, "action_line_x_sdg").set_index("action_line")
    assert int(wide.loc["C2", "SDG 9"]) == 8
    alq = _csv(batch, "action_lines_by_question").set_index("action_line")
    assert [int(alq.loc["C2", q]) for q in ("Q1", "Q2", "Q3")] == [5, 3, 0]
    sdg = _csv(batch, "sdgs_by_question").set_index("sdg")
    assert int(sdg.loc["4", "answers"]) == 3  # r1/Q1, r1/Q3, r3/Q3
    md = (batch / "report" / "report.md").read_text(encoding="utf-8")
    assert "| C2 |" in md and "8 \\*" in md


def test_quotes_are_traced_and_redacted(built: tuple[Path, dict]) -> None:
    batch, _ = built
    quotes = _csv(batch, "quotes")
    assert {"response_id", "org_name", "org_type", "country", "quote"} <= set(quotes.columns)
    assert quotes.groupby(["question_id", "theme_id"]).size().max() <= 5
    assert "r6" not in set(quotes["response_id"])  # superseded submissions are not quoted
    r2 = quotes[(quotes["response_id"] == "r2") & (quotes["question_id"] == "Q1")].iloc[0]
    assert r2["org_name"] == "Open Networks Alliance" and r2["country"] == "Brazil"
    assert "[email]" in r2["quote"]
    for path in (batch / "report").rglob("*"):
        if path.is_file() and path.suffix in {".csv", ".md", ".html", ".json"}:
            assert F.EMAIL not in path.read_text(encoding="utf-8"), path


def test_quotes_redacted_even_without_segments(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "b", drop=("segments.parquet",))
    report_stage.run(batch, PARAMS)
    text = (batch / "report" / "tables" / "quotes.csv").read_text(encoding="utf-8")
    assert "Community networks grew" in text and F.EMAIL not in text


def test_csv_cells_are_formula_safe(built: tuple[Path, dict]) -> None:
    batch, _ = built
    seen_hostile = 0
    for path in (batch / "report" / "tables").glob("*.csv"):
        with open(path, encoding="utf-8", newline="") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), (path.name, cell)
                    seen_hostile += cell.startswith("'=") or cell.startswith("'@")
    assert seen_hostile >= 3  # the hostile organisation name and quarantine excerpt came through, inert


def test_xlsx_is_for_people_and_inert(built: tuple[Path, dict]) -> None:
    batch, _ = built
    wb = load_workbook(batch / "report" / "report.xlsx")
    assert wb.sheetnames[0] == "Index"
    index = wb["Index"]
    listed = [index.cell(row=r, column=1).value for r in range(5, index.max_row + 1)]
    assert listed == wb.sheetnames[1:]
    ws = wb["Themes by question"]
    assert ws.freeze_panes == "B2" and ws.auto_filter.ref
    header = [c.value for c in ws[1]]
    share_col = header.index("Share of answering respondents") + 1
    assert ws.cell(row=2, column=share_col).number_format == "0.0%"
    assert ws.column_dimensions["B"].width >= 20
    hostile = 0
    for sheet in wb.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    assert not cell.value.startswith(("=", "+", "-", "@")), (sheet.title, cell.value)
                    hostile += "HYPERLINK" in cell.value
    assert hostile >= 1
    linked = wb["Action Line x SDG"]
    header = [c.value for c in linked[1]]
    c2_row = next(r for r in range(2, linked.max_row + 1) if linked.cell(row=r, column=1).value == "C2")
    assert linked.cell(row=c2_row, column=header.index("SDG 9") + 1).fill.fgColor.rgb.endswith("FCE4B6")
    assert linked.cell(row=c2_row, column=header.index("SDG 10") + 1).fill.fgColor.rgb != "00FCE4B6"


def test_html_and_markdown_escape_everything(built: tuple[Path, dict]) -> None:
    batch, _ = built
    html = (batch / "report" / "report.html").read_text(encoding="utf-8")
    md = (batch / "report" / "report.md").read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "").replace("http://evil.example", "")
    assert 'src="http' not in html and "<link" not in html
    assert "Content-Security-Policy" in html
    assert "<script" not in md.lower() and "&lt;script&gt;" in md
    for chart in ("chart-bars", "chart-heatmap", "chart-map"):
        assert chart in html
    assert html.count('class="cell linked"') >= 1


def test_manifest_records_outputs(built: tuple[Path, dict], tmp_path: Path) -> None:
    batch, _ = built
    man = json.loads((batch / "report" / "run_manifest.json").read_text(encoding="utf-8"))
    assert man["packages"]["pandas"] == pd.__version__
    assert man["report"]["reconciliation"]["ok"] is True
    for rel, digest in man["report"]["files"].items():
        assert sha256_file(batch / "report" / rel) == digest
    assert "themes.parquet" in man["batch_artefacts"]
    given = {"stages": {"ingest": {"seconds": 1.5, "summary": {"answers": F.N_ANSWERS}}}, "packages": {"x": "1"}}
    other = F.build_batch(tmp_path / "b2")
    report_stage.run(other, PARAMS, given)
    man2 = json.loads((other / "report" / "run_manifest.json").read_text(encoding="utf-8"))
    assert man2["stages"]["ingest"]["seconds"] == 1.5 and man2["packages"] == {"x": "1"}
    assert "report" in man2 and "report" not in given  # the caller's dict is not mutated


@pytest.mark.parametrize("drop", [
    ("tags.parquet", "tag_consistency.parquet"),
    ("themes.parquet", "theme_assignments.parquet", "segment_assignments.parquet", "theme_by_question.parquet"),
    ("embeddings.npz", "segments.parquet", "quarantine.csv"),
    ("answers_clean.parquet", "segments.parquet", "themes.parquet", "theme_assignments.parquet",
     "segment_assignments.parquet", "theme_by_question.parquet", "tags.parquet", "tag_consistency.parquet",
     "embeddings.npz"),
])
def test_optional_artefacts_may_be_absent(tmp_path: Path, drop: tuple[str, ...]) -> None:
    batch = F.build_batch(tmp_path / "b", drop=drop)
    summary = report_stage.run(batch, PARAMS)
    assert summary["missing_artefacts"] == len(drop)
    md = (batch / "report" / "report.md").read_text(encoding="utf-8")
    dq = _csv(batch, "data_quality")
    assert set(drop) <= set(dq.loc[dq["section"] == "missing artefacts", "measure"])
    if "tags.parquet" in drop:
        assert not (batch / "report" / "tables" / "action_line_x_sdg.csv").exists()
        assert "tags.parquet is absent" in md
    if "theme_assignments.parquet" in drop:
        tbq = _csv(batch, "themes_by_question")
        assert set(tbq["theme_id"]) == {"other"}
    if "answers_clean.parquet" in drop:  # only ingest ran: empty answers are the non-answers
        dq = dq.set_index("measure")["value"]
        assert int(dq["non-answers"]) == 1 and int(dq["answered (substantive)"]) == F.N_CURRENT_ANSWERS - 1
        assert F.EMAIL not in (batch / "report" / "report.html").read_text(encoding="utf-8")


def test_stale_tables_are_removed(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "b")
    report_stage.run(batch, PARAMS)
    assert (batch / "report" / "tables" / "sdgs_by_question.csv").exists()
    (batch / "tags.parquet").unlink()
    report_stage.run(batch, PARAMS)
    assert not (batch / "report" / "tables" / "sdgs_by_question.csv").exists()


def test_deterministic_and_pure(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "b")
    loaded = load_batch(batch)
    before = {k: getattr(loaded, k).copy() for k in ("answers", "answers_clean", "themes", "tags")}
    first = build_report(loaded, PARAMS)
    second = build_report(loaded, PARAMS)
    for k, df in before.items():
        pd.testing.assert_frame_equal(getattr(loaded, k), df)
    for a, b in zip(first.tables, second.tables, strict=True):
        pd.testing.assert_frame_equal(a.df, b.df)
    pd.testing.assert_frame_equal(first.answer_map, second.answer_map)
    assert len(first.answer_map) == F.N_ANSWERED
    # the map separates themes: answers of the same theme are closer than answers of different themes
    m = first.answer_map.set_index("answer_id")
    same = abs(m.loc["r1::Q1", "x"] - m.loc["r3::Q1", "x"]) + abs(m.loc["r1::Q1", "y"] - m.loc["r3::Q1", "y"])
    diff = abs(m.loc["r1::Q1", "x"] - m.loc["r4::Q2", "x"]) + abs(m.loc["r1::Q1", "y"] - m.loc["r4::Q2", "y"])
    assert same < diff


def test_missing_answers_is_an_input_error(tmp_path: Path) -> None:
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="answers.parquet"):
        report_stage.run(tmp_path, PARAMS)


def test_safety_helpers() -> None:
    assert neutralise_cell("=1+1") == "'=1+1"
    assert neutralise_cell("\tx") == "'\tx" and neutralise_cell("@a") == "'@a"
    assert neutralise_cell("plain") == "plain" and neutralise_cell(-3) == -3
    df = pd.DataFrame({"a": ["-x", "y"], "n": [-1, 2]})
    out = neutralise_frame(df)
    assert out["a"].tolist() == ["'-x", "y"] and out["n"].tolist() == [-1, 2]
    assert df["a"].tolist() == ["-x", "y"]
    assert md_cell("a | b <i>x</i>\nnext") == "a \\| b &lt;i&gt;x&lt;/i&gt; next"


def test_report_on_processed_sample_batch(tmp_path: Path) -> None:
    """When the sample batch has been processed (`make run`), its report reconciles and names every theme."""
    from pipeline import config

    src = config.PROCESSED_DIR / config.SAMPLE_BATCH_DIR.name
    needed = ("answers.parquet", "answers_clean.parquet", "themes.parquet", "theme_assignments.parquet", "tags.parquet")
    if not all((src / n).exists() for n in needed):
        pytest.skip("the sample batch has not been processed (run `make run`)")
    batch = tmp_path / src.name
    batch.mkdir()
    for p in src.iterdir():
        if p.is_file() and not p.name.startswith("."):
            shutil.copy2(p, batch / p.name)
    summary = report_stage.run(batch, PARAMS)
    answers = pd.read_parquet(batch / "answers.parquet")
    assert summary["submissions"] == answers.loc[answers["is_current"], "response_id"].nunique()
    rec = _csv(batch, "reconciliation")
    assert set(rec["ok"]) == {"True"}


def test_long_inputs_without_question_numbers(tmp_path: Path) -> None:
    """Canonical long files have no question numbers (null Int64): questions fall back to natural id order."""
    batch = F.build_batch(tmp_path / "b")
    for name in ("answers.parquet", "answers_clean.parquet"):
        df = pd.read_parquet(batch / name)
        df["question_number"] = pd.array([pd.NA] * len(df), dtype="Int64")
        df.to_parquet(batch / name, index=False)
    report_stage.run(batch, PARAMS)
    tbq = _csv(batch, "themes_by_question")
    assert list(dict.fromkeys(tbq["question_id"])) == ["Q1", "Q2", "Q3"]


def test_map_is_sampled_for_big_batches(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "b")
    params = {"seed": 3, "report": {"top_quotes": 3, "map_max_points": 5}}
    first = build_report(load_batch(batch), params)
    second = build_report(load_batch(batch), params)
    assert len(first.answer_map) == 5
    pd.testing.assert_frame_equal(first.answer_map, second.answer_map)
    assert any("sample of 5" in n for n in first.notes)
    assert first.table("quotes").groupby(["question_id", "theme_id"]).size().max() <= 3


def test_xlsx_text_limits() -> None:
    from pipeline.report.safety import xlsx_text

    assert xlsx_text("a\x00b\x1fc") == "abc"
    assert len(xlsx_text("x" * 40_000)) == 32_000
    assert xlsx_text("=1") == "'=1" and xlsx_text(5) == 5


def test_report_files_are_readable_by_others(built: tuple[Path, dict]) -> None:
    import os
    import stat

    batch, _ = built
    mask = os.umask(0)
    os.umask(mask)
    if mask & stat.S_IROTH:
        pytest.skip("umask hides files from others")
    for name in ("report.html", "report.xlsx", "run_manifest.json", "tables/quotes.csv"):
        assert (batch / "report" / name).stat().st_mode & stat.S_IROTH, name


def test_answer_map_is_the_principal_plane_of_real_answers_in_any_chunking(au_question, isolated_cache, monkeypatch):
    """The map's axes come from a chunked scatter matrix (memory at 50k answers): on real AU answers the
    coordinates are those of an SVD of all vectors at once (to the 5 decimals the map keeps), also 7 at a time."""
    import numpy as np

    from pipeline import config
    from pipeline.embed import encode

    raw = au_question("q20")[0].reset_index(drop=True)
    answers = raw.assign(answer_id=[f"a{i}" for i in range(len(raw))], response_id=raw["response_id"].astype(str),
                         is_current=True, is_nonanswer=False)
    vecs = encode(answers["answer"].astype(str).tolist(), config.load_params(), isolated_cache)
    emb = {"answer_ids": answers["answer_id"].to_numpy(), "answer_vectors": vecs}
    at_once = T.answer_map(answers, emb, None)
    centred = vecs.astype(np.float64) - vecs.astype(np.float64).mean(axis=0)
    vt = np.linalg.svd(centred, full_matrices=False)[2][:2]
    vt *= np.sign(vt[np.arange(2), np.abs(vt).argmax(axis=1)])[:, None]
    expected = centred @ vt.T
    assert np.allclose(at_once[["x", "y"]].to_numpy(), expected, atol=2e-5)
    monkeypatch.setattr(T, "MAP_CHUNK", 7)
    pd.testing.assert_frame_equal(T.answer_map(answers, emb, None), at_once)
    assert at_once["x"].std() > 0.05 and len(at_once) == len(answers)


def test_long_tables_are_shared_within_one_report_build_only(tmp_path: Path) -> None:
    """Inside `shared_intermediates` the answers x themes table is computed once per pair of frames and each caller
    gets its own copy; other frames, and calls outside it, compute afresh (same results either way)."""
    from unittest import mock

    b = load_batch(F.build_batch(tmp_path / "b"))
    answers, assign = T.base_answers(b), b.theme_assignments
    fresh = T.answer_themes(answers, assign)
    with mock.patch.object(T, "_answer_themes", wraps=T._answer_themes) as computed:
        with T.shared_intermediates():
            first = T.answer_themes(answers, assign)
            first["theme_id"] = "changed by a caller"
            second = T.answer_themes(answers, assign)
            fewer = assign.iloc[:-1]
            third = T.answer_themes(answers, fewer)
        assert computed.call_count == 2  # once per pair of frames
        T.answer_themes(answers, assign)
        assert computed.call_count == 3  # outside a build nothing is kept
    pd.testing.assert_frame_equal(second, fresh)
    pd.testing.assert_frame_equal(third, T._answer_themes(answers, fewer))
    report = build_report(b, PARAMS)
    assert report.headline["other_bucket"] == int(fresh.loc[fresh["theme_id"] == T.OTHER, "answer_id"].nunique())
