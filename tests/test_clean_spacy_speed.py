"""The faster spaCy pass of the clean stage gives exactly what the full pipeline gave, on REAL text.

Three speed-ups, each checked against the plain spaCy pipeline on real consultation text from ../shared:
the attribute ruler's cached matcher (`clean/ruler.py`), lemmas computed only for the nouns keyphrases use
(the lemmatizer no longer runs over whole Docs), batches bounded by characters and worker processes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.clean import clean_answers, nlp
from pipeline.clean.normalise import normalise_text
from pipeline.clean.ruler import FastRulerMatcher
from pipeline.clean.segments import paragraph_blocks

pytestmark = pytest.mark.shared

TRAI = "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv"
GD = "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"


@pytest.fixture(scope="module")
def real_answers(shared_dir: Path) -> pd.DataFrame:
    """14 TRAI submissions (cut to 6,000 characters) and 150 Global Dialogues answers, some from individuals."""
    trai = pd.read_csv(shared_dir / TRAI, dtype=str, keep_default_na=False)
    text_col = "text"
    docs = trai[trai[text_col].str.len() > 3000].head(14)
    gd = pd.read_csv(shared_dir / GD, dtype=str, keep_default_na=False).sample(n=150, random_state=3)
    rows = [(f"trai-{i}", "q", t[:6000], "individual" if i % 2 else "civil society", name)
            for i, (t, name) in enumerate(zip(docs[text_col], docs["respondent_name"], strict=True))]
    rows += [(f"gd-{i}", "q", t, "individual", "") for i, t in enumerate(gd["response_text"])]
    return pd.DataFrame(rows, columns=["response_id", "question_id", "answer", "stakeholder_group", "org_name"])


@pytest.fixture(scope="module")
def full_pipeline(params: dict):  # type: ignore[no-untyped-def]
    """The model as spaCy ships it: every component running, the spaCy Matcher in the attribute ruler."""
    import spacy

    return spacy.load(params["clean"]["spacy_model"])


def _blocks(answers: pd.DataFrame) -> list[str]:
    out: list[str] = []
    for text in answers["answer"]:
        clean = normalise_text(text)
        out += [clean[s:e] for s, e in paragraph_blocks(clean)]
    return out


def test_fast_ruler_matches_and_annotates_like_spacy(real_answers: pd.DataFrame, full_pipeline) -> None:  # type: ignore[no-untyped-def]
    from spacy.attrs import DEP, LEMMA, MORPH, POS, TAG
    from spacy.tokens import DocBin

    nlp_full = full_pipeline
    ruler = nlp_full.get_pipe("attribute_ruler")
    fast = FastRulerMatcher(ruler.matcher, nlp_full.vocab.strings)
    assert fast.supports
    docs = list(nlp_full.pipe(_blocks(real_answers), disable=["attribute_ruler", "lemmatizer", "ner"]))
    copies = list(DocBin(docs=docs).from_bytes(DocBin(docs=docs).to_bytes()).get_docs(nlp_full.vocab))
    spacy_matcher = ruler.matcher
    n_tokens = 0
    for doc, copy in zip(docs, copies, strict=True):
        assert fast(copy) == sorted(spacy_matcher(doc, allow_missing=True, as_spans=False))
        ruler(doc)
        ruler.matcher = fast
        try:
            ruler(copy)
        finally:
            ruler.matcher = spacy_matcher
        cols = [POS, MORPH, LEMMA, TAG, DEP]
        assert np.array_equal(doc.to_array(cols), copy.to_array(cols))
        n_tokens += len(doc)
    assert n_tokens > 15_000


def test_optimised_pass_equals_the_full_pipeline(real_answers: pd.DataFrame, params: dict, full_pipeline,  # type: ignore[no-untyped-def]
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """answers_clean and segments (keyphrases, entities, redacted names, passages) are identical; by default NER
    runs only on individuals' answers (PERSON names) and only the unused entities column differs (empty)."""
    fast_nlp = nlp.load_nlp(params["clean"]["spacy_model"])
    assert "lemmatizer" not in fast_nlp.pipe_names and nlp.lemmatizer_of(fast_nlp) is not None
    assert isinstance(fast_nlp.get_pipe("attribute_ruler").matcher, FastRulerMatcher)
    assert params["clean"]["entities"] is False
    with_entities = {**params, "clean": {**params["clean"], "entities": True}}
    clean_fast, seg_fast = clean_answers(real_answers, with_entities)
    clean_lean, seg_lean = clean_answers(real_answers, params)
    monkeypatch.setattr(nlp, "load_nlp", lambda model, allow_blank=False: full_pipeline)
    clean_full, seg_full = clean_answers(real_answers, with_entities)
    pd.testing.assert_frame_equal(clean_fast, clean_full)
    pd.testing.assert_frame_equal(seg_fast, seg_full)
    assert clean_full["keyphrases"].map(len).sum() > 500 and clean_full["entities"].map(len).sum() > 50
    assert clean_full["text_redacted"].str.contains(r"\[name\]").any()  # PERSON spans took part
    pd.testing.assert_frame_equal(clean_lean.drop(columns="entities"), clean_full.drop(columns="entities"))
    pd.testing.assert_frame_equal(seg_lean, seg_full)
    assert not clean_lean["entities"].map(len).any()


def test_ner_runs_only_on_the_texts_that_want_it(real_answers: pd.DataFrame, params: dict) -> None:
    """`analyse_texts(ner_mask=...)`: texts left out get no entities or PERSON spans, the others exactly what NER
    over every text gives them, and sentences and keyphrases are the same for all."""
    texts = [normalise_text(t) for t in real_answers["answer"]]
    skip = [False] * len(texts)
    model = params["clean"]["spacy_model"]
    mask = [i % 3 == 0 for i in range(len(texts))]
    every = nlp.analyse_texts(texts, skip, model)
    some = nlp.analyse_texts(texts, skip, model, ner_mask=mask)
    assert sum(bool(a.person_spans) for a, m in zip(every, mask, strict=True) if not m) > 3
    for a, b, m in zip(every, some, mask, strict=True):
        assert (a.sentences, a.keyphrases) == (b.sentences, b.keyphrases)
        if m:
            assert (a.entities, a.person_spans) == (b.entities, b.person_spans)
        else:
            assert b.entities == [] and b.person_spans == []


def test_two_worker_processes_give_the_same_outputs(real_answers: pd.DataFrame, params: dict) -> None:
    one = {**params, "clean": {**params["clean"], "n_process": 1, "batch_size": 16}}
    two = {**params, "clean": {**params["clean"], "n_process": 2, "batch_size": 16}}
    assert len(_blocks(real_answers)) >= 2 * 16 * 2  # enough blocks that the workers are really used
    clean_1, seg_1 = clean_answers(real_answers, one)
    clean_2, seg_2 = clean_answers(real_answers, two)
    pd.testing.assert_frame_equal(clean_1, clean_2)
    pd.testing.assert_frame_equal(seg_1, seg_2)


def test_batches_bounded_by_characters_give_the_same_outputs(real_answers: pd.DataFrame, params: dict) -> None:
    """Long documents go through spaCy in batches of at most `clean.batch_chars` (memory); outputs unchanged."""
    small = {**params, "clean": {**params["clean"], "batch_chars": 3000}}
    clean_a, seg_a = clean_answers(real_answers, params)
    clean_b, seg_b = clean_answers(real_answers, small)
    pd.testing.assert_frame_equal(clean_a, clean_b)
    pd.testing.assert_frame_equal(seg_a, seg_b)
