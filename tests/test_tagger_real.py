"""Tags on real consultation answers (issue 13): the dev set `../shared/devsets/tags_real_answers` (200 real
answers, two annotators) read at test time, never copied. Decision parameters are tuned on one half of it and
checked on the other (as `benchmarks/tags_real_answers.py` does); floors sit well below the measured values
(benchmarks/results/tags_real_answers.json). Tests needing ../shared skip cleanly without it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_loader import load_benchmark

from pipeline import config
from pipeline.tagger import features, stage, train
from pipeline.tagger.model import load_tagger

BENCH = config.PROJECT_ROOT / "benchmarks" / "tags_real_answers.py"
MODELS = config.PROJECT_ROOT / "models" / "tagger"

# my own words: answers that say nothing a tag could rest on
PROCEDURAL = [
    "I agree with the proposal.", "No comment.", "See our answer to question 3 above.",
    "We thank the Commission for the opportunity to respond to this consultation.",
    "Please refer to the attached document for our full submission.", "Yes.",
    "Not applicable to our organisation.",
]


def _bench():
    return load_benchmark(BENCH, "tags_real_answers_bench")


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory, shared_dir: Path):
    """Dev set scored once by the model trained on written examples only (the current model has seen the dev
    set, so its figures here would be in-sample), private embedding cache, split in hash halves."""
    if not (shared_dir / "devsets" / "tags_real_answers").is_dir():
        pytest.skip("../shared/devsets/tags_real_answers is not available")
    bench = _bench()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSIS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        params = config.load_params(overrides={"tag": {"model_version": bench.WRITTEN_ONLY_MODEL}})
        df = bench.load_devset(shared_dir).reset_index(drop=True)
        scored = bench.score(df, params)
        yield {"bench": bench, "df": df, "params": params, "scored": scored, "half": bench.halves(df)}


@pytest.fixture(scope="module")
def cross_validated(dev):
    """Per half: parameters chosen on the other half by the benchmark's grid, scores on this half."""
    bench, df, params, s = dev["bench"], dev["df"], dev["params"], dev["scored"]
    base = stage.DecisionRules.from_params(train.tag_params(params))
    points = bench.grid_points()
    import dataclasses

    preds = {k: bench.predict(s, params, dataclasses.replace(base, **pt)) for k, pt in enumerate(points)}
    out = {}
    for h in (0, 1):
        k, _ = bench.tune(df, preds, dev["half"] == h)
        out[1 - h] = bench.objective(df, preds[k], dev["half"] != h) | {"pred": preds[k]}
    return out


def _per_answer(pred: dict, kind: str, rows: np.ndarray) -> float:
    return float(np.mean([len(pred[kind][i]) for i in np.flatnonzero(rows)]))


@pytest.mark.shared
def test_issue13_sdgs_over_assigned_by_forced_top_label(dev, cross_validated):
    """Forced top SDG: 1.8 SDGs per answer (annotators 0.9), micro-F1 0.51. Held-out halves now: 0.63 / 0.57,
    1.3-1.4 SDGs per answer."""
    before = dev["bench"].predict(dev["scored"], dev["params"], None)
    for h, res in cross_validated.items():
        rows = dev["half"] == h
        assert res["sdgs"] >= 0.53, (h, res["sdgs"])
        assert res["sdgs"] >= dev["bench"].objective(dev["df"], before, rows)["sdgs"] + 0.03
        assert _per_answer(res["pred"], "sdgs", rows) <= 1.6 < _per_answer(before, "sdgs", rows)


@pytest.mark.shared
def test_issue13_action_lines_under_assigned(dev, cross_validated):
    """Action Lines found 41% of the time (micro-F1 0.50); held-out halves now 0.59 / 0.57."""
    before = dev["bench"].predict(dev["scored"], dev["params"], None)
    for h, res in cross_validated.items():
        rows = dev["half"] == h
        assert res["action_lines"] >= 0.53, (h, res["action_lines"])
        assert res["action_lines"] >= dev["bench"].objective(dev["df"], before, rows)["action_lines"] + 0.04


@pytest.mark.shared
def test_issue13_bare_c7_is_never_output(dev):
    """Annotators always choose a C7 sub-area; the tagger used to print bare `C7` on 28 of 200 answers."""
    base = stage.DecisionRules.from_params(train.tag_params(dev["params"]))
    pred = dev["bench"].predict(dev["scored"], dev["params"], base)
    assert not any("C7" in row for row in pred["action_lines"])
    assert sum("C7" in row for row in dev["bench"].predict(dev["scored"], dev["params"], None)["action_lines"]) > 5
    assert any(lab.startswith("C7.") for row in pred["action_lines"] for lab in row)


@pytest.mark.shared
def test_issue13_no_sdg_forced_onto_answers_annotators_leave_without_one(dev):
    """Of the dev answers both annotators gave no SDG, the forced rule tagged nearly all; now a minority."""
    df = dev["df"]
    base = stage.DecisionRules.from_params(train.tag_params(dev["params"]))
    after = dev["bench"].predict(dev["scored"], dev["params"], base)["sdgs"]
    before = dev["bench"].predict(dev["scored"], dev["params"], None)["sdgs"]
    none = [i for i in range(len(df)) if not str(df.at[i, "sdgs_1"]).strip() and not str(df.at[i, "sdgs_2"]).strip()]
    assert len(none) >= 20
    share_after = np.mean([bool(after[i]) for i in none])
    share_before = np.mean([bool(before[i]) for i in none])
    assert share_before >= 0.9 and share_after <= 0.6, (share_before, share_after)


@pytest.fixture(scope="module")
def head_cv(dev):
    """The real-answer head, 2-fold: fitted on one half (both annotators), tagging the other half."""
    return dev["bench"].head_cv(dev["df"], dev["half"], dev["params"], (1, 2), 200, 0)


@pytest.mark.shared
def test_issue13_real_answer_head_beats_tuned_rules_on_held_out_halves(cross_validated, head_cv):
    """Learning from 100 labelled real answers (benchmarks/results/tags_real_answers.json `real_answer_head`):
    per held-out half Action Lines 0.686 / 0.718, SDGs 0.609 / 0.626 micro-F1 (mean 0.647 / 0.672), where the
    decision rules tuned on the other half reach a mean of 0.566 / 0.602; 1.3 SDGs per answer (annotators 1.0)."""
    for fold in head_cv["folds"]:
        h = 1 - fold["trained_on_half"]
        held = fold["held_out_half"]
        assert held["action_lines"]["f1"] >= 0.65, (h, held["action_lines"])
        assert held["sdgs"]["f1"] >= 0.58, (h, held["sdgs"])
        mean = (held["action_lines"]["f1"] + held["sdgs"]["f1"]) / 2
        assert mean >= cross_validated[h]["mean"] + 0.03, (h, mean, cross_validated[h]["mean"])
        assert held["sdgs"]["per_answer"] <= 1.5 and held["bare_C7"] == 0
    cv = head_cv["cross_validated"]
    assert cv["action_lines"]["f1_ci"][0] >= 0.62 and cv["sdgs"]["f1_ci"][0] >= 0.55


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory):
    version = (MODELS / "CURRENT").read_text(encoding="utf-8").strip()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSIS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        tagger = load_tagger(MODELS / version / "tagger.skops")
        yield {"tagger": tagger, "params": config.load_params(),
               "head": train.load_real_head(MODELS / version, tagger)}


def test_issue13_procedural_answers_get_no_tag(shipped):
    """No SDG (nor Action Line) is forced onto a procedural answer, with the shipped head and without."""
    frame = pd.DataFrame({"id": [f"p{i}" for i in range(len(PROCEDURAL))], "text": PROCEDURAL})
    for head in {id(shipped["head"]): shipped["head"], 0: None}.values():
        out, _ = stage.tag_adhoc_frame(shipped["tagger"], frame, shipped["params"], head=head)
        assert (out["sdgs"] == "").all(), out[["id", "sdgs"]].to_dict("records")
        assert (out["action_lines"] == "").all()
        mention = pd.DataFrame({"id": ["m"], "text": ["Our work serves SDG 4 in every school we support."]})
        assert stage.tag_adhoc_frame(shipped["tagger"], mention, shipped["params"], head=head)[0].loc[0, "sdgs"]


@pytest.mark.shared
def test_issue13_netmundial_documents_pile_up_sdgs(shipped, shared_dir, tmp_path):
    """NETmundial 2014 contributions through the tag stage: 5.3 SDGs per document under the forced rule; now
    2.6 with the per-document cap switched off (the passage-support rule alone keeps it <= 3)."""
    files = sorted((shared_dir / "corpora" / "netmundial-2014").glob("*.txt"))
    if not files:
        pytest.skip("NETmundial corpus absent")
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    ids = [f"{f.stem}::document" for f in files]
    pd.DataFrame({"answer_id": ids, "response_id": [f.stem for f in files], "question_id": "document",
                  "text_clean": texts, "is_nonanswer": False, "n_segments": 1}).to_parquet(
        tmp_path / "answers_clean.parquet")
    params = config.deep_merge(shipped["params"], {"tag": {"max_sdgs_document": 0}})
    stage.run(tmp_path, params)
    tags = pd.read_parquet(tmp_path / "tags.parquet")
    n_sdgs = tags["sdgs"].map(lambda x: len([c for c in str(x).split(";") if c]))
    assert len(tags) == len(files) and n_sdgs.mean() <= 3.0, n_sdgs.tolist()
    assert (tags["action_lines"] != "").mean() >= 0.9  # still tagged: support, not silence


def test_issue13_one_passing_sentence_does_not_tag_a_document():
    """A document (many passages) needs support from several passages holding a share of its words."""

    class Stub:
        label_ids = ["C2", "C5", "SDG9"]
        label_kinds = ["action_line", "action_line", "sdg"]
        thresholds_ = np.array([0.5, 0.5, 0.5])

    rules = stage.DecisionRules(action_line_margin=0.0, sdg_margin=0.0, sdgs_from_action_lines=False,
                                document_passages=8, support_passages=2, support_share=0.1)
    n_pass = 20
    seg = np.full((n_pass, 3), 0.05)
    seg[0, 0] = 0.99  # C2: one sentence only
    seg[:6, 1] = 0.9  # C5: six passages
    whole = np.array([[0.9, 0.9, 0.05]])
    _, pred = stage.decide_calibrated(Stub(), whole, seg, np.zeros(n_pass, dtype=np.int64), np.array([400]),
                                      rules, np.full(n_pass, 20))
    assert pred.tolist() == [[0, 1, 0]]
    # the same single passage in a short answer (3 passages) does count
    _, short = stage.decide_calibrated(Stub(), whole, seg[:3], np.zeros(3, dtype=np.int64), np.array([60]),
                                       rules, np.full(3, 20))
    assert short[0, 0] == 1


def test_issue13_boilerplate_is_never_scored():
    for text in ("SOURCE: github example/repo data/001A.txt", "Keywords: Mobile Industry", "Page 3 of 12",
                 "We thank the organisers for the opportunity to contribute.", "http://example.org/doc.pdf"):
        assert features.is_boilerplate(text), text
    for text in ("Contact tracing apps raise serious privacy concerns for citizens.",
                 "Broadband must reach rural areas before any digital service is mandatory."):
        assert not features.is_boilerplate(text), text
    doc = "Keywords: Mobile Industry. Region: Global. " + " ".join(
        f"Point {i}: affordable broadband networks should reach every rural village." for i in range(12))
    passages, _ = stage.sentence_passages([doc], 20)
    assert passages and not any(p.startswith(("Keywords:", "Region:")) for p in passages)


def test_issue13_decision_params_are_read_from_params_yaml():
    section = train.tag_params(config.load_params())
    rules = stage.DecisionRules.from_params(section)
    assert rules.rule == "calibrated" and rules.c7_policy == "drop"
    from pipeline.errors import InputError

    with pytest.raises(InputError):
        stage.DecisionRules.from_params({"rule": "forced"})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([str(Path(__file__))]))


def test_scores_in_chunks_equal_scores_at_once(shipped, au_question, monkeypatch):
    """The tagger and the head score large batches in chunks (memory at 50k answers): real AU answers scored
    3 at a time get the same scores and tags as all at once."""
    from pipeline.tagger import model, realhead

    answers = au_question("q20")[0].head(40)
    frame = pd.DataFrame({"id": [f"a{i}" for i in range(len(answers))], "text": answers["answer"].astype(str)})
    at_once, _ = stage.tag_adhoc_frame(shipped["tagger"], frame, shipped["params"], head=shipped["head"])
    monkeypatch.setattr(model, "PREDICT_CHUNK", 3)
    monkeypatch.setattr(realhead, "PREDICT_CHUNK", 3)
    chunked, _ = stage.tag_adhoc_frame(shipped["tagger"], frame, shipped["params"], head=shipped["head"])
    # same tags; scores equal up to BLAS rounding (a row's product can depend on how many rows share the call)
    pd.testing.assert_frame_equal(chunked, at_once, check_exact=False, rtol=0, atol=1e-6)
    assert (chunked[["action_lines", "sdgs"]] == at_once[["action_lines", "sdgs"]]).all().all()
    assert (at_once["action_lines"] != "").sum() >= 10  # real tags were compared, not empty frames
    # extra vectors are an error, also when the texts fill whole chunks
    texts = frame["text"].tolist()[:6]
    vecs = np.zeros((7, 384), dtype=np.float32)
    with pytest.raises(ValueError, match="expected"):
        shipped["tagger"].predict_proba(texts, vecs)
    with pytest.raises(ValueError, match="expected"):
        shipped["head"].predict_proba(np.zeros((6, len(shipped["tagger"].label_ids))), vecs)


def test_label_sheet_measures_uncertainty_against_the_thresholds_tags_are_decided_by(shipped, au_question):
    """The label sheet ranks answers by how near a score is to flipping its tag: each row must be measured against
    the thresholds its tags were decided by (`decided_by`: the real-answer head's, or the decision rules'), not
    against the written-example model's own. On real AU answers the shipped model's tags follow those per-row
    thresholds more closely than the base thresholds, and the sheet shows them."""
    from pipeline.tagger import labelsheet

    answers = pd.concat([au_question("q20")[0], au_question("q11")[0]])
    frame = pd.DataFrame({"id": [f"a{i}" for i in range(len(answers))], "text": answers["answer"].astype(str)})
    out, _ = stage.tag_adhoc_frame(shipped["tagger"], frame, shipped["params"], head=shipped["head"])
    assert {"head", "rules"} <= set(out["decided_by"])  # short answers are decided by the rules, others by the head
    by_basis = labelsheet.decision_thresholds(shipped["params"])
    base = dict(zip(shipped["tagger"].label_ids, map(float, shipped["tagger"].thresholds_), strict=True))
    assert by_basis["head"] != base and by_basis["rules"] != by_basis["head"]
    labels = [lab for lab in base if f"score_{lab}" in out]
    codes = [set(a.split(";")) | {f"SDG{s}" if not s.startswith("SDG") else s for s in b.split(";") if s}
             for a, b in zip(out["action_lines"], out["sdgs"], strict=True)]
    tagged = np.array([[lab in c for lab in labels] for c in codes])
    scores = out[[f"score_{lab}" for lab in labels]].to_numpy()
    per_row = np.array([[by_basis[b][lab] for lab in labels] for b in out["decided_by"]])
    agree_rows = float(((scores >= per_row) == tagged).mean())
    agree_base = float(((scores >= np.array([base[lab] for lab in labels])) == tagged).mean())
    assert agree_rows >= 0.98 and agree_rows > agree_base + 0.01, (agree_rows, agree_base)
    tags = out.rename(columns={"id": "answer_id"}).assign(response_id="r", question_id="q20")
    sheet = labelsheet.build_sheet(tags, frame.rename(columns={"id": "answer_id", "text": "answer"}), by_basis, 10)
    rows = sheet.merge(out.rename(columns={"id": "answer_id"})[["answer_id", "decided_by"]], on="answer_id")
    for r in rows.itertuples():  # the thresholds shown are the row's own
        lab, thr = r.uncertain_labels.split(";")[0].split()[0], float(r.uncertain_labels.split("thr ")[1][:4])
        assert abs(thr - by_basis[r.decided_by][lab]) < 0.006
