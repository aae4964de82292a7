"""Recovery of researchers' codes by theme discovery, per discovery part (pipeline/themes/parts.py).

Data: ../shared/devsets/framework_au_srai, questions Q11 and Q20 of Australia's Safe and Responsible AI
consultation (120 real answers each, coded by two independent coders against an analyst frame; texts read at
run time, nothing of them is stored here). The coders' codes are the "researchers' codes"; the discovered
themes never see them.

Metric (the project's discovery metric, `pipeline.evaluate.discovery_report`): recovery = best-match F1 per
code weighted by code size (`best_match_f1_weighted`), other = share of answers with no theme
(`pred_outlier_share`); both averaged over the two coders. 95% CIs by bootstrap over answers (2000 resamples,
the same resamples for the two sides of a difference): percentile (`*_ci`, the project's usual interval) and
basic (`*_ci_basic`), since a best match is a maximum and resampling biases it upwards (`bootstrap_bias`).

Protocol: every setting of the grid (reducer x clusterer x its options x refinement) runs through the real
themes stage core (`themes_core`: default seed themes, then discovery) with everything else at its default.
Settings are chosen on one question (highest recovery among settings with other <= 15% and 5-25 themes) and
reported on the other, for each clusterer family and overall; `vs_default` is the held-out difference to the
shipped defaults with its paired CI. A default changes only if the held-out difference is positive with a CI
above 0 on both questions.

    nice .venv/bin/python benchmarks/discovery_recovery.py [--n-boot 2000] [--out discovery_recovery.json]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS_DIR, emit, git_head, shared_dir  # noqa: E402

REDUCERS: list[dict[str, Any]] = [{"reducer": "none"}, {"reducer": "pca", "reducer_components": 20},
                                  {"reducer": "pca", "reducer_components": 50}]
CLUSTERERS: dict[str, list[dict[str, Any]]] = {
    "kmeans": [{"clusterer": "kmeans", "k_selection": s} for s in ("max", "silhouette")],
    "agglomerative": [{"clusterer": "agglomerative", "k_selection": s} for s in ("max", "silhouette")],
    "hdbscan": [{"clusterer": "hdbscan", "hdbscan_min_cluster_size": m} for m in (3, 5, 10)],
}
REFINEMENTS: list[dict[str, Any]] = [{"refinement": "merge_fold"}, {"refinement": "none"}]
MAX_OTHER = 0.15
THEME_RANGE = (5, 25)


def grid() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for family, opts in CLUSTERERS.items():
        for red, clu, ref in itertools.product(REDUCERS, opts, REFINEMENTS):
            out.append((family, {**red, **clu, **ref}))
    return out


def load_suite(params: dict[str, Any], enc: Any) -> dict[str, dict[str, Any]]:
    from bench_themes import _prepare

    folder = shared_dir() / "devsets" / "framework_au_srai"
    sys.path.insert(0, str(folder))
    from load import QUESTIONS, load_question  # type: ignore[import-not-found]

    suite = {}
    for q in sorted(QUESTIONS):
        answers, _, c1, c2 = load_question(q)
        ans, seg, avec, svec = _prepare(answers, params, enc)
        rids = answers["response_id"].astype(str).tolist()
        gold = []
        for codes in (c1, c2):
            m = dict(zip(codes["response_id"].astype(str), codes["themes"], strict=True))
            gold.append([[c for c in str(m[r]).split(";") if c and c != "nan"] for r in rids])
        suite[q] = {"ans": ans, "seg": seg, "avec": avec, "svec": svec, "rids": rids, "gold": gold}
    return suite


def predict(case: dict[str, Any], params: dict[str, Any], enc: Any) -> tuple[list[list[str]], dict[str, Any]]:
    """Each coded answer's themes (in rids order) through the themes stage core, and the run's summary."""
    from pipeline.evaluate import split_labels
    from pipeline.themes.stage import themes_core

    res = themes_core(case["ans"], case["seg"], case["avec"], case["svec"], params, None, enc)
    ta = res.theme_assignments
    by = dict(zip(ta["response_id"].astype(str), ta["themes"], strict=True))
    return [split_labels(by.get(r, "")) for r in case["rids"]], res.summary


def scores(gold: list[list[list[str]]], pred: list[list[str]], idx: np.ndarray | None = None) -> tuple[float, float]:
    """(recovery, other share) averaged over the coders, on the answers `idx` (with repeats; all when None)."""
    from pipeline.evaluate import discovery_report

    sel = np.arange(len(pred)) if idx is None else idx
    p = [pred[i] for i in sel]
    rec = [discovery_report([g[i] for i in sel], p)["best_match_f1_weighted"] for g in gold]
    other = sum(1 for row in p if not [x for x in row if x not in ("other", "-1")]) / len(p)
    return float(np.mean(rec)), float(other)


def _members(rows: list[list[str]], exclude: tuple[str, ...] = ()) -> np.ndarray:
    labels = sorted({x for row in rows for x in row if x not in exclude})
    col = {x: j for j, x in enumerate(labels)}
    m = np.zeros((len(rows), len(labels)))
    for i, row in enumerate(rows):
        for x in row:
            if x in col:
                m[i, col[x]] = 1.0
    return m


def weighted_recovery(g: np.ndarray, p: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Best-match F1 weighted by code size for answer weights `w` (n_boot, n): resample counts, so that the
    rows drawn twice count twice, as in `discovery_report` on the resampled rows (checked in `boot`)."""
    inter = np.einsum("bi,ic,it->bct", w, g, p)
    gs, ps = w @ g, w @ p
    f1 = np.divide(2 * inter, gs[:, :, None] + ps[:, None, :], out=np.zeros_like(inter),
                   where=(gs[:, :, None] + ps[:, None, :]) > 0)
    best = f1.max(axis=2) if p.shape[1] else np.zeros(gs.shape)
    return np.asarray((best * gs).sum(axis=1) / np.maximum(gs.sum(axis=1), 1e-12))


def boot(gold: list, preds: list[list[list[str]]], n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, len(preds)) recovery (mean of the coders) of each prediction on the same answer resamples."""
    from pipeline.evaluate import bootstrap_weights

    n = len(gold[0])
    w = np.concatenate(list(bootstrap_weights(n, n_boot, seed)))
    out = np.zeros((n_boot, len(preds)))
    for j, pred in enumerate(preds):
        p = _members(pred, ("other", "-1"))
        per = [weighted_recovery(_members(gd), p, w) for gd in gold]
        point = np.mean([weighted_recovery(_members(gd), p, np.ones((1, n)))[0] for gd in gold])
        assert abs(point - scores(gold, pred)[0]) < 1e-9, "weighted recovery differs from discovery_report"
        out[:, j] = np.mean(per, axis=0)
    return out


def ci(values: np.ndarray) -> list[float]:
    from pipeline.evaluate import percentile_ci

    out = percentile_ci(values)
    return [round(v, 3) for v in out] if out else []


def basic_ci(point: float, values: np.ndarray) -> list[float]:
    """Basic (pivotal) bootstrap interval [2t - q_hi, 2t - q_lo]: best-match F1 is a maximum, so resampling
    answers biases it upwards and the percentile interval sits above the estimate; this one corrects that."""
    lo, hi = ci(values)
    return [round(2 * point - hi, 3), round(2 * point - lo, 3)]


def eligible(row: dict[str, Any]) -> bool:
    return bool(row["other"] <= MAX_OTHER and THEME_RANGE[0] <= row["themes"] <= THEME_RANGE[1])


def choose(rows: list[dict[str, Any]]) -> int:
    """Index of the highest recovery among eligible rows (all rows when none is eligible); ties: first."""
    ok = [i for i, r in enumerate(rows) if eligible(r)] or list(range(len(rows)))
    return max(ok, key=lambda i: (rows[i]["recovery"], -i))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-boot", type=int, default=2000)
    ap.add_argument("--out", default="discovery_recovery.json")
    args = ap.parse_args()

    from pipeline import config
    from pipeline.embed import encode

    base = config.load_params()
    cache = config.cache_dir()

    def enc(texts: list[str]) -> np.ndarray:
        return encode(list(texts), base, cache)

    t0 = time.perf_counter()
    suite = load_suite(base, enc)
    settings = grid()
    default_opts = {k: base["themes"][k] for k in ("reducer", "clusterer", "k_selection", "refinement")}
    table: dict[str, list[dict[str, Any]]] = {q: [] for q in suite}
    preds: dict[str, list[list[list[str]]]] = {q: [] for q in suite}
    default_pred: dict[str, list[list[str]]] = {}
    default_row: dict[str, dict[str, Any]] = {}
    for q, case in suite.items():
        pred, summ = predict(case, base, enc)
        rec, other = scores(case["gold"], pred)
        default_pred[q] = pred
        default_row[q] = {"recovery": round(rec, 4), "other": round(other, 4), "themes": summ["themes"]}
        for family, opts in settings:
            params = config.deep_merge(base, {"themes": opts})
            pred, summ = predict(case, params, enc)
            rec, other = scores(case["gold"], pred)
            table[q].append({"family": family, "options": opts, "recovery": round(rec, 4),
                             "other": round(other, 4), "themes": int(summ["themes"])})
            preds[q].append(pred)
            print(q, family, opts, table[q][-1]["recovery"], table[q][-1]["other"], table[q][-1]["themes"],
                  flush=True)
    held_out: dict[str, Any] = {}
    for q, case in suite.items():
        tune = next(o for o in suite if o != q)
        picks = {"all": choose(table[tune])}
        for family in CLUSTERERS:
            for reduced in (False, True):
                idx = [i for i, (f, o) in enumerate(settings)
                       if f == family and (o["reducer"] != "none") == reduced]
                picks[f"{family}{'+pca' if reduced else ''}"] = idx[choose([table[tune][i] for i in idx])]
        chosen = list(picks.values())
        b = boot(case["gold"], [default_pred[q]] + [preds[q][i] for i in chosen], args.n_boot, seed=11)
        d_rec = scores(case["gold"], default_pred[q])[0]
        held_out[q] = {"chosen_on": tune, "default": {**default_row[q], "recovery_ci": ci(b[:, 0]),
                                                      "recovery_ci_basic": basic_ci(d_rec, b[:, 0]),
                                                      "bootstrap_bias": round(float(b[:, 0].mean()) - d_rec, 4)},
                       "picks": {}}
        for j, (name, i) in enumerate(picks.items(), start=1):
            row = table[q][i]
            held_out[q]["picks"][name] = {
                "options": row["options"], "tune_recovery": table[tune][i]["recovery"],
                "recovery": row["recovery"], "recovery_ci": ci(b[:, j]),
                "recovery_ci_basic": basic_ci(scores(case["gold"], preds[q][i])[0], b[:, j]),
                "other": row["other"], "themes": row["themes"], "vs_default": round(row["recovery"] - d_rec, 4),
                "vs_default_ci": ci(b[:, j] - b[:, 0]),
                "vs_default_ci_basic": basic_ci(scores(case["gold"], preds[q][i])[0] - d_rec, b[:, j] - b[:, 0]),
            }
    wins = [all(held_out[q]["picks"]["all"]["vs_default_ci"][0] > 0 for q in suite)]
    # reducer off / on side by side for each clusterer at its other defaults (in-sample: nothing chosen)
    plain = {"k_selection": "max", "refinement": "merge_fold"}
    side: dict[str, dict[str, dict[str, float]]] = {q: {} for q in suite}
    for q in suite:
        for (family, o), row in zip(settings, table[q], strict=True):
            if all(o.get(k, v) == v for k, v in plain.items()) and o.get("hdbscan_min_cluster_size", 5) == 5:
                red = o["reducer"] + (f"{o['reducer_components']}" if o["reducer"] != "none" else "")
                side[q].setdefault(family, {})[red] = row["recovery"]
    results = {
        "benchmark": "discovery recovery of researchers' codes per discovery part",
        "command": "nice .venv/bin/python benchmarks/discovery_recovery.py --n-boot " + str(args.n_boot),
        "code": git_head(),
        "devset": "../shared/devsets/framework_au_srai (Q11, Q20; 120 real answers each; two coders)",
        "encoder": f"{base['embed']['model']} (embed.backend {base['embed']['backend']})",
        "metric": "recovery = best-match F1 per code weighted by code size (pipeline.evaluate.discovery_report "
                  "best_match_f1_weighted), other = share of answers with no theme; mean of the two coders; "
                  "95% bootstrap CIs over answers, paired for differences",
        "protocol": f"settings chosen on one question (max recovery with other <= {MAX_OTHER} and "
                    f"{THEME_RANGE[0]}-{THEME_RANGE[1]} themes), reported on the other",
        "defaults": default_opts,
        "held_out": held_out,
        "default_changed": bool(wins[0]),
        "reducer_side_by_side_in_sample": side,
        "grid_in_sample": table,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    emit(results, RESULTS_DIR / args.out if args.out else None)


if __name__ == "__main__":
    main()
