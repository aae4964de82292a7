"""Theme discovery core: contract columns, coverage, determinism, seeds, naming, quotes, cross-question."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from themes_synth import TOPICS

from pipeline.safety import neutralise_frame as neutralise
from pipeline.themes import discover_themes
from pipeline.themes.discovery import NONANSWER_ID, OTHER_ID, cosine_silhouette, k_bounds, theme_params
from pipeline.themes.naming import acronyms, class_tfidf, make_label, pick_quotes, redact_pii, top_keywords
from pipeline.themes.seeds import SeedThemes, from_records, keyword_hits, load_seed_themes

PARAMS = {"seed": 3, "themes": {"min_themes": 2, "max_themes": 6, "min_theme_size": 3}}
DIM = 48


def _centres(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name in TOPICS:
        v = rng.normal(size=DIM)
        out[name] = v / np.linalg.norm(v)
    return out


def _batch(n_resp: int = 30, noise: float = 0.25, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """One question per respondent pair; each answer has 1-2 single-topic segments with known topics."""
    rng = np.random.default_rng(seed)
    centres = _centres()
    names = list(TOPICS)
    ans, seg, vec = [], [], []
    for r in range(n_resp):
        for q in ("Q1", "Q2"):
            aid = f"R{r:03d}::{q}"
            k = 1 + int(rng.random() < 0.4)
            topics = list(rng.choice(names, size=k, replace=False))
            texts = []
            for i, t in enumerate(topics):
                text = " ".join(rng.choice(TOPICS[t], size=2, replace=False))
                texts.append(text)
                v = centres[t] + noise * rng.normal(size=DIM) / np.sqrt(DIM)
                vec.append(v / np.linalg.norm(v))
                seg.append({"segment_id": f"{aid}#{i}", "answer_id": aid, "response_id": f"R{r:03d}",
                            "question_id": q, "seg_index": i, "text": text, "text_redacted": text,
                            "is_nonanswer": False, "topic": t})
            ans.append({"answer_id": aid, "response_id": f"R{r:03d}", "question_id": q,
                        "text_clean": " ".join(texts), "is_nonanswer": False, "keyphrases": []})
    # one non-answer
    ans.append({"answer_id": "R999::Q1", "response_id": "R999", "question_id": "Q1", "text_clean": "N/A",
                "is_nonanswer": True, "keyphrases": []})
    seg.append({"segment_id": "R999::Q1#0", "answer_id": "R999::Q1", "response_id": "R999",
                "question_id": "Q1", "seg_index": 0, "text": "N/A", "text_redacted": "N/A",
                "is_nonanswer": True, "topic": ""})
    vec.append(np.zeros(DIM))
    return pd.DataFrame(ans), pd.DataFrame(seg), np.asarray(vec, dtype=np.float32)


@pytest.fixture(scope="module")
def batch() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    return _batch()


@pytest.fixture(scope="module")
def result(batch):
    ans, seg, vec = batch
    return discover_themes(ans, seg, vec, PARAMS, None)


def test_contract_columns_and_every_segment_accounted(batch, result) -> None:
    _, seg, _ = batch
    for col in ["theme_id", "scope", "label", "keywords", "size", "n_segments", "n_respondents", "origin",
                "seed_id", "description", "quotes"]:
        assert col in result.themes.columns
    assert list(result.theme_assignments.columns[:4]) == ["answer_id", "response_id", "question_id", "themes"]
    assert list(result.segment_assignments.columns) == ["segment_id", "answer_id", "question_id", "theme_id",
                                                        "score"]
    sa = result.segment_assignments
    assert sorted(sa["segment_id"]) == sorted(seg["segment_id"])
    assert (sa["theme_id"] != "").all()
    assert sa.loc[sa["segment_id"] == "R999::Q1#0", "theme_id"].item() == NONANSWER_ID
    # every answer is listed; the non-answer has no theme
    ta = result.theme_assignments.set_index("answer_id")
    assert ta.loc["R999::Q1", "themes"] == ""
    assert result.summary["other_share"] < 0.15


def test_recovers_planted_topics(batch, result) -> None:
    _, seg, _ = batch
    sa = result.segment_assignments.set_index("segment_id")
    for q in ("Q1", "Q2"):
        s = seg[(seg["question_id"] == q) & ~seg["is_nonanswer"]]
        pred = sa.loc[s["segment_id"], "theme_id"].to_numpy()
        assert adjusted_rand_score(s["topic"], pred) > 0.9
    q_themes = result.themes[(result.themes["scope"] == "Q1") & (result.themes["origin"] == "emergent")]
    assert len(q_themes) == 3
    assert q_themes["theme_id"].str.startswith("Q1.emergent-").all()


def test_answer_themes_follow_segments_best_first(batch, result) -> None:
    _, seg, _ = batch
    ta = result.theme_assignments.set_index("answer_id")
    sa = result.segment_assignments.set_index("segment_id")
    multi = seg.groupby("answer_id")["topic"].nunique()
    aid = multi[multi == 2].index[0]
    themes = ta.loc[aid, "themes"].split(";")
    seg_themes = set(sa.loc[seg.loc[seg["answer_id"] == aid, "segment_id"], "theme_id"])
    assert seg_themes <= set(themes)
    scores = [ta.loc[aid, f"score_{t}"] for t in themes]
    assert scores == sorted(scores, reverse=True)


def test_shuffled_rows_give_identical_result(batch, result) -> None:
    ans, seg, vec = batch
    perm = np.random.default_rng(5).permutation(len(seg))
    ans2 = ans.sample(frac=1.0, random_state=2)
    res2 = discover_themes(ans2, seg.iloc[perm], vec[perm], PARAMS, None)
    a = result.segment_assignments.sort_values("segment_id").reset_index(drop=True)
    b = res2.segment_assignments.sort_values("segment_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(result.themes, res2.themes)


def test_inputs_not_mutated(batch) -> None:
    ans, seg, vec = batch
    a0, s0, v0 = ans.copy(), seg.copy(), vec.copy()
    discover_themes(ans, seg, vec, PARAMS, None)
    pd.testing.assert_frame_equal(ans, a0)
    pd.testing.assert_frame_equal(seg, s0)
    assert np.array_equal(vec, v0)


def test_quotes_from_different_respondents_and_redacted() -> None:
    texts = ["Write to me at jane.doe@example.org about broadband in villages",
             "Call +41 22 730 5111 for more on the broadband plan today",
             "Same person again on rural broadband access here", "Another view on rural broadband access"]
    quotes = pick_quotes([0, 1, 2, 3], ["A", "B", "A", "C"], ["s0", "s1", "s2", "s3"], texts, n=3)
    assert [q["response_id"] for q in quotes] == ["A", "B", "C"]
    joined = " ".join(q["text"] for q in quotes)
    assert "example.org" not in joined and "730 5111" not in joined
    assert "[email]" in joined and "[phone]" in joined
    assert redact_pii("in 2025 and 2030") == "in 2025 and 2030"


def test_theme_quotes_are_members_of_distinct_respondents(result) -> None:
    sa = result.segment_assignments.set_index("segment_id")
    for row in result.themes[result.themes["origin"] == "emergent"].itertuples():
        quotes = json.loads(row.quotes)
        assert 3 <= len(quotes) <= 5
        assert len({q["response_id"] for q in quotes}) == len(quotes)
        assert all(sa.loc[q["segment_id"], "theme_id"] == row.theme_id for q in quotes)


def test_ctfidf_prefers_distinctive_terms() -> None:
    docs = [["privacy", "data", "consent"], ["privacy", "data"], ["broadband", "data", "rural"],
            ["broadband", "rural", "data"]]
    scores, names = class_tfidf(docs, np.array([0, 0, 1, 1]), 2)
    kws = top_keywords(scores, names, 2)
    assert kws[0] == ["privacy", "data"]  # shared term ranks below the distinctive one
    assert set(kws[1]) == {"broadband", "rural"}
    assert make_label(["digital divide", "rural area"]) == "Digital divide, rural area"
    case = acronyms(["The IGF and AI policy", "LLMs are large", "DATA matters", "data, data"])
    assert "data" not in case
    assert make_label(["ai", "llm", "igf forum"], case=case) == "AI, LLM, IGF forum"


def test_labels_name_the_planted_topics(result) -> None:
    em = result.themes[(result.themes["scope"] == "Q1") & (result.themes["origin"] == "emergent")]
    words = " ".join(em["keywords"]).split(";")
    assert any("privacy" in w or "personal" in w for w in words)
    assert any("broadband" in w or "connect" in w or "internet" in w for w in words)


def test_seed_theme_takes_its_id_in_every_question(batch) -> None:
    ans, seg, vec = batch
    c = _centres()["privacy"]
    seeds = SeedThemes(("data-protection-privacy",), ("Data protection and privacy",),
                       ("Protecting personal data and privacy",), (("privacy", "personal data"),),
                       c[None, :].astype(np.float32))
    res = discover_themes(ans, seg, vec, PARAMS, seeds)
    q = res.themes[res.themes["theme_id"] == "data-protection-privacy"]
    assert set(q["scope"]) == {"Q1", "Q2", "all"}
    assert (q["origin"] == "seed").all() and (q["label"] == "Data protection and privacy").all()
    sa = res.segment_assignments.merge(seg[["segment_id", "topic"]], on="segment_id")
    assert (sa.loc[sa["theme_id"] == "data-protection-privacy", "topic"] == "privacy").mean() > 0.95
    tbq = res.theme_by_question
    row = tbq[tbq["theme_id"] == "data-protection-privacy"]
    assert set(row["question_id"]) == {"Q1", "Q2"} and (row["n_questions"] == 2).all()


def test_seed_file_is_valid_and_keywords_match() -> None:
    seeds = load_seed_themes()
    assert len(seeds) >= 20 and len(set(seeds.ids)) == len(seeds.ids)
    assert {"ai-governance", "digital-divide", "gender-digital-divide", "e-health"} <= set(seeds.ids)
    assert all(d and len(d) > 40 for d in seeds.descriptions)
    hits = keyword_hits(["Women and girls face a gender gap online", "Nothing relevant"], seeds)
    j = seeds.ids.index("gender-digital-divide")
    assert hits[0, j] and not hits[1].any()
    with pytest.raises(Exception, match="duplicate"):
        from_records([{"id": "a"}, {"id": "a"}])


def test_outliers_go_to_other_not_to_a_theme(batch) -> None:
    ans, seg, vec = batch
    rng = np.random.default_rng(9)
    far = rng.normal(size=(1, DIM))
    far = (far / np.linalg.norm(far)).astype(np.float32)
    extra = pd.DataFrame([{"segment_id": "R000::Q1#9", "answer_id": "R000::Q1", "response_id": "R000",
                           "question_id": "Q1", "seg_index": 9, "text": "Completely unrelated remark about cats.",
                           "text_redacted": "Completely unrelated remark about cats.", "is_nonanswer": False,
                           "topic": "x"}])
    res = discover_themes(ans, pd.concat([seg, extra], ignore_index=True), np.vstack([vec, far]),
                          PARAMS, None)
    sa = res.segment_assignments.set_index("segment_id")
    assert sa.loc["R000::Q1#9", "theme_id"] == OTHER_ID
    other = res.themes[(res.themes["theme_id"] == OTHER_ID) & (res.themes["scope"] == "Q1")]
    assert other["n_segments"].item() == 1


def test_k_bounds_scale_down_for_small_questions() -> None:
    cfg = theme_params({"themes": {"min_themes": 5, "max_themes": 25, "min_theme_size": 3}})
    assert k_bounds(12, cfg) == (2, 2)
    assert k_bounds(50000, cfg) == (5, 25)
    lo, hi = k_bounds(300, cfg)
    assert 5 <= hi < 25


def test_cosine_silhouette_separates_good_from_random_labels(batch) -> None:
    _, seg, vec = batch
    ok = ~seg["is_nonanswer"].to_numpy()
    good = pd.factorize(seg.loc[ok, "topic"])[0]
    bad = np.random.default_rng(0).permutation(good)
    assert cosine_silhouette(vec[ok], good) > 0.5 > cosine_silhouette(vec[ok], bad)


def test_neutralise_spreadsheet_formulas() -> None:
    df = pd.DataFrame({"label": ["=HYPERLINK(1)", "+1", "ok", "@x", "-2"], "size": [1, 2, 3, 4, 5]})
    out = neutralise(df)
    assert out["label"].tolist() == ["'=HYPERLINK(1)", "'+1", "ok", "'@x", "'-2"]
    assert df["label"].iloc[0] == "=HYPERLINK(1)"


def test_quotes_prefer_full_sentences_and_distinct_respondents() -> None:
    from pipeline.themes import naming

    texts = [
        "Energy use worries",  # closest to the centre but a fragment
        "Data centres use a great deal of energy and water, which worries me a lot.",
        "Contact me at someone@example.org about the energy footprint of large models please.",
        "Second answer of the same respondent about the energy footprint of models.",
    ]
    quotes = naming.pick_quotes([0, 1, 2, 3], ["r1", "r2", "r3", "r2"], ["s0", "s1", "s2", "s3"], texts, n=3)
    assert [q["response_id"] for q in quotes] == ["r2", "r3", "r1"]
    assert "someone@example.org" not in quotes[1]["text"]
    assert quotes[2]["text"] == "Energy use worries"
