"""Analyst edits on a real corpus through `wsis run`: rename, merge and split are applied on the re-run, every
table follows the edited themes, the report still reconciles, and the edit log is in the report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline import config, runner

pytestmark = [pytest.mark.slow, pytest.mark.shared]


def _bc_long(shared_dir: Path, path: Path) -> Path:
    df = pd.read_csv(shared_dir / "corpora/bc-ai-survey-2025/bc_ai_survey_responses.csv", dtype=str,
                     keep_default_na=False)
    col = "Q17_Advice_BC_Leaders_text_OE"
    sub = df[df[col].str.split().str.len() >= 5].sort_values("participant_id").head(150)
    long = pd.DataFrame({"response_id": sub["participant_id"], "question_id": "Q17", "answer": sub[col],
                         "question_text": "What advice would you give BC leaders about AI?"})
    long.to_csv(path, index=False)
    return path


def test_rename_merge_split_on_a_real_corpus_follow_into_every_table(shared_dir: Path, tmp_path: Path,
                                                                     isolated_cache: Path) -> None:
    src = _bc_long(shared_dir, tmp_path / "bc_q17.csv")
    out = tmp_path / "batch"
    params = config.load_params()
    runner.run_all([src], out, params)
    themes = pd.read_parquet(out / "themes.parquet")
    q = themes[(themes["scope"] == "Q17") & (themes["theme_id"] != "other")].sort_values("size", ascending=False)
    assert len(q) >= 4
    big, second, third, fourth = (str(t) for t in q["theme_id"].iloc[:4])
    word = str(themes.set_index(["scope", "theme_id"]).at[("Q17", fourth), "keywords"]).split(";")[0]
    edits = {"edits": [
        {"action": "rename", "theme": big, "label": "Regulate AI before it spreads", "comment": "analyst name"},
        {"action": "merge", "themes": [second, third], "into": second, "label": "Jobs and the economy",
         "comment": "one topic for the report"},
        {"action": "split", "theme": fourth, "comment": "the keyword is its own story",
         "into": [{"id": "Q17.edited-split", "label": f"About {word}", "keywords": [word]}]},
        {"action": "drop", "theme": "Q17.no-such-theme", "comment": "left over from an earlier run"},
    ]}
    edits_file = tmp_path / "edits.yaml"
    edits_file.write_text(yaml.safe_dump(edits), encoding="utf-8")
    result = runner.run_all([src], out, params, edits=edits_file)
    assert {s.name: s.status for s in result.stages}["themes"] == "ran"

    log = pd.read_parquet(out / "theme_edits.parquet")
    assert list(log["status"])[:3] == ["applied"] * 3 and log["status"].iloc[3].startswith("not applied")
    assign = pd.read_parquet(out / "theme_assignments.parquet")
    lists = assign["themes"].fillna("").str.split(";")
    assert not lists.map(lambda ts: third in ts).any()  # merged away
    split_members = int(lists.map(lambda ts: "Q17.edited-split" in ts).sum())
    assert split_members >= 1

    tables = out / "report" / "tables"
    tbq = pd.read_csv(tables / "themes_by_question.csv", dtype=str, keep_default_na=False).set_index("theme_id")
    assert tbq.at[big, "theme"] == "Regulate AI before it spreads"
    assert tbq.at[second, "theme"] == "Jobs and the economy" and third not in tbq.index
    assert int(tbq.at["Q17.edited-split", "answers"]) == split_members
    findings = pd.read_csv(tables / "findings.csv", dtype=str, keep_default_na=False)
    assert "Regulate AI before it spreads" in set(findings["theme"])
    by_group = pd.read_csv(tables / "themes_by_stakeholder.csv", dtype=str, keep_default_na=False)
    assert third not in set(by_group["theme_id"]) and "Q17.edited-split" in set(by_group["theme_id"])
    quotes = pd.read_csv(tables / "quotes.csv", dtype=str, keep_default_na=False)
    assert third not in set(quotes["theme_id"])
    rec = pd.read_csv(tables / "reconciliation.csv", dtype=str, keep_default_na=False)
    assert set(rec["ok"]) == {"yes"} or set(rec["ok"]) == {"True"}
    md = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "Theme edits" in md and "left over from an earlier run" in md

    # without the edits file the next run is back to the discovered themes and shows no edit log
    runner.run_all([src], out, params)
    assert not (out / "theme_edits.parquet").exists()
    assert "Theme edits" not in (out / "report" / "report.md").read_text(encoding="utf-8")
