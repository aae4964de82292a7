"""Framework mode: loading frames, the FrameworkMapper estimator, and the stage shell end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
from themes_synth import TOPICS

from pipeline import io
from pipeline.errors import InputError
from pipeline.themes import stage
from pipeline.themes.framework import FrameworkData, FrameworkMapper, load_framework
from pipeline.themes.seeds import SeedThemes

DIM = 48
FRAME_YAML = """
themes:
  - id: access
    label: Connectivity
    description: Affordable broadband and internet access for rural and unconnected people.
    keywords: [broadband, connectivity]
  - id: privacy
    label: Privacy
    description: Protection of personal data and privacy against surveillance.
    keywords: [privacy, personal data]
  - id: skills
    label: Digital skills
    description: Training, digital literacy and skills for teachers, workers and young people.
"""
TOPIC_OF = {"access": "connectivity", "privacy": "privacy", "skills": "skills"}


def _world(n: int = 90, seed: int = 0) -> tuple[FrameworkData, np.ndarray, np.ndarray]:
    """Answers with 1-2 planted topics; description vectors are noisy copies of the topic centres."""
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    centres = rng.normal(size=(len(names), DIM))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    texts, avec, svec, sans, gold = [], [], [], [], []
    for i in range(n):
        k = 1 + int(rng.random() < 0.3)
        topics = rng.choice(len(names), size=k, replace=False)
        parts = []
        for t in topics:
            parts.append(" ".join(rng.choice(TOPICS[names[t]], size=2, replace=False)))
            v = centres[t] + 0.9 * rng.normal(size=DIM) / np.sqrt(DIM)
            svec.append(v / np.linalg.norm(v))
            sans.append(i)
        a = np.mean([svec[j] for j in range(len(svec)) if sans[j] == i], axis=0)
        avec.append(a / np.linalg.norm(a))
        texts.append(" ".join(parts))
        gold.append([t in topics for t in range(len(names))])
    desc = centres + 1.2 * rng.normal(size=centres.shape) / np.sqrt(DIM)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    data = FrameworkData(texts, np.asarray(avec, np.float32), np.asarray(svec, np.float32), np.asarray(sans))
    return data, np.asarray(gold), desc.astype(np.float32)


def _frame(desc: np.ndarray, tmp_path: Path) -> SeedThemes:
    path = tmp_path / "frame.yaml"
    path.write_text(FRAME_YAML, encoding="utf-8")
    frame = load_framework(path)
    order = [list(TOPICS).index(TOPIC_OF[t]) for t in frame.ids]
    return frame.encoded(lambda texts: desc[order])


def test_load_framework_yaml_and_csv(tmp_path: Path) -> None:
    y = tmp_path / "f.yaml"
    y.write_text(FRAME_YAML, encoding="utf-8")
    fy = load_framework(y)
    assert fy.ids == ("access", "privacy", "skills") and fy.keywords[0] == ("broadband", "connectivity")
    c = tmp_path / "f.csv"
    pd.DataFrame({"id": ["a", "b"], "label": ["A", "B"], "description": ["first", "second"],
                  "keywords": ["x; y", ""]}).to_csv(c, index=False)
    fc = load_framework(c)
    assert fc.ids == ("a", "b") and fc.keywords == (("x", "y"), ())
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"name": ["a"]}).to_csv(bad, index=False)
    with pytest.raises(InputError):
        load_framework(bad)
    example = Path(__file__).resolve().parents[1] / "data" / "frameworks" / "wsis20_example.yaml"
    assert len(load_framework(example)) >= 5


def test_mapper_beats_plain_cosine(tmp_path: Path) -> None:
    data, gold, desc = _world()
    frame = _frame(desc, tmp_path)
    order = [list(TOPICS).index(TOPIC_OF[t]) for t in frame.ids]
    gold = gold[:, order]
    mapper = FrameworkMapper(seed=0).fit(data, frame)
    pred = mapper.predict(data)
    f1 = f1_score(gold, pred, average="samples", zero_division=0)
    cos = data.answer_vectors @ frame.vectors.T
    plain = cos >= cos.max(axis=1, keepdims=True) - 0.03
    f1_plain = f1_score(gold, plain, average="samples", zero_division=0)
    assert f1 >= 0.8 and f1 > f1_plain
    scores = mapper.decision_function(data)
    assert scores.shape == gold.shape and ((scores > 0) & (scores < 1)).all()
    assert pred.any(axis=1).all()
    for attr in ("theme_vectors_", "tfidf_", "emb_mean_", "emb_std_"):
        assert hasattr(mapper, attr)
    assert FrameworkMapper(tau=2.0).get_params()["tau"] == 2.0


def test_empty_answers_get_no_theme(tmp_path: Path) -> None:
    data, _, desc = _world(30)
    data.answer_vectors[0] = 0.0
    keep = data.segment_answer != 0
    data = FrameworkData(data.texts, data.answer_vectors, data.segment_vectors[keep], data.segment_answer[keep])
    frame = _frame(desc, tmp_path)
    mapper = FrameworkMapper().fit(data, frame)
    assert not mapper.predict(data)[0].any()
    assert (mapper.decision_function(data)[0] == 0).all()


def _batch_dir(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    data, gold, desc = _world(60, seed=3)
    rows, segs = [], []
    for i, text in enumerate(data.texts):
        aid = f"R{i:03d}::Q1"
        rows.append({"answer_id": aid, "response_id": f"R{i:03d}", "question_id": "Q1", "text_clean": text,
                     "is_nonanswer": False})
    for j, a in enumerate(data.segment_answer):
        segs.append({"segment_id": f"R{a:03d}::Q1#{j}", "answer_id": f"R{a:03d}::Q1",
                     "response_id": f"R{a:03d}", "question_id": "Q1", "text": data.texts[a],
                     "text_redacted": data.texts[a], "is_nonanswer": False})
    batch = tmp_path / "batch"
    answers, segments = pd.DataFrame(rows), pd.DataFrame(segs)
    io.write_parquet(answers, batch / "answers_clean.parquet")
    io.write_parquet(segments, batch / "segments.parquet")
    io.write_npz(batch / "embeddings.npz", answer_ids=answers["answer_id"].to_numpy(str),
                 answer_vectors=data.answer_vectors, segment_ids=segments["segment_id"].to_numpy(str),
                 segment_vectors=data.segment_vectors, model_id=np.array("test"))
    return batch, gold, desc


def test_stage_framework_mode_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch, gold, desc = _batch_dir(tmp_path)
    frame_file = tmp_path / "frame.yaml"
    frame_file.write_text(FRAME_YAML, encoding="utf-8")
    order = [list(TOPICS).index(TOPIC_OF[t]) for t in ("access", "privacy", "skills")]
    monkeypatch.setattr(stage, "make_encoder", lambda params: (lambda texts: desc[order]))
    summary = stage.run(batch, {"seed": 1, "themes": {}}, framework=frame_file)
    assert summary["mode"] == "framework" and summary["answers"] == 60
    ta = pd.read_parquet(batch / "theme_assignments.parquet")
    assert {"score_access", "score_privacy", "score_skills"} <= set(ta.columns)
    pred = np.array([[t in s.split(";") for t in ("access", "privacy", "skills")] for s in ta["themes"]])
    assert f1_score(gold[:, order], pred, average="samples", zero_division=0) >= 0.75
    themes = pd.read_parquet(batch / "themes.parquet")
    assert set(themes["origin"]) == {"framework"} and {"all", "Q1"} <= set(themes["scope"])
    sa = pd.read_parquet(batch / "segment_assignments.parquet")
    assert sa["theme_id"].isin(["access", "privacy", "skills", "other"]).all()
    # same answers in another row order -> same assignments
    perm = np.random.default_rng(0).permutation(60)
    a = pd.read_parquet(batch / "answers_clean.parquet").iloc[perm]
    io.write_parquet(a, batch / "answers_clean.parquet")
    stage.run(batch, {"seed": 1, "themes": {}}, framework=frame_file)
    ta2 = pd.read_parquet(batch / "theme_assignments.parquet")
    pd.testing.assert_frame_equal(ta.sort_values("answer_id").reset_index(drop=True),
                                  ta2.sort_values("answer_id").reset_index(drop=True))


def test_stage_discovery_writes_all_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch, _, _ = _batch_dir(tmp_path)
    monkeypatch.setattr(stage, "make_encoder", lambda params: (lambda texts: np.eye(len(texts), DIM)))
    summary = stage.run(batch, {"seed": 1, "themes": {"min_themes": 2, "max_themes": 5}})
    assert summary["themes"] >= 2 and summary["other_share"] < 0.15
    for name in ("themes", "theme_assignments", "segment_assignments", "theme_by_question"):
        assert (batch / f"{name}.parquet").exists()
    missing = tmp_path / "empty"
    missing.mkdir()
    with pytest.raises(InputError):
        stage.run(missing, {"themes": {}})


def test_refit_moves_themes_towards_their_answers_without_mutating_input(tmp_path: Path) -> None:
    """The transductive step pulls a noisy description towards the answers it confidently wins."""
    data, gold, desc = _world(150, seed=5)
    frame = _frame(desc, tmp_path)
    order = [list(TOPICS).index(TOPIC_OF[t]) for t in frame.ids]
    before = data.answer_vectors.copy()
    fixed = FrameworkMapper(refit_iter=0).fit(data, frame)
    refit = FrameworkMapper(refit_iter=1).fit(data, frame)
    assert np.array_equal(data.answer_vectors, before)  # inputs untouched
    # the answers' own topic centroids (from gold) are what a good theme vector should point at
    truth = np.stack([data.answer_vectors[gold[:, t]].mean(axis=0) for t in order])
    truth /= np.linalg.norm(truth, axis=1, keepdims=True)
    cos_fixed = np.einsum("ij,ij->i", fixed.theme_vectors_, truth)
    cos_refit = np.einsum("ij,ij->i", refit.theme_vectors_, truth)
    assert (cos_refit > cos_fixed).all()
    f1 = [f1_score(gold[:, order], m.predict(data), average="samples", zero_division=0) for m in (fixed, refit)]
    assert f1[1] >= f1[0] - 0.01
    # a theme that wins fewer than 3 answers confidently keeps its description vector
    lone = FrameworkMapper(refit_iter=1, refit_margin=100.0).fit(data, frame)
    assert np.allclose(lone.theme_vectors_, fixed.theme_vectors_, atol=1e-6)


@pytest.mark.shared
def test_hand_coded_bc_frames_beat_plain_cosine(shared_dir: Path, tmp_path: Path) -> None:
    """Real text: the hand-coded BC AI survey check (gold = ids + theme ids in benchmarks/data)."""
    import yaml

    from pipeline import config
    from pipeline.embed import encode
    from pipeline.themes.seeds import from_records

    params = config.load_params()
    cfg = yaml.safe_load((Path(__file__).resolve().parents[1] / "benchmarks/data/framework_gold_bc.yaml")
                         .read_text(encoding="utf-8"))["questions"]
    bc = pd.read_csv(shared_dir / "corpora/bc-ai-survey-2025/bc_ai_survey_responses.csv", dtype=str,
                     keep_default_na=False)
    f1s, plains = [], []
    for qid, q in cfg.items():
        sub = bc[bc[qid].str.strip() != ""].sort_values("participant_id")
        coded = {str(k): v for k, v in q["gold"].items() if v}
        # batch = the coded answers plus uncoded ones (the mapper is transductive), kept small for speed
        is_coded = sub["participant_id"].str[:8].isin(coded).to_numpy()
        sub = pd.concat([sub[is_coded], sub[~is_coded].head(250)])
        texts = sub[qid].tolist()
        vecs = encode(texts, params, tmp_path)
        frame = from_records(q["frame"]).encoded(lambda t: encode(list(t), params, tmp_path))
        ids = list(frame.ids)
        data = FrameworkData(texts, vecs, vecs, np.arange(len(texts)))
        pred = FrameworkMapper(**params["themes"]["framework"]).fit(data, frame).predict(data)
        rows = np.flatnonzero(sub["participant_id"].str[:8].isin(coded).to_numpy())
        gold = np.array([[t in coded[p] for t in ids] for p in sub["participant_id"].str[:8].iloc[rows]])
        cos = vecs @ frame.vectors.T
        plain = cos >= cos.max(axis=1, keepdims=True) - 0.03
        f1s.append(f1_score(gold, pred[rows], average="samples", zero_division=0))
        plains.append(f1_score(gold, plain[rows], average="samples", zero_division=0))
    assert np.mean(f1s) >= 0.70 and np.mean(f1s) > np.mean(plains) + 0.03, (f1s, plains)


# -- coded examples, catch-all themes, review sheet (synthetic; real text in test_framework_real.py) --------
def _bare_code_frame(tmp_path: Path, desc: np.ndarray) -> SeedThemes:
    """A frame whose labels are bare codes, embedded (worst case) next to the wrong topics."""
    k = len(desc)
    path = tmp_path / "codes.csv"
    pd.DataFrame({"id": [str(20 + j) for j in range(k)], "label": [f"code {20 + j}" for j in range(k)]}).to_csv(
        path, index=False)
    return load_framework(path).encoded(lambda texts: np.roll(desc, 1, axis=0))


def test_examples_teach_a_bare_code_frame(tmp_path: Path) -> None:
    """Labels 'code 20'.. carry no meaning (here even a misleading one): 30 coded answers teach the topics."""
    from pipeline.themes.framework import CodedFrameworkMapper

    data, gold, desc = _world(150, seed=11)
    frame = _bare_code_frame(tmp_path, desc)
    rows = np.arange(30)
    zero = FrameworkMapper().fit(data, frame).predict(data)
    coded = CodedFrameworkMapper(seed=0).fit(data, frame, rows, gold[rows])
    held = np.arange(30, 150)
    f_zero = f1_score(gold[held], zero[held], average="samples", zero_division=0)
    f_coded = f1_score(gold[held], coded.predict(data)[held], average="samples", zero_division=0)
    assert f_coded >= 0.8 and f_coded > f_zero + 0.3, (f_coded, f_zero)
    p = coded.predict_proba(data)
    assert p.shape == gold.shape and ((p >= 0) & (p <= 1)).all()
    assert coded.cv_samples_f1_ is not None and len(coded.thresholds_) == gold.shape[1]


def test_few_examples_keep_the_zero_shot_prior(tmp_path: Path) -> None:
    """With good descriptions, 5 coded answers must not undo the zero-shot mapping (prior shrinkage)."""
    from pipeline.themes.framework import CodedFrameworkMapper

    data, gold, desc = _world(150, seed=5)
    frame = _frame(desc, tmp_path)
    order = [list(TOPICS).index(TOPIC_OF[t]) for t in frame.ids]
    gold = gold[:, order]
    rows = np.arange(5)
    zero = FrameworkMapper().fit(data, frame).predict(data)
    coded = CodedFrameworkMapper().fit(data, frame, rows, gold[rows]).predict(data)
    f_zero = f1_score(gold[5:], zero[5:], average="samples", zero_division=0)
    f_coded = f1_score(gold[5:], coded[5:], average="samples", zero_division=0)
    assert f_coded >= f_zero - 0.03, (f_coded, f_zero)


def test_catch_all_themes_follow_their_rules(tmp_path: Path) -> None:
    """'None of the above' only when no topic fits; 'No substantive answer' exactly for empty answers."""
    from pipeline.themes.framework import theme_roles
    from pipeline.themes.seeds import from_records

    data, _, desc = _world(40, seed=2)
    data.answer_vectors[0] = 0.0
    keep = data.segment_answer != 0
    data = FrameworkData(data.texts, data.answer_vectors, data.segment_vectors[keep], data.segment_answer[keep])
    recs = [{"id": t, "label": t} for t in ("access", "privacy", "skills")]
    recs += [{"id": "X", "label": "None of the above"}, {"id": "Y", "label": "No substantive answer"}]
    vecs = np.vstack([desc, np.ones((2, DIM)) / np.sqrt(DIM)])
    frame = from_records(recs).encoded(lambda texts: vecs[: len(texts)])
    assert theme_roles(frame) == ["", "", "", "residual", "nonanswer"]
    pred = FrameworkMapper(min_cosine=0.0).fit(data, frame).predict(data)
    assert pred[0].tolist() == [False, False, False, False, True]
    assert (pred[1:, :3].any(axis=1) != pred[1:, 3]).all() and not pred[1:, 4].any()


def test_bad_coded_examples_name_file_and_row(tmp_path: Path) -> None:
    from pipeline.themes.framework import load_examples

    frame = load_framework(_write(tmp_path / "f.yaml", FRAME_YAML))
    bad = {
        "unknown.csv": ("answer,themes\nfine,access\nhmm,access;nope\n", "row 3", "unknown theme id 'nope'"),
        "cols.csv": ("text,codes\nx,access\n", "header", "missing column(s) answer, themes"),
        "dupe.csv": ("response_id,answer,themes\n7,a,access\n8,b,skills\n7,c,privacy\n", "row 4",
                     "duplicate response_id '7' (also row 2)"),
        "empty.csv": ("answer,themes\n,access\n", "row 2", "empty answer"),
        "none.csv": ("answer,themes\n", "", "no coded examples"),
    }
    for name, (text, where, what) in bad.items():
        with pytest.raises(InputError) as err:
            load_examples(_write(tmp_path / name, text), frame)
        msg = str(err.value)
        assert msg.startswith(str(tmp_path / name)) and where in msg and what in msg, msg
        assert "\n" not in msg
    with pytest.raises(InputError, match="not found"):
        load_examples(tmp_path / "absent.csv", frame)
    with pytest.raises(InputError, match="no themes found"):
        load_framework(_write(tmp_path / "empty_frame.csv", "id,label,description\n"))
    with pytest.raises(InputError, match="duplicate id"):
        load_framework(_write(tmp_path / "dup_frame.csv", "id,label\nA,a\nA,b\n"))
    ok = load_examples(_write(tmp_path / "ok.csv", "answer,themes\n'=not a formula,Access; skills\nnone,\n"), frame)
    assert ok.texts[0] == "=not a formula" and ok.labels.tolist() == [[True, False, True], [False, False, False]]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_review_selection_covers_every_theme() -> None:
    from pipeline.themes.framework import select_for_review

    rng = np.random.default_rng(0)
    proba = rng.random((60, 5)) * 0.3  # nobody near theme 4's threshold except row 59
    proba[:, 4] = 0.0
    proba[59, 4] = 0.45
    labels = proba >= 0.5
    picked = select_for_review(proba, labels, np.full(5, 0.5), np.ones(60, dtype=bool), 8)
    rows = [r for r, _ in picked]
    assert len(picked) == 8 and len(set(rows)) == 8 and (59, 4) in picked
    assert {j for _, j in picked if j >= 0} == set(range(5))
    assert select_for_review(proba, labels, np.full(5, 0.5), np.zeros(60, dtype=bool), 8) == []


def test_review_sheet_is_formula_safe_and_reads_back(tmp_path: Path) -> None:
    import openpyxl

    from pipeline.themes.framework import load_examples

    frame = load_framework(_write(tmp_path / "f.yaml", FRAME_YAML))
    sheet = pd.DataFrame({"response_id": ["r1", "r2"], "question_id": ["Q1", "Q1"],
                          "answer": ["=HYPERLINK(\"http://x\")", "@SUM(A1) privacy"], "themes": ["access", "privacy"],
                          "machine_themes": ["access", "privacy"], "confidence": [0.4, 0.6],
                          "check_first": ["access 0.41 (thr 0.40)", "privacy 0.61 (thr 0.60)"]})
    out = stage.write_review_sheet(sheet, frame, tmp_path / "review.xlsx")
    ws = openpyxl.load_workbook(out)["review"]
    cells = [c.value for c in ws["C"]][1:]
    assert cells == ["'=HYPERLINK(\"http://x\")", "'@SUM(A1) privacy"] and all(c.data_type == "s" for c in ws["C"])
    back = load_examples(out, frame)
    assert back.texts == ["=HYPERLINK(\"http://x\")", "@SUM(A1) privacy"] and back.response_ids == ["r1", "r2"]
    with pytest.raises(InputError):
        stage.write_review_sheet(sheet, frame, tmp_path / "review.csv")


def test_batch_stage_learns_from_examples_and_writes_review_sheet(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`wsis themes --out BATCH --framework F --examples CODED --review-sheet X` (the path `wsis run` takes)."""
    from pipeline.themes.framework import load_examples

    batch, gold, desc = _batch_dir(tmp_path)
    frame_file = _write(tmp_path / "frame.yaml", FRAME_YAML)
    ids = ["access", "privacy", "skills"]
    order = [list(TOPICS).index(TOPIC_OF[t]) for t in ids]
    gold = gold[:, order]
    monkeypatch.setattr(stage, "make_encoder", lambda params: (lambda texts: desc[order][: len(texts)]))
    # zero-shot first: every row machine-coded, review sheet drawn from all answers
    sheet = tmp_path / "review.xlsx"
    summary = stage.run(batch, {"seed": 1, "themes": {}}, framework=frame_file, review_sheet_path=sheet, review_n=6)
    assert summary["analyst_coded"] == 0 and summary["review_rows"] == 6
    assert summary["machine_high_confidence"] + summary["machine_low_confidence"] == 60
    # the analyst codes the 6 sheet rows (here: with the planted truth) and passes them back
    rev = pd.read_excel(sheet, sheet_name="review", dtype=str, keep_default_na=False)
    truth = {f"R{i:03d}": ";".join(t for t, k in zip(ids, gold[i], strict=True) if k) for i in range(60)}
    rev["themes"] = rev["response_id"].map(truth)
    coded = tmp_path / "coded.xlsx"
    rev.to_excel(coded, index=False)
    assert len(load_examples(coded, load_framework(frame_file))) == 6
    summary = stage.run(batch, {"seed": 1, "themes": {}}, framework=frame_file, examples=coded)
    assert summary["analyst_coded"] == 6 and summary["examples_in_input"] == 6
    ta = pd.read_parquet(batch / "theme_assignments.parquet").set_index("response_id")
    for rid in rev["response_id"]:
        assert ta.loc[rid, "source"] == "analyst-coded"
        assert set(filter(None, ta.loc[rid, "themes"].split(";"))) == set(filter(None, truth[rid].split(";")))
    assert {f"confidence_{t}" for t in ids} <= set(ta.columns)
    with pytest.raises(InputError, match="needs --framework"):
        stage.run(batch, {"seed": 1, "themes": {}}, examples=coded)


def test_examples_match_answers_by_response_and_question(tmp_path: Path) -> None:
    from pipeline.themes.framework import load_examples, match_examples

    frame = load_framework(_write(tmp_path / "f.yaml", FRAME_YAML))
    answers = pd.DataFrame({"response_id": ["R1", "R1", "R2"], "question_id": ["Q1", "Q2", "Q1"],
                            "text_clean": ["broadband for villages", "privacy  matters", "skills"]})
    by_text = load_examples(_write(tmp_path / "a.csv", "response_id,answer,themes\nR1,Privacy matters,privacy\n"
                                   "R9,not in the batch,skills\n"), frame)
    assert match_examples(by_text, answers) == {0: 1}
    by_qid = load_examples(_write(tmp_path / "b.csv", "response_id,question_id,answer,themes\n"
                                  "R1,Q1,edited text,access\nR1,Q2,x,privacy\n"), frame)
    assert match_examples(by_qid, answers) == {0: 0, 1: 1}
    vague = load_examples(_write(tmp_path / "c.csv", "response_id,answer,themes\nR1,something else,access\n"), frame)
    with pytest.raises(InputError, match=r"row 2: response_id 'R1' answered several questions"):
        match_examples(vague, answers)


def test_shipped_example_codes_fit_the_example_frame() -> None:
    from pipeline.themes.framework import load_examples

    folder = Path(__file__).resolve().parents[1] / "data" / "frameworks"
    frame = load_framework(folder / "wsis20_example.yaml")
    coded = load_examples(folder / "wsis20_example_coded.csv", frame)
    assert len(coded) >= 10 and coded.labels.sum(axis=0).min() >= 2  # every theme has examples


def test_constructor_defaults_are_the_params_defaults() -> None:
    """One definition of every framework default: the estimators read theirs from pipeline/params.py."""
    from pipeline.params import ExamplesParams, FrameworkParams
    from pipeline.themes.framework import CodedFrameworkMapper

    fw = FrameworkParams().model_dump()
    mine = FrameworkMapper().get_params()
    shared = {k for k in mine if k in fw and k != "examples"}
    assert {"prevalence_weight", "stance_weight", "stance_top", "tau", "zero_shot_calibration"} <= shared
    assert {k: (list(v) if isinstance(v, tuple) else v) for k, v in mine.items() if k in shared} == \
        {k: fw[k] for k in shared}
    ex = ExamplesParams().model_dump()
    coded = CodedFrameworkMapper().get_params()
    assert {k: v for k, v in coded.items() if k in ex} == ex


def test_stance_agreement_separates_themes_one_topic_apart(tmp_path: Path) -> None:
    """Two themes with the same topic vector (positions on one question) are told apart only by agreement;
    pairs that were not read (NaN) add nothing."""
    from pipeline.themes.seeds import from_records

    data, _, desc = _world(60, seed=3)
    vecs = np.vstack([desc[:1], desc[:1], desc[1:]])
    frame = from_records([{"id": i, "label": i} for i in ("pro", "contra", "b", "c")]).encoded(
        lambda texts: vecs[: len(texts)])
    agree = np.full((len(data), 4), np.nan)
    side = np.arange(len(data)) % 2 == 0  # even answers agree with "pro", odd ones with "contra"
    agree[:, 0] = np.where(side, 0.8, -0.6)
    agree[:, 1] = -agree[:, 0]
    with_stance = FrameworkData(data.texts, data.answer_vectors, data.segment_vectors, data.segment_answer,
                                agreement=agree)
    z = FrameworkMapper(stance_weight=1.0)._agreement_z(agree)
    assert np.allclose(z[:, 2:], 0.0) and np.allclose(z[:, :2].mean(axis=0), 0.0)
    off = FrameworkMapper(stance_weight=0.0, knn_weight=0.0, refit_iter=0).fit(with_stance, frame)
    on = FrameworkMapper(stance_weight=1.0, knn_weight=0.0, refit_iter=0).fit(with_stance, frame)
    s_off, s_on = off._scores(with_stance)[0], on._scores(with_stance)[0]
    assert np.allclose(s_off[:, 0], s_off[:, 1])  # same vector: topic alone cannot choose
    assert ((s_on[:, 0] > s_on[:, 1]) == side).all()
    assert np.allclose(s_on[:, 2:], s_off[:, 2:])
