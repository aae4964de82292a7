"""Themes on real corpora (../shared, read at run time): other share, shuffle stability, framework F1."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, f1_score

from pipeline.themes import discover_themes
from pipeline.themes.framework import FrameworkData, FrameworkMapper
from pipeline.themes.seeds import from_records

pytestmark = [pytest.mark.shared, pytest.mark.slow]


def _segments(answers: pd.DataFrame) -> pd.DataFrame:
    """Sentence segments (the clean stage's passages are tested there; this keeps the test light)."""
    rows = []
    for aid, rid, qid, text in answers[["answer_id", "response_id", "question_id", "answer"]].itertuples(
        index=False
    ):
        parts = [p for p in re.split(r"(?<=[.!?])\s+", text.strip()) if len(p.split()) >= 3] or [text]
        for i, p in enumerate(parts):
            rows.append({"segment_id": f"{aid}#{i}", "answer_id": aid, "response_id": rid,
                         "question_id": qid, "text": p, "text_redacted": p, "is_nonanswer": False})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def encoder(tmp_path_factory: pytest.TempPathFactory):
    from pipeline import config
    from pipeline.embed import encode

    params = config.load_params()
    cache = tmp_path_factory.mktemp("emb-cache")
    return lambda texts: encode(list(texts), params, cache)


@pytest.fixture(scope="session")
def bc(shared_dir: Path, encoder) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    df = pd.read_csv(shared_dir / "corpora/bc-ai-survey-2025/bc_ai_survey_responses.csv", dtype=str,
                     keep_default_na=False)
    idc = "participant_id" if "participant_id" in df.columns else df.columns[0]
    cols = ["Q13_AI_impact_worries_text_OE", "Q17_Advice_BC_Leaders_text_OE"]
    long = df.melt(id_vars=[idc], value_vars=cols, var_name="question_id", value_name="answer")
    long = long.rename(columns={idc: "response_id"})
    long = long[long["answer"].str.split().str.len() >= 4].sort_values(["question_id", "response_id"])
    long = long.groupby("question_id").head(150).reset_index(drop=True)
    long["answer_id"] = long["response_id"] + "::" + long["question_id"]
    seg = _segments(long)
    return long, seg, encoder(seg["text"].tolist())


def test_real_corpus_other_share_and_shuffle_stability(bc) -> None:
    answers, seg, vec = bc
    params = {"seed": 20251, "themes": {}}
    res = discover_themes(answers, seg, vec, params, None)
    assert res.summary["other_share"] < 0.15
    assert res.summary["themes"] >= 6
    perm = np.random.default_rng(1).permutation(len(seg))
    res2 = discover_themes(answers.sample(frac=1.0, random_state=3), seg.iloc[perm], vec[perm], params, None)
    a = res.segment_assignments.set_index("segment_id")["theme_id"]
    b = res2.segment_assignments.set_index("segment_id")["theme_id"].loc[a.index]
    assert adjusted_rand_score(a, b) >= 0.95
    # real labels are made of words, quotes come from distinct respondents
    em = res.themes[res.themes["origin"] == "emergent"]
    assert (em["keywords"].str.len() > 0).all()


def test_framework_mode_beats_plain_cosine_on_vendor_tags(shared_dir: Path, encoder) -> None:
    gd = pd.read_csv(shared_dir / "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv")
    q = gd[gd["question_id"] == "f5407fc4-4693-4284-9c71-9a436ed8a854"].dropna(subset=["response_text"])
    q = q.sort_values("participant_id").head(300)
    tags = q["remesh_tags"].fillna("").str.split("|").apply(
        lambda ts: [t.strip() for t in ts if t.strip() not in ("", "Other", "Uninformative answer")])
    counts = pd.Series([t for ts in tags for t in ts]).value_counts()
    frame_tags = [t for t, c in counts.items() if c >= 9]
    keep = tags.apply(lambda ts: any(t in frame_tags for t in ts)).to_numpy()
    q, tags = q[keep].reset_index(drop=True), tags[keep].reset_index(drop=True)
    gold = np.array([[t in ts for t in frame_tags] for ts in tags])
    # the tag wording serves as the description (vendor words, no respondent text)
    frame = from_records([{"id": f"t{i}", "label": t, "description": t} for i, t in enumerate(frame_tags)])
    frame = frame.encoded(encoder)
    texts = q["response_text"].astype(str).tolist()
    answers = pd.DataFrame({"answer_id": [f"a{i:04d}" for i in range(len(q))], "response_id": q["participant_id"],
                            "question_id": "q", "answer": texts})
    seg = _segments(answers)
    pos = {a: i for i, a in enumerate(answers["answer_id"])}
    data = FrameworkData(texts, encoder(texts), encoder(seg["text"].tolist()),
                         seg["answer_id"].map(pos).to_numpy())
    pred = FrameworkMapper().fit(data, frame).predict(data)
    f1 = f1_score(gold, pred, average="samples", zero_division=0)
    cos = data.answer_vectors @ frame.vectors.T
    plain = f1_score(gold, cos >= cos.max(axis=1, keepdims=True) - 0.03, average="samples", zero_division=0)
    assert f1 > plain + 0.05, (f1, plain)
