"""Real-answer head: a second stage, learned from analyst-labelled consultation answers, that re-scores the
written-example tagger's output for real answers.

Why: the `Tagger` learns from short written examples; on real answers its scores are shifted and its errors
are label-specific (C11, C5 and the C7 sub-areas missed; SDG 9 and 16 on everything). A few hundred labelled
real answers correct that far better than global margins (2-fold CV on the 200-answer dev set,
benchmarks/results/tags_real_answers.json `real_answer_head`). Per (answer, label) the head combines, in one
logistic regression shared by all labels (so 100 answers suffice; per-label intercepts, per-kind slopes):

- the base model's margin: log-odds of the whole/best-passage blend above the label's threshold;
- prototype evidence: cosine to the centroid of the label's labelled answers minus cosine to the centroid of
  the others (a centroid only from >= `min_positives` answers, >= 2 so that no single answer's vector is
  stored);
- vector evidence: a per-label logistic regression on the answer's sentence embedding (out-of-fold on the
  training answers, so the combiner learns how much to trust it).

Labels may be soft (the mean of several annotators). What is stored are centroids, coefficients and
thresholds; never texts or per-answer vectors. Saved as a plain .npz (no pickle) next to `tagger.skops`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import KFold

FILE_NAME = "real_head.npz"
MARGIN_CLIP = 10.0
PROTO_SCALE = 10.0  # cosine differences are ~0.1: brought to the margins' scale for the shared regression
VECTOR_MIN_POSITIVES = 1.0  # a label's vector model needs one labelled answer (its weights are no answer's vector)
PREDICT_CHUNK = 2048  # answers scored at once (memory: see `predict_proba`)
N_BASE = 4  # margin, prototype evidence, prototype present, vector evidence


class RealAnswerHead(BaseEstimator):
    """Re-scores base margins of real answers (`fit(margins, vectors, Y)`, `predict_proba(margins, vectors)`).

    `thresholds_` (one per label, the same within a kind) are set by the caller that knows the decision rules
    (`stage.fit_head_thresholds`)."""

    def __init__(self, C: float = 0.3, vector_C: float = 4.0, min_positives: float = 2.0, folds: int = 5,
                 seed: int = 0) -> None:
        self.C = C
        self.vector_C = vector_C
        self.min_positives = min_positives
        self.folds = folds
        self.seed = seed

    # --- evidence ---------------------------------------------------------------------------------
    def _centroids(self, V: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        npos, nneg = Y.sum(0), (1 - Y).sum(0)
        pos = (Y.T @ V) / np.maximum(npos, 1e-9)[:, None]
        neg = ((1 - Y).T @ V) / np.maximum(nneg, 1e-9)[:, None]
        need = max(float(self.min_positives), 2.0)
        ok = (npos >= need) & (nneg >= need)
        return np.where(ok[:, None], pos, 0.0), np.where(ok[:, None], neg, 0.0), ok

    def _loo_prototypes(self, V: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Prototype evidence of the training answers with each answer left out of its own centroids."""
        npos, nneg = Y.sum(0), (1 - Y).sum(0)
        sp = (V @ (Y.T @ V).T - Y) / np.maximum(npos[None, :] - Y, 1e-9)
        sn = (V @ ((1 - Y).T @ V).T - (1 - Y)) / np.maximum(nneg[None, :] - (1 - Y), 1e-9)
        need = max(float(self.min_positives), 2.0)
        ok = ((npos[None, :] - Y) >= need) & ((nneg[None, :] - (1 - Y)) >= need)
        return np.where(ok, (sp - sn) * PROTO_SCALE, 0.0), ok.astype(np.float64)

    def _fit_vector_models(self, V: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per label, a logistic regression on the vectors with soft targets (each answer once as positive,
        once as negative, weighted by its label share)."""
        n_labels = Y.shape[1]
        coef = np.zeros((n_labels, V.shape[1]))
        icpt = np.zeros(n_labels)
        fitted = np.zeros(n_labels, dtype=bool)
        X = np.vstack([V, V])
        t = np.concatenate([np.ones(len(V)), np.zeros(len(V))])
        for j in range(n_labels):
            y = Y[:, j]
            if y.sum() < VECTOR_MIN_POSITIVES or (1 - y).sum() < VECTOR_MIN_POSITIVES:
                continue
            m = LogisticRegression(C=self.vector_C, max_iter=1000).fit(X, t, sample_weight=np.concatenate([y, 1 - y]))
            coef[j], icpt[j], fitted[j] = m.coef_[0], m.intercept_[0], True
        return coef, icpt, fitted

    @staticmethod
    def _vector_evidence(V: np.ndarray, coef: np.ndarray, icpt: np.ndarray, fitted: np.ndarray) -> np.ndarray:
        return np.where(fitted[None, :], V @ coef.T + icpt[None, :], 0.0)

    def _design(self, M: np.ndarray, P: np.ndarray, H: np.ndarray, E: np.ndarray) -> np.ndarray:
        n, n_labels = M.shape
        base = np.stack([np.clip(M, -MARGIN_CLIP, MARGIN_CLIP).ravel(), P.ravel(), H.ravel(),
                         np.clip(E, -MARGIN_CLIP, MARGIN_CLIP).ravel()], axis=1)
        sdg = np.tile(self.is_sdg_, n).astype(np.float64)[:, None]
        onehot = np.zeros((n * n_labels, n_labels))
        onehot[np.arange(n * n_labels), np.tile(np.arange(n_labels), n)] = 1.0
        return np.hstack([base, base * sdg, sdg, onehot])

    # --- estimator ----------------------------------------------------------------------------------
    def fit(self, margins: np.ndarray, vectors: np.ndarray, Y: np.ndarray, label_kinds: list[str]) -> RealAnswerHead:
        M = np.asarray(margins, dtype=np.float64)
        V = _unit(vectors)
        Y = np.clip(np.asarray(Y, dtype=np.float64), 0.0, 1.0)
        self.is_sdg_ = np.asarray([k == "sdg" for k in label_kinds], dtype=bool)
        self.pos_centroid_, self.neg_centroid_, self.has_centroid_ = self._centroids(V, Y)
        P, H = self._loo_prototypes(V, Y)
        E = np.zeros_like(M)
        folds = min(int(self.folds), len(V))
        for a, b in KFold(folds, shuffle=True, random_state=int(self.seed)).split(V):
            E[b] = self._vector_evidence(V[b], *self._fit_vector_models(V[a], Y[a]))
        self.vector_coef_, self.vector_intercept_, self.vector_fitted_ = self._fit_vector_models(V, Y)
        X = self._design(M, P, H, E)
        n = len(M)
        lr = LogisticRegression(C=float(self.C), max_iter=3000).fit(
            np.vstack([X, X]), np.concatenate([np.ones(X.shape[0]), np.zeros(X.shape[0])]),
            sample_weight=np.concatenate([Y.ravel(), 1 - Y.ravel()]))
        self.stack_coef_, self.stack_intercept_ = lr.coef_[0], float(lr.intercept_[0])
        self.train_proba_ = self._combine(X, n)  # in-sample (on out-of-fold evidence), for threshold choice
        self.thresholds_ = np.full(M.shape[1], 0.5)
        self.n_answers_ = n
        return self

    def _combine(self, X: np.ndarray, n: int) -> np.ndarray:
        z = X @ self.stack_coef_ + self.stack_intercept_
        return (1.0 / (1.0 + np.exp(-z))).reshape(n, -1)

    def predict_proba(self, margins: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Scores of `PREDICT_CHUNK` answers at a time: the design matrix has a row per (answer, label) and a
        column per label, 1.5M x 37 floats at 50k answers (0.9 GB with its copy) if built at once; each row's
        score is the same either way."""
        M = np.asarray(margins, dtype=np.float64)
        if not len(M):
            return np.zeros_like(M)
        V = np.asarray(vectors)
        if V.ndim != 2 or len(V) != len(M):
            raise ValueError(f"vectors have shape {V.shape}, expected ({len(M)}, d) for {len(M)} answers")
        return np.vstack([self._predict_chunk(M[i:i + PREDICT_CHUNK], V[i:i + PREDICT_CHUNK])
                          for i in range(0, len(M), PREDICT_CHUNK)])

    def _predict_chunk(self, M: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        V = _unit(vectors)
        sp, sn = V @ self.pos_centroid_.T, V @ self.neg_centroid_.T
        ok = np.broadcast_to(self.has_centroid_[None, :], M.shape)
        P = np.where(ok, (sp - sn) * PROTO_SCALE, 0.0)
        E = self._vector_evidence(V, self.vector_coef_, self.vector_intercept_, self.vector_fitted_)
        return self._combine(self._design(M, P, ok.astype(np.float64), E), len(M))


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12) if v.size else v


_ARRAYS = ("is_sdg_", "pos_centroid_", "neg_centroid_", "has_centroid_", "vector_coef_", "vector_intercept_",
           "vector_fitted_", "stack_coef_", "thresholds_")


def save_head(head: RealAnswerHead, path: Path) -> Path:
    """Arrays and a JSON header in a plain .npz (loaded with allow_pickle=False)."""
    meta = {**head.get_params(), "stack_intercept_": head.stack_intercept_, "n_answers_": head.n_answers_,
            "info_": getattr(head, "info_", {})}
    arrays: dict[str, Any] = {k: np.asarray(getattr(head, k)) for k in _ARRAYS}
    arrays["meta"] = np.array(json.dumps(meta, default=str))
    path = Path(path)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path


def load_head(path: Path, n_labels: int | None = None) -> RealAnswerHead:
    """The head saved by `save_head`; a file of another shape is refused (`ValueError`)."""
    with np.load(Path(path), allow_pickle=False) as z:
        meta: dict[str, Any] = json.loads(str(z["meta"]))
        head = RealAnswerHead(**{k: meta[k] for k in RealAnswerHead().get_params()})
        for k in _ARRAYS:
            setattr(head, k, np.array(z[k]))
    head.stack_intercept_ = float(meta["stack_intercept_"])
    head.n_answers_ = int(meta["n_answers_"])
    head.info_ = meta.get("info_", {})
    L = len(head.thresholds_)
    if n_labels is not None and n_labels != L or head.stack_coef_.shape != (2 * N_BASE + 1 + L,):
        raise ValueError(f"real-answer head of {L} labels does not fit a tagger of {n_labels}")
    return head
