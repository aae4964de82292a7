"""Theme names an analyst would write: heading labels, descriptions, words never cut at accents."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.themes.discovery import discover_themes
from pipeline.themes.naming import describe_theme, heading_label, surface_forms, term_shares, tokens

EU = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "eu-ai-white-paper-consultation-2020"


def test_issue14_names_label_is_a_heading_not_a_keyword_list() -> None:
    label = heading_label(["digital divide", "rural area", "cost", "school"])
    assert label == "Digital divide and rural area"
    assert "," not in label and 2 <= len(label.split()) <= 6
    # a long head noun chunk stands alone rather than overflow six words
    assert heading_label(["united nation general assembly", "internet governance forum"]) == (
        "United nation general assembly"
    )
    assert heading_label([]) == "Unlabelled theme"
    # hyphenated compounds share their parts: not "Rating and zero-rating"
    assert heading_label(["rating", "zero-rating", "free basic"]) == "Free basic and rating"


def test_issue14_names_labels_use_written_forms_and_acronyms() -> None:
    texts = ["Human rights apply online.", "We defend human rights and ICANN reform.", "Human rights matter."]
    surface = surface_forms(["human right", "icann"], texts)
    assert surface == {"human right": "human rights", "icann": "ICANN"}
    assert heading_label(["human right", "icann"], surface) == "Human rights and ICANN"


def test_issue14_names_two_themes_of_a_question_never_share_a_name() -> None:
    first = heading_label(["data protection", "consent"])
    second = heading_label(["data protection", "consent", "surveillance"], taken={first})
    assert first != second and second


def test_issue14_names_description_says_what_sets_the_theme_apart() -> None:
    terms = [["privacy", "consent"], ["privacy"], ["broadband"], ["broadband", "privacy"]]
    ins, outs = term_shares(terms, np.array([0, 0, 1, 1]), 2)
    assert ins[0]["privacy"] == 1.0 and outs[0]["privacy"] == 0.5
    desc = describe_theme(["privacy", "consent"], ins[0], outs[0])
    assert desc.startswith("Answers about privacy and consent.")
    assert "Sets it apart: consent (50% of its passages, 0% in the question's other themes)." in desc


def test_issue14_names_words_are_never_cut_at_accents() -> None:
    assert tokens("Die Ermöglichung der Teilhabe, l'équité, Perú") == ["die", "ermöglichung", "der", "teilhabe",
                                                                        "l'équité", "perú"]
    assert surface_forms(["ermöglichung"], ["Die Ermöglichung ist gut."]) == {"ermöglichung": "Ermöglichung"}


def test_issue14_names_discovered_themes_have_headings_and_descriptions() -> None:
    from test_themes import PARAMS, _batch

    ans, seg, vec = _batch()
    res = discover_themes(ans, seg, vec, PARAMS, None)
    em = res.themes[(res.themes["origin"] == "emergent") & (res.themes["scope"] != "all")]
    assert len(em) >= 2
    for row in em.itertuples():
        assert "," not in row.label and 1 <= len(row.label.split()) <= 6, row.label
        assert row.description.startswith("Answers about "), row.description
    for _, group in em.groupby("scope"):
        assert group["label"].str.lower().is_unique


@pytest.mark.skipif(not EU.exists(), reason="shared corpora not available")
def test_issue14_names_real_multilingual_answers_tokens_are_whole_words() -> None:
    """On real EU consultation answers, every token is a whole word of the text (never a piece cut at an accent)."""
    df = pd.read_csv(EU / "open_ended_long.csv", usecols=["answer"], nrows=3000)
    texts = [t for t in df["answer"].dropna().astype(str) if re.search(r"[à-ÿ]", t)][:300]
    assert len(texts) >= 50
    for text in texts:
        low = text.lower().replace("’", "'")
        for tok in set(tokens(text)):
            assert re.search(rf"(?<![^\W\d_]){re.escape(tok)}(?![^\W\d_])", low), tok


def test_issue14_names_function_words_of_other_languages_never_name_a_theme() -> None:
    label = heading_label(["und", "die", "werden", "daten", "künstliche intelligenz"])
    assert label == "Künstliche intelligenz and daten"
    assert heading_label(["les", "des", "pour", "risque"]) == "Risque"
    assert describe_theme(["und", "die"], {}, {}) == ""
