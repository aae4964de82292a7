"""`wsis evaluate`: metric functions against scikit-learn and hand-computed cases; the file shell end to end."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    adjusted_rand_score,
    f1_score,
    normalized_mutual_info_score,
    precision_recall_fscore_support,
)
from typer.testing import CliRunner

from pipeline import evaluate as ev
from pipeline.errors import InputError

PARAMS = {"seed": 7, "evaluate": {"n_bootstrap": 200}}


def _random_multilabel(seed: int, n: int = 200, n_labels: int = 9) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.02, 0.4, n_labels)
    y_true = rng.random((n, n_labels)) < rates
    noise = rng.random((n, n_labels))
    y_pred = np.where(noise < 0.7, y_true, rng.random((n, n_labels)) < rates)
    return y_true, y_pred


# ------------------------------------------------------------------------------------------- label parsing
def test_split_labels_handles_blanks_lists_and_repeats() -> None:
    assert ev.split_labels(" C1 ; C7.e-health;;C1 ") == ["C1", "C7.e-health"]
    assert ev.split_labels("") == []
    assert ev.split_labels(float("nan")) == []
    assert ev.split_labels(None) == []
    assert ev.split_labels(np.array(["a", "b"])) == ["a", "b"]
    assert ev.split_labels("x|y", sep="|") == ["x", "y"]


def test_label_normalisation_keeps_c7_sub_areas_apart() -> None:
    assert [ev.normalise_sdg(x) for x in ("SDG 4", "sdg04", "4", "SDG-17")] == ["4", "4", "4", "17"]
    assert ev.normalise_action_line("c7.e-health") == "C7.e-health"
    assert ev.normalise_action_line("C7") == "C7"
    assert ev.normalise_action_line("C7") != ev.normalise_action_line("C7.e-health")


# --------------------------------------------------------------------------------- multilabel vs sklearn
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_multilabel_scores_match_sklearn(seed: int) -> None:
    y_true, y_pred = _random_multilabel(seed)
    y_pred[:, 0] = False  # a label never predicted: precision takes zero_division
    ours = ev.multilabel_scores(y_true, y_pred, zero_division=0.0, empty_match=1.0)
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    np.testing.assert_allclose(ours["per_label"]["precision"], p)
    np.testing.assert_allclose(ours["per_label"]["recall"], r)
    np.testing.assert_allclose(ours["per_label"]["f1"], f)
    np.testing.assert_array_equal(ours["per_label"]["support"], support)
    for avg in ("micro", "macro"):
        mp, mr, mf, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        assert ours[avg]["precision"] == pytest.approx(mp)
        assert ours[avg]["recall"] == pytest.approx(mr)
        assert ours[avg]["f1"] == pytest.approx(mf)
    assert ours["samples"]["f1"] == pytest.approx(f1_score(y_true, y_pred, average="samples", zero_division=1))


def test_samples_f1_empty_match_setting_matches_sklearn_zero_division() -> None:
    y_true, y_pred = _random_multilabel(5, n=60, n_labels=4)
    y_true[:10] = False
    y_pred[:10] = False
    zero = ev.multilabel_scores(y_true, y_pred, empty_match=0.0)["samples"]["f1"]
    one = ev.multilabel_scores(y_true, y_pred, empty_match=1.0)["samples"]["f1"]
    assert zero == pytest.approx(f1_score(y_true, y_pred, average="samples", zero_division=0))
    n_both_empty = int((~y_true.any(axis=1) & ~y_pred.any(axis=1)).sum())
    assert n_both_empty >= 10
    assert one == pytest.approx(zero + n_both_empty / 60)


def test_hand_computed_small_case() -> None:
    gold = [["C1", "C7.e-health"], ["C7"], []]
    pred = [["C1"], ["C7.e-health"], []]
    rep = ev.multilabel_report(gold, pred, n_resamples=50, seed=1)
    # TP=1 (C1), FP=1 (C7.e-health on row 2), FN=2 (C7.e-health row 1, C7 row 2)
    assert rep["micro"]["precision"] == pytest.approx(0.5)
    assert rep["micro"]["recall"] == pytest.approx(1 / 3)
    assert rep["micro"]["f1"] == pytest.approx(2 / 5)
    # per-label F1: C1 = 1, C7 = 0, C7.e-health = 0 -> macro 1/3
    assert rep["per_label"]["C1"]["f1"] == 1.0
    assert rep["per_label"]["C7"]["f1"] == 0.0
    assert rep["per_label"]["C7"]["support"] == 1 and rep["per_label"]["C7"]["n_predicted"] == 0
    assert rep["macro"]["f1"] == pytest.approx(1 / 3)
    # samples: row 1 2*1/(2+1), row 2 0, row 3 both empty = 1
    assert rep["samples"]["f1"] == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert rep["n_gold_empty"] == 1 and rep["n_pred_empty"] == 1


# ------------------------------------------------------------------------------------------------ bootstrap
def test_bootstrap_equals_weighted_sklearn_per_resample() -> None:
    """Each resample's micro/macro/samples F1 equals scikit-learn's with the resample counts as sample weights."""
    y_true, y_pred = _random_multilabel(11, n=80, n_labels=5)
    boot = ev.bootstrap_multilabel(y_true, y_pred, n_resamples=12, seed=3)
    weights = np.vstack(list(ev.bootstrap_weights(len(y_true), 12, 3)))
    assert weights.sum(axis=1).tolist() == [80.0] * 12
    for b, w in enumerate(weights):
        assert boot["micro_f1"][b] == pytest.approx(f1_score(y_true, y_pred, average="micro", sample_weight=w))
        assert boot["samples_f1"][b] == pytest.approx(
            f1_score(y_true, y_pred, average="samples", sample_weight=w, zero_division=1))
        idx = np.repeat(np.arange(len(y_true)), w.astype(int))
        present = (y_true[idx] | y_pred[idx]).any(axis=0)
        expected_macro = f1_score(y_true[idx][:, present], y_pred[idx][:, present], average="macro", zero_division=0)
        assert boot["macro_f1"][b] == pytest.approx(expected_macro)


def test_bootstrap_is_deterministic_and_ci_brackets_point() -> None:
    y_true, y_pred = _random_multilabel(4, n=300)
    a = ev.multilabel_report([list(map(str, np.flatnonzero(r))) for r in y_true],
                             [list(map(str, np.flatnonzero(r))) for r in y_pred], n_resamples=300, seed=9)
    b = ev.multilabel_report([list(map(str, np.flatnonzero(r))) for r in y_true],
                             [list(map(str, np.flatnonzero(r))) for r in y_pred], n_resamples=300, seed=9)
    assert a == b
    for avg in ("micro", "macro"):
        lo, hi = a[avg]["f1_ci"]
        assert lo < a[avg]["f1"] < hi
        assert hi - lo < 0.2
    lo, hi = a["samples"]["f1_ci"]
    assert lo < a["samples"]["f1"] < hi


def test_percentile_ci_drops_nans() -> None:
    assert ev.percentile_ci(np.array([np.nan, np.nan])) is None
    lo, hi = ev.percentile_ci(np.r_[np.arange(101.0), np.nan], 0.9)
    assert (lo, hi) == (pytest.approx(5.0), pytest.approx(95.0))


# ------------------------------------------------------------------------------------------------ discovery
def test_discovery_hand_case_best_match_and_hungarian() -> None:
    gold = [["a"], ["a"], ["a"], ["a"], ["b"], ["b"], []]
    pred = [["t1"], ["t1"], ["t1"], ["t2"], ["t2"], ["other"], ["t2"]]
    rep = ev.discovery_report(gold, pred)
    # a vs t1: inter 3, sizes 4+3 -> 6/7; b vs t2: inter 1, sizes 2+3 -> 2/5; b vs t1 = 0
    assert rep["per_code"]["a"]["best_theme"] == "t1"
    assert rep["per_code"]["a"]["best_f1"] == pytest.approx(6 / 7)
    assert rep["per_code"]["b"]["best_f1"] == pytest.approx(2 / 5)
    assert rep["best_match_f1_weighted"] == pytest.approx((4 * 6 / 7 + 2 * 2 / 5) / 6)
    assert rep["hungarian_f1_mean"] == pytest.approx((6 / 7 + 2 / 5) / 2)
    assert rep["n_themes"] == 2  # "other" is an outlier label, never matched
    assert rep["pred_outlier_share"] == pytest.approx(1 / 7)
    # NMI/ARI over answers with a gold code; the outlier is its own cluster
    gp = ["a", "a", "a", "a", "b", "b"]
    pp = ["t1", "t1", "t1", "t2", "t2", ev.NONE_CLUSTER]
    assert rep["nmi"] == pytest.approx(normalized_mutual_info_score(gp, pp))
    assert rep["ari"] == pytest.approx(adjusted_rand_score(gp, pp))


def test_hungarian_matches_brute_force_and_best_match_bounds_it() -> None:
    rng = np.random.default_rng(2)
    gold = [[f"g{rng.integers(4)}"] for _ in range(120)]
    pred = [[f"t{rng.integers(5)}"] + ([f"t{rng.integers(5)}"] if rng.random() < 0.3 else []) for _ in range(120)]
    rep = ev.discovery_report(gold, pred, outlier_labels=())
    f1, codes, themes, _ = ev.match_f1_matrix(gold, pred)
    brute = max(sum(f1[i, perm[i]] for i in range(len(codes)))
                for perm in itertools.permutations(range(len(themes)), len(codes)))
    assert rep["hungarian_f1_mean"] == pytest.approx(brute / len(codes))
    assert rep["hungarian_f1_mean"] <= rep["best_match_f1_mean"] + 1e-12
    # an answer counts for every listed theme: check one cell directly
    in_g0 = {i for i, row in enumerate(gold) if "g0" in row}
    in_t0 = {i for i, row in enumerate(pred) if "t0" in row}
    expected = 2 * len(in_g0 & in_t0) / (len(in_g0) + len(in_t0))
    assert f1[codes.index("g0"), themes.index("t0")] == pytest.approx(expected)


def test_discovery_perfect_relabelling_scores_one() -> None:
    gold = [["x"], ["y"], ["y"], ["z"], ["x"]]
    pred = [["1"], ["2"], ["2"], ["3"], ["1"]]
    rep = ev.discovery_report(gold, pred)
    assert rep["best_match_f1_weighted"] == 1.0 and rep["hungarian_f1_mean"] == 1.0
    assert rep["nmi"] == pytest.approx(1.0) and rep["ari"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------- file shell
def _write_tags(tmp_path: Path) -> tuple[Path, Path]:
    gold = pd.DataFrame({
        "answer_id": ["r1::q1", "r2::q1", "r3::q1"],
        "action_lines": ["C1;C7.e-health", "C7", ""],
        "sdgs": ["SDG 4;9", "", "5"],
    })
    pred = pd.DataFrame({
        "response_id": ["r1", "r2", "r9"], "question_id": ["q1", "q1", "q1"],
        "action_lines": ["C1", "C7.e-health", "C2"], "sdgs": ["4", "", "1"],
    })
    gold_path, pred_path = tmp_path / "gold.csv", tmp_path / "tags.parquet"
    gold.to_csv(gold_path, index=False)
    pred.to_parquet(pred_path, index=False)
    return pred_path, gold_path


def test_run_tags_reports_missing_and_extra_rows(tmp_path: Path) -> None:
    pred_path, gold_path = _write_tags(tmp_path)
    out = tmp_path / "metrics.json"
    summary = ev.run(pred_path, gold_path, "tags", out, PARAMS)
    metrics = json.loads(out.read_text(encoding="utf-8"))
    assert metrics["n_missing_in_pred"] == 1 and metrics["missing_in_pred"] == ["r3::q1"]
    assert metrics["n_extra_in_pred"] == 1 and metrics["extra_in_pred"] == ["r9::q1"]
    al = metrics["groups"]["action_lines"]
    assert al["micro"]["f1"] == pytest.approx(0.4)
    sdg = metrics["groups"]["sdgs"]
    # gold {4,9}, {}, {5}; pred {4}, {}, {} (missing row = empty): TP 1, FN 2, FP 0
    assert sdg["micro"]["precision"] == 1.0 and sdg["micro"]["recall"] == pytest.approx(1 / 3)
    assert sdg["labels"] == ["4", "5", "9"]  # SDG 4 and 4 are the same label; r9's SDG 1 is ignored
    assert summary["kind"] == "tags" and summary["n_missing_in_pred"] == 1


def test_run_does_not_mutate_frames() -> None:
    gold = pd.DataFrame({"id": ["a", "b"], "themes": ["x;y", "y"]})
    pred = pd.DataFrame({"id": ["a", "b"], "themes": ["x", "z"]})
    g0, p0 = gold.copy(), pred.copy()
    res = ev.evaluate_frames(pred, gold, "themes", PARAMS)
    pd.testing.assert_frame_equal(gold, g0)
    pd.testing.assert_frame_equal(pred, p0)
    assert res["groups"]["themes"]["micro"]["f1"] == pytest.approx(2 * 1 / (2 * 1 + 1 + 2))


def test_duplicate_gold_rows_are_merged() -> None:
    gold = pd.DataFrame({"id": ["a", "a", "b"], "codes": ["x", "y", "x"]})
    pred = pd.DataFrame({"id": ["a", "b"], "themes": ["t;u", "t"]})
    res = ev.evaluate_frames(pred, gold, "discovery", PARAMS)
    assert res["n_duplicate_gold_rows"] == 1 and res["n_gold"] == 2
    assert res["groups"]["discovery"]["per_code"]["x"]["best_f1"] == 1.0


def test_bad_inputs_raise_input_error(tmp_path: Path) -> None:
    pred_path, gold_path = _write_tags(tmp_path)
    with pytest.raises(InputError, match="unknown --kind"):
        ev.run(pred_path, gold_path, "topics", None, PARAMS)
    with pytest.raises(InputError, match="not found"):
        ev.run(tmp_path / "nope.csv", gold_path, "tags", None, PARAMS)
    no_key = tmp_path / "nokey.csv"
    pd.DataFrame({"action_lines": ["C1"], "sdgs": ["4"]}).to_csv(no_key, index=False)
    with pytest.raises(InputError, match="no key column"):
        ev.run(pred_path, no_key, "tags", None, PARAMS)
    with pytest.raises(InputError, match="no label column"):
        ev.run(pred_path, gold_path, "discovery", None, PARAMS)


def test_cli_evaluate(tmp_path: Path) -> None:
    from pipeline.cli import app

    pred_path, gold_path = _write_tags(tmp_path)
    out = tmp_path / "m.json"
    result = CliRunner().invoke(app, ["evaluate", "--pred", str(pred_path), "--gold", str(gold_path),
                                      "--kind", "tags", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text(encoding="utf-8"))["groups"]["action_lines"]["micro"]["f1"] == pytest.approx(0.4)


@pytest.mark.shared
def test_global_dialogues_tags_against_themselves(shared_dir: Path) -> None:
    """Real vendor tags (pipe-separated) as both gold and prediction give perfect agreement; a shuffle does not."""
    path = shared_dir / "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"
    df = pd.read_csv(path, usecols=["participant_id", "question_id", "remesh_tags"], dtype=str,
                     keep_default_na=False, nrows=3000)
    gold = pd.DataFrame({"response_id": df["participant_id"], "question_id": df["question_id"],
                         "codes": df["remesh_tags"].str.replace("|", ";", regex=False)})
    same = ev.evaluate_frames(gold.rename(columns={"codes": "themes"}), gold, "discovery", PARAMS)
    assert same["groups"]["discovery"]["best_match_f1_weighted"] == pytest.approx(1.0)
    shuffled = gold.assign(themes=gold["codes"].sample(frac=1.0, random_state=0).to_numpy()).drop(columns="codes")
    rnd = ev.evaluate_frames(shuffled, gold, "discovery", PARAMS)
    assert rnd["groups"]["discovery"]["nmi"] < 0.5 * same["groups"]["discovery"]["nmi"]
