"""The model shipped in models/tagger/ (what `make run` uses): loads safely, is documented, tags real
embeddings sensibly, and tags real answers by the calibrated decision rules of params.yaml (no forced SDG)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pipeline import config
from pipeline.tagger import features, stage, train
from pipeline.tagger.model import load_tagger
from pipeline.tagger.taxonomy import ALL_LABEL_IDS, CODEBOOK_SDG_OF_ACTION_LINE

ROOT = config.PROJECT_ROOT / "models" / "tagger"


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory):
    version = (ROOT / "CURRENT").read_text(encoding="utf-8").strip()
    folder = ROOT / version
    with pytest.MonkeyPatch.context() as mp:  # private embedding cache, real sentence model
        mp.setenv("WSIS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield {"folder": folder, "tagger": load_tagger(folder / "tagger.skops"),
               "params": config.load_params()}


def test_shipped_model_is_small_documented_and_measured(shipped):
    folder = shipped["folder"]
    assert (folder / "tagger.skops").stat().st_size < 5_000_000
    assert list(shipped["tagger"].label_ids) == list(ALL_LABEL_IDS)
    metrics = json.loads((folder / "metrics.json").read_text())
    held = metrics["heldout"]
    assert held["n"] > 100
    # The real-answer head (v20261202T065332Z) trades written-example Action Lines (0.600, P 0.49, vs 0.672 without
    # the head) for real answers (dev set 2-fold CV 0.702 vs 0.578); SDGs hold (0.720, named accuracy 0.774).
    assert held["action_lines"]["micro_f1"] >= 0.55 and held["sdgs"]["micro_f1"] >= 0.65
    assert held["sdg_named_accuracy"] >= 0.75  # calibrated rules: no SDG forced (0.77 for the written-only model)
    card = (folder / "README.md").read_text()
    for section in ("## Data it saw", "## Parameters", "## Written-example held-out metrics",
                    "## Old vs new, paired bootstrap", "## Known limits"):
        assert section in card
    assert metrics["data"]["files_sha256"]


def test_shipped_model_tags_invented_answers(shipped):
    rows = [
        ("h", "Telemedicine and electronic patient records let rural clinics consult specialists remotely."),
        ("b", "Affordable broadband backbone and last-mile fibre are still missing in rural districts."),
        ("c", "National CERTs need to cooperate on ransomware and protect critical infrastructure."),
        ("g", "Women and girls remain under-represented in the digital workforce and in STEM studies."),
        ("x", ""),
        ("n", "No further comments."),
        ("t", "We thank the organisers for the opportunity to contribute to this consultation."),
    ]
    out, _ = stage.tag_adhoc_frame(shipped["tagger"], pd.DataFrame(rows, columns=["id", "text"]),
                                   shipped["params"])
    got = {r.id: (r.action_lines.split(";"), r.sdgs.split(";")) for r in out.itertuples()}
    assert "C7.e-health" in got["h"][0] and "3" in got["h"][1]
    assert "C2" in got["b"][0] and "9" in got["b"][1]
    assert "C5" in got["c"][0]
    assert "5" in got["g"][1]
    assert got["x"] == ([""], [""])
    assert got["n"] == ([""], [""]) and got["t"] == ([""], [""])  # generic texts: no forced top SDG


@pytest.mark.shared
def test_real_answer_sdgs_follow_the_calibrated_rules(shipped, shared_dir):
    """Every SDG given to a real answer is earned: its score clears the effective threshold of the rules in
    params.yaml, or a predicted Action Line implies it; no answer gets more than `max_sdgs`; and some, not
    all, substantive answers get one (the earlier rule forced one onto ~every answer)."""
    df = pd.read_csv(shared_dir / "corpora/au-safe-responsible-ai-2023/srai_shortened.csv", dtype=str,
                     keep_default_na=False)
    texts = [t for t in df["sub_value"] if len(t.split()) >= 20][:40]
    vecs = features.encode(texts, shipped["params"])
    tagger = shipped["tagger"]
    rules = stage.DecisionRules.from_params(train.tag_params(shipped["params"]))
    assert rules.rule == "calibrated"
    res = stage.tag_texts(tagger, texts, vecs, [([], [])] * len(texts), rules=rules)
    assert res.proba.shape == (len(texts), len(ALL_LABEL_IDS))
    ids = list(tagger.label_ids)
    thr = stage.effective_thresholds(tagger, rules)
    sdg_cols = [j for j, lab in enumerate(ids) if lab.startswith("SDG")]
    implied = {sdg: [ids.index(al) for al, s in CODEBOOK_SDG_OF_ACTION_LINE.items() if s == sdg]
               for sdg in ids if sdg.startswith("SDG")}
    for i in range(len(texts)):
        given = [j for j in sdg_cols if res.pred[i, j]]
        assert len(given) <= rules.max_sdgs
        for j in given:
            assert res.proba[i, j] >= thr[j] - 1e-9 or any(res.pred[i, k] for k in implied[ids[j]]), (i, ids[j])
    with_sdg = int(np.asarray(res.pred)[:, sdg_cols].any(axis=1).sum())
    assert 0 < with_sdg < len(texts)
