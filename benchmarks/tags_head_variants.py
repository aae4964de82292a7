"""Real-answer head variants for SDGs (issue 13): the shipped head and variants side by side, same 2-fold CV
as `tags_real_answers.head_cv` (halves by sha1 of the item id, stratified by corpus; head fitted on one half
with both annotators' labels on top of the written-example model, the other half tagged, swapped), scored
against both annotators (micro-F1, mean of the two), with paired bootstrap CIs of each variant minus shipped.

Scores are computed once (`stage` code as `wsis tag --input`: whole text + 20-word sentence passages, the
cached encoder) and every variant decides through `stage.decide_texts` with its head, so the shipped variant
reproduces `tags_real_answers.head_cv` exactly (checked at run time with `--check`).

Every parameter a variant chooses is chosen on the training half only (in-sample head probabilities, as the
shipped per-kind thresholds are, or an inner 2-fold CV inside the training half where said) and reported on
the other half.

    PYTHONPATH=. .venv/bin/python benchmarks/tags_head_variants.py [--n-boot 2000] [--check] [--only NAME ...]

(`--only`: those variants and shipped, printed, nothing written; the full run took 16 min on 2 busy shared cores.)

Writes benchmarks/results/tags_head_variants.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WSIS_NO_PROGRESS", "1")

import embed_quality as eq  # noqa: E402
import tags_real_answers as tra  # noqa: E402

from pipeline import config  # noqa: E402
from pipeline.evaluate import split_labels  # noqa: E402
from pipeline.numeric import logit  # noqa: E402
from pipeline.tagger import features, stage, train  # noqa: E402
from pipeline.tagger.realhead import RealAnswerHead  # noqa: E402
from pipeline.tagger.taxonomy import load_taxonomy  # noqa: E402

N_BOOT = 2000
FoldFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]  # (train rows, test rows)
KEEP_GRID = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0, 1e9)  # SDG keep margins (1e9: off)
KINDS = tra.KINDS


class Pre:
    """Everything computed once for the 200 dev answers."""

    def __init__(self, df: pd.DataFrame, params: dict[str, Any]) -> None:
        self.tagger, _ = train.load_model(params)
        self.section = train.tag_params(params)
        self.rules = stage.DecisionRules.from_params(self.section)
        self.dtagger = stage.with_decision_params(self.tagger, self.section)
        texts = df["text"].astype(str).tolist()
        self.texts = texts
        skip = np.array([not t.strip() for t in texts])
        seg, owners = stage.sentence_passages(texts, int(self.section.get("sentence_max_words", 20)), skip)
        vecs = features.encode(texts + seg, train.encoder_params(params, self.tagger), config.cache_dir())
        self.vectors = vecs[: len(texts)]
        self.seg_vectors = vecs[len(texts):]
        self.seg = seg
        self.owners = np.asarray(owners, dtype=np.int64)
        self.proba = self.tagger.predict_proba(texts, self.vectors)
        self.seg_proba = self.tagger.predict_proba(seg, self.seg_vectors)
        self.seg_words = np.array([len(t.split()) for t in seg], dtype=np.int64)
        self.mentions = [features.find_mentions(t) for t in texts]
        _, self.margin, self.n_pass = stage.blended_margins(self.tagger, self.proba, self.seg_proba, self.owners,
                                                            self.rules)
        self.n_words = np.array([len(t.split()) for t in texts])
        self.ids = list(self.tagger.label_ids)
        self.kinds = list(self.tagger.label_kinds)
        self.is_sdg = np.asarray(self.kinds) == "sdg"
        # soft labels: mean of the two annotators (as fit_real_head builds them from annotator_rows)
        Ys = []
        for a in (1, 2):
            rows = tra.annotator_rows(df, np.ones(len(df), dtype=bool), (a,))
            Ys.append(train.LabelledSet(rows).matrix(self.ids).astype(np.float64))
        self.Y = (Ys[0] + Ys[1]) / 2

    def subset(self, idx: np.ndarray) -> dict[str, Any]:
        """Passages of the texts `idx`, owners renumbered."""
        pos = {int(i): k for k, i in enumerate(idx)}
        keep = np.array([int(o) in pos for o in self.owners], dtype=bool)
        return {"seg_proba": self.seg_proba[keep], "owners": np.array([pos[int(o)] for o in self.owners[keep]],
                                                                      dtype=np.int64),
                "seg_words": self.seg_words[keep]}


# ---- heads --------------------------------------------------------------------------------------------------

class LinkedHead(RealAnswerHead):
    """The head with extra SDG evidence from the Action Lines the WSIS-SDG matrix (or the codebook pairing)
    links to each SDG: the maximum over linked Action Lines of their base margin and of their vector evidence
    (0 on Action Line rows and on SDGs without a linked Action Line)."""

    def __init__(self, C: float = 0.3, vector_C: float = 4.0, min_positives: float = 2.0, folds: int = 5,
                 seed: int = 0, link: np.ndarray | None = None) -> None:
        super().__init__(C, vector_C, min_positives, folds, seed)
        self.link = link

    def _design(self, M: np.ndarray, P: np.ndarray, H: np.ndarray, E: np.ndarray) -> np.ndarray:
        X = super()._design(M, P, H, E)
        assert self.link is not None
        L = np.asarray(self.link, dtype=bool)  # (labels, labels): L[a, s] Action Line a linked to SDG s
        Mc = np.clip(M, -10, 10)
        Ec = np.clip(E, -10, 10)
        has = L.any(axis=0)
        fm = np.where(has[None, :], np.max(np.where(L[None, :, :], Mc[:, :, None], -np.inf), axis=1), 0.0)
        fe = np.where(has[None, :], np.max(np.where(L[None, :, :], Ec[:, :, None], -np.inf), axis=1), 0.0)
        fm = np.where(np.isfinite(fm), fm, 0.0)
        fe = np.where(np.isfinite(fe), fe, 0.0)
        return np.hstack([X, fm.ravel()[:, None], fe.ravel()[:, None]])


def link_matrix(pre: Pre, which: str) -> np.ndarray:
    from pipeline.tagger.taxonomy import CODEBOOK_SDG_OF_ACTION_LINE

    ids = pre.ids
    L = np.zeros((len(ids), len(ids)), dtype=bool)
    pairs = (load_taxonomy().matrix if which == "matrix" else set(CODEBOOK_SDG_OF_ACTION_LINE.items()))
    for a, s in pairs:
        if a in ids and s in ids:
            L[ids.index(a), ids.index(s)] = True
    return L


def fit_head(pre: Pre, tr: np.ndarray, head: RealAnswerHead | None = None,
             rules: stage.DecisionRules | None = None) -> RealAnswerHead:
    """`train.fit_real_head` on the precomputed inputs of the answers `tr` (per-kind thresholds included)."""
    s = pre.section
    if head is None:
        head = RealAnswerHead(C=float(s["real_head_C"]), vector_C=float(s["real_head_vector_C"]),
                              min_positives=float(s["real_head_min_positives"]), seed=int(s.get("seed", 0)))
    head.fit(pre.margin[tr], pre.vectors[tr], pre.Y[tr], pre.kinds)
    stage.fit_head_thresholds(head, pre.Y[tr], pre.ids, pre.n_words[tr], rules or pre.rules)
    return head


class RankPenaltyHead:
    """Wraps a fitted head: the k-th ranked SDG (0 = top) of an answer has its log-odds lowered by k x delta, so
    a second SDG needs a higher score than the first (`delta` log-odds more), a third more still."""

    def __init__(self, head: RealAnswerHead, delta: float) -> None:
        self.head, self.delta = head, float(delta)
        self.thresholds_ = head.thresholds_
        self.is_sdg_ = head.is_sdg_

    def predict_proba(self, margins: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        p = self.head.predict_proba(margins, vectors)
        return rank_penalty(p, self.is_sdg_, self.delta)


def rank_penalty(p: np.ndarray, is_sdg: np.ndarray, delta: float) -> np.ndarray:
    p = np.clip(np.array(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    cols = np.flatnonzero(is_sdg)
    z = logit(p[:, cols])
    rank = np.argsort(np.argsort(-z, axis=1, kind="stable"), axis=1, kind="stable")
    p[:, cols] = 1 / (1 + np.exp(-(z - delta * rank)))
    return p


def tag(pre: Pre, te: np.ndarray, head: Any, rules: stage.DecisionRules | None = None) -> np.ndarray:
    """0/1 decisions of the answers `te` as `stage.tag_adhoc_frame` makes them with `head`."""
    sub = pre.subset(te)
    res = stage.decide_texts(pre.dtagger, [pre.texts[i] for i in te], pre.proba[te], sub["seg_proba"],
                             sub["owners"], [pre.mentions[i] for i in te], str(pre.section.get("segment_aggregate",
                                                                                              "max")),
                             np.array([not pre.texts[i].strip() for i in te]),
                             int(pre.section.get("min_words_top", 4)), int(pre.section.get("substantive_words", 15)),
                             float(pre.section.get("substantive_floor", 0.05)), rules or pre.rules,
                             sub["seg_words"], head, pre.vectors[te])
    return np.asarray(res.pred)


# ---- threshold choices on the training half -----------------------------------------------------------------

def finish(pre: Pre, p: np.ndarray, thr: np.ndarray, rows: np.ndarray, rules: stage.DecisionRules,
           keep_base: bool = False) -> np.ndarray:
    """Decisions from head probabilities `p` of answers `rows` with per-label thresholds (the finishing
    rules of tagging; `keep_base`: also the base-margin keep rule of `decide_calibrated`)."""
    m = logit(np.clip(p, 1e-6, 1 - 1e-6)) - logit(thr)
    pred = m >= 0
    if keep_base:
        pred |= pre.margin[rows] >= float(rules.head_keep_base_margin)
    pred = stage.finish_decisions(pred, m + rules.action_line_margin, pre.ids, pre.is_sdg, rules,
                                  np.full(len(p), int(rules.max_sdgs)))
    pred[pre.n_words[rows] < int(rules.min_words)] = False
    return pred


def soft_f1(Y: np.ndarray, P: np.ndarray) -> float:
    den = Y.sum() + P.sum()
    return 2 * float((Y * P).sum()) / den if den else 0.0


def per_label_sdg_thresholds(pre: Pre, head: RealAnswerHead, tr: np.ndarray, shrink: float) -> np.ndarray:
    """Per SDG, the threshold (grid of `fit_head_thresholds`) with the best F1 of that SDG on the training
    half's in-sample head probabilities (the other labels at the head's thresholds), its log-odds shrunk toward
    the kind threshold with weight shrink / (shrink + positives): few positives, close to the kind's."""
    p = head.train_proba_
    Y = pre.Y[tr]
    thr = np.asarray(head.thresholds_, dtype=np.float64).copy()
    kind_t = logit(np.array(thr[pre.is_sdg][0]))
    for j in np.flatnonzero(pre.is_sdg):
        best, best_t = -1.0, float(thr[j])
        for t in stage.HEAD_THRESHOLD_GRID:
            trial = thr.copy()
            trial[j] = t
            pred = finish(pre, p, trial, tr, pre.rules)
            f = soft_f1(Y[:, pre.is_sdg], pred[:, pre.is_sdg].astype(float))
            if f > best + 1e-12:
                best, best_t = f, float(t)
        npos = float(Y[:, j].sum())
        w = shrink / (shrink + npos) if np.isfinite(shrink) else 1.0
        thr[j] = float(1 / (1 + np.exp(-(w * kind_t + (1 - w) * logit(np.array(best_t))))))
    return thr


def choose_rank_delta(pre: Pre, head: RealAnswerHead, tr: np.ndarray, grid: tuple[float, ...]
                      ) -> tuple[float, float]:
    """(SDG kind threshold, rank penalty) with the best SDG F1 on the training half's in-sample probabilities."""
    Y = pre.Y[tr]
    best, choice = -1.0, (float(head.thresholds_[pre.is_sdg][0]), 0.0)
    for t in stage.HEAD_THRESHOLD_GRID:
        thr = np.where(pre.is_sdg, t, head.thresholds_)
        for d in grid:
            pred = finish(pre, rank_penalty(head.train_proba_, pre.is_sdg, d), thr, tr, pre.rules)
            f = soft_f1(Y[:, pre.is_sdg], pred[:, pre.is_sdg].astype(float))
            if f > best + 1e-12:
                best, choice = f, (float(t), float(d))
    return choice


def thresholds_with_keep(pre: Pre, head: RealAnswerHead, tr: np.ndarray) -> np.ndarray:
    """Per-kind thresholds chosen as `fit_head_thresholds` does, but deciding with the base-margin keep rule
    too (tagging applies it; the shipped threshold choice does not see it)."""
    p = head.train_proba_
    Y = pre.Y[tr]
    thr = np.full(p.shape[1], 0.5)
    for cols in (~pre.is_sdg, pre.is_sdg):
        best, best_t = -1.0, 0.5
        for t in stage.HEAD_THRESHOLD_GRID:
            trial = np.where(cols, t, thr)
            pred = finish(pre, p, trial, tr, pre.rules, keep_base=True)
            f = soft_f1(Y[:, cols], pred[:, cols].astype(float))
            if f > best + 1e-12:
                best, best_t = f, float(t)
        thr = np.where(cols, best_t, thr)
    return thr


# ---- variants -----------------------------------------------------------------------------------------------

def cv(pre: Pre, half: np.ndarray, fold_fn: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]
       ) -> tuple[dict[str, list[list[str]]], list[dict[str, Any]]]:
    """2-fold CV: `fold_fn(train rows, test rows)` -> (decisions of the test rows, what was chosen)."""
    pred = np.zeros((len(half), len(pre.ids)), dtype=np.int8)
    chosen = []
    for h in (0, 1):
        tr, te = np.flatnonzero(half == h), np.flatnonzero(half != h)
        p, info = fold_fn(tr, te)
        pred[te] = p
        chosen.append({"trained_on_half": h, **info})
    als, sdgs = stage.label_strings(pre.tagger, pred)
    return {"action_lines": [split_labels(x) for x in als], "sdgs": [split_labels(x) for x in sdgs]}, chosen


def variants(pre: Pre, half: np.ndarray) -> dict[str, Callable[[np.ndarray, np.ndarray],
                                                              tuple[np.ndarray, dict[str, Any]]]]:
    def shipped(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        head = fit_head(pre, tr)
        return tag(pre, te, head), {"thresholds": _kind_thr(pre, head.thresholds_)}

    def sdg_keep(margin: float) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]:
        # the base-margin keep rule for SDGs from `margin` (tag.head_keep_base_margin_sdgs; Action Lines: 1.0)
        def fn(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            head = fit_head(pre, tr)
            return tag(pre, te, head, _rules(pre, head_keep_base_margin_sdgs=margin)), {"sdg_keep_margin": margin}
        return fn

    def sdg_keep_nested(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        # the SDG keep margin chosen by an inner 2-fold CV inside the training half (objective: SDG micro-F1
        # against the soft labels of the inner held-out quarter; ties: the smaller margin)
        inner = np.arange(len(tr)) % 2
        heads = [fit_head(pre, tr[inner == h]) for h in (0, 1)]
        score = {}
        for k in KEEP_GRID:
            P = np.zeros((len(tr), len(pre.ids)), dtype=np.int8)
            for h in (0, 1):
                P[inner != h] = tag(pre, tr[inner != h], heads[h], _rules(pre, head_keep_base_margin_sdgs=k))
            score[k] = soft_f1(pre.Y[tr][:, pre.is_sdg], P[:, pre.is_sdg].astype(float))
        k_best = max(KEEP_GRID, key=lambda k: (round(score[k], 10), -KEEP_GRID.index(k)))
        head = fit_head(pre, tr)
        return (tag(pre, te, head, _rules(pre, head_keep_base_margin_sdgs=k_best)),
                {"sdg_keep_margin": k_best, "inner_sdg_f1": {str(k): round(v, 4) for k, v in score.items()}})

    def thr_with_keep(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        head = fit_head(pre, tr)
        head.thresholds_ = thresholds_with_keep(pre, head, tr)
        return tag(pre, te, head), {"thresholds": _kind_thr(pre, head.thresholds_)}

    def oof(keep_sdgs: float | None, folds: int = 5) -> FoldFn:
        # per-kind thresholds chosen (as fit_head_thresholds does) on OUT-OF-FOLD head probabilities of the
        # training half (inner `folds`-fold: head fitted without the fold, the fold scored) instead of the
        # final head's in-sample ones; `keep_sdgs`: SDG keep margin at tagging (None: as shipped)
        def fn(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            from sklearn.model_selection import KFold

            P = np.zeros((len(tr), len(pre.ids)))
            for a, b in KFold(folds, shuffle=True, random_state=0).split(tr):
                h = fit_head(pre, tr[a])
                P[b] = h.predict_proba(pre.margin[tr[b]], pre.vectors[tr[b]])
            head = fit_head(pre, tr)
            head.train_proba_ = P
            chosen = stage.fit_head_thresholds(head, pre.Y[tr], pre.ids, pre.n_words[tr], pre.rules)
            rules = pre.rules if keep_sdgs is None else _rules(pre, head_keep_base_margin_sdgs=keep_sdgs)
            return tag(pre, te, head, rules), {"thresholds": chosen}
        return fn

    def per_label(shrink: float) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]:
        def fn(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            head = fit_head(pre, tr)
            head.thresholds_ = per_label_sdg_thresholds(pre, head, tr, shrink)
            return tag(pre, te, head), {"sdg_thresholds": {pre.ids[j]: round(float(head.thresholds_[j]), 3)
                                                           for j in np.flatnonzero(pre.is_sdg)}}
        return fn

    def per_label_nested(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        # shrinkage chosen by an inner 2-fold CV inside the training half (halves by position in hash order)
        grid = (2.0, 5.0, 10.0, 20.0, 50.0, float("inf"))
        inner = np.arange(len(tr)) % 2
        score = {}
        for k in grid:
            P = np.zeros((len(tr), len(pre.ids)), dtype=np.int8)
            for h in (0, 1):
                a, b = tr[inner == h], tr[inner != h]
                head = fit_head(pre, a)
                head.thresholds_ = per_label_sdg_thresholds(pre, head, a, k)
                P[inner != h] = tag(pre, b, head)
            Yb = pre.Y[tr]
            score[k] = soft_f1(Yb[:, pre.is_sdg], P[:, pre.is_sdg].astype(float))
        k_best = max(grid, key=lambda k: (score[k], -grid.index(k)))
        head = fit_head(pre, tr)
        head.thresholds_ = per_label_sdg_thresholds(pre, head, tr, k_best)
        return tag(pre, te, head), {"shrink": str(k_best),
                                    "inner_sdg_f1": {str(k): round(v, 4) for k, v in score.items()}}

    def rank(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        head = fit_head(pre, tr)
        t, d = choose_rank_delta(pre, head, tr, (0.0, 0.5, 1.0, 1.5, 2.0, 3.0))
        head.thresholds_ = np.where(pre.is_sdg, t, head.thresholds_)
        return tag(pre, te, RankPenaltyHead(head, d)), {"sdg_threshold": t, "delta": d}

    def linked(which: str) -> Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, dict[str, Any]]]:
        L = link_matrix(pre, which)

        def fn(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
            s = pre.section
            head = LinkedHead(C=float(s["real_head_C"]), vector_C=float(s["real_head_vector_C"]),
                              min_positives=float(s["real_head_min_positives"]), seed=int(s.get("seed", 0)), link=L)
            head = fit_head(pre, tr, head)
            return tag(pre, te, head), {"thresholds": _kind_thr(pre, head.thresholds_),
                                        "link_coef": [round(float(x), 3) for x in head.stack_coef_[-2:]]}
        return fn

    return {"shipped": shipped, **{f"sdg_keep_margin_{k:g}": sdg_keep(k) for k in KEEP_GRID[1:]},
            "sdg_keep_margin_nested": sdg_keep_nested,
            "oof_thresholds": oof(None), "oof_thresholds_sdg_keep_off": oof(1e9),
            "thresholds_fitted_with_keep_rule": thr_with_keep,
            "per_label_sdg_thresholds_shrink5": per_label(5.0),
            "per_label_sdg_thresholds_shrink20": per_label(20.0),
            "per_label_sdg_thresholds_nested": per_label_nested,
            "sdg_rank_penalty": rank,
            "linked_al_feature_matrix": linked("matrix"), "linked_al_feature_codebook": linked("codebook")}


def _rules(pre: Pre, **kw: Any) -> stage.DecisionRules:
    import dataclasses

    return dataclasses.replace(pre.rules, **kw)


def _kind_thr(pre: Pre, thr: np.ndarray) -> dict[str, float]:
    return {"action_lines": round(float(thr[~pre.is_sdg][0]), 3), "sdgs": round(float(thr[pre.is_sdg][0]), 3)}


def paired(df: pd.DataFrame, a: dict[str, list[list[str]]], b: dict[str, list[list[str]]], n_boot: int,
           seed: int) -> dict[str, Any]:
    """Per kind and for the mean of the two kinds: b - a micro-F1 and its paired bootstrap CI (same resamples)."""
    out: dict[str, Any] = {}
    boots = {}
    for kind in KINDS:
        fa = tra.objective(df, a, np.ones(len(df), dtype=bool))[kind]
        fb = tra.objective(df, b, np.ones(len(df), dtype=bool))[kind]
        boots[kind] = eq.micro_f1_boot(df, b, kind, n_boot, seed) - eq.micro_f1_boot(df, a, kind, n_boot, seed)
        out[kind] = {"difference": round(fb - fa, 4), "difference_ci95": eq.rounded_ci(boots[kind])}
    m = (boots["action_lines"] + boots["sdgs"]) / 2
    d = (out["action_lines"]["difference"] + out["sdgs"]["difference"]) / 2
    out["mean"] = {"difference": round(d, 4), "difference_ci95": eq.rounded_ci(m)}
    return out


def written_heldout(keep_margins: tuple[float, ...]) -> dict[str, Any]:
    """The shipped model and head (CURRENT) on the written examples' held-out split (never trained on), per
    SDG keep margin: what a higher margin costs written-style texts (the reason the keep rule exists)."""
    params = config.load_params()
    tagger, folder = train.load_model(params)
    head = train.load_real_head(folder, tagger)
    hw = train.load_handwritten()
    held = hw[hw["split"] == "heldout"].reset_index(drop=True)
    out: dict[str, Any] = {"model": folder.name, "n_examples": len(held)}
    for k in keep_margins:
        m = train.heldout_metrics(tagger, held, config.deep_merge(params, {"tag": {"head_keep_base_margin_sdgs": k}}),
                                  head=head)
        out[f"sdg_keep_margin_{k:g}"] = {"sdg_named_accuracy": m["sdg_named_accuracy"],
                                         "sdg_micro_f1": m["sdgs"]["micro_f1"],
                                         "action_line_micro_f1": m["action_lines"]["micro_f1"]}
        print("written held-out, SDG keep margin", f"{k:g}", out[f"sdg_keep_margin_{k:g}"], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-boot", type=int, default=N_BOOT)
    ap.add_argument("--check", action="store_true", help="also run tags_real_answers.head_cv and compare")
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    shared = tra.shared_dir()
    params = config.load_params(overrides={"tag": {"model_version": tra.WRITTEN_ONLY_MODEL}})
    df = tra.load_devset(shared).reset_index(drop=True)
    half = tra.halves(df)
    seed = int(params.get("seed", 0))
    pre = Pre(df, params)
    everyone = np.ones(len(df), dtype=bool)
    result: dict[str, Any] = {"command": "benchmarks/tags_head_variants.py", "n_answers": len(df),
                              "model": tra.WRITTEN_ONLY_MODEL, "variants": {}}
    preds = {}
    for name, fn in variants(pre, half).items():
        if args.only and name not in args.only and name != "shipped":
            continue
        t1 = time.perf_counter()
        pred, chosen = cv(pre, half, fn)
        preds[name] = pred
        res = {"cross_validated": tra.with_ci(df, pred, everyone, args.n_boot, seed), "chosen": chosen,
               "seconds": round(time.perf_counter() - t1, 1)}
        if name != "shipped":
            res["minus_shipped"] = paired(df, preds["shipped"], pred, args.n_boot, seed)
        result["variants"][name] = res
        _line(name, res)
    if args.check:
        ref: dict[str, list[list[str]]] = {}
        tra.head_cv(df, half, params, (1, 2), 0, seed, predictions=ref)
        same = all(sorted(ref[k][i]) == sorted(preds["shipped"][k][i]) for k in KINDS for i in range(len(df)))
        result["shipped_reproduces_head_cv"] = same
        print("shipped reproduces tags_real_answers.head_cv:", same)
    if not args.only:
        result["written_heldout_current_model"] = written_heldout(KEEP_GRID)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    out = ROOT / "benchmarks" / "results" / "tags_head_variants.json"
    if not args.only:
        out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")


def _line(name: str, r: dict[str, Any]) -> None:
    m = r["cross_validated"]
    cells = [f"{k[:3]} {m[k]['f1']:.3f} [{m[k]['f1_ci'][0]:.3f},{m[k]['f1_ci'][1]:.3f}] P{m[k]['precision']:.2f} "
             f"R{m[k]['recall']:.2f} {m[k]['per_answer']:.2f}/a" for k in KINDS]
    d = r.get("minus_shipped")
    diff = (" | d " + " ".join(f"{k[:3]} {d[k]['difference']:+.3f} {d[k]['difference_ci95']}" for k in
                               (*KINDS, "mean"))) if d else ""
    print(f"{name:38s} " + " | ".join(cells) + diff + f" ({r['seconds']}s)", flush=True)


if __name__ == "__main__":
    main()
