"""clean_answers / stage.run on synthetic frames: the output contract, purity, determinism,
segment offsets, redaction, and the missing-model error (or recorded blank fallback)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.clean import clean_answers, stage
from pipeline.clean.core import CLEAN_COLUMNS, SEGMENT_COLUMNS
from pipeline.clean.nlp import lemmatizer_of, load_nlp
from pipeline.errors import InputError

LONG_DOC = "\n\n".join(
    f"Section {k}. " + " ".join(
        f"Sentence {k}.{j} explains why community networks and local content need sustained "
        f"public funding in rural districts." for j in range(6)
    )
    for k in range(5)
)
CAMPAIGN = ("We ask the review to keep the multistakeholder model, protect human rights online and "
            "fund meaningful connectivity for the three billion people who remain offline today.")
QUESTION = "What are the main achievements of WSIS since 2005?"


def _answers() -> pd.DataFrame:
    rows = [
        ("r1", "q1", QUESTION, "The access to infor-\nmation improved a lot. Action Line C7 e-health "
         "and SDG 3 and SDG 5 matter. Write to info@example.org or +44 20 7946 0958.",
         "civil society", False),
        ("r1", "q2", "Any other comments?", "N/A", "civil society", False),
        ("r2", "q1", QUESTION, CAMPAIGN, "private sector", False),
        ("r3", "q1", QUESTION, CAMPAIGN + " Thank you.", "academia", False),
        ("r4", "q1", QUESTION, "My name is Ada Lovelace and I worked with Charles Babbage on "
         "public computing access in Nairobi.", "individual", False),
        ("r5", "q1", QUESTION, "Wir brauchen mehr Investitionen in digitale Infrastruktur und Bildung "
         "für alle Menschen.", "government", False),
        ("r6", "q1", QUESTION, QUESTION, "other", False),
        ("r7", "doc", "", LONG_DOC, "technical community", True),
        ("r8", "q1", QUESTION, "", "other", False),
        ("r9", "q1", QUESTION, "Local languages matter for the digital economy and for culture.",
         "individual", False),
        ("r9", "q2", "Any other comments?",
         "Local languages matter for the digital economy and for culture.", "individual", False),
    ]
    return pd.DataFrame(rows, columns=["response_id", "question_id", "question_text", "answer",
                                       "stakeholder_group", "is_document"])


@pytest.fixture(scope="module")
def cleaned(params: dict) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    answers = _answers()
    clean, segments = clean_answers(answers, params)
    return answers, clean, segments


def _row(clean: pd.DataFrame, answer_id: str) -> pd.Series:
    return clean.set_index("answer_id").loc[answer_id]


def test_columns_and_types(cleaned) -> None:
    answers, clean, segments = cleaned
    assert list(clean.columns) == [*answers.columns, *CLEAN_COLUMNS]
    assert list(segments.columns) == list(SEGMENT_COLUMNS)
    assert clean["is_nonanswer"].dtype == bool
    assert clean["n_segments"].dtype == "int64"
    assert all(isinstance(x, list) for x in clean["keyphrases"])
    assert (clean["answer_id"] == clean["response_id"] + "::" + clean["question_id"]).all()
    assert len(clean) == len(answers)


def test_input_not_mutated(params: dict) -> None:
    answers = _answers()
    before = answers.copy(deep=True)
    clean_answers(answers, params)
    pd.testing.assert_frame_equal(answers, before)


def test_flags_and_mentions(cleaned) -> None:
    _, clean, _ = cleaned
    r1 = _row(clean, "r1::q1")
    assert "information improved" in r1["text_clean"]
    assert r1["mentions_action_lines"] == ["C7", "C7.e-health"]
    assert r1["mentions_sdgs"] == ["3", "5"]
    assert r1["language"] == "en" and not r1["is_nonanswer"]
    assert _row(clean, "r1::q2")["nonanswer_reason"] == "na"
    assert _row(clean, "r6::q1")["nonanswer_reason"] == "question_copy"
    assert _row(clean, "r8::q1")["nonanswer_reason"] == "empty"
    assert _row(clean, "r5::q1")["language"] == "de"
    nonans = clean[clean["is_nonanswer"]]
    assert (nonans["n_segments"] == 0).all() and (nonans["language"] == "und").all()


def test_duplicates(cleaned) -> None:
    _, clean, _ = cleaned
    a, b = _row(clean, "r2::q1"), _row(clean, "r3::q1")
    assert a["dup_group"] == b["dup_group"] != "" and a["dup_group_size"] == 2
    assert a["dup_kind"] == "near"
    s1, s2 = _row(clean, "r9::q1"), _row(clean, "r9::q2")
    assert s1["dup_kind"] == s2["dup_kind"] == "self" and s1["dup_group"] == s2["dup_group"]
    assert _row(clean, "r1::q1")["dup_group"] == "" and _row(clean, "r1::q1")["dup_group_size"] == 1


def test_keyphrases_and_entities(cleaned) -> None:
    _, clean, _ = cleaned
    kp = _row(clean, "r7::doc")["keyphrases"]
    assert "community network" in kp and "local content" in kp
    assert all(p == p.lower() and 1 <= len(p.split()) <= 4 for p in kp)
    assert not clean["entities"].map(len).any()  # default: NER only for individuals' PERSON names, no column


def test_entities_column_when_asked_for(params: dict) -> None:
    clean, _ = clean_answers(_answers(), {**params, "clean": {**params["clean"], "entities": True}})
    assert "Nairobi" in _row(clean, "r4::q1")["entities"]


def test_redaction(cleaned) -> None:
    _, clean, segments = cleaned
    r1 = _row(clean, "r1::q1")
    assert "info@example.org" in r1["text_clean"]
    assert "[email]" in r1["text_redacted"] and "[phone]" in r1["text_redacted"]
    assert "info@example.org" not in r1["text_redacted"]
    r4 = _row(clean, "r4::q1")  # an individual: personal names redacted
    assert "Ada Lovelace" not in r4["text_redacted"] and "[name]" in r4["text_redacted"]
    assert "Ada Lovelace" in r4["text_clean"]
    seg_red = " ".join(segments.loc[segments["answer_id"] == "r4::q1", "text_redacted"])
    assert "Lovelace" not in seg_red and "[name]" in seg_red
    assert "[email]" in " ".join(segments.loc[segments["answer_id"] == "r1::q1", "text_redacted"])


def test_segments_offsets_and_bounds(cleaned, params: dict) -> None:
    _, clean, segments = cleaned
    texts = clean.set_index("answer_id")["text_clean"]
    for seg in segments.itertuples():
        assert texts[seg.answer_id][seg.start : seg.end] == seg.text
        assert seg.segment_id == f"{seg.answer_id}#{seg.seg_index}"
    max_w = params["clean"]["segment_max_words"]
    assert (segments["n_words"] <= max_w).all()
    doc = segments[segments["answer_id"] == "r7::doc"]
    assert len(doc) >= 5  # a 500-word document becomes several passages
    assert (doc["n_words"] >= params["clean"]["segment_min_words"]).all()
    n_seg = segments.groupby("answer_id").size()
    for row in clean.itertuples():
        assert row.n_segments == n_seg.get(row.answer_id, 0)


def test_shuffled_rows_same_output(cleaned, params: dict) -> None:
    answers, clean, segments = cleaned
    shuffled = answers.sample(frac=1.0, random_state=7).reset_index(drop=True)
    clean2, segments2 = clean_answers(shuffled, params)
    a = clean.sort_values("answer_id").reset_index(drop=True)
    b = clean2.sort_values("answer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    sa = segments.sort_values("segment_id").reset_index(drop=True)
    sb = segments2.sort_values("segment_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(sa, sb)


def test_missing_columns_and_duplicate_ids(params: dict) -> None:
    with pytest.raises(InputError, match="answer"):
        clean_answers(pd.DataFrame({"response_id": ["a"], "question_id": ["q"]}), params)
    dup = pd.DataFrame({"response_id": ["a", "a"], "question_id": ["q", "q"], "answer": ["x", "y"]})
    with pytest.raises(InputError, match="duplicate answer_id"):
        clean_answers(dup, params)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(
    st.lists(st.sampled_from(["a", "b", "c", " ", "de", ".", "\n", "\n\n", ",", "!", "-", "ü", "“",
                              "’", "\u00a0", "Word ", "infor-\nmation ", "Page 2 of 9\n"]),
             max_size=120).map("".join),
    min_size=1, max_size=4,
))
def test_offsets_property(params: dict, texts: list[str]) -> None:
    answers = pd.DataFrame({"response_id": [f"r{i}" for i in range(len(texts))],
                            "question_id": "q", "answer": texts})
    clean, segments = clean_answers(answers, params)
    by_id = clean.set_index("answer_id")["text_clean"]
    for seg in segments.itertuples():
        assert by_id[seg.answer_id][seg.start : seg.end] == seg.text
        assert seg.text.strip() == seg.text and seg.text
    # passages of one answer are ordered and do not overlap
    for _, grp in segments.groupby("answer_id"):
        ends = list(grp["end"])
        starts = list(grp["start"])
        assert all(s >= e for s, e in zip(starts[1:], ends[:-1], strict=True))


def test_stage_run_writes_artefacts(tmp_path: Path, params: dict) -> None:


    _answers().to_parquet(tmp_path / "answers.parquet", index=False)
    summary = stage.run(tmp_path, params)
    clean = pd.read_parquet(tmp_path / "answers_clean.parquet")
    segments = pd.read_parquet(tmp_path / "segments.parquet")
    assert summary["answers"] == len(clean) == 11
    assert summary["segments"] == len(segments)
    assert summary["nonanswers"] == int(clean["is_nonanswer"].sum()) == 3
    assert list(clean.loc[0, "mentions_sdgs"]) == ["3", "5"]
    with pytest.raises(InputError):
        stage.run(tmp_path / "missing", params)


def test_missing_spacy_model_is_an_error_unless_allowed(params: dict) -> None:
    """A missing model used to fall back to a blank pipeline with only a warning: keyphrases vanished and
    PERSON names went unredacted. Now it is a one-line error saying which model and how to allow the fallback."""
    load_nlp.cache_clear()
    try:
        p = {**params, "clean": {**params["clean"], "spacy_model": "no_such_model_xyz"}}
        with pytest.raises(InputError) as err:
            clean_answers(_answers().head(4), p)
        msg = str(err.value)
        assert "no_such_model_xyz" in msg and "clean.allow_blank_spacy" in msg and "\n" not in msg
    finally:
        load_nlp.cache_clear()


def test_allowed_blank_fallback_is_recorded_in_the_summary(params: dict, tmp_path: Path) -> None:
    load_nlp.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            p = {**params, "clean": {**params["clean"], "spacy_model": "no_such_model_xyz",
                                     "allow_blank_spacy": True}}
            clean, segments = clean_answers(_answers().head(4), p)
            _answers().to_parquet(tmp_path / "answers.parquet")
            summary = stage.run(tmp_path, p)
        assert any("no_such_model_xyz" in str(w.message) for w in caught)
        assert (clean.loc[~clean["is_nonanswer"], "n_segments"] > 0).all()
        assert clean["keyphrases"].map(len).sum() == 0
        assert len(summary["fallbacks"]) == 1 and "no_such_model_xyz" in summary["fallbacks"][0]
        assert "\n" not in summary["fallbacks"][0]
    finally:
        load_nlp.cache_clear()
    _answers().to_parquet(tmp_path / "answers.parquet")
    assert stage.run(tmp_path, params)["fallbacks"] == []  # the installed model: nothing to record


def test_keyphrase_forms(params: dict) -> None:
    from pipeline.clean.keyphrases import keyphrases

    nlp = load_nlp(params["clean"]["spacy_model"])
    lemma = lemmatizer_of(nlp)
    assert lemma is not None  # the lemmatizer does not run over whole Docs: nouns of chunks get theirs here
    doc = nlp("The e-health strategies of the ministries protect data privacy for SMEs, and "
              "social media need 5G networks.")
    kp = keyphrases(doc, lemmatize=lemma)
    assert "e-health strategy" in kp  # hyphenated compound kept, plural lemmatised
    assert "data privacy" in kp  # not "datum privacy"
    assert "social media" in kp and "sme" in kp and "5g network" in kp
    assert not any(p.startswith(("the ", "a ")) for p in kp)


def test_keyphrases_keep_zero_where_it_names_a_thing_and_drop_counts(params: dict) -> None:
    """ "zero rating" written as two words was "rating" (spaCy: like_num), so TRAI themes were named
    "Rating programs"; counts ("three countries") are still dropped."""
    from pipeline.clean.keyphrases import keyphrases

    nlp = load_nlp(params["clean"]["spacy_model"])
    lemma = lemmatizer_of(nlp)
    kp = keyphrases(nlp("Zero rating programs harm new entrants, three countries said, and zero trust security "
                        "helps."), lemmatize=lemma)
    assert "zero rating program" in kp and "zero trust security" in kp
    assert "country" in kp and not any(p.startswith("three") for p in kp)


def test_keyphrases_leave_out_words_that_lost_a_letter(params: dict) -> None:
    """ "Sk?odowska" (an export wrote a letter outside its code page as "?") is no word, and the words before it
    do not join the ones after it ("marie action")."""
    from pipeline.clean.keyphrases import keyphrases

    nlp = load_nlp(params["clean"]["spacy_model"])
    lemma = lemmatizer_of(nlp)
    kp = keyphrases(nlp("The Marie Sk?odowska-Curie actions fund young researchers in man?to?machine research."),
                    lemmatize=lemma)
    assert not any("?" in p or "odowska" in p or "marie" in p for p in kp), kp
    assert "young researcher" in kp and "action" in kp


def test_damaged_words_are_counted_outside_links() -> None:
    from pipeline.clean.normalise import damaged_words, mask_damaged_words

    assert damaged_words("Ra?punsurile esen?iale sunt importante pentru cet??eni.") == 3
    assert damaged_words("a \ufffd b caf\ufffd") == 2
    # a question mark, a question without its space and a link
    assert damaged_words("Is it? Yes. Why?Because. See https://x.org/p.cfm?abstract_id=3") == 0
    masked = mask_damaged_words("see https://x.org/p.cfm?id=3 and esen?iale", " | ")
    assert masked == "see https://x.org/p.cfm?id=3 and  | "
    assert mask_damaged_words("Sk?odowska-Curie, esen?iale and cet??eni.", "#") == "#, # and #."
    # linear: a long run of letters with lost characters is widened once, not re-scanned per character
    long = ("a?b" * 50_000) + " ok " + ("x" * 100_000) + "?y"
    assert damaged_words(long) == 2
