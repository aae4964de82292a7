"""`Tagger`: a multi-label tagger of texts for WSIS Action Lines and SDGs, made of two scikit-learn parts.

Why this shape: the hand-written training set is small (~25-40 texts per label), so each label's score blends
(1) a per-label logistic regression over sentence embeddings + label-similarity + keyword-lexicon features with
(2) a zero-shot prior shared by all labels (similarity of the text to the label description and keyword hits),
which carries over to texts unlike the training set. Blended scores are Platt-calibrated per label on
out-of-fold predictions and combined (noisy-or) with keyword evidence whose reliability P(label | keyword) is
counted on the training texts, so a specific keyword can carry a label in a long, list-like real answer
where the embedding is diluted. Each label gets its own threshold chosen by cross-validation (multi-label
stratified folds).

The parts: `features.TaggerFeatures` turns (text, embedding) pairs into a design matrix (all that needs the
text), `TaggerEstimator` learns everything above from that matrix (`fit(X, Y)`, `predict_proba(X)`; works with
`clone`, `Pipeline`, `cross_val_predict`). `Tagger` composes them behind the text API the stages call and adds
the decision rules (`decide`). Its learned state stays flat numpy arrays and plain containers under the same
attribute names as before the split, so skops loads shipped files with a one-type trusted list; the two parts
are views of that state, built on access (`features_`, `estimator_`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from pipeline.errors import ModelFileError
from pipeline.numeric import sigmoid
from pipeline.params import TagParams
from pipeline.registry import load_verified_skops
from pipeline.tagger.features import TaggerFeatures

log = logging.getLogger(__name__)

_TAG = TagParams()  # the learning knobs' defaults are params.yaml `tag:` (defined once, in pipeline.params)
PREDICT_CHUNK = 4096  # texts scored at once by `Tagger.predict_proba` (memory)
THRESHOLD_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.05, 0.951, 0.025), 3))


def fbeta_threshold(
    scores: np.ndarray, y: np.ndarray, grid: np.ndarray, beta: float = 1.0,
    sample_weight: np.ndarray | None = None,
) -> tuple[float, float]:
    """Threshold on `grid` maximising F-beta of `scores >= t` against `y` (ties: the middle one); counts are
    weighted by `sample_weight` when given (analyst labels weigh more than written examples)."""
    pos = y.astype(bool)
    w = np.ones(len(pos)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    best_f, best = -1.0, []
    b2 = beta * beta
    for t in grid:
        pred = scores >= t
        tp = float(np.sum(w[pred & pos]))
        fp = float(np.sum(w[pred & ~pos]))
        fn = float(np.sum(w[~pred & pos]))
        denom = (1 + b2) * tp + b2 * fn + fp
        f = (1 + b2) * tp / denom if denom else 0.0
        if f > best_f + 1e-9:
            best_f, best = f, [float(t)]
        elif abs(f - best_f) <= 1e-9:
            best.append(float(t))
    return best[len(best) // 2], best_f


#: Learned arrays a `TaggerEstimator` and a `Tagger` share under the same names.
LEARNED: tuple[str, ...] = ("feature_mean_", "feature_scale_", "calib_a_", "calib_b_", "thresholds_", "cv_f1_",
                            "coef_", "intercept_", "prior_coef_", "prior_intercept_")


class TaggerEstimator(ClassifierMixin, BaseEstimator):
    """Multi-label scores from the design matrix of `features.TaggerFeatures`: `fit(X, Y) -> self`,
    `predict_proba(X)` (n, n_labels) calibrated scores, `predict(X)` (scores >= per-label thresholds).

    `label_kinds` (one per label: "sdg" or "action_line") and `keyword_labels` (per keyword column, the labels
    whose lexicon holds it) describe the matrix layout; the embedding width is what remains of the columns.
    Rows whose embedding block is all zero (empty texts) score 0.
    """

    def __init__(
        self,
        label_kinds: Sequence[str] = (),
        keyword_labels: Sequence[Sequence[int]] = (),
        C: float = _TAG.C,
        prior_weight: float = _TAG.prior_weight,
        n_folds: int = _TAG.n_folds,
        seed: int = 0,
        threshold_grid: Sequence[float] = THRESHOLD_GRID,
        beta_action_lines: float = _TAG.beta_action_lines,
        beta_sdgs: float = _TAG.beta_sdgs,
        min_positives: int = 3,
        keyword_weight: float = _TAG.keyword_weight,
        keyword_prior: float = _TAG.keyword_prior,
        keyword_smoothing: float = _TAG.keyword_smoothing,
    ) -> None:
        self.label_kinds = label_kinds
        self.keyword_labels = keyword_labels
        self.C = C
        self.prior_weight = prior_weight
        self.n_folds = n_folds
        self.seed = seed
        self.threshold_grid = threshold_grid
        self.beta_action_lines = beta_action_lines
        self.beta_sdgs = beta_sdgs
        self.min_positives = min_positives
        self.keyword_weight = keyword_weight
        self.keyword_prior = keyword_prior
        self.keyword_smoothing = keyword_smoothing

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.classifier_tags.multi_label = True
        return tags

    # --- the matrix ---------------------------------------------------------------------------------

    def _blocks(self, X: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(embeddings, 2 x n_labels similarities, keyword ranks) column blocks of the design matrix."""
        X = np.asarray(X, dtype=np.float32)
        n_labels, n_kw = len(self.label_kinds), len(self.keyword_labels)
        if X.ndim != 2 or X.shape[1] <= 2 * n_labels + n_kw:
            raise ValueError(f"X has shape {X.shape}: expected (n, d + {2 * n_labels} + {n_kw}) columns "
                             "(embedding, label similarities, keyword hits) with d >= 1")
        d = X.shape[1] - 2 * n_labels - n_kw
        return X[:, :d], X[:, d : d + 2 * n_labels], X[:, d + 2 * n_labels :]

    def _membership(self) -> np.ndarray:
        """(n_keywords, n_labels) 0/1: which labels each keyword column counts for."""
        out = np.zeros((len(self.keyword_labels), len(self.label_kinds)), dtype=np.float32)
        for k, labels in enumerate(self.keyword_labels):
            out[k, list(labels)] = 1.0
        return out

    def _keyword_counts(self, H: np.ndarray) -> np.ndarray:
        """log1p of the number of distinct keywords hit per label, float32."""
        return np.log1p((H > 0).astype(np.float32) @ self._membership())

    def _kind_masks(self) -> dict[str, np.ndarray]:
        kinds = np.asarray(list(self.label_kinds))
        return {k: kinds == k for k in np.unique(kinds)}

    def _prior_features(self, S2: np.ndarray, K: np.ndarray) -> np.ndarray:
        """Per (text, label) zero-shot features: similarities relative to the other labels of its kind, hits."""
        n_labels = K.shape[1]
        feats = []
        for S in (S2[:, :n_labels], S2[:, n_labels:]):
            rel = np.zeros_like(S)
            gap = np.zeros_like(S)
            for mask in self._kind_masks().values():
                sub = S[:, mask]
                rel[:, mask] = (sub - sub.mean(axis=1, keepdims=True)) / (sub.std(axis=1, keepdims=True) + 1e-3)
                gap[:, mask] = sub - np.sort(sub, axis=1)[:, -1:]
            feats += [rel, gap * 10.0, S * 5.0]
        return np.stack([*feats, K, (K > 0).astype(np.float32)], axis=-1)

    @staticmethod
    def _design(E: np.ndarray, S: np.ndarray, K: np.ndarray) -> np.ndarray:
        return np.hstack([E, S * 2.0, K]).astype(np.float32)

    def _reliability(
        self, H: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> np.ndarray:
        """(n_keywords, n_labels) P(label | keyword present) on training rows (weighted counts), smoothed towards
        `keyword_prior`; only for the labels whose lexicon holds the keyword (0 elsewhere). Keywords that fire
        in off-topic texts get low weight."""
        n_labels = Y.shape[1]
        w = np.ones(len(Y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        alpha, r0 = float(self.keyword_smoothing), float(self.keyword_prior)
        table = np.zeros((len(self.keyword_labels), n_labels), dtype=np.float64)
        for k, labels in enumerate(self.keyword_labels):
            rows = np.flatnonzero(H[:, k] > 0)
            n_rows = float(w[rows].sum()) if rows.size else 0.0
            for j in labels:
                n_pos = float((Y[rows, j] * w[rows]).sum()) if rows.size else 0.0
                table[k, j] = (n_pos + alpha * r0) / (n_rows + alpha)
        return table

    @staticmethod
    def _evidence(H: np.ndarray, table: np.ndarray) -> np.ndarray:
        """Noisy-or of the reliabilities of the keywords hit, in the text's order: (n, n_labels) in [0, 1]."""
        out = np.zeros((len(H), table.shape[1]), dtype=np.float64)
        for i in range(len(H)):
            cols = np.flatnonzero(H[i])
            miss = np.ones(table.shape[1])
            for k in cols[np.argsort(H[i, cols], kind="stable")]:
                miss *= 1.0 - table[k]
            out[i] = 1.0 - miss
        return out

    def _combine(self, p: np.ndarray, evidence: np.ndarray) -> np.ndarray:
        """Calibrated model score and keyword evidence, noisy-or: either can carry a label."""
        return 1.0 - (1.0 - p) * (1.0 - float(self.keyword_weight) * evidence)

    # --- fitting ----------------------------------------------------------------------------------

    def _fit_heads(
        self, X: np.ndarray, P: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Per-label logistic regressions (as coefficient arrays) and the pooled prior model."""
        n_labels = Y.shape[1]
        coef = np.zeros((n_labels, X.shape[1]), dtype=np.float64)
        intercept = np.full(n_labels, -6.0)
        for j in range(n_labels):
            y = Y[:, j]
            if y.sum() == 0 or y.sum() == len(y):
                intercept[j] = -6.0 if y.sum() == 0 else 6.0
                continue
            lr = LogisticRegression(C=self.C, class_weight="balanced", max_iter=500)
            lr.fit(X, y, sample_weight=sample_weight)
            coef[j] = lr.coef_[0]
            intercept[j] = lr.intercept_[0]
        flat_x = P.reshape(-1, P.shape[-1])
        flat_y = Y.reshape(-1)
        prior = LogisticRegression(C=1.0, class_weight="balanced", max_iter=500)
        flat_w = None if sample_weight is None else np.repeat(np.asarray(sample_weight, dtype=np.float64), n_labels)
        prior.fit(flat_x, flat_y, sample_weight=flat_w)
        return coef, intercept, prior.coef_[0].astype(np.float64), float(prior.intercept_[0])

    def _raw(
        self, X: np.ndarray, P: np.ndarray, coef: np.ndarray, intercept: np.ndarray,
        prior_coef: np.ndarray, prior_intercept: float,
    ) -> np.ndarray:
        """Blend of the classifier's and the prior's log-odds (before calibration)."""
        clf = X @ coef.T + intercept
        prior = P @ prior_coef + prior_intercept
        w = float(self.prior_weight)
        return (1 - w) * clf + w * prior

    def fit(self, X: Any, Y: Any, sample_weight: np.ndarray | None = None) -> TaggerEstimator:
        """Fit heads, calibrate per label on out-of-fold scores, pick per-label thresholds. `sample_weight`
        weighs every step (heads, prior, calibration, thresholds, keyword reliability): analyst labels on
        real answers count more than the many written examples.

        BLAS is held to one thread: these small problems run ~20x slower when threads oversubscribe cores.
        """
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return self._fit(X, Y, sample_weight)

    def _fit(self, X: Any, Y: Any, sample_weight: np.ndarray | None) -> TaggerEstimator:
        E, S, H = self._blocks(X)
        n = len(E)
        Y = np.asarray(Y, dtype=np.int64)
        if Y.shape != (n, len(self.label_kinds)):
            raise ValueError(f"Y has shape {Y.shape}, expected {(n, len(self.label_kinds))}")
        w: np.ndarray | None = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (n,) or not np.isfinite(w).all() or (w <= 0).any():
                raise ValueError(f"sample_weight must be {n} positive finite numbers")
            w = w / w.mean()  # the regularisation strength C keeps its meaning
        K = self._keyword_counts(H)
        Xd = self._design(E, S, K)
        P = self._prior_features(S, K)
        self.feature_mean_ = Xd.mean(axis=0)
        self.feature_scale_ = Xd.std(axis=0) + 1e-3
        Xs = (Xd - self.feature_mean_) / self.feature_scale_

        oof, oof_evidence = self._oof_raw(Xs, P, Y, H, w)
        n_labels = Y.shape[1]
        self.calib_a_ = np.ones(n_labels)
        self.calib_b_ = np.zeros(n_labels)
        self.thresholds_ = np.full(n_labels, 0.5)
        self.cv_f1_ = np.full(n_labels, np.nan)
        grid = np.asarray(self.threshold_grid, dtype=float)
        for j in range(n_labels):
            y = Y[:, j]
            if y.sum() < self.min_positives or y.sum() == len(y):
                continue
            cal = LogisticRegression(C=100.0, max_iter=500)
            cal.fit(oof[:, j : j + 1], y, sample_weight=w)
            self.calib_a_[j] = float(cal.coef_[0, 0])
            self.calib_b_[j] = float(cal.intercept_[0])
            p = sigmoid(self.calib_a_[j] * oof[:, j] + self.calib_b_[j])
            p = self._combine(p[:, None], oof_evidence[:, j : j + 1])[:, 0]
            beta = self.beta_sdgs if self.label_kinds[j] == "sdg" else self.beta_action_lines
            self.thresholds_[j], self.cv_f1_[j] = fbeta_threshold(p, y, grid, beta, w)
        self.coef_, self.intercept_, self.prior_coef_, self.prior_intercept_ = self._fit_heads(Xs, P, Y, w)
        self.keyword_reliability_: np.ndarray | None = self._reliability(H, Y, w)
        self.classes_ = np.arange(n_labels)
        self.n_features_in_ = int(np.asarray(X).shape[1])
        return self

    def _oof_raw(
        self, Xs: np.ndarray, P: np.ndarray, Y: np.ndarray, H: np.ndarray,
        sample_weight: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold blended scores and keyword evidence from multi-label stratified folds
        (deterministic in `seed`)."""
        from iterstrat.ml_stratifiers import MultilabelStratifiedKFold

        n_splits = max(2, min(int(self.n_folds), len(Y)))
        oof = np.zeros(Y.shape, dtype=np.float64)
        evidence = np.zeros(Y.shape, dtype=np.float64)
        folds = MultilabelStratifiedKFold(n_splits=n_splits, shuffle=True, random_state=int(self.seed))
        for tr, te in folds.split(Xs, Y):
            w_tr = None if sample_weight is None else sample_weight[tr]
            coef, icpt, pc, pi = self._fit_heads(Xs[tr], P[tr], Y[tr], w_tr)
            oof[te] = self._raw(Xs[te], P[te], coef, icpt, pc, pi)
            evidence[te] = self._evidence(H[te], self._reliability(H[tr], Y[tr], w_tr))
        return oof, evidence

    # --- prediction -------------------------------------------------------------------------------

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated scores (n, n_labels) in [0, 1], combined with the keyword evidence when the model has
        keyword reliabilities; rows with an all-zero embedding (empty texts) score 0."""
        check_is_fitted(self, "coef_")
        E, S, H = self._blocks(X)
        K = self._keyword_counts(H)
        Xs = (self._design(E, S, K) - self.feature_mean_) / self.feature_scale_
        raw = self._raw(Xs, self._prior_features(S, K), self.coef_, self.intercept_,
                        self.prior_coef_, self.prior_intercept_)
        proba = sigmoid(raw * self.calib_a_ + self.calib_b_)
        table = getattr(self, "keyword_reliability_", None)  # None: a model saved before it existed
        if table is not None and table.size:
            proba = self._combine(proba, self._evidence(H, table))
        proba[~np.any(E != 0, axis=1)] = 0.0
        return proba

    def predict(self, X: Any) -> np.ndarray:
        """0/1 (n, n_labels): scores at or above each label's threshold (`Tagger.decide` adds its rules)."""
        return (self.predict_proba(X) >= self.thresholds_).astype(np.int8)


class Tagger(BaseEstimator):
    """Multi-label tagger of texts: `fit(texts, Y, embeddings=E)`, `predict_proba`, `decide`, `predict` (0/1).

    Parameters describe the label space (`label_ids`, `label_kinds`, `label_vectors`: unit vectors of the
    label descriptions, `keywords`: keyword -> label indices) and the learning knobs. `embeddings` are the
    unit-normalised sentence vectors of the texts (row-aligned). Learning is `TaggerEstimator` on the matrix of
    `TaggerFeatures` (`features_`, `estimator_`); the decision rules (top SDG, floors, C7) are the tagger's.
    """

    def __init__(
        self,
        label_ids: Sequence[str] = (),
        label_kinds: Sequence[str] = (),
        label_vectors: np.ndarray | None = None,
        keywords: dict[str, list[int]] | None = None,
        C: float = _TAG.C,
        prior_weight: float = _TAG.prior_weight,
        n_folds: int = _TAG.n_folds,
        seed: int = 0,
        threshold_grid: Sequence[float] = THRESHOLD_GRID,
        beta_action_lines: float = _TAG.beta_action_lines,
        beta_sdgs: float = _TAG.beta_sdgs,
        top_sdg: bool = _TAG.top_sdg,
        top_action_line: bool = _TAG.top_action_line,
        min_score_floor: float = _TAG.min_score_floor,
        min_positives: int = 3,
        keyword_weight: float = _TAG.keyword_weight,
        keyword_prior: float = _TAG.keyword_prior,
        keyword_smoothing: float = _TAG.keyword_smoothing,
        second_sdg_ratio: float = _TAG.second_sdg_ratio,
        prototype_vectors: np.ndarray | None = None,
        prototype_owner: Sequence[int] | None = None,
    ) -> None:
        self.label_ids = label_ids
        self.label_kinds = label_kinds
        self.label_vectors = label_vectors
        self.keywords = keywords
        self.C = C
        self.prior_weight = prior_weight
        self.n_folds = n_folds
        self.seed = seed
        self.threshold_grid = threshold_grid
        self.beta_action_lines = beta_action_lines
        self.beta_sdgs = beta_sdgs
        self.top_sdg = top_sdg
        self.top_action_line = top_action_line
        self.min_score_floor = min_score_floor
        self.min_positives = min_positives
        self.keyword_weight = keyword_weight
        self.keyword_prior = keyword_prior
        self.keyword_smoothing = keyword_smoothing
        self.second_sdg_ratio = second_sdg_ratio
        self.prototype_vectors = prototype_vectors
        self.prototype_owner = prototype_owner

    # --- the two parts ----------------------------------------------------------------------------

    @property
    def features_(self) -> TaggerFeatures:
        """The fitted `TaggerFeatures` of this label space (cached; rebuilt when the label space changes)."""
        key = (self.label_vectors, self.keywords, self.prototype_vectors, self.prototype_owner)
        cached = self.__dict__.get("_features_cache")
        if cached is None or any(a is not b for a, b in zip(cached[0], key, strict=True)):
            feats = TaggerFeatures(self.label_vectors, self.keywords, self.prototype_vectors,
                                   self.prototype_owner).fit()
            cached = (key, feats)
            self.__dict__["_features_cache"] = cached
        return cached[1]

    def _estimator(self) -> TaggerEstimator:
        """An unfitted `TaggerEstimator` with this tagger's learning knobs and matrix layout."""
        return TaggerEstimator(
            label_kinds=tuple(self.label_kinds), keyword_labels=self.features_.keyword_labels_, C=self.C,
            prior_weight=self.prior_weight, n_folds=self.n_folds, seed=self.seed,
            threshold_grid=self.threshold_grid, beta_action_lines=self.beta_action_lines,
            beta_sdgs=self.beta_sdgs, min_positives=self.min_positives, keyword_weight=self.keyword_weight,
            keyword_prior=self.keyword_prior, keyword_smoothing=self.keyword_smoothing,
        )

    @property
    def estimator_(self) -> TaggerEstimator:
        """The fitted `TaggerEstimator` behind the scores: a view of this tagger's learned state (built on each
        access, so it follows attributes set after `fit` or loaded from a file)."""
        check_is_fitted(self, "coef_")
        est = self._estimator()
        for name in LEARNED:
            setattr(est, name, getattr(self, name))
        table = getattr(self, "keyword_reliability_", None)
        est.keyword_reliability_ = None
        if table:
            n_labels = len(est.label_kinds)
            est.keyword_reliability_ = np.stack([np.asarray(table.get(kw, np.zeros(n_labels)), dtype=np.float64)
                                                 for kw in self.features_.keywords_])
        est.classes_ = np.arange(len(est.label_kinds))
        return est

    # --- fitting ----------------------------------------------------------------------------------

    def fit(
        self, X: Sequence[str], Y: np.ndarray, embeddings: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Tagger:
        """Fit `TaggerEstimator` on the texts' design matrix and keep its learned state (see its `fit`;
        `sample_weight`: analyst labels on real answers count more than the many written examples)."""
        from threadpoolctl import threadpool_limits

        if embeddings is None:
            raise ValueError("Tagger.fit needs the texts' embeddings (embeddings=...)")
        texts = list(X)
        Y = np.asarray(Y, dtype=np.int64)
        if Y.shape != (len(texts), len(self.label_ids)):
            raise ValueError(f"Y has shape {Y.shape}, expected {(len(texts), len(self.label_ids))}")
        with threadpool_limits(limits=1):
            design = self.features_.transform_texts(texts, embeddings)
            est = self._estimator().fit(design, Y, sample_weight)
        for name in LEARNED:
            setattr(self, name, getattr(est, name))
        table = est.keyword_reliability_
        self.keyword_reliability_ = ({} if table is None else
                                     {kw: table[k] for k, kw in enumerate(self.features_.keywords_)})
        self.n_train_ = len(texts)
        self.positives_ = Y.sum(axis=0)
        self.c7_parent_ = self._c7_convention(Y)
        return self

    def _c7_convention(self, Y: np.ndarray) -> bool:
        """Whether the training labels put C7 beside each C7 sub-area (then predictions do too)."""
        ids = list(self.label_ids)
        if "C7" not in ids:
            return False
        subs = [i for i, lab in enumerate(ids) if lab.startswith("C7.")]
        has_sub = Y[:, subs].sum(axis=1) > 0
        if not has_sub.any():
            return False
        return bool(Y[has_sub, ids.index("C7")].mean() >= 0.8)

    # --- prediction -------------------------------------------------------------------------------

    def predict_proba(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Calibrated scores (n, n_labels) in [0, 1]; rows of zero vectors (empty texts) score 0."""
        if embeddings is None:
            raise ValueError("Tagger.predict_proba needs embeddings=...")
        texts = list(X)
        if not texts:
            return np.zeros((0, len(self.label_ids)))
        E = np.asarray(embeddings)
        if E.ndim != 2 or len(E) != len(texts):  # checked whole: a chunk would not see extra rows
            raise ValueError(f"embeddings have shape {E.shape}, expected ({len(texts)}, d)")
        # in chunks: the design matrix holds a dense keyword block (2,000+ columns), 1 GB with its copy at 50k
        # texts if built at once; each row's scores are the same either way
        proba = np.vstack([self.estimator_.predict_proba(self.features_.transform_texts(
            texts[i:i + PREDICT_CHUNK], E[i:i + PREDICT_CHUNK])) for i in range(0, len(texts), PREDICT_CHUNK)])
        check_scores(proba, str(getattr(self, "source_file_", "") or "tagger model"))
        return proba

    def decide(
        self, proba: np.ndarray, allow_top: np.ndarray | None = None, floor: np.ndarray | None = None
    ) -> np.ndarray:
        """0/1 labels from scores: per-label thresholds; the top SDG (and Action Line) when it reaches the
        floor, plus the runner-up SDG when its score is at least `second_sdg_ratio` x the top score."""
        pred = (proba >= self.thresholds_).astype(np.int8)
        kinds = np.asarray(list(self.label_kinds))
        for kind, enabled in (("sdg", self.top_sdg), ("action_line", self.top_action_line)):
            if not enabled:
                continue
            cols = np.flatnonzero(kinds == kind)
            if cols.size == 0:
                continue
            order = cols[np.argsort(-proba[:, cols], axis=1, kind="stable")]
            rows = np.arange(len(proba))
            top = proba[rows, order[:, 0]]
            ok = top >= (self.min_score_floor if floor is None else np.asarray(floor, dtype=float))
            if allow_top is not None:  # e.g. only substantive texts, not "Yes." or "No comment"
                ok &= np.asarray(allow_top, dtype=bool)
            pred[rows[ok], order[ok, 0]] = 1
            if kind == "sdg" and self.second_sdg_ratio > 0 and len(cols) > 1:
                # a close runner-up SDG is kept too: snippets often serve two goals
                close = ok & (proba[rows, order[:, 1]] >= self.second_sdg_ratio * top)
                pred[rows[close], order[close, 1]] = 1
        if getattr(self, "c7_parent_", False):
            ids = list(self.label_ids)
            subs = [i for i, lab in enumerate(ids) if lab.startswith("C7.")]
            pred[pred[:, subs].sum(axis=1) > 0, ids.index("C7")] = 1
        return pred

    def predict(self, X: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.decide(self.predict_proba(X, embeddings))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_features_cache", None)  # a view of the parameters, rebuilt on use
        state.pop("source_file_", None)  # where it was loaded from, not part of the model
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def aggregate(scores: np.ndarray, groups: np.ndarray, n_groups: int, how: str = "max") -> np.ndarray:
    """Combine segment scores into answer scores: `max`, `noisy_or` (1 - prod(1-p)) or `mean`."""
    out = np.zeros((n_groups, scores.shape[1]), dtype=np.float64)
    if how == "max":
        np.maximum.at(out, groups, scores)
    elif how == "noisy_or":
        logs = np.zeros_like(out)
        np.add.at(logs, groups, np.log(np.clip(1 - scores, 1e-9, 1)))
        out = 1 - np.exp(logs)
    elif how == "mean":
        counts = np.bincount(groups, minlength=n_groups).astype(np.float64)
        np.add.at(out, groups, scores)
        out /= np.maximum(counts, 1)[:, None]
    else:
        raise ValueError(f"unknown segment_aggregate {how!r} (max | noisy_or | mean)")
    return out


# --- persistence ------------------------------------------------------------------------------------

#: The only non-builtin type a tagger file may contain (numpy arrays, dicts, lists are trusted by skops).
TRUSTED_TYPES: tuple[str, ...] = ("pipeline.tagger.model.Tagger",)


def check_scores(proba: np.ndarray, source: str) -> None:
    """Refuse scores outside [0, 1] or not finite: a sign of a corrupt or tampered model."""
    proba = np.asarray(proba, dtype=float)
    if proba.size == 0:
        return
    bad = ~np.isfinite(proba) | (proba < -1e-9) | (proba > 1 + 1e-9)
    if bad.any():
        finite = proba[np.isfinite(proba)]
        lo = float(finite.min()) if finite.size else float("nan")
        hi = float(finite.max()) if finite.size else float("nan")
        raise ModelFileError(
            source, f"the model gives scores outside [0, 1] ({int(bad.sum())} of {proba.size}, range "
            f"{lo:.3g} to {hi:.3g}): the model file is corrupt or has been tampered with; restore it or retrain",
        )


def _unit_interval(name: str, values: Any) -> str | None:
    arr = np.asarray(values, dtype=float)
    if arr.size and not (np.isfinite(arr).all() and arr.min() >= 0.0 and arr.max() <= 1.0):
        return f"{name} outside [0, 1]"
    return None


def check_state(tagger: Tagger) -> str | None:
    """Why the learned state cannot come from `fit` (None if it can): wrong shapes, non-finite weights,
    probabilities, thresholds or weights outside [0, 1]. Catches tampering the hash cannot (loose files)."""
    n = len(list(tagger.label_ids))
    for name in ("coef_", "intercept_", "calib_a_", "calib_b_", "thresholds_", "feature_mean_",
                 "feature_scale_", "prior_coef_"):
        if not hasattr(tagger, name):
            return f"missing learned attribute {name} (not a fitted Tagger)"
        arr = np.asarray(getattr(tagger, name), dtype=float)
        if not np.isfinite(arr).all():
            return f"non-finite values in {name}"
    if len(tagger.label_kinds) != n or np.asarray(tagger.coef_).shape[0] != n:
        return f"{n} labels but coefficients for {np.asarray(tagger.coef_).shape[0]}"
    for name in ("intercept_", "calib_a_", "calib_b_", "thresholds_"):
        if np.asarray(getattr(tagger, name)).shape != (n,):
            return f"{name} has shape {np.asarray(getattr(tagger, name)).shape}, expected ({n},)"
    if np.asarray(tagger.coef_).shape[1] != np.asarray(tagger.feature_mean_).shape[0]:
        return "coefficients and feature scaling differ in size"
    if np.any(np.asarray(tagger.feature_scale_, dtype=float) <= 0):
        return "feature_scale_ is not positive"
    checks = [("thresholds_", tagger.thresholds_), ("keyword_weight", tagger.keyword_weight),
              ("prior_weight", tagger.prior_weight), ("min_score_floor", tagger.min_score_floor),
              ("second_sdg_ratio", tagger.second_sdg_ratio)]
    table = getattr(tagger, "keyword_reliability_", None) or {}
    if table:
        checks.append(("keyword_reliability_", np.concatenate([np.ravel(v) for v in table.values()])))
    for name, values in checks:
        problem = _unit_interval(name, values)
        if problem:
            return problem
    return None


def save_tagger(tagger: Tagger, path: Any) -> None:
    """Write the tagger with skops (never pickle)."""
    import zipfile

    from pipeline.imports import skops_io

    sio = skops_io()

    from pipeline.io import atomic_path

    with atomic_path(path) as tmp:
        sio.dump(tagger, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    Path(path).chmod(0o644)


def load_tagger(path: Any) -> Tagger:
    """Load a skops tagger file (see `load_verified_skops`); the learned state must be one `fit` can produce."""
    obj: Tagger = load_verified_skops(path, TRUSTED_TYPES, Tagger, require_hash=False)
    problem = check_state(obj)
    if problem:
        raise ModelFileError(Path(path), f"{problem}: the model file is corrupt or has been tampered with")
    obj.source_file_ = str(path)
    return obj
