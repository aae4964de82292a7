"""Framework mode on real coded answers: ../shared/devsets/framework_au_srai (skipped when absent).

Two coders coded 120 real answers per question against an analyst frame; the tests read the texts at test
time (nothing of them is stored here) and check what an analyst relies on: coded examples beat zero-shot on
held-out answers, the analyst's own codes survive into the output, and the review sheet round-trips."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import config
from pipeline.errors import InputError
from pipeline.evaluate import per_sample_f1
from pipeline.themes import stage
from pipeline.themes.framework import load_examples, load_framework

pytestmark = pytest.mark.shared


@pytest.fixture(scope="module")
def q20(au_question: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Q20 answers through the real clean and embed stages (embeddings via the usual cache)."""
    from pipeline.clean import clean_answers
    from pipeline.embed import encode
    from pipeline.ingest import ingest_paths

    answers, frame, c1, c2 = au_question("q20")
    tmp = tmp_path_factory.mktemp("q20")
    inp, frame_file = tmp / "answers.csv", tmp / "frame.csv"
    answers.to_csv(inp, index=False)
    frame.to_csv(frame_file, index=False)
    params = config.load_params()
    ing = ingest_paths([inp], None, params)
    ans, seg = clean_answers(ing.answers, params)
    cache = config.cache_dir()

    def enc(texts: list[str]) -> np.ndarray:
        return encode(list(texts), params, cache)

    return {"input": inp, "frame_file": frame_file, "frame": load_framework(frame_file).encoded(enc),
            "answers": ans, "segments": seg, "avec": enc(ans["text_clean"].fillna("").tolist()),
            "svec": enc(seg["text"].fillna("").tolist()), "codes": (c1, c2), "params": params, "enc": enc,
            "tmp": tmp, "raw": answers}


def _gold(codes: pd.DataFrame, rids: list[str], ids: list[str]) -> np.ndarray:
    m = dict(zip(codes["response_id"].astype(str), codes["themes"], strict=True))
    return np.array([[t in str(m[r]).split(";") for t in ids] for r in rids], dtype=bool)


def _f1(pred: pd.DataFrame, codes: tuple[pd.DataFrame, pd.DataFrame], rids: list[str], ids: list[str]) -> float:
    by = dict(zip(pred["response_id"].astype(str), pred["themes"], strict=True))
    p = np.array([[t in str(by[r]).split(";") for t in ids] for r in rids], dtype=bool)
    return float(np.mean([per_sample_f1(_gold(c, rids, ids), p).mean() for c in codes]))


def _examples_csv(path: Path, codes: pd.DataFrame, raw: pd.DataFrame, rids: list[str], with_ids: bool) -> Path:
    text = dict(zip(raw["response_id"].astype(str), raw["answer"], strict=True))
    m = dict(zip(codes["response_id"].astype(str), codes["themes"], strict=True))
    df = pd.DataFrame({"answer": [text[r] for r in rids], "themes": [m[r] for r in rids]})
    if with_ids:
        df.insert(0, "response_id", rids)
    df.to_csv(path, index=False)
    return path


def test_coded_examples_beat_zero_shot_on_held_out_answers(q20: dict[str, Any]) -> None:
    """40 coded answers (coder 1), in the input or as outside text, lift samples-F1 on the other 80."""
    ids = list(q20["frame"].ids)
    rids = sorted(q20["answers"]["response_id"].astype(str).unique(), key=int)
    rng = np.random.default_rng(0)
    train = sorted(rng.choice(rids, size=40, replace=False).tolist(), key=int)
    held = [r for r in rids if r not in set(train)]
    args = (q20["answers"], q20["segments"], q20["avec"], q20["svec"], q20["frame"], q20["params"])
    zero = stage.map_framework(*args).theme_assignments
    f_zero = _f1(zero, q20["codes"], held, ids)
    for with_ids in (True, False):
        ex = load_examples(_examples_csv(q20["tmp"] / f"ex_{with_ids}.csv", q20["codes"][0], q20["raw"], train,
                                         with_ids), q20["frame"])
        res = stage.map_framework(*args, examples=ex, encoder=q20["enc"])
        f_coded = _f1(res.theme_assignments, q20["codes"], held, ids)
        assert f_coded >= f_zero + 0.08, (with_ids, f_coded, f_zero)
        conf = res.theme_assignments[[f"confidence_{t}" for t in ids]].to_numpy()
        assert ((conf >= 0) & (conf <= 1)).all()


def test_analyst_codes_survive_and_review_sheet_round_trips(q20: dict[str, Any]) -> None:
    """`wsis themes --examples` keeps the analyst's codes; `--review-sheet` rows read back as examples."""
    from pipeline.cli import app

    tmp = q20["tmp"]
    c1 = q20["codes"][0]
    coded_ids = c1["response_id"].astype(str).tolist()[:15]
    ex_file = _examples_csv(tmp / "coded.csv", c1, q20["raw"], coded_ids, with_ids=True)
    out, sheet = tmp / "out", tmp / "review.xlsx"
    runner = CliRunner()
    res = runner.invoke(app, ["themes", "--input", str(q20["input"]), "--framework", str(q20["frame_file"]),
                              "--examples", str(ex_file), "--out", str(out), "--review-sheet", str(sheet),
                              "--n", "20"])
    assert res.exit_code == 0, res.output
    ta = pd.read_csv(out / "theme_assignments.csv", dtype=str, keep_default_na=False)
    ids = list(q20["frame"].ids)
    assert {"themes", "source", "confidence"} | {f"score_{t}" for t in ids} | {f"confidence_{t}" for t in ids} \
        <= set(ta.columns)
    given = dict(zip(c1["response_id"].astype(str), c1["themes"], strict=True))
    mine = ta[ta["response_id"].isin(coded_ids)]
    assert len(mine) == 15 and (mine["source"] == "analyst-coded").all()
    for rid, themes in zip(mine["response_id"], mine["themes"], strict=True):
        assert set(themes.split(";")) == set(given[rid].split(";"))
    assert (ta.loc[~ta["response_id"].isin(coded_ids), "source"] == "machine").all()
    # review sheet: 20 machine-coded answers, every theme covered, read back as examples
    rev = pd.read_excel(sheet, sheet_name="review", dtype=str, keep_default_na=False)
    assert len(rev) == 20 and not rev["response_id"].isin(coded_ids).any()
    assert set(ids) <= {c.split()[0] for cell in rev["check_first"] for c in cell.split("; ")}
    back = load_examples(sheet, q20["frame"])
    assert len(back) == 20 and back.response_ids == rev["response_id"].tolist()
    # the analyst corrects one row and passes the sheet back: that answer now carries the correction
    edited = tmp / "review_edited.xlsx"
    rev.loc[0, "themes"] = "K;H"
    rev.to_excel(edited, sheet_name="review", index=False)
    res = runner.invoke(app, ["themes", "--input", str(q20["input"]), "--framework", str(q20["frame_file"]),
                              "--examples", str(edited), "--out", str(tmp / "out2")])
    assert res.exit_code == 0, res.output
    ta2 = pd.read_csv(tmp / "out2" / "theme_assignments.csv", dtype=str, keep_default_na=False)
    row = ta2[ta2["response_id"] == rev.loc[0, "response_id"]].iloc[0]
    assert row["source"] == "analyst-coded" and set(row["themes"].split(";")) == {"K", "H"}
    assert (ta2["source"] == "analyst-coded").sum() == 20


def test_bad_coded_files_give_one_line_errors(q20: dict[str, Any]) -> None:
    """Unknown theme ids, missing columns and duplicate ids name the file and the row; the CLI says so."""
    from pipeline.cli import app

    tmp = q20["tmp"]
    frame = q20["frame"]
    cases = {
        "unknown.csv": (pd.DataFrame({"answer": ["a", "b"], "themes": ["A", "A;Q9"]}), "row 3", "unknown theme id"),
        "columns.csv": (pd.DataFrame({"text": ["a"], "codes": ["A"]}), "header", "missing column"),
        "dupes.csv": (pd.DataFrame({"response_id": ["11", "11"], "answer": ["a", "b"], "themes": ["A", "B"]}),
                      "row 3", "duplicate response_id"),
    }
    for name, (df, where, what) in cases.items():
        df.to_csv(tmp / name, index=False)
        with pytest.raises(InputError) as err:
            load_examples(tmp / name, frame)
        assert str(tmp / name) in str(err.value) and where in str(err.value) and what in str(err.value)
    res = CliRunner().invoke(app, ["themes", "--input", str(q20["input"]), "--framework", str(q20["frame_file"]),
                                   "--examples", str(tmp / "unknown.csv"), "--out", str(tmp / "bad")])
    assert res.exit_code == 1 and "unknown theme id 'Q9'" in res.output and "Traceback" not in res.output
    assert not (tmp / "bad" / "theme_assignments.csv").exists()


def test_stance_agreement_reads_the_position_the_embedding_misses(q20: dict[str, Any]) -> None:
    """Q20 theme A ("Mandate through regulation"): answers the coders gave A agree with it more than the
    others (stance model), while the embedding score cannot rank them (the reason for `stance_weight`)."""
    from sklearn.metrics import roc_auc_score

    from pipeline.themes.framework import FrameworkMapper, theme_agreement

    _, _, data, *_ = stage._framework_data(q20["answers"], q20["segments"], q20["avec"], q20["svec"])
    rids = q20["answers"].sort_values("answer_id", kind="stable")["response_id"].astype(str).tolist()
    ids = list(q20["frame"].ids)
    a = ids.index("A")
    agree = theme_agreement(data, q20["frame"], top=len(ids))
    valid = np.linalg.norm(data.answer_vectors, axis=1) > 0
    y = _gold(q20["codes"][0], rids, ids)[valid, a]
    assert not np.isnan(agree[valid, a]).any()
    auc_stance = roc_auc_score(y, agree[valid, a])
    z = FrameworkMapper().fit(data, q20["frame"])._scores(data)[0]
    auc_topic = roc_auc_score(y, z[valid, a])
    assert auc_stance >= 0.65 and auc_stance >= auc_topic + 0.1, (auc_stance, auc_topic)
