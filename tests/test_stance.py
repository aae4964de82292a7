"""Stance (issue 15): the estimator contract, the shipped skops model and its hash check, behaviour on
sentences written for these tests, and a quality floor on the real AU Q20 held-out half (read from ../shared
at test time; skipped when it is absent). Floors sit well below the measured figures in
benchmarks/results/stance_eval.json."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_loader import load_benchmark
from sklearn.base import clone

from pipeline import config
from pipeline.errors import InputError
from pipeline.registry import HASHES_KEY, METRICS_FILE
from pipeline.stance import STANCES, StanceModel, load_model, stance_of, stance_summary
from pipeline.stance import features as feats
from pipeline.stance.api import current_model_file
from pipeline.stance.model import MODEL_FILE, default_encoder, save_model

ROOT = config.PROJECT_ROOT
BENCH = ROOT / "benchmarks" / "stance_eval.py"

# my own sentences, on proposals that are not in the training set
CONGESTION = "Cities should introduce congestion charges for cars entering the centre."
CLEAR = {
    "support": "We strongly support congestion charges; they cut traffic and pollution and are long overdue.",
    "oppose": "We oppose congestion charges. They are unfair to workers who must drive and are unnecessary.",
    "conditional": "Charges could work, but only if public transport is improved first and low-income drivers "
                   "are exempt.",
    "neutral": "The city centre has twelve entrances and a ring road.",
}
SPECTRUM = "Spectrum auctions should be replaced by administrative allocation."
SPECTRUM_CLEAR = {
    "support": "Yes, administrative allocation should replace auctions.",
    "oppose": "Auctions must stay; administrative allocation is opaque and should not be introduced.",
    "conditional": "Administrative allocation may suit rural networks, provided auctions remain for national "
                   "licences.",
}


def _bench():
    return load_benchmark(BENCH, "stance_eval_bench")


@pytest.fixture(scope="module")
def train_features() -> tuple[np.ndarray, np.ndarray]:
    from pipeline.stance import train

    df = train.read_pairs()
    X = feats.featurize(list(df.target), list(df.text), default_encoder())
    return X, df.stance.to_numpy(dtype=object)


def test_estimator_contract(train_features: tuple[np.ndarray, np.ndarray]) -> None:
    """__init__ stores params only, fit returns self, learned attributes end in '_', clone works."""
    X, y = train_features
    est = StanceModel(C=0.05)
    assert est.get_params()["C"] == 0.05
    assert not [k for k in vars(est) if k.endswith("_")]
    assert est.fit(X, y) is est
    assert {"coef_", "intercept_", "classes_", "mean_", "scale_", "n_features_in_"} <= set(vars(est))
    assert sorted(est.classes_) == sorted(STANCES)
    p = est.predict_proba(X[:5])
    assert p.shape == (5, 4) and np.allclose(p.sum(axis=1), 1.0)
    assert set(est.predict(X[:20])) <= set(STANCES)
    twin = clone(est)
    assert twin.get_params() == est.get_params() and not hasattr(twin, "coef_")
    with pytest.raises(ValueError, match="unknown stance"):
        StanceModel().fit(X[:4], ["support", "oppose", "maybe", "neutral"])


def test_training_is_deterministic(train_features: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = train_features
    a, b = StanceModel().fit(X, y), StanceModel().fit(X, y)
    assert np.array_equal(a.coef_, b.coef_) and np.array_equal(a.intercept_, b.intercept_)


def test_training_data_is_balanced_and_varied() -> None:
    df = pd.read_csv(ROOT / "data" / "training" / "stance" / "pairs.csv")
    assert len(df) >= 400 and df.target.nunique() >= 30
    counts = df.stance.value_counts()
    assert set(counts.index) == set(STANCES) and counts.max() <= 1.2 * counts.min()


def test_shipped_model_round_trip_with_hash(tmp_path: Path) -> None:
    """The CURRENT model loads through the sha256 check; a changed byte or a missing hash is refused in one line."""
    path = current_model_file()
    model = load_model(path)
    meta = json.loads((path.parent / METRICS_FILE).read_text())
    from pipeline.io import sha256_file

    assert meta[HASHES_KEY][MODEL_FILE] == sha256_file(path)
    assert (path.parent / "README.md").read_text().count(meta[HASHES_KEY][MODEL_FILE]) == 1
    # save -> load round trip keeps the learned state
    copy = tmp_path / "v" / MODEL_FILE
    copy.parent.mkdir()
    save_model(model, copy)
    (copy.parent / METRICS_FILE).write_text(json.dumps({HASHES_KEY: {MODEL_FILE: sha256_file(copy)}}))
    again = load_model(copy)
    assert np.array_equal(again.coef_, model.coef_) and list(again.classes_) == list(model.classes_)
    # tampered file
    bad = tmp_path / "bad" / MODEL_FILE
    bad.parent.mkdir()
    shutil.copy(path, bad)
    shutil.copy(path.parent / METRICS_FILE, bad.parent / METRICS_FILE)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="sha256") as err:
        load_model(bad)
    assert "\n" not in str(err.value)
    (bad.parent / METRICS_FILE).unlink()
    with pytest.raises(InputError, match="no sha256"):
        load_model(bad)


def test_shipped_model_is_reproduced_by_training(tmp_path: Path) -> None:
    """`python -m pipeline.stance.train` rebuilds the shipped version: same name, the same model up to float noise.

    Byte equality holds only with the same embedding cache: sentence vectors encoded in other batches differ in
    the last float bits (seen on a fresh clone), so the learned coefficients are compared with a tolerance."""
    from pipeline.stance import train

    folder = train.train(out=tmp_path)
    shipped = current_model_file()
    assert folder.name == shipped.parent.name
    rebuilt, original = load_model(folder / MODEL_FILE), load_model(shipped)
    assert np.allclose(rebuilt.coef_, original.coef_, atol=1e-3)
    assert np.allclose(rebuilt.intercept_, original.intercept_, atol=1e-3)


@pytest.mark.parametrize(("target", "cases"), [(CONGESTION, CLEAR), (SPECTRUM, SPECTRUM_CLEAR)])
def test_clear_support_opposition_and_conditions(target: str, cases: dict[str, str]) -> None:
    out = stance_of(list(cases.values()), target)
    assert list(out.stance) == list(cases)
    assert list(out.columns) == ["stance", "confidence", *[f"p_{s}" for s in STANCES]]
    assert np.allclose(out[[f"p_{s}" for s in STANCES]].sum(axis=1), 1.0)


def test_position_follows_the_target_side() -> None:
    """The same answer supports "X should be mandatory" and opposes "X should stay voluntary"."""
    answer = ["Voluntary codes have failed for years; only binding rules will work."]
    mandate = stance_of(answer, "Safety standards for e-scooters should be mandatory.").stance[0]
    voluntary = stance_of(answer, "Safety standards for e-scooters should stay voluntary.").stance[0]
    assert (mandate, voluntary) == ("support", "oppose")


def test_expanded_use_is_unavoidable_does_not_support_a_ban() -> None:
    """The issue's example: a frame theme "ban on remote biometric identification" went to answers saying the
    opposite. Toward the theme label as target, my own sentences of each kind get their own stance."""
    target = "Ban on remote biometric identification"
    answers = ["Expanded use of remote biometric identification in public places is unavoidable, and it helps "
               "the police.",
               "Remote biometric identification in public spaces must be banned outright.",
               "It should be banned in public spaces, except for searching for missing children with a court order.",
               "Biometric systems compare a face with a database of images."]
    assert list(stance_of(answers, target).stance) == ["oppose", "support", "conditional", "neutral"]


def test_a_tier_stated_far_from_the_target_is_still_seen() -> None:
    """Tiered answers argue for the measure at length and put the tier in one clause that is not among the
    sentences closest to the target; the condition-anywhere features must still see it (and stay at zero for the
    same answer without the tier clause)."""
    target = "Noise limits for leaf blowers should be mandated through regulation."
    argument = ("Leaf blowers wake whole streets at dawn. Noise limits for leaf blowers should be mandated. "
                "Councils receive complaints every week. Quieter electric models exist and cost little more. ")
    tiered = argument + ("Such rules are long overdue. Regulation should apply only to commercial operators, with "
                         "householders given a guide.")
    names = feats.feature_names()
    X = feats.featurize([target, target], [argument, tiered], default_encoder(), top_k=2)
    plain, tiered_row = dict(zip(names, X[0], strict=True)), dict(zip(names, X[1], strict=True))
    assert plain["cond_max_sentence"] == 0 and plain["cond_sentence_share"] == 0
    assert tiered_row["cond_max_sentence"] > 0 and tiered_row["cond_sentence_share"] > 0
    assert tiered_row["pole_same_scoped_any"] > 0 and plain["pole_same_scoped_any"] == 0
    assert tiered_row["pole_same_aff_any"] >= plain["pole_same_aff_any"] > 0


def test_questions_quoted_in_an_answer_are_not_its_position() -> None:
    text = ("Question 1: Should local councils be allowed to charge for parking at beaches? "
            "No. Councils must not be allowed to charge for beach parking; it would keep poorer families away.")
    assert stance_of([text], "Local councils should be allowed to charge for parking at beaches.").stance[0] == "oppose"


def test_blank_answers_and_shapes() -> None:
    out = stance_of(["", "   ", CLEAR["support"]], [CONGESTION] * 3)
    assert list(out.stance[:2]) == ["neutral", "neutral"] and out.confidence[0] == 1.0
    assert len(stance_of([], CONGESTION)) == 0
    with pytest.raises(ValueError, match="targets for"):
        stance_of(["a", "b"], [CONGESTION])
    with pytest.raises(ValueError, match="384-d"):
        stance_of(["a"], CONGESTION, answer_vectors=np.zeros((1, 512), dtype=np.float32))


def test_answer_vectors_give_the_same_result_as_embedding() -> None:
    texts = list(CLEAR.values())
    vecs = default_encoder()([t[:2000] for t in texts])
    a = stance_of(texts, CONGESTION)
    b = stance_of(texts, CONGESTION, answer_vectors=vecs)
    assert list(a.stance) == list(b.stance) and np.allclose(a.confidence, b.confidence, atol=1e-5)


def test_q20_mapping_of_coded_themes() -> None:
    bench = _bench()
    assert bench.q20_stance("A;F") == "support"
    assert bench.q20_stance("C;E") == "conditional"
    assert bench.q20_stance("B;J") == "oppose"
    assert bench.q20_stance("D;K") == "conditional"
    assert bench.q20_stance("E;I") == "support"
    assert bench.q20_stance("F;L") == "neutral" and bench.q20_stance("Y") == "neutral"


def test_q20_held_out_quality_floor(shared_dir: Path) -> None:
    """Real answers, the held-out half (never looked at while designing): accuracy well above the majority
    baseline (0.49) and a floor well below the measured figure."""
    if not (shared_dir / "devsets" / "framework_au_srai").is_dir():
        pytest.skip("the framework dev suite is not in ../shared")
    bench = _bench()
    answers, g1, g2 = bench.load_q20()
    held = np.array([not bench.in_tuning_half(r) for r in answers.response_id])
    pred = stance_of(list(answers.answer[held]), bench.Q20_TARGET).stance.to_numpy()
    for gold in (g1[held], g2[held]):
        assert np.mean(pred == gold) >= 0.6
        sup = gold == "support"
        assert np.mean(pred[sup] == "support") >= 0.6
        # measured 0.58 / 0.56 (v1-47d52ef5a2, renamed v2-e6abf69cfc: same model); 0.53 / 0.50 before
        cond = gold == "conditional"
        assert np.mean(pred[cond] == "conditional") >= 0.35


def test_trai_labels_hold_ids_only_and_score(shared_dir: Path) -> None:
    labels = pd.read_csv(ROOT / "benchmarks" / "stance_trai_labels.csv")
    assert list(labels.columns) == ["id", "stance"] and len(labels) == 40
    assert set(labels.stance) <= set(STANCES)
    bench = _bench()
    if not bench.TRAI_CSV.is_file():
        pytest.skip("the TRAI corpus is not in ../shared")
    texts, gold, _ = bench.load_trai()
    pred = stance_of(texts, bench.TRAI_TARGET).stance.to_numpy()
    assert np.mean(pred == gold) >= 0.4  # measured 0.55 (v1-47d52ef5a2, renamed v2-e6abf69cfc: same model)


def test_stance_summary_for_table_cells() -> None:
    assert stance_summary(["support"] * 14 + ["oppose"] * 3 + ["neutral"]) == "14 support, 3 oppose, 1 neutral"
    assert stance_summary(["conditional", "support"]) == "1 support, 1 conditional"
    assert stance_summary([]) == "no answers"


def test_paired_bootstrap_difference() -> None:
    """`paired_diff`: a model right on more of the same answers has a positive difference whose interval excludes
    0; a model against itself differs by exactly 0 and is never better."""
    bench = _bench()
    gold = np.array(["support"] * 30 + ["oppose"] * 30, dtype=object)
    good = gold.copy()
    bad = gold.copy()
    bad[:20] = "neutral"
    d = bench.paired_diff(gold, good, bad, n_boot=500)
    assert d["diff"] == pytest.approx(20 / 60) and d["diff_ci"][0] > 0 and d["p_not_better"] == 0.0
    same = bench.paired_diff(gold, bad, bad, n_boot=200)
    assert same["diff"] == 0.0 and same["p_not_better"] == 1.0


def test_class_offsets_recover_a_shifted_prior() -> None:
    """`fit_offsets` on flat logits learns the labels' class prior (support fixed at 0, others below it in the
    order of their frequency); a larger ridge keeps the offsets smaller."""
    bench = _bench()
    classes = list(STANCES)
    gold = np.array(["support"] * 60 + ["conditional"] * 25 + ["neutral"] * 10 + ["oppose"] * 5, dtype=object)
    off = bench.fit_offsets(np.zeros((len(gold), 4)), [gold], classes, ridge=1e-6)
    o = dict(zip(classes, off, strict=True))
    assert o["support"] == 0.0 and o["support"] > o["conditional"] > o["neutral"] > o["oppose"]
    assert o["conditional"] == pytest.approx(np.log(25 / 60), abs=0.02)
    strong = bench.fit_offsets(np.zeros((len(gold), 4)), [gold], classes, ridge=50.0)
    assert np.abs(strong).sum() < np.abs(off).sum()


def test_split_protocol_chooses_on_one_half_and_reports_on_the_other() -> None:
    """Choices are made on the fitting half only and reported on the other: "other" is wrong on 8 answers of the
    first half and "shipped" on 4 of the second, so each direction picks the one that is better on its fitting half
    and pays for it on the reporting half."""
    bench = _bench()
    classes = list(STANCES)
    gold = np.array(["support", "oppose", "conditional", "neutral"] * 10, dtype=object)
    tune = np.arange(len(gold)) < 20
    onehot = np.log(np.eye(4)[[classes.index(g) for g in gold]] * 0.97 + 0.01)
    shipped = onehot.copy()
    shipped[20:24] = onehot[[21, 20, 23, 22]]  # wrong on 4 answers of the second half only
    other = onehot.copy()
    other[:8] = onehot[[1, 0, 3, 2, 5, 4, 7, 6]]  # wrong on 8 answers of the first half, right on the second
    out = bench.split_protocol({"shipped": (shipped, classes), "other": (other, classes)}, [gold, gold], tune, 200)
    first, second = out["tuned_on_tuning_reported_on_held_out"], out["tuned_on_held_out_reported_on_tuning"]
    assert first["chosen"]["recipe"] == "shipped" and first["reported"][0]["accuracy"] == pytest.approx(16 / 20)
    assert second["chosen"]["recipe"] == "other" and second["reported"][0]["accuracy"] == pytest.approx(12 / 20)
    assert second["vs_shipped"][0]["diff"] == pytest.approx(-8 / 20) and first["vs_shipped"][0]["diff"] == 0.0


def test_round3_pairs_are_written_and_distinct() -> None:
    """The tried-not-used round-3 pairs read like the shipped set (four classes, balanced, many proposals) and
    repeat none of its answers."""
    from pipeline.stance import train

    new = train.read_pairs(ROOT / "data" / "training" / "stance" / "pairs_round3_tried_not_used.csv")
    old = train.read_pairs()
    counts = new.stance.value_counts()
    assert len(new) >= 150 and new.target.nunique() >= 15 and set(counts.index) == set(STANCES)
    assert counts.max() <= 1.25 * counts.min()
    assert not set(new.text) & set(old.text)
