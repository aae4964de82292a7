"""Tagger: training, persistence, thresholds, mentions, ad-hoc mode, explain, label-sheet round trip,
consistency, segment aggregation. Uses a deterministic hashed bag-of-words encoder instead of the sentence
model so the file runs in seconds; the shipped model is exercised with real embeddings in
test_tagger_shipped.py."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import config
from pipeline.errors import InputError
from pipeline.tagger import features, labelsheet, stage, train
from pipeline.tagger.consistency import consistency_report
from pipeline.tagger.model import (
    TRUSTED_TYPES,
    Tagger,
    aggregate,
    fbeta_threshold,
    load_tagger,
)
from pipeline.tagger.taxonomy import (
    ALL_LABEL_IDS,
    action_line_id,
    load_taxonomy,
    sdg_id,
    split_codes,
)

DIM = 384


def hashed_encode(texts, params=None, cache_dir=None):
    """Deterministic stand-in for the sentence encoder: hashed word (and word-pair) counts, unit norm."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        words = features.normalise(text).split()
        for tok in words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]:
            out[i, zlib.crc32(tok.encode()) % DIM] += 1.0
        norm = np.linalg.norm(out[i])
        if norm:
            out[i] /= norm
    return out


# Own, invented texts: (template words per label) -> several variants each.
TOPICS = {
    "C2;9": ["broadband backbone", "fibre rollout to rural towns", "mobile towers and spectrum",
             "undersea cable landing station", "internet exchange point capacity"],
    "C5;16": ["cybersecurity incident response team", "ransomware attacks on ministries",
              "online fraud and phishing", "national cyber security strategy", "protecting critical systems"],
    "C7.e-health;3": ["telemedicine for remote clinics", "electronic health records in hospitals",
                      "mobile reminders for vaccination", "digital health for patients", "health data systems"],
    "C7.e-learning;4": ["online learning platforms for schools", "teachers using digital classrooms",
                        "remote education for pupils", "open educational resources for students",
                        "school connectivity and e-learning"],
    "C4;5": ["digital skills training for women", "girls coding clubs and mentoring",
             "women in technology careers", "gender digital divide and skills", "female entrepreneurs training"],
    "C7.e-agriculture;2": ["farmers receive crop prices by sms", "agricultural extension via mobile",
                           "smallholder farming and weather alerts", "food security and digital farming",
                           "livestock and harvest data for farmers"],
}
NEGATIVES = ["the meeting will take place next tuesday", "thank you for the opportunity to comment",
             "our office moved to a new building", "please see the attached letter"]
CONTEXTS = ["We believe {} deserves attention.", "Our ministry reports progress on {}.",
            "Civil society groups ask for more {}.", "Companies invest in {} this year.",
            "Research shows that {} matters."]


def make_training_dir(folder: Path, shuffle_labels: bool = False) -> Path:
    rows = []
    k = 0
    for labels, phrases in TOPICS.items():
        als = ";".join(c for c in labels.split(";") if c.startswith("C"))
        sdgs = ";".join(c for c in labels.split(";") if not c.startswith("C"))
        for p_i, phrase in enumerate(phrases):
            for c_i, ctx in enumerate(CONTEXTS):
                split = "heldout" if (p_i + c_i) % 5 == 0 else "train"
                rows.append({"id": f"t{k}", "text": ctx.format(phrase), "action_lines": als, "sdgs": sdgs,
                             "register": "test", "split": split})
                k += 1
    for n_i, neg in enumerate(NEGATIVES):
        rows.append({"id": f"t{k}", "text": neg.capitalize() + ".", "action_lines": "", "sdgs": "",
                     "register": "test", "split": "heldout" if n_i == 0 else "train"})
        k += 1
    df = pd.DataFrame(rows)
    if shuffle_labels:
        train_rows = df["split"] == "train"
        rng = np.random.default_rng(0)
        perm = rng.permutation(np.flatnonzero(train_rows))
        df.loc[train_rows, ["action_lines", "sdgs"]] = df.loc[perm, ["action_lines", "sdgs"]].to_numpy()
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / "examples_test.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """One small model trained once per module: temp models dir, hashed encoder, toy training set."""
    tmp = tmp_path_factory.mktemp("tagger")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSIS_MODELS_DIR", str(tmp / "models"))
        mp.setenv("WSIS_CACHE_DIR", str(tmp / "cache"))
        mp.setattr(features, "encode", hashed_encode)
        params = config.load_params(overrides={"tag": {"model_version": "current", "n_folds": 3}})
        training = make_training_dir(tmp / "training")
        summary = train.run([], params, tmp / "models", training_dir=training)
        yield {"tmp": tmp, "params": params, "training": training, "summary": summary}


@pytest.fixture()
def private(trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private copy of the trained models folder, for tests that retrain and move CURRENT."""
    import shutil

    shutil.copytree(trained["tmp"] / "models", tmp_path / "models")
    monkeypatch.setenv("WSIS_MODELS_DIR", str(tmp_path / "models"))
    return {**trained, "tmp": tmp_path}


def test_taxonomy_has_all_labels_and_matrix():
    tax = load_taxonomy()
    assert tax.ids == list(ALL_LABEL_IDS) and len(tax.ids) == 36
    assert ("C7.e-health", "SDG3") in tax.matrix
    assert all(lab.description and lab.keywords for lab in tax.labels)
    assert action_line_id("c7 e-Health") == "C7.e-health" and action_line_id(" C11 ") == "C11"
    assert sdg_id("SDG 4") == "SDG4" and sdg_id(17) == "SDG17"
    assert split_codes("C5; c7.e-learning;;C99", "action_line") == ["C5", "C7.e-learning"]
    with pytest.raises(ValueError):
        sdg_id("18")


def test_train_saves_version_card_and_loads_with_trusted_types(trained):
    s = trained["summary"]
    root = trained["tmp"] / "models" / "tagger"
    assert s["promoted"] and (root / "CURRENT").read_text().strip() == s["version"]
    folder = root / s["version"]
    tagger = load_tagger(folder / "tagger.skops")
    assert isinstance(tagger, Tagger) and list(tagger.label_ids) == list(ALL_LABEL_IDS)
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["heldout"]["n"] == s["n_heldout"] > 0
    assert metrics["heldout"]["all"]["micro_f1"] > 0.6  # separable toy topics
    assert set(metrics["heldout"]["per_label"]["SDG3"]) >= {"precision", "recall", "f1"}
    card = (folder / "README.md").read_text()
    assert "sha256" in card and "examples_test.csv" in card and "Known limits" in card
    # deterministic: same data and seed -> same thresholds and coefficients
    again = train.fit_on(train.assemble([], train.tag_params(trained["params"]), trained["training"]),
                         trained["params"])[0]
    np.testing.assert_allclose(again.coef_, tagger.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(again.thresholds_, tagger.thresholds_)


def test_load_refuses_untrusted_types(tmp_path):
    """A file holding a callable skops does not trust by default (os.system) is refused before loading."""
    import os

    import skops.io as sio

    bad = tmp_path / "bad.skops"
    sio.dump({"run": os.system}, bad)
    assert "posix.system" in sio.get_untrusted_types(file=bad)  # the file really holds the unsafe type
    with pytest.raises(ValueError, match="untrusted"):
        load_tagger(bad)
    assert TRUSTED_TYPES == ("pipeline.tagger.model.Tagger",)


def test_thresholds_are_per_label_and_chosen_by_cv(trained):
    tagger = load_tagger(trained["tmp"] / "models" / "tagger" / trained["summary"]["version"] / "tagger.skops")
    ids = list(tagger.label_ids)
    trained_labels = [ids.index(x) for x in ("C2", "C5", "C7.e-health", "SDG3", "SDG4", "SDG9")]
    thr = tagger.thresholds_[trained_labels]
    assert np.all((thr >= 0.05) & (thr <= 0.95))
    assert not np.isnan(tagger.cv_f1_[trained_labels]).any()
    untrained = ids.index("C10")  # no examples: default threshold, no CV score
    assert tagger.thresholds_[untrained] == 0.5 and np.isnan(tagger.cv_f1_[untrained])
    scores = np.array([0.1, 0.2, 0.35, 0.4, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    t, f = fbeta_threshold(scores, y, np.array([0.1, 0.3, 0.38, 0.5, 0.85]))
    assert t == 0.38 and f == 1.0


def _tag(trained, rows, **kw):
    frame = pd.DataFrame(rows, columns=["id", "text"])
    tagger, _ = train.load_model(trained["params"])
    return stage.tag_adhoc_frame(tagger, frame, trained["params"], **kw)


def test_adhoc_columns_and_formats(trained):
    inp = trained["tmp"] / "in.csv"
    pd.DataFrame({"id": ["x1", "=x2"], "text": ["Telemedicine for remote clinics is growing.",
                                                 "Fibre rollout to rural towns and mobile towers."]}).to_csv(
        inp, index=False)
    for suffix in (".csv", ".xlsx", ".parquet"):
        out = trained["tmp"] / f"out{suffix}"
        summary = stage.run_adhoc(inp, out, trained["params"])
        assert summary["texts"] == 2
        df = pd.read_parquet(out) if suffix == ".parquet" else (
            pd.read_excel(out, dtype=str) if suffix == ".xlsx" else pd.read_csv(out, dtype=str))
        assert list(df.columns[:3]) == ["id", "action_lines", "sdgs"]
        assert [c for c in df.columns if c.startswith("score_")] == [f"score_{x}" for x in ALL_LABEL_IDS]
        assert "C7.e-health" in df.loc[0, "action_lines"].split(";") and "3" in df.loc[0, "sdgs"].split(";")
        assert "C2" in df.loc[1, "action_lines"].split(";")
        if suffix != ".parquet":
            assert df.loc[1, "id"] == "'=x2"  # formula-like cell neutralised
    bad = trained["tmp"] / "bad.csv"
    pd.DataFrame({"ident": ["a"], "body": ["b"]}).to_csv(bad, index=False)
    with pytest.raises(InputError, match="id,text"):
        stage.run_adhoc(bad, trained["tmp"] / "o.csv", trained["params"])


def test_explicit_mentions_always_honoured(trained):
    out, _ = _tag(trained, [("m1", "Thank you for the opportunity to comment; see Action Line C9 and SDG 14."),
                            ("m2", "Thank you for the opportunity to comment.")])
    assert "C9" in out.loc[0, "action_lines"].split(";") and "14" in out.loc[0, "sdgs"].split(";")
    assert out.loc[0, "score_C9"] < 0.5  # the model alone would not have tagged it
    assert "C9" not in out.loc[1, "action_lines"].split(";")


def test_explain_gives_scores_keywords_and_nearest_examples(trained, capsys):
    text = "Telemedicine and electronic health records help remote clinics (SDG 3)."
    out, exps = _tag(trained, [("e1", text)], explain=True)
    exp = json.loads(out.loc[0, "explain"])
    assert exp == json.loads(json.dumps(exps[0]))
    top = exp["labels"][0]
    assert top["predicted"] and top["score"] >= top["threshold"]
    health = next(lab for lab in exp["labels"] if lab["label"] == "C7.e-health")
    assert "telemedicine" in health["keywords"]
    assert next(lab for lab in exp["labels"] if lab["label"] == "SDG 3")["mentioned"]
    assert exp["mentions"]["sdgs"] == ["3"]
    assert len(exp["nearest_examples"]) == 3 and "3" in exp["nearest_examples"][0]["labels"].split(";")
    from rich.console import Console

    from pipeline.tagger.explain import print_explanations

    console = Console(file=None, force_terminal=False, width=120)
    print_explanations(["e1"], [text], exps, console)
    printed = capsys.readouterr().out
    assert "C7.e-health" in printed and "nearest training examples" in printed


def test_long_document_is_tagged_by_segment(trained):
    health = " ".join(f"Sentence {i}: telemedicine for remote clinics and electronic health records."
                      for i in range(6))
    farm = " ".join(f"Sentence {i}: farmers receive crop prices by sms and weather alerts." for i in range(6))
    filler = " ".join(f"Point {i}: the meeting will take place next tuesday in our new building."
                      for i in range(12))
    doc = f"{filler} {health} {filler} {farm} {filler}"
    assert len(features.segment_text(doc)) > 4
    out, _ = _tag(trained, [("d1", doc)])
    als = out.loc[0, "action_lines"].split(";")
    assert "C7.e-health" in als and "C7.e-agriculture" in als
    scores = np.array([[0.2, 0.9], [0.5, 0.1], [0.7, 0.3]])
    groups = np.array([0, 0, 1])
    np.testing.assert_allclose(aggregate(scores, groups, 2, "max"), [[0.5, 0.9], [0.7, 0.3]])
    np.testing.assert_allclose(aggregate(scores, groups, 2, "noisy_or"), [[0.6, 0.91], [0.7, 0.3]])
    np.testing.assert_allclose(aggregate(scores, groups, 2, "mean"), [[0.35, 0.5], [0.7, 0.3]])


def _batch(folder: Path) -> Path:
    texts = [
        ("r1", "q1", "Telemedicine for remote clinics and health data systems.", False),
        ("r1", "q2", "Fibre rollout to rural towns with mobile towers and spectrum.", False),
        ("r2", "q1", "N/A", True),
        ("r2", "q2", "=HYPERLINK(\"x\") Digital skills training for women and girls coding clubs.", False),
        ("r3", "q1", "Farmers receive crop prices by sms; ransomware attacks on ministries too.", False),
        ("r3", "q2", "Our ministry reports progress and cites SDG 14 and Action Line C10.", False),
    ]
    df = pd.DataFrame(texts, columns=["response_id", "question_id", "text_clean", "is_nonanswer"])
    df["answer_id"] = df["response_id"] + "::" + df["question_id"]
    df["text_redacted"] = df["text_clean"]
    df["n_segments"] = 1
    df["mentions_action_lines"] = [[], [], [], [], [], ["C10"]]
    df["mentions_sdgs"] = [[], [], [], [], [], ["14"]]
    folder.mkdir(parents=True, exist_ok=True)
    df.to_parquet(folder / "answers_clean.parquet", index=False)
    return folder


def test_stage_writes_tags_and_consistency(trained):
    batch = _batch(trained["tmp"] / "batch")
    summary = stage.run(batch, trained["params"])
    tags = pd.read_parquet(batch / "tags.parquet")
    assert summary["answers"] == 6 and summary["non_answers"] == 1
    assert list(tags.columns[:7]) == ["answer_id", "response_id", "question_id", "action_lines", "sdgs",
                                      "mentioned_action_lines", "mentioned_sdgs"]
    assert tags.loc[2, "action_lines"] == "" and tags.loc[2, "sdgs"] == ""  # non-answer
    assert tags.loc[5, "mentioned_action_lines"] == "C10" and "C10" in tags.loc[5, "action_lines"]
    assert "14" in tags.loc[5, "sdgs"].split(";")
    assert (batch / "tag_consistency.parquet").exists()


def test_consistency_report_flags_matrix_disagreements():
    tax = load_taxonomy()
    tags = pd.DataFrame({
        "answer_id": ["a", "b", "c", "d"], "response_id": ["r"] * 4, "question_id": ["q"] * 4,
        "action_lines": ["C7.e-health", "C7.e-health", "C11", ""],
        "sdgs": ["3", "3;14", "17", "14"],
    })
    rep = consistency_report(tags, tax)
    assert rep["answer_id"].tolist() == ["b"]
    row = rep.iloc[0]
    assert row["unlinked_pairs"] == "C7.e-health~14" and row["sdgs_without_action_line"] == "14"
    assert row["n_issues"] >= 2


def test_label_sheet_round_trip_and_promotion(private):
    import openpyxl

    trained = private

    params = trained["params"]
    batch = _batch(trained["tmp"] / "batch")
    stage.run(batch, params)
    sheet_file = trained["tmp"] / "sheet.xlsx"
    summary = labelsheet.run(batch, sheet_file, params, n=4)
    assert summary["rows"] == 4
    wb = openpyxl.load_workbook(sheet_file)
    assert wb.sheetnames == ["labels", "instructions"]
    ws = wb["labels"]
    header = [c.value for c in ws[1]]
    values = [[c.value for c in row] for row in ws.iter_rows(min_row=2)]
    assert all(not str(v).startswith(("=", "+", "-", "@")) for row in values for v in row if v is not None)
    assert "r2::q1" not in [row[0] for row in values]  # non-answers are never asked about
    # the analyst corrects one row
    col_al, col_sdg = header.index("action_lines") + 1, header.index("sdgs") + 1
    ws.cell(row=2, column=col_al, value="C7.e-agriculture;C5")
    ws.cell(row=2, column=col_sdg, value="2;16")
    wb.save(sheet_file)
    edited = train.load_label_file(sheet_file)
    assert edited.loc[0, "labels"] == ["C7.e-agriculture", "C5", "SDG2", "SDG16"]
    assert all(not t.startswith("'") for t in edited["text"])
    s2 = train.run([sheet_file], params, trained["tmp"] / "models", training_dir=trained["training"])
    card = (trained["tmp"] / "models" / "tagger" / s2["version"] / "README.md").read_text()
    assert f"Before: version {trained['summary']['version']}" in card
    assert s2["before_micro_f1"] == trained["summary"]["heldout_micro_f1"]  # same held-out split
    assert "analyst" in json.dumps(json.loads(
        (trained["tmp"] / "models" / "tagger" / s2["version"] / "metrics.json").read_text())["data"])
    # a worse model (shuffled training labels, same held-out split) does not replace CURRENT ...
    root = trained["tmp"] / "models" / "tagger"
    current = (root / "CURRENT").read_text().strip()
    bad_dir = make_training_dir(trained["tmp"] / "bad", shuffle_labels=True)
    s3 = train.run([], params, trained["tmp"] / "models", training_dir=bad_dir)
    assert s3["heldout_micro_f1"] < s3["before_micro_f1"]
    assert not s3["promoted"] and (root / "CURRENT").read_text().strip() == current
    assert (root / s3["version"] / "tagger.skops").exists()  # kept, loadable by folder
    assert train.load_model(params, root / s3["version"])[1].name == s3["version"]
    # ... unless forced
    s4 = train.run([], params, trained["tmp"] / "models", force=True, training_dir=bad_dir)
    assert s4["promoted"] and (root / "CURRENT").read_text().strip() == s4["version"]


def test_neutralise():
    assert labelsheet.neutralise("=1+1") == "'=1+1"
    assert labelsheet.neutralise("@SUM(A1)") == "'@SUM(A1)"
    assert labelsheet.neutralise("-2") == "'-2" and labelsheet.neutralise("ok") == "ok"
    assert labelsheet.neutralise(3) == 3
    assert train._unneutralise("'=1+1") == "=1+1" and train._unneutralise("'quoted") == "'quoted"


def test_predict_does_not_mutate_inputs(trained):
    tagger, _ = train.load_model(trained["params"])
    texts = ["Broadband backbone for towns."]
    vecs = hashed_encode(texts)
    before = vecs.copy()
    p1 = tagger.predict_proba(texts, vecs)
    np.testing.assert_array_equal(vecs, before)
    np.testing.assert_array_equal(p1, tagger.predict_proba(texts, vecs))
    assert tagger.predict_proba(["   "], np.zeros((1, DIM), dtype=np.float32)).max() == 0.0


def test_weak_labels_from_explicit_mentions(tmp_path):
    batch = _batch(tmp_path / "batch")
    weak = train.load_weak_labels([batch], limit=100)
    assert weak["id"].tolist() == ["weak:r3::q2"]
    assert weak.loc[0, "labels"] == ["C10", "SDG14"] and weak.loc[0, "split"] == "train"
    data = train.assemble([batch], train.tag_params(config.load_params()), make_training_dir(tmp_path / "t"))
    assert (data.frame["source"] == "weak:batch").sum() == 1


def test_texts_are_encoded_in_the_taggers_training_space(trained):
    tagger, _ = train.load_model(trained["params"])
    assert tagger.embed_model_ == trained["params"]["embed"]["model"]
    onnx = config.deep_merge(trained["params"], {"embed": {"backend": "onnx"}})
    assert train.encoder_params(onnx, tagger) is onnx  # int8 export of the same model: same space
    multi = config.deep_merge(trained["params"], {"embed": {"backend": "multilingual"}})
    fixed = train.encoder_params(multi, tagger)
    assert fixed["embed"]["backend"] == tagger.embed_backend_ and multi["embed"]["backend"] == "multilingual"


def test_forced_top_sdg_needs_a_substantive_text_and_follows_params(trained):
    tagger, _ = train.load_model(trained["params"])
    ids = list(tagger.label_ids)
    proba = np.zeros((2, len(ids)))
    proba[:, ids.index("SDG7")] = 0.4  # below SDG7's threshold, above the floor
    tagger = stage.with_decision_params(tagger, {"min_score_floor": 0.3})
    pred = tagger.decide(proba, allow_top=np.array([True, False]))
    assert pred[0, ids.index("SDG7")] == 1 and pred[1].sum() == 0
    strict = stage.with_decision_params(tagger, {"min_score_floor": 0.5, "top_sdg": False})
    assert strict.decide(proba).sum() == 0 and tagger.min_score_floor == 0.3  # a copy, model untouched
