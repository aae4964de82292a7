"""Long documents: text repeated across documents is boilerplate, set aside before themes, tags and quotes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.clean.boilerplate import boilerplate_mask
from pipeline.themes.discovery import held_themes

NETMUNDIAL = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "netmundial-2014"
NAMES = tuple(["Amina", "Bruno", "Chen", "Dara", "Emil", "Farah", "Goran", "Hana", "Ivo", "Jana"])
HEADER = "Submission to the consultation, compiled by the secretariat under licence CC BY 4.0, file {n}."


def _docs(n_docs: int = 10) -> tuple[list[str], list[str]]:
    texts, docs = [], []
    vocab = [
        "broadband", "rural", "schools", "privacy", "health", "records", "open", "source", "government",
        "spectrum", "community", "networks", "cybersecurity", "skills", "small", "firms", "fibre", "towers",
        "tariffs", "literacy", "libraries", "women", "farmers", "clinics", "courts", "archives",
        "satellites", "cables", "exchanges", "languages"
    ]
    rng = np.random.default_rng(7)
    for d in range(n_docs):
        texts.append(HEADER.format(n=100 + d))
        docs.append(f"r{d}")
        for _ in range(3):  # the document's own text: words in an order no other document uses
            texts.append(" ".join(rng.choice(vocab, size=14).tolist()).capitalize() + ".")
            docs.append(f"r{d}")
    return texts, docs


def test_issue14_long_docs_repeated_header_is_boilerplate_own_text_is_not() -> None:
    texts, docs = _docs()
    mask = boilerplate_mask(texts, docs, [True] * len(texts), min_share=0.3, min_documents=3)
    assert mask[[i for i, t in enumerate(texts) if t.startswith("Submission")]].all()
    assert not mask[[i for i, t in enumerate(texts) if not t.startswith("Submission")]].any()


def test_issue14_long_docs_boilerplate_needs_share_and_minimum_count_and_is_order_free() -> None:
    texts, docs = _docs(10)
    # header in 2 of 10 documents only: below both the share and the minimum count
    few = [t if not t.startswith("Submission") or d in ("r0", "r1") else f"{NAMES[int(d[1:])]} wrote this cover note."
           for t, d in zip(texts, docs, strict=True)]
    assert not boilerplate_mask(few, docs, [True] * len(few), min_share=0.3, min_documents=3).any()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(texts))
    full = boilerplate_mask(texts, docs, [True] * len(texts))
    shuffled = boilerplate_mask([texts[i] for i in order], [docs[i] for i in order], [True] * len(texts))
    assert np.array_equal(full[order], shuffled)


@pytest.mark.filterwarnings("ignore:spaCy model 'none' is not installed")  # a blank pipeline on purpose (fast)
def test_issue14_long_docs_campaign_copies_are_not_boilerplate() -> None:
    """The clean stage passes campaign answers (dup_group) as not eligible: same text, many respondents, kept."""
    from pipeline.clean.core import clean_answers

    campaign = ("We ask the regulator to keep the internet open and neutral for everyone. "
                "No operator should pick winners among applications. "
                "Zero rating harms new services and the poorest users most of all.")
    rows = [{"response_id": f"c{i}", "question_id": "q1", "answer": campaign} for i in range(8)]
    rows += [{"response_id": f"o{i}", "question_id": "q1",
              "answer": f"Answer {i} is its own view about spectrum auctions number {i}. It has a second point."}
             for i in range(4)]
    clean, seg = clean_answers(pd.DataFrame(rows), {"clean": {"spacy_model": "none", "allow_blank_spacy": True}})
    assert "is_boilerplate" in seg.columns
    camp = seg["response_id"].str.startswith("c")
    assert (clean["dup_group"][clean["response_id"].str.startswith("c")] != "").all()
    assert not seg.loc[camp, "is_boilerplate"].any()


def test_issue14_long_docs_document_holds_theme_only_beyond_passing_mention() -> None:
    # document d1 has 20 passages: 18 on t1, one each on t2 and t3; a short answer a2 with one passage on t2
    rows = [("d1", "t1")] * 18 + [("d1", "t2"), ("d1", "t3"), ("a2", "t2")]
    sa = pd.DataFrame({"answer_id": [a for a, _ in rows], "theme_id": [t for _, t in rows]})
    held, documents = held_themes(sa, {"document_segments": 8, "document_min_passages": 2,
                                       "document_min_share": 0.05})
    assert held["d1"] == {"t1"} and held["a2"] == {"t2"} and documents == {"d1"}


@pytest.mark.skipif(not NETMUNDIAL.exists(), reason="shared corpora not available")
@pytest.mark.filterwarnings("ignore:spaCy model 'none' is not installed")  # a blank pipeline on purpose (fast)
def test_issue14_long_docs_netmundial_corpus_header_is_boilerplate() -> None:
    from pipeline.clean.core import clean_answers

    files = sorted(NETMUNDIAL.glob("netmundial-*.txt"))
    answers = pd.DataFrame({"response_id": [f.stem for f in files], "question_id": "document",
                            "answer": [f.read_text(encoding="utf-8") for f in files]})
    blank = {"spacy_model": "none", "allow_blank_spacy": True, "segment_max_words": 30}
    _, seg = clean_answers(answers, {"clean": blank})
    header = seg["text"].str.contains("all_contributions", regex=False)
    assert header.sum() >= 0.8 * len(files)
    assert seg.loc[header, "is_boilerplate"].mean() >= 0.9
    # the documents' own text is kept: boilerplate is a small part of the passages
    assert seg["is_boilerplate"].mean() < 0.1


def test_issue14_long_docs_tagger_does_not_score_boilerplate_passages() -> None:
    from pipeline.tagger.stage import _segments_for

    seg = pd.DataFrame({
        "segment_id": ["a::q#0", "a::q#1", "a::q#2"], "answer_id": ["a::q"] * 3,
        "text": ["Header repeated in every submission of this batch.", "Broadband for rural schools matters.",
                 "Spectrum should be cheaper for community networks."],
        "is_nonanswer": [False] * 3, "is_boilerplate": [True, False, False],
    })
    kept = _segments_for(["a::q"], seg, pd.Series([3]), 2)
    assert kept["segment_id"].tolist() == ["a::q#1", "a::q#2"]


def test_issue14_long_docs_batch_scope_rows_count_answers_holding_the_theme() -> None:
    from pipeline.themes.discovery import _held_sizes

    rows = pd.DataFrame({"theme_id": ["seed-a", "other"], "scope": ["all", "all"], "size": [3, 2],
                         "n_respondents": [3, 2]})
    ans = pd.DataFrame({"answer_id": ["r1::q1", "r2::q1", "r2::q2"], "response_id": ["r1", "r2", "r2"]})
    out = _held_sizes(rows, {"r1::q1": {"seed-a"}, "r2::q2": {"seed-a"}}, ans)
    assert out["size"].tolist() == [2, 2] and out["n_respondents"].tolist() == [2, 2]
