"""The clean stage on REAL consultation text from ../shared/corpora (read at test time only).

Each flag is shown on real answers: non-answers (EU, AU), campaigns and self copy-paste (EU, AU),
languages (EU declared language), PDF clean-up, redaction and passages (TRAI, NETmundial).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline.clean import clean_answers
from pipeline.clean.duplicates import find_duplicates, shingles
from pipeline.clean.language import LanguageDetector
from pipeline.clean.nonanswers import nonanswer_reason
from pipeline.clean.normalise import normalise_text

pytestmark = pytest.mark.shared

EU = "corpora/eu-ai-white-paper-consultation-2020/open_ended_long.csv"
AU = "corpora/au-safe-responsible-ai-2023/srai_shortened.csv"
TRAI = "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv"
LANGS = {"English": "en", "German": "de", "French": "fr", "Spanish": "es", "Italian": "it",
         "Dutch": "nl", "Portuguese": "pt", "Swedish": "sv", "Polish": "pl"}


@pytest.fixture(scope="module")
def eu(shared_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(shared_dir / EU, dtype=str, keep_default_na=False)
    df["answer_id"] = df["Reference"] + "::" + df["question_col"]
    return df


@pytest.fixture(scope="module")
def au(shared_dir: Path) -> pd.DataFrame:
    df = pd.read_csv(shared_dir / AU, dtype=str, keep_default_na=False)
    df["answer_id"] = df["sub_num"] + "::" + df["sub_label"]
    return df.drop_duplicates("answer_id")


@pytest.fixture(scope="module")
def trai(shared_dir: Path) -> pd.DataFrame:
    return pd.read_csv(shared_dir / TRAI, dtype=str, keep_default_na=False)


def test_real_nonanswers_eu(eu: pd.DataFrame) -> None:
    reasons = pd.Series([nonanswer_reason(a, q) for a, q in zip(eu["answer"], eu["question"],
                                                                strict=True)])
    counts = reasons.value_counts()
    # real "-", "No opinion.", "#NAME?" (a spreadsheet error), "See written response", "see above"
    assert counts["na"] >= 80 and counts["see_attachment"] >= 200 and counts["see_above"] >= 2
    by_text = dict(zip(eu["answer"].str.strip().str.lower(), reasons, strict=True))
    assert by_text["-"] == "na"
    assert by_text["#name?"] == "na"
    assert by_text["see written response"] == "see_attachment"
    assert by_text["cf. document joint"] == "see_attachment"  # French
    assert by_text["see above"] == "see_above"
    assert by_text["cf. question précédente."] == "see_above"
    assert reasons[eu["answer"].str.startswith("http")].eq("url_only").any()
    # precision: long answers are essentially never non-answers
    long = eu["answer"].str.split().str.len() >= 40
    assert (reasons[long.to_numpy()] != "").mean() < 0.01


def test_real_nonanswers_au(au: pd.DataFrame) -> None:
    reasons = pd.Series([nonanswer_reason(a) for a in au["sub_value"]])
    by_text = dict(zip(au["sub_value"].str.strip(), reasons, strict=True))
    assert by_text["No comment"] == "no_comment"
    assert by_text["As above."] == "see_above"
    assert by_text["Refer to my Submission"] == "see_attachment"
    assert by_text["N/a"] == "na"
    assert (reasons == "empty").sum() == (au["sub_value"].str.strip() == "").sum()


def test_real_campaigns_and_self_copies_eu(eu: pd.DataFrame) -> None:
    res = find_duplicates(eu["answer_id"].tolist(), eu["answer"].tolist(), eu["Reference"].tolist(),
                          [nonanswer_reason(a) == "" for a in eu["answer"]], min_exact_words=4)
    df = eu.assign(group=res.group, size=res.size, kind=res.kind)
    kinds = df["kind"].value_counts()
    assert kinds["exact"] >= 50 and kinds["near"] >= 20 and kinds["self"] >= 20
    # a real template campaign: the same copyright/database text from several organisations
    campaign = df[df["answer"].str.lower().str.startswith("the eu should address copyright and database")
                  & df["answer"].str.endswith("incentives for openness.")]
    assert campaign["Reference"].nunique() >= 5 and (campaign["kind"] == "exact").all()
    assert campaign["group"].nunique() == 1 and campaign["group"].iloc[0] != ""
    # every near group is connected by pairs at or above the Jaccard threshold
    for _, grp in df[df["kind"] == "near"].groupby("group"):
        sets = [shingles(re.findall(r"\w+", t.lower()), 5) for t in grp["answer"]]
        for i, s in enumerate(sets):
            best = max(len(s & o) / len(s | o) for j, o in enumerate(sets) if j != i)
            assert best >= 0.85
    # self groups stay within one respondent, campaigns span several
    for kind, grp in df[df["group"] != ""].groupby("kind"):
        n_resp = grp.groupby("group")["Reference"].nunique()
        assert (n_resp == 1).all() if kind == "self" else (n_resp >= 2).all()


def test_real_campaign_au(au: pd.DataFrame) -> None:
    res = find_duplicates(au["answer_id"].tolist(), au["sub_value"].tolist(), au["sub_num"].tolist(),
                          [nonanswer_reason(a) == "" for a in au["sub_value"]])
    df = au.assign(group=res.group, size=res.size, kind=res.kind)
    racial = df[df["sub_value"].str.lower().str.startswith("some areas of regulation, like the racial")]
    top = racial[racial["sub_value"] == racial["sub_value"].mode().iloc[0]]
    assert len(top) >= 10 and top["sub_num"].nunique() >= 10  # one text sent by many submitters
    assert top["group"].nunique() == 1 and top["group"].iloc[0] != ""
    assert top["kind"].iloc[0] in {"exact", "near"} and top["size"].iloc[0] >= len(top)


def test_real_languages_eu(eu: pd.DataFrame) -> None:
    sample = eu[eu["Language"].isin(LANGS) & (eu["answer"].str.split().str.len() >= 8)]
    detect = LanguageDetector()
    pred = [detect(normalise_text(t)) for t in sample["answer"]]
    gold = sample["Language"].map(LANGS).tolist()
    acc = sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)
    # declared language is the form's language, not always the answer's (German forms answered
    # in English): still, agreement must be high, and each language must be recognised
    assert acc >= 0.93  # measured 0.95 on 5,782 answers of >= 8 words
    for lang in ("de", "fr", "es", "it", "nl", "pt"):
        assert sum(p == lang for p in pred) >= 25


def test_real_pdf_submissions_trai(trai: pd.DataFrame, params: dict) -> None:
    docs = trai[trai["text"].str.contains(r"Page \d+ of \d+") & (trai["text"].str.len() < 12000)]
    docs = pd.concat([docs.head(2), trai[trai["text"].str.contains(r"\w+-\n[a-z]")].head(1)])
    indiv = trai[(trai["respondent_category"] == "individual")
                 & trai["text"].str.contains(r"[\w.]+@\w+\.\w+") & (trai["text"].str.len() < 6000)]
    docs = pd.concat([docs, indiv.head(1)]).drop_duplicates("source_file")
    answers = pd.DataFrame({
        "response_id": docs["source_file"].to_numpy(), "question_id": "doc", "question_text": "",
        "answer": docs["text"].to_numpy(), "is_document": True,
        "org_name": docs["respondent_name"].to_numpy(),
        "stakeholder_group": docs["respondent_category"].map(
            lambda c: "individual" if c == "individual" else "other").to_numpy(),
    })
    clean, segments = clean_answers(answers, params)
    for raw, text in zip(answers["answer"], clean["text_clean"], strict=True):
        assert not re.search(r"^\s*Page \d+ of \d+\s*$", text, re.M)
        assert len(text) > 0.8 * len(raw.strip()) - 400  # boilerplate only, not content, removed
    joined = " ".join(clean["text_clean"])
    assert "unnecessary" in joined or not re.search(r"un-\nnecessary", " ".join(answers["answer"]))
    for row in clean.itertuples():
        assert row.n_segments >= 5 and row.language == "en"
        assert not re.search(r"[\w.]+@\w+\.\w{2,}", row.text_redacted)
    ind = clean[clean["stakeholder_group"] == "individual"]
    assert len(ind) >= 1
    for name, red in zip(ind["org_name"], ind["text_redacted"], strict=True):
        assert "[name]" in red
        for part in name.split():  # the individual's own name, e.g. in a signature
            if len(part) >= 3:
                assert not re.search(rf"\b{re.escape(part)}\b", red)
    assert "[name]" not in clean.loc[clean["stakeholder_group"] != "individual", "text_redacted"].str.cat()
    texts = clean.set_index("answer_id")["text_clean"]
    for seg in segments.itertuples():
        assert texts[seg.answer_id][seg.start : seg.end] == seg.text
        assert seg.n_words <= params["clean"]["segment_max_words"]


def test_real_document_netmundial(shared_dir: Path, params: dict) -> None:
    path = shared_dir / "corpora/netmundial-2014/netmundial-012-uk-dcms.txt"
    text = path.read_text(encoding="utf-8")
    answers = pd.DataFrame({"response_id": ["uk-dcms"], "question_id": ["doc"], "answer": [text],
                            "is_document": [True], "stakeholder_group": ["government"]})
    clean, segments = clean_answers(answers, params)
    row = clean.iloc[0]
    assert row["n_segments"] == len(segments) >= 15
    assert row["language"] == "en" and len(row["keyphrases"]) >= 20
    assert any("internet governance" in k for k in row["keyphrases"])
    assert segments["n_words"].between(1, params["clean"]["segment_max_words"]).all()
    assert (segments["start"].diff().dropna() > 0).all()
    for seg in segments.itertuples():
        assert row["text_clean"][seg.start : seg.end] == seg.text


def test_real_question_copies_and_none_gd(shared_dir: Path) -> None:
    """Global Dialogues: respondents who pasted the question back, and one-word "None" answers."""
    base = shared_dir / "corpora/cip-global-dialogues"
    answers = pd.read_csv(base / "GD1-3_open_responses_with_remesh_tags.csv", dtype=str,
                          keep_default_na=False)
    questions = pd.read_csv(base / "GD1-3_questions.csv", dtype=str, keep_default_na=False)
    df = answers.merge(questions[["dialogue", "question_id", "question_text"]],
                       on=["dialogue", "question_id"], how="left")
    n_words = df["response_text"].str.split().str.len()
    qtext = df["question_text"].fillna("")
    pasted = [len(a.strip()) >= 20 and a.strip().lower()[:20] in q.lower()
              for a, q in zip(df["response_text"], qtext, strict=True)]
    candidates = df[pasted]
    copies = [nonanswer_reason(a, q) == "question_copy"
              for a, q in zip(candidates["response_text"], candidates["question_text"], strict=True)]
    assert sum(copies) >= 2
    tiny = df[n_words <= 6]
    reasons = pd.Series([nonanswer_reason(a) for a in tiny["response_text"]])
    assert (reasons == "none").sum() >= 100  # "None", "Nothing", ...
    assert (reasons == "na").sum() >= 200  # "I don't know", "Idk", "Not sure", ...
    sample = df.sample(3000, random_state=0)
    rate = sum(nonanswer_reason(a, q) != "" for a, q in
               zip(sample["response_text"], sample["question_text"].fillna(""), strict=True)) / 3000
    assert rate < 0.03  # GD answers are overwhelmingly real answers
