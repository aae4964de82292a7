"""Analyst edits of discovered themes: rename, merge, split, move, drop; counts, quotes, tables follow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import report_fixtures as F

from pipeline.errors import InputError
from pipeline.report import stage as report_stage
from pipeline.themes.edits import apply_edits, load_edits, validate_edit


def _frames(batch: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, dict[str, str]]:
    clean = pd.read_parquet(batch / "answers_clean.parquet")
    texts = dict(zip(clean["answer_id"], clean["text_clean"], strict=True))
    return (pd.read_parquet(batch / "themes.parquet"), pd.read_parquet(batch / "theme_assignments.parquet"),
            pd.read_parquet(batch / "segment_assignments.parquet"), texts)


@pytest.fixture()
def batch(tmp_path: Path) -> Path:
    return F.build_batch(tmp_path / "edits-batch")


def _edits(*items: dict) -> list:
    return [validate_edit(item, i) for i, item in enumerate(items, start=1)]


def test_rename_merge_split_move_drop_and_the_log(batch: Path) -> None:
    themes, assign, seg, texts = _frames(batch)
    before = {k: v.copy() for k, v in (("t", themes), ("a", assign), ("s", seg))}
    edits = _edits(
        {"action": "rename", "theme": "skills", "label": "Digital skills and literacy", "comment": "clearer"},
        {"action": "merge", "themes": ["Q2.emergent-1", "connectivity"], "into": "Q2.emergent-1", "question": "Q2",
         "label": "Funding and connectivity", "comment": "one story in Q2"},
        {"action": "split", "theme": "connectivity", "question": "Q1", "comment": "two kinds of access",
         "into": [{"id": "Q1.cables", "label": "Cables and backbone", "keywords": ["cables", "networks"]}]},
        {"action": "move", "answers": ["r5::Q1"], "to": "other", "comment": "off topic"},
        {"action": "drop", "theme": "vanished-theme", "comment": "from last year's run"},
    )
    result = apply_edits(edits, themes, assign, seg, texts)
    for k, df in (("t", themes), ("a", assign), ("s", seg)):  # inputs untouched
        pd.testing.assert_frame_equal(df, before[k])
    log = result.log.set_index("edit")
    assert list(log["status"]) == ["applied"] * 4 + ["not applied: theme vanished-theme no longer exists"]
    assert list(log["comment"])[:2] == ["clearer", "one story in Q2"]
    t = result.themes.set_index(["scope", "theme_id"])
    assert t.loc[("Q1", "skills"), "label"] == t.loc[("Q3", "skills"), "label"] == "Digital skills and literacy"
    assert ("Q2", "connectivity") not in t.index and t.loc[("Q2", "Q2.emergent-1"), "label"] == \
        "Funding and connectivity"
    a = result.theme_assignments.set_index("answer_id")
    assert a.loc["r1::Q2", "themes"] == "Q2.emergent-1"  # was "Q2.emergent-1;connectivity"
    assert int(t.loc[("Q2", "Q2.emergent-1"), "size"]) == int(a["themes"].str.contains("Q2.emergent-1").sum())
    # split: Q1 answers mentioning cables or networks left connectivity for the new theme
    assert a.loc["r2::Q1", "themes"] == "Q1.cables" and a.loc["r3::Q1", "themes"] == "Q1.cables"
    assert a.loc["r1::Q1", "themes"].startswith("connectivity")
    assert a.loc["r5::Q1", "themes"] == ""  # moved to other
    quotes = json.loads(t.loc[("Q1", "Q1.cables"), "quotes"])
    assert {q["response_id"] for q in quotes} <= {"r2", "r3", "r6"}
    s = result.segment_assignments.set_index("segment_id")
    assert s.loc["r2::Q1#0", "theme_id"] == "Q1.cables" and s.loc["r5::Q1#0", "theme_id"] == "other"
    assert "score_Q1.cables" in result.theme_assignments.columns
    assert result.summary == {"edits": 5, "edits_applied": 4, "edits_not_applied": 1}


def test_report_follows_the_edited_themes_and_still_reconciles(batch: Path) -> None:
    themes, assign, seg, texts = _frames(batch)
    edits = _edits(
        {"action": "merge", "themes": ["skills", "connectivity"], "into": "connectivity", "question": "Q1",
         "label": "Access and skills", "comment": "analysts read them together"},
        {"action": "drop", "theme": "Q2.emergent-1", "comment": "not a theme"},
    )
    result = apply_edits(edits, themes, assign, seg, texts)
    result.themes.to_parquet(batch / "themes.parquet", index=False)
    result.theme_assignments.to_parquet(batch / "theme_assignments.parquet", index=False)
    result.segment_assignments.to_parquet(batch / "segment_assignments.parquet", index=False)
    (batch / "theme_by_question.parquet").unlink()
    summary = report_stage.run(batch, {"seed": 1, "report": {}})
    assert summary["reconciliation_checks"] > 0  # run() raises when a check fails
    tbq = pd.read_csv(batch / "report" / "tables" / "themes_by_question.csv", dtype=str, keep_default_na=False)
    q1 = tbq[tbq["question_id"] == "Q1"]
    assert "Access and skills" in set(q1["theme"]) and "Digital skills" not in set(q1["theme"])
    assert "Q2.emergent-1" not in set(tbq["theme_id"])
    q2_other = tbq[(tbq["question_id"] == "Q2") & (tbq["theme_id"] == "other")]
    assert int(q2_other["respondents"].iloc[0]) >= 2  # the dropped theme's answers went to 'other'


def test_split_by_example_answers_uses_their_vectors(batch: Path) -> None:
    themes, assign, seg, texts = _frames(batch)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8)
    vectors = {"r1::Q1": a, "r2::Q1": a + 0.01, "r3::Q1": b, "r5::Q1": b + 0.01, "r4::Q1": a}
    vectors = {k: v / np.linalg.norm(v) for k, v in vectors.items()}
    edits = _edits({"action": "split", "theme": "connectivity", "question": "Q1", "comment": "by example",
                    "into": [{"id": "Q1.a", "label": "A", "examples": ["r1::Q1"]},
                             {"id": "Q1.b", "label": "B", "examples": ["r3::Q1"]}]})
    result = apply_edits(edits, themes, assign, seg, texts, vectors)
    got = result.theme_assignments.set_index("answer_id")["themes"]
    assert got["r2::Q1"].startswith("Q1.a") and got["r5::Q1"].startswith("Q1.b")
    t = result.themes.set_index(["scope", "theme_id"])
    assert int(t.loc[("Q1", "connectivity"), "size"]) == 1  # r6::Q1 has no vector: it stays where it was
    assert got["r6::Q1"] == "connectivity"


def test_edits_file_errors_name_the_file_and_the_edit(tmp_path: Path) -> None:
    path = tmp_path / "edits.yaml"
    path.write_text("edits:\n  - {action: rename, theme: x, label: y, comment: ok}\n  - {action: explode, theme: x}\n")
    with pytest.raises(InputError, match=r"edits.yaml, edit 2: unknown action 'explode'"):
        load_edits(path)
    path.write_text("edits:\n  - {action: merge, themes: [a], comment: c}\n")
    with pytest.raises(InputError, match=r"edit 1: merge: needs at least two 'themes'"):
        load_edits(path)
    path.write_text("edits:\n  - {action: drop, theme: a, colour: red}\n")
    with pytest.raises(InputError, match="unknown key"):
        load_edits(path)
    path.write_text("edits:\n  - {action: rename, theme: a, label: B, comment: why}\n")
    assert load_edits(path)[0].comment == "why"


def test_split_keywords_match_whole_words_with_their_plurals() -> None:
    from pipeline.themes.edits import keyword_pattern

    pattern = keyword_pattern(["regulation", "art", "data privacy", " "])
    assert pattern.search("new regulations are needed") and pattern.search("the regulation's aim")
    assert pattern.search("data privacy rules") and pattern.search("the art world")
    assert not pattern.search("artificial intelligence") and not pattern.search("deregulationist")
