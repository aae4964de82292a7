"""Non-prose passages of documents (references, tables, lists of names) are set aside like boilerplate."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from pipeline.clean.nonprose import nonprose_kind, segment_nonprose_kinds

SHARED = Path(__file__).resolve().parents[2] / "shared"
NETMUNDIAL = SHARED / "corpora" / "netmundial-2014"
TRAI = SHARED / "corpora" / "trai-differential-pricing-2015" / "trai_differential_pricing_submissions.csv"
BLANK = {"spacy_model": "none", "allow_blank_spacy": True, "segment_max_words": 30}

# written for this test (not respondents' text)
REFERENCE = ("12 Okafor, T. and Lindqvist, M. (2019). Pricing rules for mobile data. Journal of Network Policy, "
             "vol. 4, pp. 77-93. Available at https://example.org/okafor2019")
SUPRA = "See Lindqvist, supra note 12, at 80-81; Okafor et al., supra note 3."
TABLE = "2019 41.2% 3.58 2020 44.9% 6.54 2021 48.1% 13.2 2022 52.7% 33.6"
NAMES = "Maria Tanaka, Director, Open Net Forum; Paul Osei, Chair, Rural Links Coalition; Ana Ruiz, Secretary"
PROSE = ("We think differential pricing would let large platforms lock in new users, and the regulator should "
         "not allow it.")
PROSE_CITING = ("As the regulator's own 2015 paper shows (https://example.org/paper), prices for data have fallen "
                "every year and they will keep falling if the market stays open.")
FRENCH = "Nous pensons que les règles doivent être les mêmes pour tous les opérateurs et pour tous les services."
TOPICS = "Privacy, Transparency, Accountability, Human Rights, Open Standards, Digital Skills"


def test_kinds_of_written_passages() -> None:
    assert nonprose_kind(REFERENCE) == "reference"
    assert nonprose_kind(SUPRA) == "reference"
    assert nonprose_kind(TABLE) == "table"
    assert nonprose_kind(NAMES) == "list"
    for prose in (PROSE, PROSE_CITING):
        assert nonprose_kind(prose) == ""
    assert nonprose_kind(FRENCH, "fr") == ""
    assert nonprose_kind("") == ""


def test_function_words_are_the_passage_language() -> None:
    """French prose read with English function words looks like a list of capitalised-free tokens: it is the
    language's own list that keeps it prose (and a German list of names stays a list)."""
    german = "Wir fordern, dass die Regeln für alle Anbieter gleich sind und dass niemand bevorzugt wird."
    assert nonprose_kind(german, "de") == ""
    assert nonprose_kind("Anna Schmidt, Vorsitzende, Netzwerk Offene Daten Berlin; Jonas Weber, Kassenwart",
                         "de") == "list"


@pytest.mark.filterwarnings("ignore:spaCy model 'none' is not installed")  # a blank pipeline on purpose (fast)
def test_clean_sets_aside_document_passages_only_and_records_the_kind() -> None:
    from pipeline.clean.core import clean_answers

    document = " ".join([PROSE, "\n\n", NAMES, "\n\n", PROSE_CITING, "\n\n", REFERENCE, "\n\n", SUPRA, "\n\n",
                         "Zero rating should be judged case by case, with the regulator watching the effects."])
    rows = [{"response_id": "doc", "question_id": "q1", "answer": document},
            {"response_id": "short", "question_id": "q1", "answer": TOPICS}]  # a survey answer: never set aside
    clean, seg = clean_answers(pd.DataFrame(rows), {"clean": BLANK})
    assert pd.api.types.is_string_dtype(seg["boilerplate_kind"])
    assert (seg["is_boilerplate"] == (seg["boilerplate_kind"] != "")).all()
    doc = seg[seg["response_id"] == "doc"]
    kinds = dict(zip(doc["text"].str[:12], doc["boilerplate_kind"], strict=True))
    assert kinds[NAMES[:12]] == "list" and kinds[REFERENCE[:12]] == "reference" and kinds[SUPRA[:12]] == "reference"
    assert kinds[PROSE[:12]] == "" and kinds[PROSE_CITING[:12]] == ""
    assert not seg.loc[seg["response_id"] == "short", "is_boilerplate"].any()
    # switched off: nothing set aside (no repeated text here either)
    _, off = clean_answers(pd.DataFrame(rows), {"clean": {**BLANK, "set_aside_nonprose": False}})
    assert not off["is_boilerplate"].any() and (off["boilerplate_kind"] == "").all()
    # the cluster run's per-partition rule gives the same kinds from the tables
    assert segment_nonprose_kinds(clean, seg, 3) == seg["boilerplate_kind"].tolist()


@pytest.mark.skipif(not NETMUNDIAL.exists(), reason="shared corpora not available")
@pytest.mark.filterwarnings("ignore:spaCy model 'none' is not installed")
def test_netmundial_signatory_lists_and_references_set_aside_prose_kept() -> None:
    from pipeline.clean.core import clean_answers

    files = sorted(NETMUNDIAL.glob("netmundial-*.txt"))
    answers = pd.DataFrame({"response_id": [f.stem for f in files], "question_id": "document",
                            "answer": [f.read_text(encoding="utf-8") for f in files]})
    _, seg = clean_answers(answers, {"clean": BLANK})
    kinds = seg["boilerplate_kind"].value_counts()
    # measured 2026-12-03 (spaCy model): 31 lists of names, 20 references in 2,397 document passages
    assert kinds.get("list", 0) >= 10 and kinds.get("reference", 0) >= 8
    nonprose = seg["boilerplate_kind"].isin(["reference", "table", "list"])
    assert nonprose.mean() < 0.05  # the documents' own text is kept
    # what is set aside has few function words (the rule), and passages that argue are kept
    long_prose = seg["text"].str.count(r"\b(?:the|of|and|to|should|is)\b") >= 6
    assert (nonprose & long_prose).sum() <= 0.1 * nonprose.sum()


@pytest.mark.skipif(not TRAI.exists(), reason="shared corpora not available")
def test_trai_footnotes_and_citations_are_references() -> None:
    """Real TRAI submissions: passages holding legal citations (supra notes) are references; argued passages
    mentioning the consultation are not."""
    text = pd.read_csv(TRAI, usecols=lambda c: c in {"text", "content", "body"}, nrows=131)
    col = text.columns[0]
    blocks = [b.strip() for t in text[col].dropna().astype(str) for b in t.split("\n") if len(b.split()) >= 8]
    supra = [b for b in blocks if "supra note" in b][:200]
    assert len(supra) >= 20
    assert sum(nonprose_kind(b) == "reference" for b in supra) >= 0.7 * len(supra)
    argued = [b for b in blocks if " should " in b and "http" not in b and "supra" not in b][:300]
    assert len(argued) >= 50
    assert sum(nonprose_kind(b) != "" for b in argued) <= 0.05 * len(argued)


def test_abbreviations_in_prose_are_no_citation_markers() -> None:
    """Patterns found on EU answers (sentences written for this test): "rules, e.g" read as "Surname, I." (the
    pattern must keep its capitals) and German "v." (von) read as the "v." of a case name."""
    assert nonprose_kind("Clinics want clear outputs for patients; testing on local data,rare cases,older "
                         "machines,small wards, night shifts, e.g") == ""
    assert nonprose_kind("Die Behörde muss d. Risiko v. Fehlern bei Kameras v. Bahnhöfen deutlich senken.",
                         "de") == ""
