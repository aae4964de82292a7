"""Regression tests for the reliability defects of issue 10 in the runner, the CLI shell and the report outputs.

Each test is named after its defect number in the issue. Texts and names are invented.
"""

from __future__ import annotations

import errno
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import report_fixtures as F
from typer.testing import CliRunner

from pipeline import cli, runner
from pipeline.errors import InputError
from pipeline.report import stage as report_stage
from pipeline.safety import FORMULA_PREFIXES, md_cell

EMAILS = ("press.office@example.org", "j.smith+wsis@mail.example.co.uk")
PHONES = ("07911 123456", "555 123 4567", "+41 22 730 5111", "(555) 123-4567")
# what must never appear in an output file: the e-mail addresses and the phone numbers' digits in their formats
LEAK = re.compile("|".join(re.escape(x) for x in (*EMAILS, *PHONES)))
PARAMS = {"seed": 1, "report": {"top_quotes": 5}}


# ------------------------------------------------------------------------------------------- runner (defect 6)
def _double_stage(batch: Path, inputs: list[Path], calls: list[str]) -> runner.StageSpec:
    """A stage that reads raw input files like ingest does (through the runner's input listing)."""

    def call() -> dict:
        calls.append("ran")
        (batch / "out.txt").write_text("".join(p.read_text() for p in runner.expand_inputs(inputs)))
        return {}

    extra = tuple((f"input:{name}", path) for name, path in runner.input_files(inputs))
    return runner.StageSpec("read", (), ("out.txt",), ("read",), ("io",), call, extra)


@pytest.mark.parametrize("suffix", [".markdown", ".text", ".md", ".txt"])
def test_defect06_edited_inputs_with_any_read_extension_rerun(tmp_path: Path, suffix: str) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / f"position{suffix}").write_text("first version")
    batch = tmp_path / "batch"
    batch.mkdir()
    calls: list[str] = []
    assert runner.run_stage(_double_stage(batch, [raw], calls), batch, {"seed": 1}).status == "ran"
    (raw / f"position{suffix}").write_text("edited version")
    assert runner.run_stage(_double_stage(batch, [raw], calls), batch, {"seed": 1}).status == "ran"
    assert calls == ["ran", "ran"]


def test_defect06_skip_check_ignores_how_paths_are_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text("text")
    batch = tmp_path / "batch"
    batch.mkdir()
    calls: list[str] = []
    runner.run_stage(_double_stage(batch, [raw.resolve()], calls), batch.resolve(), {"seed": 1})
    monkeypatch.chdir(tmp_path)
    rel_batch = Path("batch")
    again = runner.run_stage(_double_stage(rel_batch, [Path("raw")], calls), rel_batch, {"seed": 1})
    assert again.status == "skipped"
    moved = tmp_path / "elsewhere" / "batch"
    moved.parent.mkdir()
    shutil.move(str(batch), moved)
    assert runner.run_stage(_double_stage(moved, [raw], calls), moved, {"seed": 1}).status == "skipped"
    assert calls == ["ran"]


def test_defect06_batch_artefacts_keyed_by_name_not_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
        pd.DataFrame({"x": [1]}).to_csv(d / "in.csv", index=False)
    spec = runner.StageSpec("s", ("in.csv",), (), ("s",), ("io",), lambda: {})
    assert runner.stage_key(spec, a, {"seed": 1}) == runner.stage_key(spec, b, {"seed": 1})


# ---------------------------------------------------------------------------------- CLI (defects 7 and 11)
def _wsis(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, timeout=300,
                          check=False)


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    junk = tmp_path / "junk.xlsx"
    junk.write_bytes(b"PK\x03\x04 this is not a workbook" * 10)
    header = tmp_path / "header_only.csv"
    header.write_text("response_id,question_id,answer\n")
    return {"empty": empty, "junk_xlsx": junk, "header_only": header, "missing": tmp_path / "does-not-exist.csv"}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["empty", "junk_xlsx", "header_only", "missing"])
def test_defect07_run_on_unreadable_input_fails_clearly_without_traceback(tmp_path: Path, kind: str) -> None:
    path = _bad_inputs(tmp_path)[kind]
    done = _wsis("run", str(path), "--out", str(tmp_path / "out"))
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    message = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert message and path.name in message[0], done.stderr
    assert not (tmp_path / "out" / "report").exists()  # no later stage ran


def test_defect07_run_stops_after_ingest_when_nothing_was_read(tmp_path: Path) -> None:
    path = _bad_inputs(tmp_path)["header_only"]
    with pytest.raises(InputError, match="nothing could be read"):
        runner.run_all([path], tmp_path / "out", {"seed": 1, "ingest": {"questionnaire": "itu_wsis20"}})
    assert (tmp_path / "out" / "quarantine.csv").exists()
    assert not (tmp_path / "out" / "answers_clean.parquet").exists()


def test_defect11_out_that_is_a_file_is_a_clear_error(tmp_path: Path) -> None:
    target = tmp_path / "taken"
    target.write_text("not a folder")
    result = CliRunner().invoke(cli.app, ["ingest", str(F_SAMPLE), "--out", str(target)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "taken" in result.output and ("not a folder" in result.output or "is a file" in result.output)


F_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "raw" / "wsis20-sample"


@pytest.mark.parametrize(("err", "words"), [(errno.ENOSPC, "no space left"), (errno.EROFS, "read-only"),
                                            (errno.EACCES, "permission denied")])
def test_defect11_write_faults_are_one_line_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, err: int,
                                                   words: str) -> None:
    from pipeline import io

    def fail(*_args: object, **_kwargs: object) -> None:
        raise OSError(err, "fault", str(tmp_path / "out" / "answers.parquet"))

    monkeypatch.setattr(io, "write_parquet", fail)
    result = CliRunner().invoke(cli.app, ["ingest", str(F_SAMPLE), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert words in result.output and "answers.parquet" in result.output


def test_defect11_unexpected_failure_is_reported_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.ingest import stage

    def boom(*_a: object, **_k: object) -> None:
        raise KeyError("answers")

    monkeypatch.setattr(stage, "run", boom)
    result = CliRunner().invoke(cli.app, ["ingest", str(F_SAMPLE), "--out", "/tmp/never-written"])
    assert result.exit_code == 3
    assert "Traceback" not in result.output and "internal error" in result.output and "--verbose" in result.output


# -------------------------------------------------------------------------------- outputs (12, 13, 16)
def _contact_batch(tmp_path: Path) -> Path:
    """The fixture batch with contact details where the report shows metadata, not only answer text."""
    batch = F.build_batch(tmp_path / "contacts-batch")
    answers = pd.read_parquet(batch / "answers.parquet")
    answers.loc[answers["response_id"] == "r1", "org_name"] = f"Ministry of Digital Affairs ({EMAILS[0]})"
    answers.loc[answers["response_id"] == "r3", "org_name"] = f"Northfield University, tel. {PHONES[0]}"
    answers.loc[answers["question_id"] == "Q1", "question_text"] = f"What worked well? Questions to {EMAILS[1]}"
    answers.loc[answers["response_id"] == "r5", "source_file"] = f"reply from {EMAILS[0]}.txt"
    answers.to_parquet(batch / "answers.parquet", index=False)
    clean = pd.read_parquet(batch / "answers_clean.parquet")
    for col in ("org_name", "question_text", "source_file"):
        clean[col] = clean[["response_id", "question_id"]].merge(answers, how="left")[col].to_numpy()
    clean.to_parquet(batch / "answers_clean.parquet", index=False)
    q = pd.DataFrame([
        {"source_file": f"call me on {PHONES[1]}.csv", "record": "row 3", "reason": "unterminated quote",
         "excerpt": f"=SUM(A1) reach us at {PHONES[2]} or {PHONES[3]}"},
        {"source_file": "+notes.csv", "record": "file", "reason": "empty file", "excerpt": "@import"},
    ])
    q.to_csv(batch / "quarantine.csv", index=False)
    return batch


def _output_texts(out_dir: Path) -> dict[str, str]:
    texts: dict[str, str] = {}
    for path in sorted(out_dir.rglob("*")):
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as zf:
                texts[str(path)] = " ".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist()
                                            if n.endswith(".xml"))
        elif path.is_file():
            texts[str(path)] = path.read_text(encoding="utf-8")
    return texts


def test_defect12_no_email_or_phone_in_any_report_output(tmp_path: Path) -> None:
    batch = _contact_batch(tmp_path)
    manifest = {"inputs": {f"data/raw/reply from {EMAILS[0]}.txt": "abc"}, "stages": {},
                "note": f"run by {EMAILS[1]}"}
    report_stage.run(batch, PARAMS, manifest)
    texts = _output_texts(batch / "report")
    assert len(texts) >= 5
    leaks = {name: LEAK.findall(text) for name, text in texts.items() if LEAK.search(text)}
    assert not leaks
    md = texts[str(batch / "report" / "report.md")]
    # redacted, not dropped: the rows are still there (Markdown escapes the placeholder's brackets)
    assert re.search(r"\\?\[email\\?\]", md) and re.search(r"\\?\[phone\\?\]", md)


def test_defect12_every_csv_the_pipeline_writes_is_redacted(tmp_path: Path) -> None:
    from pipeline import io

    df = pd.DataFrame({"id": ["a"], "org": [f"Contact {EMAILS[1]} / {PHONES[0]}"], "n": [3]})
    io.write_csv(df, tmp_path / "x.csv")
    text = (tmp_path / "x.csv").read_text()
    assert not LEAK.search(text) and "[email]" in text and ",3" in text


def _live_formula_cells(values: list[str]) -> list[str]:
    return [v for v in values if v.startswith(FORMULA_PREFIXES)]


def test_defect13_batch_quarantine_csv_is_formula_neutralised(tmp_path: Path) -> None:
    from pipeline.ingest import stage

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "=cmd.xlsx").write_bytes(b"not a workbook")
    (raw / "@list.csv").write_text("")
    stage.run([raw / "=cmd.xlsx", raw / "@list.csv"], tmp_path / "out",
              {"seed": 1, "ingest": {"questionnaire": "itu_wsis20"}})
    q = pd.read_csv(tmp_path / "out" / "quarantine.csv", dtype=str, keep_default_na=False)
    assert len(q) >= 2
    cells = [str(v) for v in q.to_numpy().ravel()] + list(q.columns)
    assert not _live_formula_cells(cells)
    assert any(v.startswith("'=") for v in cells)


def test_defect13_report_quarantine_outputs_have_no_live_formulas(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    batch = _contact_batch(tmp_path)
    report_stage.run(batch, PARAMS)
    table = pd.read_csv(batch / "report" / "tables" / "quarantine.csv", dtype=str, keep_default_na=False)
    assert not _live_formula_cells([str(v) for v in table.to_numpy().ravel()])
    wb = load_workbook(batch / "report" / "report.xlsx")
    live = [c.value for ws in wb.worksheets for row in ws.iter_rows() for c in row
            if isinstance(c.value, str) and c.value.startswith(FORMULA_PREFIXES)]
    assert not live


def test_defect16_bare_urls_are_not_live_links_in_markdown() -> None:
    cell = md_cell("See https://evil.example/phish?x=1 and www.example.org/page for details")
    assert "`https://evil.example/phish?x=1`" in cell and "`www.example.org/page`" in cell
    outside_code = re.sub(r"`[^`]*`", "", cell)
    assert "://" not in outside_code and "www." not in outside_code


def test_defect16_bidi_overrides_never_reach_html_or_markdown(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "bidi-batch")
    answers = pd.read_parquet(batch / "answers.parquet")
    answers.loc[answers["response_id"] == "r2", "org_name"] = "Open \u202eecnaillA\u202c Networks \u2066x\u2069"
    answers.to_parquet(batch / "answers.parquet", index=False)
    report_stage.run(batch, PARAMS)
    for name in ("report.html", "report.md"):
        text = (batch / "report" / name).read_text(encoding="utf-8")
        assert not re.search("[\u202a-\u202e\u2066-\u2069]", text), name
    manifest = json.loads((batch / "report" / "run_manifest.json").read_text())
    assert manifest["report"]["files"]


def test_defect04_report_says_what_was_superseded_and_why(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "superseded-batch")
    answers = pd.read_parquet(batch / "answers.parquet")
    old = answers["response_id"] == "r6"
    answers["superseded_by"] = ""
    answers["superseded_reason"] = ""
    answers.loc[old, "superseded_by"] = "r2"
    answers.loc[old, "superseded_reason"] = "re-submission: same organisation (Open Networks Alliance); r2 was later"
    answers.to_parquet(batch / "answers.parquet", index=False)
    (batch / "answers_clean.parquet").unlink()  # the report falls back to answers.parquet
    report_stage.run(batch, PARAMS)
    table = pd.read_csv(batch / "report" / "tables" / "superseded.csv", dtype=str, keep_default_na=False)
    assert table[["response_id", "superseded_by"]].values.tolist() == [["r6", "r2"]]
    assert "same organisation" in table["superseded_reason"].iloc[0]
    md = (batch / "report" / "report.md").read_text(encoding="utf-8")
    assert "Superseded submissions" in md and "same organisation (Open Networks Alliance)" in md


def test_defect05_missing_stakeholder_type_is_not_given_in_the_report(tmp_path: Path) -> None:
    batch = F.build_batch(tmp_path / "not-given-batch")
    for name in ("answers.parquet", "answers_clean.parquet"):
        df = pd.read_parquet(batch / name)
        df.loc[df["response_id"] == "r5", ["org_type", "stakeholder_group"]] = ""
        df.to_parquet(batch / name, index=False)
    report_stage.run(batch, PARAMS)
    prof = pd.read_csv(batch / "report" / "tables" / "respondents.csv", dtype=str, keep_default_na=False)
    groups = dict(zip(prof.loc[prof["dimension"] == "stakeholder group", "value"],
                      prof.loc[prof["dimension"] == "stakeholder group", "submissions"], strict=True))
    assert groups.get("not given") == "1" and "other" not in groups


def test_defect12_identifier_cells_keep_phone_shaped_ids_but_never_emails(tmp_path: Path) -> None:
    from pipeline import io

    df = pd.DataFrame({"response_id": ["01234567890", f"reply from {EMAILS[0]}"], "org": ["07911 123456", "x"]})
    io.write_csv(df, tmp_path / "ids.csv")
    back = pd.read_csv(tmp_path / "ids.csv", dtype=str, keep_default_na=False)
    assert back["response_id"].tolist() == ["01234567890", "reply from [email]"]
    assert back["org"].tolist() == ["[phone]", "x"]


def test_run_refuses_a_bad_coded_examples_file_before_any_stage(tmp_path: Path) -> None:
    frame = tmp_path / "frame.yaml"
    frame.write_text("- {id: access, label: Access, description: Connectivity and affordable access}\n")
    coded = tmp_path / "coded.csv"
    coded.write_text("answer,themes\nBroadband for all,access;nonexistent\n")
    with pytest.raises(InputError, match="nonexistent"):
        runner.run_all([F_SAMPLE], tmp_path / "out", {"seed": 1}, framework=frame, examples=coded)
    assert not (tmp_path / "out" / "answers.parquet").exists()
