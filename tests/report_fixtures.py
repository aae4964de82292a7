"""A small but complete processed batch (every artefact of docs/ARCHITECTURE.md), written from scratch.

The texts are invented. Some are hostile on purpose (a <script> tag, spreadsheet formulas, an email address)
so tests can check that the report makes them inert. Known figures are exposed as constants for assertions.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = "<script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example/x","click me")'
EMAIL = "jane.doe@example.org"
HOSTILE_ORG = "=cmd|' /C calc'!A0"

QUESTIONS = {
    "Q1": "What has worked well in the last twenty years?",
    "Q2": "What challenges remain?",
    "Q3": "What should the next phase prioritise?",
}
# response_id -> (org_name, org_type, stakeholder_group, country, region, submission_group, is_current)
RESPONDENTS = {
    "r1": ("Ministry of Digital Affairs", "Government", "government", "Kenya", "Africa", "g1", True),
    "r2": ("Open Networks Alliance", "Civil society", "civil society", "Brazil", "Americas", "g2", True),
    "r3": ("Northfield University", "Academia", "academia", "Germany", "Europe", "g3", True),
    "r4": (HOSTILE_ORG, "Private sector", "private sector", "Japan", "Asia", "g4", True),
    "r5": ("Pacific Telecom Users", "Civil society", "civil society", "Fiji", "Oceania", "g5", True),
    "r6": ("Open Networks Alliance", "Civil society", "civil society", "Brazil", "Americas", "g2", False),
}
THEMES = {  # theme_id -> (label, origin)
    "connectivity": ("Connectivity and access", "seed"),
    "skills": ("Digital skills", "seed"),
    "Q2.emergent-1": ("Funding, financing, budget", "emergent"),
}
# (response_id, question_id) -> (answer, nonanswer_reason, themes)
ANSWERS = {
    ("r1", "Q1"): ("Mobile broadband reached most rural districts and schools got connected.", "",
                   "connectivity;skills"),
    ("r1", "Q2"): ("Financing the last mile remains hard; budgets for rural networks are small.", "",
                   "Q2.emergent-1;connectivity"),
    ("r1", "Q3"): ("Digital literacy programmes for teachers and older people.", "", "skills"),
    ("r2", "Q1"): (f"Community networks grew. {SCRIPT} Contact {EMAIL} for data.", "", "connectivity"),
    ("r2", "Q2"): (f"{FORMULA} Funding for community networks is scarce.", "", "Q2.emergent-1"),
    ("r2", "Q3"): ("N/A", "na", ""),
    ("r3", "Q1"): ("Research networks connected universities across the region.", "", "connectivity"),
    ("r3", "Q2"): ("", "empty", ""),
    ("r3", "Q3"): ("Curricula on data skills and critical thinking about algorithms.", "", "skills"),
    ("r4", "Q1"): ("+44 is not a formula but it starts like one; coverage improved a lot.", "", "connectivity"),
    ("r4", "Q2"): ("Investment incentives and spectrum costs slow deployment.", "", "Q2.emergent-1"),
    ("r4", "Q3"): ("@everyone should care about the weather in spring.", "", ""),
    ("r5", "Q1"): ("Submarine cables reached the islands and prices fell.", "", "connectivity"),
    ("r5", "Q2"): ("Financing the last mile remains hard; budgets for rural networks are small.", "",
                   "Q2.emergent-1"),
    ("r5", "Q3"): ("See above.", "see_above", ""),
    ("r6", "Q1"): ("Old draft of our first answer.", "", "connectivity"),
    ("r6", "Q2"): ("Old draft about funding.", "", "Q2.emergent-1"),
    ("r6", "Q3"): ("Old draft about skills.", "", "skills"),
}
TAGS = {  # (response_id, question_id) -> (action_lines, sdgs)
    ("r1", "Q1"): ("C2;C4", "9;4"), ("r1", "Q2"): ("C2", "9"), ("r1", "Q3"): ("C4", "4"),
    ("r2", "Q1"): ("C2", "9"), ("r2", "Q2"): ("C2;C7.e-business", "9;8"), ("r3", "Q1"): ("C2", "9"),
    ("r3", "Q3"): ("C4;C7.e-learning", "4"), ("r4", "Q1"): ("C2", "9"), ("r4", "Q2"): ("C6", "17"),
    ("r5", "Q1"): ("C2", "9;10"), ("r5", "Q2"): ("C2", "9"),
}
QUARANTINE = [("bad-file.txt", "record 3", "no organisation name", f"{FORMULA} {SCRIPT}")]

# figures the report must show (current submissions only)
N_SUBMISSIONS_READ = 6
N_CURRENT = 5
N_ANSWERS = 18
N_CURRENT_ANSWERS = 15
N_NONANSWERS = 3
N_ANSWERED = 12
N_OTHER = 1  # r4/Q3 answered, no theme
N_CONNECTIVITY_Q1 = 5  # r1..r5 (r6 is superseded)
N_ANSWERING_Q1 = 5


# stance toward Q2's proposal ("Rural networks should get public funding."); Q1 and Q3 are open questions
STANCES = {("r1", "Q2"): "support", ("r2", "Q2"): "support", ("r4", "Q2"): "oppose", ("r5", "Q2"): "conditional"}


def _answers() -> pd.DataFrame:
    rows = []
    for (rid, qid), (text, _reason, _themes) in ANSWERS.items():
        org, otype, group, country, region, sgroup, current = RESPONDENTS[rid]
        rows.append({
            "response_id": rid, "question_id": qid, "question_number": int(qid[1:]),
            "question_text": QUESTIONS[qid], "answer": text, "org_name": org, "org_type": otype,
            "stakeholder_group": group, "country": country, "country_raw": country, "region": region,
            "subregion": "", "submitted_at": "2025-02-01", "source_file": "fixture.txt",
            "source_record": rid, "source_format": "itu_text", "is_document": False,
            "submission_group": sgroup, "is_current": current,
        })
    df = pd.DataFrame(rows)
    df["question_number"] = df["question_number"].astype("Int64")
    return df


def _redact(text: str) -> str:
    return text.replace(EMAIL, "[email]")


def build_batch(batch_dir: Path, drop: tuple[str, ...] = ()) -> Path:
    """Write a complete processed batch into `batch_dir`; artefact file names in `drop` are left out."""
    batch_dir = Path(batch_dir)
    batch_dir.mkdir(parents=True, exist_ok=True)
    answers = _answers()
    clean = answers.copy()
    clean["answer_id"] = clean["response_id"] + "::" + clean["question_id"]
    reasons = {f"{r}::{q}": v[1] for (r, q), v in ANSWERS.items()}
    clean["text_clean"] = clean["answer"]
    clean["text_redacted"] = clean["answer"].map(_redact)
    clean["nonanswer_reason"] = clean["answer_id"].map(reasons)
    clean["is_nonanswer"] = clean["nonanswer_reason"] != ""
    clean["language"] = "en"
    dup = {"r1::Q2": "d1", "r5::Q2": "d1"}
    clean["dup_group"] = clean["answer_id"].map(dup).fillna("")
    clean["dup_group_size"] = np.where(clean["dup_group"] != "", 2, 1)
    clean["dup_kind"] = np.where(clean["dup_group"] != "", "exact", "")
    for col in ("keyphrases", "entities", "mentions_action_lines", "mentions_sdgs"):
        clean[col] = [[] for _ in range(len(clean))]
    clean["n_words"] = clean["text_clean"].str.split().str.len()
    clean["n_segments"] = np.where(clean["is_nonanswer"], 0, 1)

    segments = clean.loc[~clean["is_nonanswer"], ["answer_id", "response_id", "question_id", "text_clean",
                                                   "text_redacted", "n_words"]].rename(columns={"text_clean": "text"})
    segments.insert(0, "segment_id", segments["answer_id"] + "#0")
    segments["seg_index"] = 0
    segments["start"] = 0
    segments["end"] = segments["text"].str.len()
    segments["is_nonanswer"] = False
    segments = segments[["segment_id", "answer_id", "response_id", "question_id", "seg_index", "start", "end",
                         "text", "text_redacted", "n_words", "is_nonanswer"]].reset_index(drop=True)

    theme_of = {f"{r}::{q}": v[2] for (r, q), v in ANSWERS.items()}
    assign = clean[["answer_id", "response_id", "question_id"]].copy()
    assign["themes"] = assign["answer_id"].map(theme_of)
    for tid in THEMES:
        assign[f"score_{tid}"] = [0.8 if tid in t.split(";") else 0.1 for t in assign["themes"]]
    seg_assign = pd.DataFrame({
        "segment_id": segments["segment_id"], "answer_id": segments["answer_id"],
        "question_id": segments["question_id"],
        "theme_id": [(theme_of[a].split(";")[0] or "other") for a in segments["answer_id"]],
        "score": 0.8,
    })
    theme_rows = []
    for qid in QUESTIONS:
        for tid, (label, origin) in THEMES.items():
            has = assign["themes"].str.split(";").map(lambda t, x=tid: x in t)
            members = assign[(assign["question_id"] == qid) & has]
            if members.empty:
                continue
            quotes = [
                # themes.parquet may carry unredacted text: the report must take text_redacted from segments
                {"response_id": r, "segment_id": f"{a}#0", "text": clean.set_index("answer_id").loc[a, "text_clean"]}
                for a, r in zip(members["answer_id"], members["response_id"], strict=True)
            ]
            theme_rows.append({
                "theme_id": tid, "scope": qid, "label": label, "keywords": f"{label.lower()};access",
                "size": len(members), "n_segments": len(members), "n_respondents": members["response_id"].nunique(),
                "origin": origin, "seed_id": tid if origin == "seed" else "", "description": f"About {label.lower()}.",
                "quotes": json.dumps(quotes, ensure_ascii=False), "seed_score": 0.7,
            })
    themes = pd.DataFrame(theme_rows)
    tbq = pd.DataFrame({
        "theme_id": themes["theme_id"], "question_id": themes["scope"], "label": themes["label"],
        "origin": themes["origin"], "cross_theme": themes["theme_id"], "n_answers": themes["size"],
        "n_segments": themes["n_segments"], "n_respondents": themes["n_respondents"], "share": 0.5,
        "n_questions": 1,
    })
    tag_of = {f"{r}::{q}": v for (r, q), v in TAGS.items()}
    tags = clean[["answer_id", "response_id", "question_id"]].copy()
    tags["action_lines"] = [tag_of.get(a, ("", ""))[0] for a in tags["answer_id"]]
    tags["sdgs"] = [tag_of.get(a, ("", ""))[1] for a in tags["answer_id"]]
    tags["mentioned_action_lines"] = ""
    tags["mentioned_sdgs"] = ""
    tags["score_C2"] = np.where(tags["action_lines"].str.contains("C2"), 0.9, 0.1)
    consistency = pd.DataFrame({
        "answer_id": ["r4::Q2"], "response_id": ["r4"], "question_id": ["Q2"], "action_lines": ["C6"],
        "sdgs": ["17"], "unlinked_pairs": ["C6~17"], "sdgs_without_action_line": ["17"],
        "action_lines_without_sdg": ["C6"], "n_issues": [1],
    })
    stance_rows = []
    for aid, rid, qid, ts in zip(assign["answer_id"], assign["response_id"], assign["question_id"], assign["themes"],
                                 strict=True):
        for tid in [t for t in ts.split(";") if t]:
            side = STANCES.get((rid, qid), "neutral")
            stance_rows.append({"answer_id": aid, "response_id": rid, "question_id": qid, "theme_id": tid,
                                "stance": side if qid == "Q2" else "", "confidence": 0.8 if qid == "Q2" else np.nan,
                                "stance_target": "Rural networks should get public funding." if qid == "Q2" else "",
                                "target_kind": "proposal" if qid == "Q2" else "open question"})
    stance = pd.DataFrame(stance_rows)
    rng = np.random.default_rng(0)
    centres = {t: rng.normal(size=16) for t in [*THEMES, "other", ""]}
    vecs = np.stack([
        centres[theme_of[a].split(";")[0] if theme_of[a] else ("" if nonans else "other")] + 0.1 * rng.normal(size=16)
        for a, nonans in zip(clean["answer_id"], clean["is_nonanswer"], strict=True)
    ]).astype(np.float32)
    vecs[clean["is_nonanswer"].to_numpy()] = 0.0
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = np.divide(vecs, norms, out=np.zeros_like(vecs), where=norms > 0)
    files = {
        "answers.parquet": lambda p: answers.to_parquet(p, index=False),
        "quarantine.csv": lambda p: pd.DataFrame(QUARANTINE, columns=["source_file", "record", "reason", "excerpt"])
        .to_csv(p, index=False),
        "answers_clean.parquet": lambda p: clean.to_parquet(p, index=False),
        "segments.parquet": lambda p: segments.to_parquet(p, index=False),
        "themes.parquet": lambda p: themes.to_parquet(p, index=False),
        "theme_assignments.parquet": lambda p: assign.to_parquet(p, index=False),
        "segment_assignments.parquet": lambda p: seg_assign.to_parquet(p, index=False),
        "theme_by_question.parquet": lambda p: tbq.to_parquet(p, index=False),
        "tags.parquet": lambda p: tags.to_parquet(p, index=False),
        "tag_consistency.parquet": lambda p: consistency.to_parquet(p, index=False),
        "theme_stance.parquet": lambda p: stance.to_parquet(p, index=False),
        "embeddings.npz": lambda p: np.savez(
            p, answer_ids=clean["answer_id"].to_numpy(dtype=str), answer_vectors=vecs,
            segment_ids=segments["segment_id"].to_numpy(dtype=str),
            segment_vectors=vecs[: len(segments)], model_id=np.array("fixture")),
    }
    for name, write in files.items():
        if name not in drop:
            write(batch_dir / name)
    return batch_dir
