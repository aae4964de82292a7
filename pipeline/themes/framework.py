"""Framework mode: map answers to an analyst's coding frame (zero or more themes each, with scores).

Plain cosine to theme descriptions is weak (descriptions are short and unlike answers), so the mapper
(1) scores segments as well as whole answers, (2) adds keyword evidence, (3) expands each theme
vector with its most similar answers (pseudo-relevance feedback), (4) self-trains a per-theme logistic
regression on confidently matched answers over embeddings + TF-IDF, and (5) assigns themes with
thresholds relative to the answer's best theme and calibrated per theme.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from pipeline.errors import InputError
from pipeline.io import read_table
from pipeline.themes.seeds import SeedThemes, from_records, keyword_hits

log = logging.getLogger(__name__)


def load_framework(path: Path | str) -> SeedThemes:
    """Read an analyst framework: YAML list (or {themes: [...]}) or CSV/XLSX with id,label,description."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "framework file not found")
    if path.suffix.lower() in {".yaml", ".yml"}:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or []
        records = data.get("themes", []) if isinstance(data, dict) else data
    else:
        df = read_table(path)
        df.columns = [str(c).strip().lower() for c in df.columns]
        if "id" not in df.columns:
            raise InputError(str(path), "header", "a framework needs columns id, label, description")
        records = df.to_dict("records")
    if not isinstance(records, list) or not records:
        raise InputError(str(path), None, "no themes found")
    return from_records(records, str(path))


@dataclass
class FrameworkData:
    """What the mapper looks at for a set of answers (vectors are unit-norm, zero for empty texts)."""

    texts: list[str]
    answer_vectors: np.ndarray
    segment_vectors: np.ndarray
    segment_answer: np.ndarray  # row index into texts for every segment

    def __len__(self) -> int:
        return len(self.texts)


def _unit(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=-1, keepdims=True)
    n[n == 0] = 1.0
    return (m / n).astype(np.float32)


class FrameworkMapper(BaseEstimator):
    """Multi-label mapping of answers to framework themes (transductive self-training; sklearn-style).

    `fit(X, themes)` learns expanded theme vectors, per-theme classifiers and thresholds from the
    answers themselves (no labels needed); `decision_function` gives scores in [0, 1];
    `predict` gives a boolean matrix (answers x themes).
    """

    def __init__(
        self,
        segment_weight: float = 0.5,
        keyword_bonus: float = 0.1,
        prf_top: int = 10,
        prf_weight: float = 1.0,
        n_iter: int = 2,
        pos_frac: float = 0.5,
        neg_frac: float = 0.5,
        blend: float = 0.5,
        relative: float = 0.85,
        min_prob: float = 0.5,
        min_cosine: float = 0.15,
        max_labels: int = 4,
        C: float = 1.0,
        seed: int = 0,
    ) -> None:
        self.segment_weight = segment_weight
        self.keyword_bonus = keyword_bonus
        self.prf_top = prf_top
        self.prf_weight = prf_weight
        self.n_iter = n_iter
        self.pos_frac = pos_frac
        self.neg_frac = neg_frac
        self.blend = blend
        self.relative = relative
        self.min_prob = min_prob
        self.min_cosine = min_cosine
        self.max_labels = max_labels
        self.C = C
        self.seed = seed

    # -- similarity ---------------------------------------------------------------------------
    def _similarity(self, X: FrameworkData, theme_vecs: np.ndarray) -> np.ndarray:
        s_ans = X.answer_vectors @ theme_vecs.T
        s_seg = np.full_like(s_ans, -1.0)
        if len(X.segment_vectors):
            ss = X.segment_vectors @ theme_vecs.T
            np.maximum.at(s_seg, X.segment_answer, ss)
        s_seg = np.where(s_seg > -1.0, s_seg, s_ans)
        w = self.segment_weight
        return ((1 - w) * s_ans + w * s_seg).astype(np.float32)

    def _cosine_scores(self, X: FrameworkData) -> np.ndarray:
        sim = self._similarity(X, self.theme_vectors_)
        hits = keyword_hits(X.texts, self.themes_) if self.keyword_bonus else 0.0
        return sim + self.keyword_bonus * np.asarray(hits, dtype=np.float32)

    def _features(self, X: FrameworkData) -> sparse.csr_matrix:
        tf = self.tfidf_.transform([t or "" for t in X.texts])
        return sparse.hstack([sparse.csr_matrix(X.answer_vectors), tf]).tocsr()

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, X: FrameworkData, themes: SeedThemes) -> FrameworkMapper:
        if themes.vectors is None:
            raise ValueError("framework themes must be encoded (SeedThemes.encoded) before fitting")
        self.themes_ = themes
        t = len(themes)
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        self.theme_vectors_ = _unit(np.asarray(themes.vectors, dtype=np.float32))
        s = self._cosine_scores(X)
        # pseudo-relevance feedback: move each theme towards the answers that match it best
        if self.prf_top and valid.sum() > t:
            best = np.where(valid[:, None], s, -np.inf).argmax(axis=1)
            new = self.theme_vectors_.copy()
            for j in range(t):
                mine = np.flatnonzero((best == j) & valid)
                if not len(mine):
                    continue
                top = mine[np.argsort(-s[mine, j], kind="stable")[: self.prf_top]]
                new[j] = self.theme_vectors_[j] + self.prf_weight * _unit(
                    X.answer_vectors[top].mean(axis=0, keepdims=True))[0]
            self.theme_vectors_ = _unit(new)
            s = self._cosine_scores(X)
        self.tfidf_ = TfidfVectorizer(
            sublinear_tf=True, min_df=2, max_df=0.5, ngram_range=(1, 2), stop_words="english",
            max_features=20000,
        )
        texts = [t_ or "" for t_ in X.texts]
        try:
            self.tfidf_.fit(texts)
        except ValueError:  # empty vocabulary (tiny input)
            self.tfidf_ = TfidfVectorizer(min_df=1).fit(texts + ["placeholder"])
        feats = self._features(X)
        self.classifiers_: list[LogisticRegression | None] = [None] * t
        score = self._rank(s, valid)
        for it in range(self.n_iter):
            best = np.where(valid[:, None], score, -np.inf).argmax(axis=1)
            for j in range(t):
                col = score[:, j]
                mine = np.flatnonzero((best == j) & valid)
                if len(mine) < 3:
                    self.classifiers_[j] = None
                    continue
                pos = mine[np.argsort(-col[mine], kind="stable")[: max(3, int(len(mine) * self.pos_frac))]]
                cand = np.flatnonzero(valid & (best != j))
                neg = cand[np.argsort(col[cand], kind="stable")[: max(3, int(len(cand) * self.neg_frac))]]
                if not len(neg):
                    self.classifiers_[j] = None
                    continue
                idx = np.concatenate([pos, neg])
                y = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
                clf = LogisticRegression(C=self.C, class_weight="balanced", max_iter=500,
                                         random_state=self.seed)
                self.classifiers_[j] = clf.fit(feats[idx], y)
            score = self._combine(s, feats, valid)
            log.debug("self-training iteration %d done", it + 1)
        self.n_features_in_ = feats.shape[1]
        return self

    @staticmethod
    def _rank(s: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Column-wise percentile ranks of the cosine scores among valid answers, in [0, 1]."""
        out = np.zeros_like(s, dtype=np.float32)
        v = np.flatnonzero(valid)
        if not len(v):
            return out
        for j in range(s.shape[1]):
            order = np.argsort(s[v, j], kind="stable")
            r = np.empty(len(v), dtype=np.float32)
            r[order] = (np.arange(len(v)) + 1) / len(v)
            out[v, j] = r
        return out

    def _combine(self, s: np.ndarray, feats: sparse.csr_matrix, valid: np.ndarray) -> np.ndarray:
        probs = np.zeros_like(s, dtype=np.float32)
        for j, clf in enumerate(self.classifiers_):
            probs[:, j] = clf.predict_proba(feats)[:, 1] if clf is not None else self._rank(s, valid)[:, j]
        cos01 = np.clip((s + 1) / 2, 0, 1)
        return np.where(valid[:, None], self.blend * probs + (1 - self.blend) * cos01, 0.0).astype(
            np.float32)

    # -- inference -------------------------------------------------------------------------------
    def decision_function(self, X: FrameworkData) -> np.ndarray:
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        return self._combine(self._cosine_scores(X), self._features(X), valid)

    def predict(self, X: FrameworkData) -> np.ndarray:
        score = self.decision_function(X)
        cos = self._cosine_scores(X)
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        out = np.zeros_like(score, dtype=bool)
        for i in np.flatnonzero(valid):
            row = score[i]
            b = int(np.argmax(row))
            order = np.argsort(-row, kind="stable")[: self.max_labels]
            for j in order:
                if row[j] >= self.relative * row[b] and (row[j] >= self.min_prob_score_ or j == b):
                    out[i, j] = True
            if cos[i, b] < self.min_cosine:
                out[i] = False
        return out

    @property
    def min_prob_score_(self) -> float:
        return self.blend * self.min_prob + (1 - self.blend) * 0.5
