"""Regression tests for the ingest defects of issue 10 about documents and ids: colliding response ids (3),
rounds taken as re-submissions (4), e-mail cover notes (15), junk, manuals and mixed encodings (16)."""

from __future__ import annotations

import random
from pathlib import Path

import docx
import pandas as pd
import pytest
from test_ingest_documents import make_pdf

from pipeline.ingest import ingest_paths, load_questionnaire, stage
from pipeline.ingest.textutil import decode_bytes

Q = load_questionnaire("itu_wsis20")
PARAMS = {"ingest": {"day_first": True}}
FIXTURES = Path(__file__).parent / "fixtures" / "ingest"
TRAI = "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv"


def export(rid: str | None, date: str, org: str, answer: str = "More public Wi-Fi.") -> str:
    """An ITU form export of one submission (without the `Response N` line when `rid` is None)."""
    lines = [f"Response {rid} \u2013 {date}", ""] if rid else []
    for item, value in zip(Q.fields, [org, "Civil Society", "Ghana"], strict=True):
        lines += [f"{item.number}. {item.text}", "", value, ""]
    for item in Q.questions:
        lines += [f"{item.number}. {item.text}", "", f"{answer} ({item.id})", ""]
    return "\n".join(lines)


def policy_text(topic: str) -> str:
    return (f"# Our view on {topic}\n\nWe believe that governments and all stakeholders should cooperate to close "
            f"the digital divide. Our organisation recommends public investment in {topic}, community networks "
            "and digital skills, so that people in rural areas can take part in the information society.\n")


def subs_of(result: pd.DataFrame) -> pd.DataFrame:
    return result.drop_duplicates("response_id").set_index("response_id")


# ---- defect 3: one response id per distinct source ----------------------------------------------------------
def test_defect03_same_file_name_in_two_folders_gets_two_ids(tmp_path: Path) -> None:
    for folder, topic in (("a", "broadband"), ("b", "libraries")):
        (tmp_path / "batch" / folder).mkdir(parents=True)
        (tmp_path / "batch" / folder / "position.txt").write_text(policy_text(topic), encoding="utf-8")
    first = ingest_paths([tmp_path / "batch"], Q, PARAMS)
    subs = subs_of(first.answers)
    assert len(subs) == 2 and subs["is_current"].all() and first.quarantine.empty
    assert sorted(subs["source_file"]) == ["batch/a/position.txt", "batch/b/position.txt"]
    assert all(rid.startswith(("a/", "b/")) for rid in subs.index)  # derived from the relative path
    again = ingest_paths([tmp_path / "batch"], Q, PARAMS)
    assert again.answers["response_id"].tolist() == first.answers["response_id"].tolist()


def test_defect03_docx_and_pdf_with_the_same_name_are_two_submissions(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_paragraph(policy_text("broadband"))
    document.save(str(tmp_path / "good.docx"))
    make_pdf(tmp_path / "good.pdf", ["We believe libraries should offer free public Internet access.",
                                     "Our network recommends funding for digital skills."])
    subs = subs_of(ingest_paths([tmp_path], Q, PARAMS).answers)
    assert len(subs) == 2 and subs["is_current"].all()
    assert sorted(subs.index) == ["good.docx", "good.pdf"]


def test_defect03_wide_csvs_without_id_column_in_two_folders(tmp_path: Path) -> None:
    header = "Organization name,Type of organization,Country," + ",".join(
        f'"{q.number}. {q.text}"' for q in Q.questions)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        rows = [f"{folder.upper()} Org {n},Academia,Chile," + ",".join(f"{folder}{n} {q.id}" for q in Q.questions)
                for n in (1, 2)]
        (tmp_path / folder / "noid.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = ingest_paths([tmp_path], Q, PARAMS)
    subs = subs_of(result.answers)
    assert len(subs) == 4 and subs["is_current"].all() and result.quarantine.empty
    assert sorted(subs.index) == ["a/noid-2", "a/noid-3", "b/noid-2", "b/noid-3"]


def test_defect03_copies_and_true_resubmissions_are_still_detected(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "copy.txt").write_text(policy_text("broadband"), encoding="utf-8")
    (tmp_path / "a" / "form.txt").write_text(export(None, "", "Harbour Skills Trust"), encoding="utf-8")
    (tmp_path / "b" / "form.txt").write_text(export(None, "", "Harbour Skills Trust", "Revised."), encoding="utf-8")
    result = ingest_paths([tmp_path], Q, PARAMS)
    subs = subs_of(result.answers)
    # the identical copy is counted once; the second export of the same organisation supersedes the first
    assert sorted(subs.index) == ["a/copy", "a/form-1", "b/form-1"]
    assert result.quarantine["reason"].str.contains("duplicate").sum() == 1
    assert not subs.loc["a/form-1", "is_current"] and subs.loc["b/form-1", "is_current"]
    assert subs.loc["a/form-1", "superseded_by"] == "b/form-1"


# ---- defect 4: rounds, forms and document types are not re-submissions --------------------------------------
def test_defect04_counter_comments_are_not_resubmissions(tmp_path: Path) -> None:
    rows = [
        ("comment", "organisation", "Open Routing Group", "comments/orgs/Open_Routing_Group.pdf",
         "We believe zero-rating harms competition and new entrants."),
        ("counter_comment", "", "Open Routing Group", "counter_comments/Open_Routing_Group.pdf",
         "In reply to the operators, we restate that zero-rating harms competition."),
        ("comment", "individual", "Jane Roe", "comments/indi/Jane_Roe.pdf", "Keep the Internet neutral."),
    ]
    df = pd.DataFrame(rows, columns=["submission_type", "respondent_category", "respondent_name", "source_file",
                                     "text"])
    path = tmp_path / "trai_like.csv"
    df.to_csv(path, index=False)
    subs = subs_of(ingest_paths([path], Q, PARAMS).answers)
    assert len(subs) == 3 and subs["is_current"].all()
    assert (subs["superseded_by"] == "").all()


def test_defect04_real_trai_originals_are_all_counted(shared_dir: Path) -> None:
    raw = pd.read_csv(shared_dir / TRAI, dtype=str, keep_default_na=False)
    result = ingest_paths([shared_dir / TRAI], Q, PARAMS)
    subs = subs_of(result.answers)
    assert len(subs) == len(raw) == 131
    assert subs["is_current"].all(), subs.loc[~subs["is_current"], "org_name"].tolist()
    for name in ("SFLC", "IT for Change", "The Centre for Internet & Society"):
        assert (subs["org_name"] == name).sum() == 2  # the comment and the counter-comment


def test_defect04_a_document_and_a_form_answer_are_not_a_resubmission(tmp_path: Path) -> None:
    (tmp_path / "export.txt").write_text(export("70", "01/02/2025 10:00", "Harbour Skills Trust"),
                                         encoding="utf-8")
    (tmp_path / "paper.txt").write_text("Organization: Harbour Skills Trust\n\n" + policy_text("skills"),
                                        encoding="utf-8")
    subs = subs_of(ingest_paths([tmp_path], Q, PARAMS).answers)
    assert len(subs) == 2 and subs["is_current"].all()


def test_defect04_second_round_and_other_form_are_not_resubmissions(tmp_path: Path) -> None:
    for folder, rid in (("round-1", "71"), ("round-2", "72")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "export.txt").write_text(export(rid, "01/02/2025 10:00", "Harbour Skills Trust"),
                                                      encoding="utf-8")
    other_form = pd.DataFrame({"response_id": ["S-1", "S-1"], "question_id": ["A1", "A2"],
                               "answer": ["Yes.", "More funding."], "org_name": ["Harbour Skills Trust"] * 2})
    other_form.to_csv(tmp_path / "other_survey.csv", index=False)
    subs = subs_of(ingest_paths([tmp_path], Q, PARAMS).answers)
    assert sorted(subs.index) == ["71", "72", "S-1"] and subs["is_current"].all()
    # the same organisation answering the same form twice in one round is still a re-submission
    (tmp_path / "round-2" / "again.txt").write_text(export("73", "02/02/2025 10:00", "Harbour Skills Trust"),
                                                    encoding="utf-8")
    subs = subs_of(ingest_paths([tmp_path], Q, PARAMS).answers)
    assert not subs.loc["72", "is_current"] and subs.loc["72", "superseded_by"] == "73"
    assert subs.loc["71", "is_current"] and subs.loc["S-1", "is_current"]


def test_defect04_superseded_answers_say_by_what_and_why(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(export("10", "05/03/2025 10:00", "The Open Lab") + "\n"
                                    + export("12", "01/03/2025 09:00", "open lab", "Old text."), encoding="utf-8")
    (tmp_path / "b.txt").write_text(export("30", "01/01/2025 10:00", "Org X"), encoding="utf-8")
    (tmp_path / "c.txt").write_text(export("30", "02/01/2025 10:00", "Org X", "Changed."), encoding="utf-8")
    a = ingest_paths([tmp_path], Q, PARAMS).answers
    subs = subs_of(a)
    assert subs.loc["12", "superseded_by"] == "10"
    assert subs.loc["12", "superseded_reason"] == (
        "re-submission: same organisation (The Open Lab); 10 was submitted later (2025-03-05T10:00:00, "
        "this one 2025-03-01T09:00:00) and counts instead")
    assert subs.loc["30~v1", "superseded_by"] == "30" and "response id" in subs.loc["30~v1", "superseded_reason"]
    current = a[a["is_current"]]
    assert (current["superseded_by"] == "").all() and (current["superseded_reason"] == "").all()
    assert ((a["superseded_by"] != "") == ~a["is_current"]).all()


# ---- defect 15: e-mail cover notes ---------------------------------------------------------------------------
COVER_NOTE = """From: Maria Exemplo <maria@example.org>
Subject: Contribution to the WSIS+20 review

Dear colleagues,

Please find attached our contribution to the WSIS+20 review consultation.
Do not hesitate to contact me if the file does not open.

Kind regards,

Maria Exemplo
Policy Officer, Fictional Network for Digital Inclusion
+00 000 000 000
"""


def test_defect15_cover_note_among_form_exports_is_quarantined(tmp_path: Path) -> None:
    (tmp_path / "export.txt").write_text(export("80", "01/02/2025 10:00", "Harbour Skills Trust"),
                                         encoding="utf-8")
    (tmp_path / "email.txt").write_text(COVER_NOTE, encoding="utf-8")
    result = ingest_paths([tmp_path], Q, PARAMS)
    assert result.answers["response_id"].unique().tolist() == ["80"]
    assert result.quarantine["source_file"].tolist() == [f"{tmp_path.name}/email.txt"]
    reason = result.quarantine.iloc[0]["reason"]
    assert "cover note" in reason and "no submission header" in reason and "no substantive answer" in reason


def test_defect15_long_contribution_with_a_cover_sentence_is_a_document(tmp_path: Path) -> None:
    text = "Dear colleagues,\n\nPlease find below our contribution.\n\n" + policy_text("access") * 6
    (tmp_path / "letter.txt").write_text(text + "\nKind regards,\nThe Fictional Network\n", encoding="utf-8")
    result = ingest_paths([tmp_path], Q, PARAMS)
    assert result.quarantine.empty and result.answers["is_document"].tolist() == [True]


def test_defect15_real_free_form_contributions_still_ingest(shared_dir: Path) -> None:
    folder = shared_dir / "corpora" / "netmundial-2014"
    result = ingest_paths([folder], Q, PARAMS)
    n_files = len([p for p in folder.glob("*.txt")])
    assert result.quarantine["reason"].str.startswith("README").all()
    assert result.answers["response_id"].nunique() == n_files
    assert result.answers["is_document"].all()
    assert (result.answers["ingest_flags"] == "").all()


# ---- defect 16: junk, manuals, mixed encodings -----------------------------------------------------------------
def test_defect16_high_byte_junk_txt_is_quarantined(tmp_path: Path) -> None:
    rng = random.Random(16)
    # high bytes that cp1252 decodes (no C1 control characters), so the old check let them through
    (tmp_path / "junk.txt").write_bytes(bytes(rng.randrange(0xA0, 0x100) for _ in range(4000)))
    result = ingest_paths([tmp_path], Q, PARAMS)
    assert result.answers.empty
    assert len(result.quarantine) == 1 and "not readable text" in result.quarantine.iloc[0]["reason"]


MANUAL = [
    "User Guide - Router X200 firmware version 2.1",
    "Chapter 3: Installation and configuration",
    "Step 1: Connect the power cable and the USB cable to the device.",
    "Step 2: Click the Settings button in the main menu and select Network.",
    "Step 3: In the dialog window, enter your password and press OK.",
    "If the LED does not turn green, restart the device and repeat step 2.",
    "To reset the default configuration, press and hold the reset button for 10 seconds.",
    "Troubleshooting: if your printer is not found, check the cable and reinstall the driver.",
    "Select File > Save to store your settings. The toolbar shows the download status.",
]


def test_defect16_manual_like_pdf_is_flagged_and_counted(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    make_pdf(tmp_path / "in" / "manual.pdf", MANUAL)
    (tmp_path / "in" / "paper.txt").write_text(policy_text("broadband") * 3, encoding="utf-8")
    summary = stage.run([tmp_path / "in"], tmp_path / "out", PARAMS)
    a = pd.read_parquet(tmp_path / "out" / "answers.parquet").set_index("response_id")
    assert a.loc["manual", "ingest_flags"] == "not_consultation_text"
    assert a.loc["paper", "ingest_flags"] == ""
    assert summary["flagged"] == {"not_consultation_text": 1} and summary["flagged_submissions"] == 1


def test_defect16_real_policy_documents_are_not_flagged(shared_dir: Path) -> None:
    result = ingest_paths([shared_dir / TRAI], Q, PARAMS)
    assert (result.answers["ingest_flags"] == "").all()


def test_defect16_mixed_utf8_and_cp1252_lines_are_decoded_and_recorded(tmp_path: Path) -> None:
    data = ("Caf\u00e9 num\u00e9rique \u2013 first line in UTF-8.\n".encode()
            + "\u00dcber die Br\u00fccke \u2013 na\u00efve second line in cp1252.\n".encode("cp1252")
            + "Third line again in UTF-8: \u00e7a marche, \u201cquoted\u201d.\n".encode())
    text, encoding = decode_bytes(data)
    assert text.split("\n")[:3] == ["Caf\u00e9 num\u00e9rique \u2013 first line in UTF-8.",
                                     "\u00dcber die Br\u00fccke \u2013 na\u00efve second line in cp1252.",
                                     "Third line again in UTF-8: \u00e7a marche, \u201cquoted\u201d."]
    assert encoding == "mixed utf-8/cp1252"
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mixed.txt").write_bytes(data)
    summary = stage.run([tmp_path / "in"], tmp_path / "out", PARAMS)
    a = pd.read_parquet(tmp_path / "out" / "answers.parquet")
    assert a["ingest_flags"].tolist() == ["mixed_encoding"]
    assert "Br\u00fccke" in a["answer"].iloc[0] and "num\u00e9rique" in a["answer"].iloc[0]
    assert summary["flagged"] == {"mixed_encoding": 1} and summary["flagged_submissions"] == 1


def test_defect16_mixed_encoding_csv_is_decoded_and_flagged(tmp_path: Path) -> None:
    header = "Response ID,Organization name," + ",".join(f'"{q.number}. {q.text}"' for q in Q.questions)
    rows = [("901,Caf\u00e9 Num\u00e9rique," + ",".join("r\u00e9seau" for _ in Q.questions)).encode(),
            ("902,Br\u00fccke e.V.," + ",".join("na\u00efve" for _ in Q.questions)).encode("cp1252")]
    (tmp_path / "mixed.csv").write_bytes(b"\n".join([header.encode(), *rows]) + b"\n")
    a = ingest_paths([tmp_path], Q, PARAMS).answers
    subs = subs_of(a)
    assert subs.loc["901", "org_name"] == "Caf\u00e9 Num\u00e9rique"
    assert subs.loc["902", "org_name"] == "Br\u00fccke e.V."
    assert (a["ingest_flags"] == "mixed_encoding").all()


@pytest.mark.parametrize("payload, encoding", [
    (b"plain ASCII text\n", "utf-8-sig"),
    ("caf\u00e9 only in UTF-8\n".encode(), "utf-8-sig"),
    ("caf\u00e9 only in cp1252 \u2013 dash\n".encode("cp1252"), "cp1252"),
])
def test_defect16_single_encoding_files_are_not_called_mixed(payload: bytes, encoding: str) -> None:
    assert decode_bytes(payload)[1] == encoding


def test_defect08_markdown_emphasis_stripping_is_linear() -> None:
    """Ingest strips Markdown emphasis from every line and cell: a long line of markers must not hang it."""
    import time

    from pipeline.ingest.textutil import strip_emphasis

    start = time.perf_counter()
    strip_emphasis("**a*_" * 40_000)  # 200 KB; the old lazy patterns took about 90 s here
    strip_emphasis("_x" * 100_000)
    assert time.perf_counter() - start < 5
    assert strip_emphasis("a **bold** and _it_ and *x y* and __u__ ***z***") == "a bold and it and x y and u z"
