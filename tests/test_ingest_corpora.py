"""Integration: the real corpora in ../shared are ingested as they are and reconcile with the raw files
(rows in = answers out + quarantined). Skipped when ../shared is absent."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest

from pipeline.ingest import ingest_paths, load_questionnaire

pytestmark = pytest.mark.shared
Q = load_questionnaire("itu_wsis20")
PARAMS = {"ingest": {"day_first": True, "max_file_mb": 200}}


def raw_rows(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("rel, mapping", [
    ("eu-ai-white-paper-consultation-2020/open_ended_long.csv", None),
    ("au-safe-responsible-ai-2023/srai_shortened.csv", None),
    ("cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv", "global_dialogues_gd1_3"),
    ("trai-differential-pricing-2015/trai_differential_pricing_submissions.csv", None),
])
def test_long_corpora_reconcile(shared_dir: Path, rel: str, mapping: str | None) -> None:
    path = shared_dir / "corpora" / rel
    raw = raw_rows(path)
    result = ingest_paths([path], Q, PARAMS, mapping=mapping)
    a, q = result.answers, result.quarantine
    assert len(a) + len(q) == len(raw)
    assert set(a["source_format"]) == {"long"}
    assert not a.duplicated(["response_id", "question_id"]).any()
    assert (a["answer"] != "").mean() > 0.9 - 0.1 * ("trai" in rel)  # 12 scanned TRAI PDFs have no text
    assert (a["question_text"] != "").all()  # from the file or its question lookup
    assert all(r.endswith("question id is empty") for r in q["reason"])


def test_eu_metadata(shared_dir: Path) -> None:
    path = shared_dir / "corpora" / "eu-ai-white-paper-consultation-2020" / "open_ended_long.csv"
    raw = raw_rows(path)
    a = ingest_paths([path], Q, PARAMS).answers
    assert a["response_id"].nunique() == raw["Reference"].nunique()
    per_raw = raw.drop_duplicates("Reference").set_index("Reference")
    per_sub = a.drop_duplicates("response_id").set_index("response_id").loc[per_raw.index]
    known = (per_raw["Country"] != "").to_numpy()
    assert (per_sub.loc[known, "country"] != "").mean() > 0.99  # countries recognised
    assert (per_sub["country_raw"] == per_raw["Country"]).all()
    assert (a["submitted_at"].str.match(r"^2020-\d\d-\d\dT\d\d:\d\d:00$")).all()
    typed = (per_raw["User type"] != "").to_numpy()
    assert (per_sub.loc[typed, "stakeholder_group"] != "other").mean() > 0.85
    assert (per_sub["org_type"] == per_raw["User type"]).all()


def test_bc_survey_wide(shared_dir: Path) -> None:
    path = shared_dir / "corpora" / "bc-ai-survey-2025" / "bc_ai_survey_responses.csv"
    raw = raw_rows(path)
    a = ingest_paths([path], Q, PARAMS).answers
    assert len(a) == 4 * len(raw) and a["response_id"].nunique() == len(raw)
    assert set(a["stakeholder_group"]) == {"individual"} and set(a["country"]) == {"Canada"}
    q8 = a[a["question_id"] == "Q8"]["answer"]
    assert (q8.str.strip() != "").sum() == (raw["Q8_AI_helping_BC_community_text_OE"].str.strip() != "").sum()


def test_netmundial_documents(shared_dir: Path) -> None:
    folder = shared_dir / "corpora" / "netmundial-2014"
    texts = sorted(p for p in folder.glob("*.txt"))
    result = ingest_paths([folder], Q, PARAMS)
    a, q = result.answers, result.quarantine
    assert len(a) == len(texts) and a["is_document"].all()
    assert q["source_file"].str.endswith("README.md").all()  # the README is reported, not read
    with_org = a[a["response_id"].str.startswith("netmundial-")]
    assert (with_org["org_name"] != "").all() and (with_org["org_type"] != "").all()
    assert (with_org["stakeholder_group"] != "other").mean() > 0.8
    # the README table of the corpus lists organisation and sector of each file
    readme = (folder / "README.md").read_text(encoding="utf-8")
    table = [r for r in csv.reader(readme.splitlines(), delimiter="|") if len(r) > 5 and r[1].strip()
             .endswith(".txt")]
    sectors = {r[1].strip()[:-4]: r[3].strip() for r in table}
    got = dict(zip(a["response_id"], a["org_type"], strict=True))
    matched = [k for k, v in sectors.items() if k in got and got[k].lower() == v.lower()]
    assert len(matched) >= 0.9 * len(sectors)
