"""`wsis themes --input FILE --out DIR` end to end (real ingest, clean and embed stages)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from themes_synth import synthetic_answers
from typer.testing import CliRunner

from pipeline.cli import app

pytestmark = pytest.mark.slow


def test_themes_on_a_long_file(tmp_path: Path, isolated_cache: Path) -> None:
    src = tmp_path / "answers.csv"
    df = synthetic_answers(n_respondents=24)
    df.loc[0, "answer"] = "=SUM(A1:A9) " + df.loc[0, "answer"]
    df.drop(columns="gold").to_csv(src, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["themes", "--input", str(src), "--out", str(out)])
    assert result.exit_code == 0, result.output
    themes = pd.read_csv(out / "themes.csv", dtype=str, keep_default_na=False)
    assert {"theme_id", "label", "keywords", "size", "scope", "origin", "quotes"} <= set(themes.columns)
    ta = pd.read_csv(out / "theme_assignments.csv", dtype=str, keep_default_na=False)
    assert list(ta.columns[:3]) == ["response_id", "question_id", "themes"]
    assert len(ta) == len(df) and (ta["themes"] != "").mean() > 0.9
    assert any(c.startswith("score_") for c in ta.columns)
    known = set(themes["theme_id"])
    assert all(t in known for s in ta["themes"] for t in s.split(";") if t)
    for name in ("themes", "theme_assignments", "segment_assignments", "theme_by_question"):
        assert (out / f"{name}.parquet").exists()
    # framework mode on the same file
    frame = Path(__file__).resolve().parents[1] / "data" / "frameworks" / "wsis20_example.yaml"
    result = CliRunner().invoke(app, ["themes", "--input", str(src), "--out", str(out), "--framework", str(frame)])
    assert result.exit_code == 0, result.output
    ta = pd.read_csv(out / "theme_assignments.csv", dtype=str, keep_default_na=False)
    ids = {"connectivity", "ai", "rights-trust", "governance", "wsis-future", "skills-inclusion", "financing"}
    assert all(t in ids for s in ta["themes"] for t in s.split(";") if t)
    assert {"connectivity", "rights-trust", "skills-inclusion"} <= {t for s in ta["themes"] for t in s.split(";")}


@pytest.mark.shared
def test_a_multilingual_file_gets_the_encoder_its_batch_would(tmp_path: Path, isolated_cache: Path,
                                                              shared_dir: Path) -> None:
    """`wsis themes --input FILE` chooses the encoder as the embed stage does (`embed.backend: auto`): real EU AI
    White Paper answers to question 18 (about a fifth not in English) get the multilingual encoder, and the
    choice is reported; real English answers (AU Q20) keep the English one."""
    from pipeline import config
    from pipeline.themes.stage import run_on_file

    eu_file = shared_dir / "corpora" / "eu-ai-white-paper-consultation-2020" / "open_ended_long.csv"
    au_file = shared_dir / "corpora" / "au-safe-responsible-ai-2023" / "srai_shortened.csv"
    if not (eu_file.exists() and au_file.exists()):
        pytest.skip("EU or AU corpus absent")
    eu = pd.read_csv(eu_file)
    eu = eu[eu["question_col"] == 18].dropna(subset=["answer"]).sort_values("Reference").head(240)
    src = tmp_path / "eu.csv"
    pd.DataFrame({"response_id": eu["Reference"].astype(str), "question_id": "q18", "question_text": eu["question"],
                  "answer": eu["answer"]}).to_csv(src, index=False)
    summary = run_on_file(src, tmp_path / "eu_out", config.load_params())
    assert summary["embed_backend"] == "multilingual", summary
    assert any("multilingual encoder" in s for s in summary["switches"]), summary["switches"]
    au = pd.read_csv(au_file)
    au = au[au["sub_label"].str.startswith("Q20")].dropna(subset=["sub_value"]).head(120)
    src = tmp_path / "au.csv"
    pd.DataFrame({"response_id": au["sub_num"].astype(str), "question_id": "Q20", "question_text": "Q20",
                  "answer": au["sub_value"]}).to_csv(src, index=False)
    summary = run_on_file(src, tmp_path / "au_out", config.load_params())
    assert summary["embed_backend"] != "multilingual"
