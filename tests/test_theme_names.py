"""Theme names an analyst would write: phrases of the theme's own passages, sentence descriptions, whole words."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DIR

from pipeline.themes import naming
from pipeline.themes.discovery import discover_themes
from pipeline.themes.naming import (
    central_sentence,
    describe_theme,
    heading_label,
    name_theme,
    surface_forms,
    term_shares,
    tokens,
)

SHARED = (SHARED_DIR or Path("/nonexistent")) / "corpora"
EU = SHARED / "eu-ai-white-paper-consultation-2020"

# Written for these tests (not respondents' text).
JOBS = [
    "I worry about job losses as automation replaces workers in shops.",
    "Job losses will hit young workers hardest.",
    "There will be many job losses in retail and transport.",
    "Automation could take jobs away from workers.",
    "Massive job losses and growing inequality are my main worry.",
    "Workers need retraining before the job losses arrive.",
]
PRIVACY = [
    "Facial recognition in public spaces is mass surveillance.",
    "Ban facial recognition by the police.",
    "My data privacy matters more than convenience.",
    "Protect data privacy and stop facial recognition.",
]


def _shares(groups: Sequence[Sequence[str]], lang: str | None = None) -> tuple[
    list[list[str]], list[dict[str, float]], list[dict[str, float]]
]:
    terms = [naming.ngram_terms(t, lang) for g in groups for t in g]
    labels = np.array([c for c, g in enumerate(groups) for _ in g])
    ctf, names = naming.class_tfidf(terms, labels, len(groups))
    kws = [naming.nameable(k)[:8] for k in naming.top_keywords(ctf, names, 24)]
    ins, outs = term_shares(terms, labels, len(groups))
    return kws, ins, outs


def test_issue14_names_label_is_a_phrase_of_the_passages_not_glued_keywords() -> None:
    kws, ins, outs = _shares([JOBS, PRIVACY])
    label, desc = name_theme(kws[0], JOBS, ins[0], outs[0], {})
    assert label == "Job losses"
    label2, _ = name_theme(kws[1], PRIVACY, ins[1], outs[1], {})
    assert label2 in {"Facial recognition", "Data privacy"}
    assert " and " not in label.lower() and "," not in label
    # the description quotes a typical sentence of the theme and says what sets it apart
    assert desc.startswith("Typical answer: “") and desc.endswith(").")
    assert "Sets it apart: job" in desc
    sentence = re.search(r"“(.+?)”", desc)
    assert sentence and sentence.group(1) in JOBS


def test_issue14_names_a_phrase_mostly_of_function_words_gives_way_to_a_content_phrase() -> None:
    """'Limits on the misuse' (half function words) is written most often, but a heading of content words from the
    same passages names the theme; with nothing else written, the glue phrase is still used."""
    texts = (["We need limits on the misuse of these systems by the police."] * 6
             + ["The misuse of systems is a risk."] * 2 + ["Limits protect people."] * 2)
    ins, outs = {"misuse": 0.8, "limits": 0.6}, {"misuse": 0.05, "limits": 0.05}
    assert heading_label(["misuse", "limits"], texts, ins, outs) == "Misuse of systems"
    only = ["We need limits on the misuse by the police."] * 4
    assert heading_label(["misuse", "limits"], only, ins, outs) == "Limits on the misuse"


def test_issue14_names_without_any_written_phrase_the_best_keyphrase_names_it() -> None:
    assert heading_label([], ["nothing here"]) == "Unlabelled theme"
    # no phrase of two words in two passages: the best multi-word keyword, in its written form
    assert heading_label(["human right", "icann"], ["Human rights apply.", "ICANN reform."]) == "Human rights"
    assert heading_label(["les", "des", "pour"], ["les des pour"]) == "Unlabelled theme"


def test_issue14_names_verbs_and_fillers_never_start_or_end_a_heading() -> None:
    texts = ["We must protect human rights online.", "Governments protect human rights badly.",
             "Protect human rights of users.", "Human rights of users matter."]
    ins = {"human right": 1.0, "user": 0.5}
    outs = {"human right": 0.1, "user": 0.1}
    label = heading_label(["human right", "user"], texts, ins, outs)
    assert label in {"Human rights", "Human rights of users"}, label


def test_issue14_names_two_themes_of_a_question_never_share_a_name() -> None:
    kws, ins, outs = _shares([JOBS, PRIVACY])
    first = heading_label(kws[0], JOBS, ins[0], outs[0])
    second = heading_label(kws[0], JOBS, ins[0], outs[0], taken={first})
    assert first != second and second


def test_issue14_names_description_says_what_sets_the_theme_apart() -> None:
    terms = [["privacy", "consent"], ["privacy"], ["broadband"], ["broadband", "privacy"]]
    ins, outs = term_shares(terms, np.array([0, 0, 1, 1]), 2)
    assert ins[0]["privacy"] == 1.0 and outs[0]["privacy"] == 0.5
    desc = describe_theme(["privacy", "consent"], ins[0], outs[0])
    assert "Sets it apart: consent (50% of its passages, 0% in the question's other themes)" in desc
    assert describe_theme(["und", "die"], {}, {}) == ""
    # a question is no typical answer; too short a sentence neither
    texts = ["Should consent be required for every use of my data?", "Consent.",
             "Consent must be asked before any use of personal data."]
    assert central_sentence(["consent", "personal data"], texts, {"consent": 1.0}, {"consent": 0.0}) == texts[2]


def test_issue14_names_words_are_never_cut_at_accents() -> None:
    assert tokens("Die Ermöglichung der Teilhabe, l'équité, Perú") == ["die", "ermöglichung", "der", "teilhabe",
                                                                        "l'équité", "perú"]
    assert surface_forms(["ermöglichung"], ["Die Ermöglichung ist gut."]) == {"ermöglichung": "Ermöglichung"}


def test_acronym_with_a_possessive_keeps_its_capitals() -> None:
    """The sample batch named a theme "Itu's work": "ITU's" at a sentence's start was lowered like "The"."""
    texts = ["ITU's work on standards helped us.", "We value ITU's work with regulators.",
             "ITU's work reached rural schools.", "The ITU secretariat answered quickly."]
    case = naming.acronyms(texts)
    assert case.get("itu") == "ITU"
    assert naming._cased("itu's work", surface_forms(["itu's work"], texts), case) == "ITU's work"
    # an ordinary first word is still lowered, an acronym alone stays
    assert surface_forms(["work"], ["Work matters.", "Good work is rare."]) == {"work": "work"}
    assert naming._case_word("itu's", case) == "ITU's" and naming._case_word("work", case) == "work"


def test_issue14_names_function_words_of_other_languages_never_name_a_theme() -> None:
    de = ["Die Nutzung der Gesichtserkennung ist gefährlich.", "Wir lehnen die Gesichtserkennung im Raum ab.",
          "Keine Gesichtserkennung im öffentlichen Raum.", "Die Gesichtserkennung im öffentlichen Raum verbieten."]
    other = ["Die Daten der Patienten sind sicher.", "Daten und Gesundheit gehören zusammen.",
             "Gesundheit braucht gute Daten."]
    kws, ins, outs = _shares([de, other], "de")
    label = heading_label(["und", "die", *kws[0]], de, ins[0], outs[0], languages=["de"])
    assert label == "Gesichtserkennung im öffentlichen Raum", label
    assert not {"und", "die", "der"} & set(label.lower().split())


def test_issue14_names_discovered_themes_have_headings_and_descriptions() -> None:
    from test_themes import PARAMS, _batch

    ans, seg, vec = _batch()
    res = discover_themes(ans, seg, vec, PARAMS, None)
    em = res.themes[(res.themes["origin"] == "emergent") & (res.themes["scope"] != "all")]
    assert len(em) >= 2
    for row in em.itertuples():
        assert "," not in row.label and 1 <= len(row.label.split()) <= 6, row.label
        assert row.description.endswith("."), row.description
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


def test_words_that_lost_a_letter_never_make_names_or_keywords() -> None:
    """An export that wrote letters outside its code page as "?" left "esen?iale": the pieces ("esen", "iale")
    are no words; they named an EU theme "Rile esen". Written for the test."""
    texts = ["Ra?punsurile esen?iale sunt importante pentru cet??eni.", "Protec?ia datelor esen?iale conteaz?.",
             "Marie Sk?odowska-Curie actions fund data protection research.", "Data protection matters why?Because."]
    fragments = {"esen", "iale", "ra", "punsurile", "protec", "ia", "sk", "odowska", "curie", "cet", "eni"}
    for text in texts:
        assert not fragments & set(tokens(text)), tokens(text)
        assert not fragments & {w for t in naming.ngram_terms(text) for w in t.split()}
        words = {w.lower() for run in naming._clause_words(text) for w, _ in run}
        assert not fragments & words, words
    # a question written without its space is not a lost letter, nor a "?" at a word's end (it cannot be told
    # from a question mark); links are not text
    assert {"why", "because"} <= set(tokens(texts[3]))
    assert tokens("See https://x.org/p.cfm?abstract_id=3 now") == ["see", "now"]
    label = heading_label(["data protection", "esen", "iale"], texts, languages=["ro"])
    assert not fragments & set(label.lower().split()), label


@pytest.mark.skipif(not EU.exists(), reason="shared corpora not available")
def test_real_answers_that_lost_letters_give_no_fragment_terms() -> None:
    """Real EU answers (Polish, Romanian, Croatian, Latvian ...) whose export replaced letters by "?": no term or
    heading word of them is a piece of a damaged word, unless the text also writes it as a whole word."""
    from pipeline.clean.normalise import damaged_spans, mask_damaged_words, normalise_text

    df = pd.read_csv(EU / "open_ended_long.csv", usecols=["answer"])
    texts = [normalise_text(t) for t in df["answer"].dropna().astype(str)]
    damaged = [t for t in texts if damaged_spans(t)]
    assert len(damaged) >= 25  # 32 answers, 200 words (measured)
    for text in damaged:
        pieces = {p.lower() for a, b in damaged_spans(text) for p in re.split(r"[?\ufffd'’-]", text[a:b]) if p}
        whole = set(naming.tokens(mask_damaged_words(text, " ")))
        bad = (pieces - whole) & ({w for t in naming.ngram_terms(text) for w in t.split()} | set(tokens(text)))
        assert not bad, bad


# --- real text: themes made by TF-IDF k-means on real answers (no encoder needed), named by `name_theme` ---

def _real_texts(corpus: str) -> list[str]:
    """Real answers to questions other than those of the blind review (BC Q13/Q17, EU q49/q57, NETmundial)."""
    if corpus == "bc":
        df = pd.read_csv(SHARED / "bc-ai-survey-2025" / "bc_ai_survey_responses.csv", dtype=str,
                         keep_default_na=False)
        return [t for t in df["Q8_AI_helping_BC_community_text_OE"] if len(t.split()) >= 4][:500]
    if corpus in ("eu", "eu-de"):
        df = pd.read_csv(EU / "open_ended_long.csv", usecols=["question_col", "Language", "answer"])
        if corpus == "eu":
            df = df[(df["question_col"] == 64) & (df["Language"] == "English")]
            return [t for t in df["answer"].dropna().astype(str) if len(t.split()) >= 4][:400]
        df = df[~df["question_col"].isin([49, 57]) & (df["Language"] == "German")]
        return [t for t in df["answer"].dropna().astype(str) if len(t.split()) >= 6][:300]
    # TRAI: paragraphs of the long submissions
    df = pd.read_csv(SHARED / "trai-differential-pricing-2015" / "trai_differential_pricing_submissions.csv",
                     dtype=str, keep_default_na=False)
    text_col = max(df.columns, key=lambda c: df[c].str.len().sum())
    paras = [" ".join(p.split()) for t in df[text_col] for p in re.split(r"\n\s*\n", t)]
    return [p for p in paras if 12 <= len(p.split()) <= 150][:600]


def _real_names(texts: list[str], lang: str | None, k: int = 8) -> list[tuple[str, str, list[str]]]:
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(min_df=2, stop_words=sorted(naming.stop_words(lang))).fit_transform(texts)
    labels = KMeans(k, n_init=3, random_state=0).fit_predict(x)
    terms = [naming.ngram_terms(t, lang) for t in texts]
    ctf, names = naming.class_tfidf(terms, labels, k)
    kws = naming.top_keywords(ctf, names, 24)
    ins, outs = term_shares(terms, labels, k)
    case = naming.acronyms(texts)
    taken: set[str] = set()
    out = []
    for c in range(k):
        members = [t for t, lab in zip(texts, labels, strict=True) if lab == c]
        label, desc = name_theme(naming.nameable(kws[c], [lang] if lang else [])[:8], members, ins[c], outs[c],
                                 case, taken, [lang] if lang else [])
        taken.add(label)
        out.append((label, desc, members))
    return out


def _stems(text: str) -> list[str]:
    return [naming._stem(w) for w in tokens(text)]


@pytest.mark.skipif(not SHARED.exists(), reason="shared corpora not available")
@pytest.mark.filterwarnings("ignore:Your stop_words may be inconsistent")
@pytest.mark.parametrize(("corpus", "lang"), [("bc", None), ("eu", None), ("trai", None), ("eu-de", "de")])
def test_issue14_names_real_text_labels_are_written_headings(corpus: str, lang: str | None) -> None:
    """Real answers: every label is a 2-6 word phrase written (as stems) in its theme's passages, never a
    keyword list, joined by "and" only where respondents wrote it so; descriptions are sentences."""
    texts = _real_texts(corpus)
    assert len(texts) >= 150
    named = _real_names(texts, lang)
    stop = naming.name_stop_words(tuple([lang] if lang else []))
    in_two = 0
    for label, desc, members in named:
        assert "," not in label and 2 <= len(label.split()) <= 6, label
        words = label.lower().split()
        assert words[0] not in stop and words[-1] not in stop, label
        assert 2 * sum(w in stop for w in words) < len(words), label  # never mostly function words
        phrase = " " + " ".join(_stems(label)) + " "
        held = sum(phrase in " " + " ".join(_stems(m)) + " " for m in members)
        assert held >= 1, label
        in_two += held >= 2
        assert re.fullmatch(r"[A-ZÀ-Þ“].*[.)]", desc, flags=re.S), desc
        sentence = re.search(r"“(.+?)”", desc)
        if sentence:
            assert any(sentence.group(1).rstrip(".") in " ".join(m.split()) for m in members), sentence.group(1)
    assert in_two >= 0.75 * len(named)  # written by two respondents or more, but in a tiny theme
    assert len({label.lower() for label, _, _ in named}) == len(named)
    if lang == "de":  # labels stay in the passages' language
        assert sum(bool(set(label.lower().split()) & naming.language_stop_words("de")) or
                   label.split()[0][:1].isupper() for label, _, _ in named) == len(named)


def test_naming_checks_english_headings_with_the_clean_stage_spacy_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The part-of-speech check of English headings loads `clean.spacy_model` (not the default model): one model
    per run, the one the analyst configured."""
    from pipeline import config
    from pipeline.clean import nlp as clean_nlp
    from pipeline.themes.discovery import theme_params
    from pipeline.themes.parts import build_parts

    params = config.load_params()
    configured = params["clean"]["spacy_model"]
    real = clean_nlp.load_nlp
    asked: list[str] = []

    def recording(model: str, allow_blank: bool = False) -> object:
        asked.append(model)
        return real(configured, allow_blank)

    monkeypatch.setattr(clean_nlp, "load_nlp", recording)
    rep = build_parts(theme_params({**params, "clean": {**params["clean"], "spacy_model": "en_analyst_model"}}))
    assert rep.representation.spacy_model == "en_analyst_model"
    kws, ins, outs = _shares([JOBS, PRIVACY])
    label = heading_label(kws[0], JOBS, ins[0], outs[0], spacy_model="en_analyst_model")
    assert asked and set(asked) == {"en_analyst_model"}
    assert label == heading_label(kws[0], JOBS, ins[0], outs[0])  # same model underneath: same heading
    assert naming.english_heading(["Job losses", "Goes away"], "en_analyst_model") == [True, False]
