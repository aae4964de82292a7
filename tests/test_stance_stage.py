"""The stance stage: what each answer's stance is toward, and the stage on a batch with the shipped model."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import report_fixtures as F

from pipeline.stance import stage


def _frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    answers = pd.DataFrame({
        "answer_id": ["a::Q1", "b::Q1", "a::Q2", "b::Q2", "a::Q3"],
        "response_id": ["a", "b", "a", "b", "a"],
        "question_id": ["Q1", "Q1", "Q2", "Q2", "Q3"],
        "question_text": ["Should zero-rating be allowed?", "Should zero-rating be allowed?",
                          "What has worked well?", "What has worked well?", "What should change?"],
        "text_clean": ["Yes, it helps poor users.", "No, it harms competition.", "Broadband.", "Schools.", "x"],
        "is_nonanswer": [False, False, False, False, False],
    })
    assign = pd.DataFrame({"answer_id": answers["answer_id"], "response_id": answers["response_id"],
                           "question_id": answers["question_id"], "themes": ["t1", "t1;other", "t2", "", "f1"]})
    themes = pd.DataFrame({"scope": ["Q1", "Q2", "Q3"], "theme_id": ["t1", "t2", "f1"],
                           "label": ["Access", "Networks", "Mandatory audits of AI systems"],
                           "origin": ["emergent", "emergent", "framework"]})
    return answers, assign, themes


def test_targets_follow_frame_label_proposal_closed_and_open_questions() -> None:
    answers, assign, themes = _frames()
    pairs = stage.stance_pairs(answers, assign, themes, {}).set_index("answer_id")
    assert pairs.loc["a::Q1", "stance_target"] == "Should zero-rating be allowed?"
    assert pairs.loc["a::Q1", "target_kind"] == "closed question"
    assert "b::Q2" not in pairs.index and len(pairs.loc[["b::Q1"]]) == 1  # no theme / 'other' get no pair
    assert pairs.loc["a::Q2", "stance_target"] == "" and pairs.loc["a::Q2", "target_kind"] == "open question"
    assert pairs.loc["a::Q3", "stance_target"] == "Mandatory audits of AI systems"
    with_proposal = stage.stance_pairs(answers, assign, themes, {"Q2": "Networks deserve public money."})
    assert with_proposal.set_index("answer_id").loc["a::Q2", "target_kind"] == "proposal"


@pytest.mark.slow
def test_stage_scores_pairs_with_the_shipped_model(tmp_path: Path, isolated_cache: Path) -> None:
    batch = F.build_batch(tmp_path / "stance-batch")
    params = {"seed": 1, "stance": {"proposals": {"Q2": "Rural networks should get public funding."}}}
    summary = stage.run(batch, params, isolated_cache)
    out = pd.read_parquet(batch / "theme_stance.parquet")
    assert list(out.columns) == stage.COLUMNS
    q2 = out[out["question_id"] == "Q2"]
    assert len(q2) and set(q2["stance"]) <= {"support", "oppose", "conditional", "neutral"}
    assert q2["confidence"].between(0, 1).all()
    assert set(out.loc[out["question_id"] == "Q1", "stance"]) == {""}  # open question, no proposal
    assert summary["scored"] == len(q2) and summary["questions_without_target"] == 2
