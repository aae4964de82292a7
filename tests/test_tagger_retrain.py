"""Retraining that proves itself (issue 13, deliverable 3): analyst label files (CSV / XLSX, `text` or
`id` + `text`) are read strictly, split by hash into training and a real-answer validation part, the new and
the CURRENT model are compared on that part with a paired bootstrap, a tie never replaces CURRENT, `--force`
does; `wsis tag --model` takes a version or a models folder. The last test retrains the shipped model on
one half of the real-answer dev set and checks the other half improves (slow; skipped without ../shared)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_tagger import hashed_encode, make_training_dir
from typer.testing import CliRunner

from pipeline import config
from pipeline.cli import app
from pipeline.errors import InputError
from pipeline.tagger import features, train
from pipeline.tagger.model import load_tagger

REAL_ENCODE = features.encode  # the sentence encoder (fixtures below swap in a hashed one)

# Analyst answers in words the written examples never use, so only a model that learns from them tags them.
ANALYST_TOPICS = {
    "C2;9": ["optical cable to hill villages", "cell masts beside the highway", "satellite dishes for islands"],
    "C5;16": ["hackers locked the payroll servers", "scam messages emptied pensions", "stolen passwords leaked"],
    "C7.e-health;3": ["nurses consult doctors by video", "patient files moved online", "diagnosis apps in pharmacies"],
    "C7.e-learning;4": ["tablets handed to pupils", "lessons streamed to homes", "lecturers record courses"],
    "C4;5": ["mothers attend coding evenings", "grants for schoolgirls learning robotics", "ladies mentor ladies"],
    "C7.e-agriculture;2": ["growers check rainfall forecasts", "cattle tracked with collars", "seed prices by text"],
}
ANALYST_CONTEXTS = ["In our region {} was the main change.", "Respondents told us that {} matters most.",
                    "Since 2015, {} has grown quickly.", "Looking ahead, {} needs funding.",
                    "Our members mention {} again and again."]


def analyst_rows(n_contexts: int = 5) -> list[dict[str, str]]:
    rows = []
    for labels, phrases in ANALYST_TOPICS.items():
        als = ";".join(c for c in labels.split(";") if c.startswith("C"))
        sdgs = ";".join(c for c in labels.split(";") if not c.startswith("C"))
        for p_i, phrase in enumerate(phrases):
            for c_i, ctx in enumerate(ANALYST_CONTEXTS[:n_contexts]):
                rows.append({"id": f"a{len(rows)}-{p_i}{c_i}", "text": ctx.format(phrase),
                             "action_lines": als, "sdgs": sdgs})
    return rows


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory):
    """A toy model trained on written examples only (hashed encoder), CURRENT of a temp models folder."""
    tmp = tmp_path_factory.mktemp("retrain")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSIS_MODELS_DIR", str(tmp / "models"))
        mp.setenv("WSIS_CACHE_DIR", str(tmp / "cache"))
        mp.setattr(features, "encode", hashed_encode)
        params = config.load_params(overrides={"tag": {"model_version": "current", "n_folds": 3,
                                                       "compare_n_boot": 300}})
        training = make_training_dir(tmp / "training")
        summary = train.run([], params, tmp / "models", training_dir=training)
        labels = tmp / "analyst.csv"
        pd.DataFrame(analyst_rows()).to_csv(labels, index=False)
        yield {"tmp": tmp, "params": params, "training": training, "summary": summary, "labels": labels}


@pytest.fixture()
def models(base, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A private copy of the models folder (tests move CURRENT), hashed encoder."""
    shutil.copytree(base["tmp"] / "models", tmp_path / "models")
    monkeypatch.setenv("WSIS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("WSIS_CACHE_DIR", str(base["tmp"] / "cache"))
    monkeypatch.setattr(features, "encode", hashed_encode)
    return {**base, "models": tmp_path / "models", "root": tmp_path / "models" / "tagger"}


def _current(root: Path) -> str:
    return (root / "CURRENT").read_text().strip()


def test_analyst_labels_that_help_are_proven_on_real_answer_validation_and_promoted(models):
    """Default: every analyst answer trains the real-answer head and validates it cross-fitted (tagged by a
    head fitted on the other hash folds)."""
    s = train.run([models["labels"]], models["params"], models["models"], training_dir=models["training"])
    assert s["n_compared"] == s["cross_fitted"] == len(analyst_rows()) and s["n_validation"] == 0
    assert s["compared_on"] == "real-answer validation"
    assert s["gain"] > 0 and s["gain_ci"][0] > 0
    assert s["promoted"] and _current(models["root"]) == s["version"]
    folder = models["root"] / s["version"]
    metrics = json.loads((folder / "metrics.json").read_text())
    real = metrics["real_answer_validation"]
    assert real["n_answers"] == s["n_compared"] and real["better"] is True
    assert real["old"]["action_lines"]["micro_f1_ci"] and real["new"]["sdgs"]["micro_f1_ci"]
    assert metrics["real_head"]["applied"] and metrics["model_files_sha256"]["real_head.npz"]
    assert train.load_real_head(folder, load_tagger(folder / "tagger.skops")) is not None
    rows = metrics["data"]["rows_by_source_and_split"]
    assert rows["analyst:analyst.csv / train"] == len(analyst_rows())


def test_hash_split_validation_part_is_never_trained_on(models):
    """With `analyst_validation_share`, the hash-split part is kept out of training (and validates too)."""
    params = config.deep_merge(models["params"], {"tag": {"analyst_validation_share": 0.3}})
    s = train.run([models["labels"]], params, models["models"], training_dir=models["training"])
    assert s["n_validation"] >= 10 and s["n_compared"] == len(analyst_rows())
    folder = models["root"] / s["version"]
    metrics = json.loads((folder / "metrics.json").read_text())
    rows = metrics["data"]["rows_by_source_and_split"]
    assert rows["analyst:analyst.csv / validation"] == s["n_validation"]
    assert rows["analyst:analyst.csv / train"] + s["n_validation"] == len(analyst_rows())
    assert metrics["real_head"]["answers"] == rows["analyst:analyst.csv / train"]
    card = (folder / "README.md").read_text()
    assert "real answers (analyst validation)" in card and "written examples (held-out)" in card
    assert "## Data it saw" in card and "analyst:analyst.csv / validation" in card
    assert "forced" not in card.split("## What it is")[1].split("##")[0].replace("no SDG is forced", "")
    # the sha256 of the model file is recorded and checked on load, as for every version
    assert metrics["model_files_sha256"]["tagger.skops"]
    assert load_tagger(folder / "tagger.skops").thresholds_.shape == (len(load_tagger(folder / "tagger.skops")
                                                                            .label_ids),)


def test_tie_does_not_replace_current_and_force_does(models):
    # the earlier mechanism (no head, hash-split validation part) makes an exact tie possible
    params = config.deep_merge(models["params"], {"tag": {"real_head": False, "analyst_validation_share": 0.3}})
    root = models["root"]
    first = train.run([models["labels"]], params, models["models"], force=True, training_dir=models["training"])
    assert _current(root) == first["version"]
    # the same data again: the same model, a gain of exactly 0 on the real-answer validation part -> a tie
    tie = train.run([models["labels"]], params, models["models"], training_dir=models["training"])
    assert tie["compared_on"] == "real-answer validation"
    assert tie["gain"] == 0 and tie["gain_ci"][0] <= 0 <= tie["gain_ci"][1]
    assert not tie["promoted"] and _current(root) == first["version"]
    assert (root / tie["version"] / "tagger.skops").exists()  # kept and loadable by folder
    assert train.load_model(params, root / tie["version"])[1].name == tie["version"]
    card = (root / tie["version"] / "README.md").read_text()
    assert "Promoted to CURRENT: **False**" in card
    forced = train.run([models["labels"]], params, models["models"], force=True, training_dir=models["training"])
    assert forced["promoted"] and _current(root) == forced["version"]
    # without analyst labels, the written held-out split decides under the same rule (a tie again)
    written = train.run([], params, models["models"], training_dir=models["training"])
    assert written["compared_on"] == "written held-out" and not written["promoted"]


def test_analyst_rows_weigh_more_than_written_examples(models):
    params = models["params"]
    section = train.tag_params(params)
    frame = train.assemble([models["labels"]], section, models["training"]).frame
    w = train.LabelledSet(frame).weights()
    analyst = frame["source"].str.startswith("analyst").to_numpy()
    assert np.all(w[analyst] == section["analyst_weight"]) and np.all(w[~analyst] == 1.0)
    assert section["analyst_weight"] > 1
    # without a head, analyst rows join the tagger's own training (with one, they train the head instead)
    heavy = config.deep_merge(params, {"tag": {"analyst_weight": 20.0, "real_head": False}})
    light = config.deep_merge(params, {"tag": {"analyst_weight": 1.0, "real_head": False}})
    coefs = [train.fit_on(train.assemble([models["labels"]], train.tag_params(p), models["training"]), p)[0].coef_
             for p in (heavy, light)]
    assert not np.allclose(coefs[0], coefs[1])


def _write(df: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".xlsx":
        df.to_excel(path, index=False, sheet_name="labels")
    else:
        df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
@pytest.mark.parametrize("with_id", [True, False])
def test_label_files_csv_and_xlsx_with_text_or_id_and_text(tmp_path, suffix, with_id):
    df = pd.DataFrame({"id": ["q1", "q2", "q3"],
                       "text": ["Fibre for schools.", "Ransomware hit the ministry.", "No comment."],
                       "action_lines": ["C2;C7.e-learning", "C5", ""], "sdgs": ["4;9", "SDG 16", ""]})
    if not with_id:
        df = df.drop(columns="id")
    f = _write(df, tmp_path / f"labels{suffix}")
    out = train.load_label_file(f)
    assert out["labels"].tolist() == [["C2", "C7.e-learning", "SDG4", "SDG9"], ["C5", "SDG16"], []]
    assert set(out["source"]) == {f"analyst:{f.name}"} and set(out["split"]) <= {"train", "validation"}
    assert out["id"].str.startswith(f"label:{f.name}:").all()
    # the split follows a hash of the id, or of the text without an id column: the same on every read
    keys = df["id"] if with_id else df["text"]
    share = train.DEFAULTS["analyst_validation_share"]
    assert out["split"].tolist() == ["validation" if train.in_validation(k, share) else "train" for k in keys]


def test_validation_split_is_a_stable_share():
    keys = [f"answer-{i}" for i in range(2000)]
    share = np.mean([train.in_validation(k, 0.3) for k in keys])
    assert 0.26 < share < 0.34
    assert not any(train.in_validation(k, 0.0) for k in keys)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_bad_label_files_name_file_and_row(tmp_path, suffix):
    good = {"id": ["a", "b", "c"], "text": ["One.", "Two words.", "Three words here."]}
    cases = [
        ({**good, "action_lines": ["C2", "C5", "C12"], "sdgs": ["9", "", ""]}, "row 4", "C12"),
        ({**good, "action_lines": ["C2", "", ""], "sdgs": ["9", "18", ""]}, "row 3", "18"),
        ({**good, "action_lines": ["C2", "C7.e-cooking", ""], "sdgs": ["", "", ""]}, "row 3", "C7.e-cooking"),
        ({**good, "action_lines": ["C2", "C2", ""], "sdgs": ["", "", ""], "id": ["a", "a", "c"]}, "row 3", "duplicate"),
    ]
    for k, (data, row, what) in enumerate(cases):
        f = _write(pd.DataFrame(data), tmp_path / f"bad{k}{suffix}")
        with pytest.raises(InputError) as exc:
            train.load_label_file(f)
        assert exc.value.file == str(f) and exc.value.record == row and what in str(exc.value)
    missing = [({"id": ["a"], "action_lines": ["C2"]}, "text"),
               ({"id": ["a"], "text": ["Fibre."]}, "action_lines")]
    for k, (data, what) in enumerate(missing):
        f = _write(pd.DataFrame(data), tmp_path / f"cols{k}{suffix}")
        with pytest.raises(InputError, match=f"missing column.*{what}") as exc:
            train.load_label_file(f)
        assert exc.value.file == str(f)
    with pytest.raises(InputError, match="not found"):
        train.load_label_file(tmp_path / "absent.csv")


def test_cli_train_tagger_models_dir_and_tag_model_accepts_version_or_models_folder(models, tmp_path):
    runner = CliRunner()
    bad = _write(pd.DataFrame({"text": ["x"], "sdgs": ["99"]}), tmp_path / "bad.csv")
    res = runner.invoke(app, ["train-tagger", "--labels", str(bad), "--models-dir", str(models["models"])])
    assert res.exit_code != 0 and "bad.csv" in res.output and "row 2" in res.output
    assert "Traceback" not in res.output
    inp = _write(pd.DataFrame({"id": ["1"], "text": ["Telemedicine for remote clinics matters."]}),
                 tmp_path / "in.csv")
    version = _current(models["root"])
    for model in (models["models"], models["root"], models["root"] / version):
        out = tmp_path / f"out_{Path(model).name}.csv"
        res = runner.invoke(app, ["tag", "--input", str(inp), "--output", str(out), "--model", str(model)])
        assert res.exit_code == 0, res.output
        assert pd.read_csv(out)["id"].astype(str).tolist() == ["1"]
        assert train.resolve_model_dir(models["params"], Path(model)).name == version
    res = runner.invoke(app, ["tag", "--input", str(inp), "--output", str(tmp_path / "o.csv"),
                              "--model", str(tmp_path)])
    assert res.exit_code != 0 and "no tagger model here" in res.output


# --- the real-answer dev set -------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.shared
def test_retrain_on_one_devset_half_improves_the_other_half(shared_dir, tmp_path, monkeypatch):
    """Annotator 1 labels half 0 of the dev set; retraining the written-examples-only model on them (default
    params: the labels train a real-answer head) improves the other half against both annotators (measured in
    benchmarks/results/tags_retrain.json: 0.607 -> 0.662, gain +0.055 [0.016, 0.097]; floors below)."""
    if not (shared_dir / "devsets" / "tags_real_answers").is_dir():
        pytest.skip("no real-answer dev set in ../shared")
    sys.path.insert(0, str(config.PROJECT_ROOT / "benchmarks"))
    import tags_retrain as bench

    # the real sentence encoder and the project's embedding cache (other tests here swap both for toys)
    monkeypatch.setattr(features, "encode", REAL_ENCODE)
    monkeypatch.setenv("WSIS_CACHE_DIR", str(config.PROCESSED_DIR / "cache"))
    params = config.deep_merge(config.load_params(), {"tag": {"compare_n_boot": 200}})
    df = bench.load_devset(shared_dir).reset_index(drop=True)
    half = bench.halves(df)
    base = bench.written_only_version(config.PROJECT_ROOT / "models" / "tagger")
    old_pred = bench.predict(load_tagger(base / "tagger.skops"), df, params)
    result = bench.fold(df, half, 0, params, base, old_pred, tmp_path, 200, 0)
    assert result["n_labelled"] == 100 and result["n_evaluated"] == 100
    assert result["before_mean_micro_f1"] > 0.55  # the real written-only model, real embeddings
    assert result["gain"] >= 0.03 and result["gain_ci"][0] > 0
    assert result["after_mean_micro_f1"] >= 0.63
    assert result["real_head"]["applied"] and result["real_head"]["answers"] == 100
    assert result["train_tagger"]["n_validation"] == 0  # all labels train the head, validated cross-fitted
