"""Framework mode: map answers to an analyst's coding frame (zero or more themes each, with scores).

Plain cosine to theme descriptions is weak (0.478 samples-F1 on our Global Dialogues dev frames):
descriptions are short and unlike answers, and some descriptions are "hubs" close to everything.
The mapper therefore (1) scores segments as well as whole answers, (2) standardises every theme's
scores over the batch (removes hub bias, makes thresholds comparable), (3) adds lexical TF-IDF
similarity to the label/description/keywords and explicit keyword hits, (4) smooths each answer's
scores with those of its nearest neighbouring answers (similar answers share themes), and (5) assigns
the best theme plus any theme within `delta` of it that clears `tau` (both in standard units); in
answers of several segments, a segment standing out for a theme (`segment_tau`) adds that theme.
Then (6) one transductive step moves each theme vector towards the centroid of the answers it
confidently wins (best theme, >= `tau`, ahead of the runner-up by `refit_margin`), keeping the
description vector as a prior (`refit_weight`), and the statistics are recomputed.
Measured (benchmarks/bench_framework.py -> benchmarks/results/framework_*.json) on two dev checks:
hand-coded BC AI survey frames (2 questions, 140 coded answers) 0.735 -> 0.755 samples-F1 (plain cosine
0.683) and 8 Global Dialogues vendor-tag frames 0.559 -> 0.565 (plain cosine 0.474); both the refit
and the lighter neighbour smoothing (`knn_weight` 1.0 -> 0.5) were needed for the gain on both.
Tried and not kept (no gain on both checks): pseudo-relevance feedback and logistic self-training
(`prf_top` kept as an option, off), per-theme Otsu thresholds, multi-prototype themes (label,
description sentences and keywords embedded separately, max over them), centroids minus the batch
mean, and multi-label (non-winner) refit sets.

On real analyst coding (benchmarks/framework_devsuite.py, AU SRAI Q20 / Q11, two coders) two more
pieces: catch-all themes of the frame ("None of the above", "No substantive answer") are given by rule
instead of competing with the topics (0.389 / 0.548 -> 0.408 / 0.640), and `prevalence_weight` gives
back part of each theme's batch-mean similarity, because per-theme standardisation makes every theme
equally common while real coding has a few very common ones. Stance themes of one frame ("mandate through
regulation" vs "voluntary preferred" vs "self-regulation will fail") are one topic to the embedding (Q20
theme A: AUC 0.43 from the embedding score, 0.73 from the stance model's agreement with its label), so
`stance_weight` adds the standardised agreement (pipeline.stance, support - oppose, toward each answer's
`stance_top` closest themes): today's mapping 0.461 / 0.631 -> 0.489 / 0.638 on Q20 / Q11, weight chosen
on the other question (benchmarks/results/framework_devsuite.json, `methods`; gain CIs include 0), but
0.760 -> 0.736 on the BC check and 0.570 -> 0.550 on GD (framework_stance_off/on.json), so it is off by
default (an option for frames whose themes are positions on one question). Coded examples
(`CodedFrameworkMapper`) learn on top of the zero-shot scores; `select_for_review` picks what an analyst
should code next.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator
from sklearn.feature_extraction.text import TfidfVectorizer

from pipeline.embed.vectors import normalise
from pipeline.errors import InputError
from pipeline.io import load_yaml, read_table
from pipeline.numeric import sigmoid
from pipeline.params import ExamplesParams, FrameworkParams
from pipeline.themes.naming import ngram_terms
from pipeline.themes.seeds import SeedThemes, from_records, keyword_hits

log = logging.getLogger(__name__)

# constructor defaults come from the parameter models (defined once, in pipeline/params.py)
_FW = FrameworkParams()
_EX = ExamplesParams()
_FW_CALIBRATION = tuple(_FW.zero_shot_calibration) if _FW.zero_shot_calibration is not None else None


def load_framework(path: Path | str) -> SeedThemes:
    """Read an analyst framework: YAML list (or {themes: [...]}) or CSV/XLSX with id,label,description."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "framework file not found")
    if path.suffix.lower() in {".yaml", ".yml"}:
        with open(path, encoding="utf-8") as fh:
            data = load_yaml(fh) or []
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
    """What the mapper looks at for a set of answers (vectors are unit-norm, zero for empty texts).

    `groups` (e.g. question ids) limits neighbour smoothing to answers of the same group. `agreement`
    (answers x themes, from theme_agreement) is how far each answer agrees with each theme's position
    (NaN where it was not read); the mapper uses it when `stance_weight` > 0.
    """

    texts: list[str]
    answer_vectors: np.ndarray
    segment_vectors: np.ndarray
    segment_answer: np.ndarray  # row index into texts for every segment
    groups: np.ndarray | None = None
    agreement: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)


def theme_agreement(
    X: FrameworkData, themes: SeedThemes, top: int = _FW.stance_top, model: Any = None
) -> np.ndarray:
    """Agreement (p_support - p_oppose, from the project's stance model) of every answer with the position
    each theme's label states, read toward the answer's `top` closest topic themes only (NaN elsewhere).

    Why: stance themes of one frame ("mandate through regulation" vs "voluntary preferred" vs
    "self-regulation will fail") are one topic to a sentence embedding; which position an answer takes
    separates them. Only the closest themes are read because stance costs one model call per pair."""
    from pipeline.stance import stance_of

    n, t = len(X), len(themes)
    out = np.full((n, t), np.nan)
    topics = np.flatnonzero([not r for r in theme_roles(themes)])
    valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
    if not len(topics) or not valid.any() or themes.vectors is None:
        return out
    sim = X.answer_vectors @ normalise(np.asarray(themes.vectors, dtype=np.float32))[topics].T
    k = min(top, len(topics))
    near = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.flatnonzero(valid), k)
    cols = topics[near[valid].ravel()]
    vecs = np.asarray(X.answer_vectors, dtype=np.float32)
    given = vecs[rows] if vecs.shape[1] == 384 else None  # the stance model's space; else it embeds itself
    df = stance_of([X.texts[i] for i in rows], [themes.labels[j] for j in cols], answer_vectors=given, model=model)
    out[rows, cols] = df["p_support"].to_numpy() - df["p_oppose"].to_numpy()
    return out


def with_agreement(X: FrameworkData, themes: SeedThemes, options: dict[str, Any]) -> FrameworkData:
    """X with the stance model's agreement attached when the framework options' `stance_weight` > 0."""
    if not float(options.get("stance_weight", 0.0) or 0.0) or X.agreement is not None:
        return X
    return dataclasses.replace(X, agreement=theme_agreement(X, themes, int(options.get("stance_top", _FW.stance_top))))


def _theme_text(themes: SeedThemes, j: int) -> str:
    return " ".join([themes.labels[j], themes.descriptions[j], *themes.keywords[j]])


class FrameworkMapper(BaseEstimator):
    """Multi-label mapping of answers to framework themes (sklearn-style, no labels needed).

    `fit(X, themes)` learns the theme vectors, the lexical model and per-theme score statistics
    from a batch of answers; `decision_function(X)` gives scores in (0, 1) (0.5 = assignment
    threshold `tau`); `predict(X)` gives a boolean matrix (answers x themes); `predict_proba(X)` the
    confidence that each theme applies (`zero_shot_calibration`, see zero_shot_confidence).
    `high_confidence` (review loop) and `examples` (CodedFrameworkMapper options) are not used by the
    zero-shot mapping itself: they sit here so that one parameter section configures framework mode.
    """

    tfidf_: TfidfVectorizer
    n_themes_: int | None
    _lex_cache: tuple[FrameworkData, sparse.csr_matrix] | None = None
    _score_cache: tuple[FrameworkData, np.ndarray, np.ndarray] | None = None

    def __init__(
        self,
        segment_weight: float = _FW.segment_weight,
        lexical_weight: float = _FW.lexical_weight,
        keyword_bonus: float = _FW.keyword_bonus,
        knn: int = _FW.knn,
        knn_weight: float = _FW.knn_weight,
        knn_max_reference: int = _FW.knn_max_reference,
        prf_top: int = _FW.prf_top,
        prf_weight: float = _FW.prf_weight,
        delta: float = _FW.delta,
        tau: float = _FW.tau,
        segment_tau: float = _FW.segment_tau,
        min_cosine: float = _FW.min_cosine,
        max_labels: int = _FW.max_labels,
        refit_iter: int = _FW.refit_iter,
        refit_weight: float = _FW.refit_weight,
        refit_margin: float = _FW.refit_margin,
        prevalence_weight: float = _FW.prevalence_weight,
        stance_weight: float = _FW.stance_weight,
        stance_top: int = _FW.stance_top,
        zero_shot_calibration: Sequence[float] | None = _FW_CALIBRATION,
        high_confidence: float = _FW.high_confidence,
        examples: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        self.segment_weight = segment_weight
        self.lexical_weight = lexical_weight
        self.keyword_bonus = keyword_bonus
        self.knn = knn
        self.knn_weight = knn_weight
        self.knn_max_reference = knn_max_reference
        self.prf_top = prf_top
        self.prf_weight = prf_weight
        self.delta = delta
        self.tau = tau
        self.segment_tau = segment_tau
        self.min_cosine = min_cosine
        self.max_labels = max_labels
        self.refit_iter = refit_iter
        self.refit_weight = refit_weight
        self.refit_margin = refit_margin
        self.prevalence_weight = prevalence_weight
        self.stance_weight = stance_weight
        self.stance_top = stance_top
        self.zero_shot_calibration = zero_shot_calibration
        self.high_confidence = high_confidence
        self.examples = examples
        self.seed = seed

    # -- raw evidence -----------------------------------------------------------------------------
    def _embedding_sim(self, X: FrameworkData, theme_vecs: np.ndarray) -> np.ndarray:
        s_ans = X.answer_vectors @ theme_vecs.T
        s_seg = np.full_like(s_ans, -1.0)
        if len(X.segment_vectors):
            np.maximum.at(s_seg, X.segment_answer, X.segment_vectors @ theme_vecs.T)
        s_seg = np.where(s_seg > -1.0, s_seg, s_ans)
        w = self.segment_weight
        return ((1 - w) * s_ans + w * s_seg).astype(np.float32)

    def lex_matrix(self, X: FrameworkData) -> sparse.csr_matrix:
        """TF-IDF rows of X's texts (cached for the last X object: fitting and predicting reuse them)."""
        cache = self._lex_cache
        if cache is None or cache[0] is not X:
            cache = (X, self.tfidf_.transform(X.texts).tocsr())
            self._lex_cache = cache
        return cache[1]

    def _lexical_sim(self, X: FrameworkData) -> np.ndarray:
        return np.asarray((self.lex_matrix(X) @ self.theme_lex_.T).toarray(), dtype=np.float32)

    @staticmethod
    def _stats(m: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        v = m[valid] if valid.any() else m
        if not len(v):
            return np.zeros(m.shape[1], np.float32), np.ones(m.shape[1], np.float32)
        return v.mean(axis=0), np.maximum(v.std(axis=0), 1e-3)

    def _standardised(self, X: FrameworkData) -> np.ndarray:
        emb = self._embedding_sim(X, self.theme_vectors_)
        z = (emb - self.emb_mean_) / self.emb_std_
        if self.prevalence_weight:
            # standardising per theme makes every theme equally common; give back part of how close the
            # batch is to each theme on average (common themes are under-assigned otherwise)
            topics = np.array([not r for r in getattr(self, "roles_", [""] * z.shape[1])], dtype=bool)
            if topics.any():
                mu = self.emb_mean_
                z = z + self.prevalence_weight * (mu - mu[topics].mean()) / float(self.emb_std_[topics].mean())
        if self.lexical_weight:
            lex = self._lexical_sim(X)
            z = z + self.lexical_weight * (lex - self.lex_mean_) / self.lex_std_
        if self.keyword_bonus:
            z = z + self.keyword_bonus * keyword_hits(X.texts, self.themes_).astype(np.float32)
        if self.stance_weight and X.agreement is not None:
            z = z + self.stance_weight * self._agreement_z(X.agreement)
        return z.astype(np.float32)

    @staticmethod
    def _agreement_z(agreement: np.ndarray) -> np.ndarray:
        """Agreement standardised per theme over the pairs that were read (0 for the others)."""
        a = np.asarray(agreement, dtype=np.float64)
        read = ~np.isnan(a)
        cnt = np.maximum(read.sum(axis=0), 1)
        mu = np.where(read, a, 0.0).sum(axis=0) / cnt
        sd = np.sqrt(np.where(read, (a - mu) ** 2, 0.0).sum(axis=0) / cnt)
        return np.where(read, (a - mu) / np.maximum(sd, 1e-3), 0.0)

    def _smooth(self, X: FrameworkData, z: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Add the mean standardised scores of each answer's k nearest answers (same group)."""
        if not self.knn or self.knn_weight == 0:
            return z
        out = z.copy()
        groups = X.groups if X.groups is not None else np.zeros(len(X), dtype=int)
        rng = np.random.default_rng(self.seed)
        for g in sorted(set(groups[valid].tolist())):
            idx = np.flatnonzero(valid & (groups == g))
            ref = idx
            if len(ref) > self.knn_max_reference:
                ref = np.sort(rng.choice(idx, size=self.knn_max_reference, replace=False))
            k = min(self.knn, len(ref) - 1)
            if k < 1:
                continue
            ref_vec = X.answer_vectors[ref]
            for start in range(0, len(idx), 2048):
                rows = idx[start : start + 2048]
                sim = X.answer_vectors[rows] @ ref_vec.T
                sim[ref[None, :] == rows[:, None]] = -np.inf  # not itself
                nn = np.argpartition(-sim, k - 1, axis=1)[:, :k]
                out[rows] += self.knn_weight * z[ref[nn]].mean(axis=1)
        return out

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, X: FrameworkData, themes: SeedThemes) -> FrameworkMapper:
        """Learn theme vectors (description, then `refit_iter` transductive steps) and batch statistics."""
        if themes.vectors is None:
            raise ValueError("framework themes must be encoded (SeedThemes.encoded) before fitting")
        self.themes_ = themes
        self.roles_ = theme_roles(themes)
        self._lex_cache = None
        self._score_cache = None
        self.n_themes_ = None
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        self.theme_vectors_ = normalise(np.asarray(themes.vectors, dtype=np.float32))
        if self.prf_top and valid.sum() > len(themes):
            emb = self._embedding_sim(X, self.theme_vectors_)
            zs = (emb - emb[valid].mean(axis=0)) / np.maximum(emb[valid].std(axis=0), 1e-3)
            zs[~valid] = -np.inf
            top = np.argsort(-zs, axis=0, kind="stable")[: self.prf_top]
            fb = normalise(np.stack([X.answer_vectors[top[:, j]].mean(axis=0) for j in range(len(themes))]))
            self.theme_vectors_ = normalise(self.theme_vectors_ + self.prf_weight * fb)
        theme_texts = [_theme_text(themes, j) for j in range(len(themes))]
        self.tfidf_ = TfidfVectorizer(analyzer=ngram_terms, sublinear_tf=True)
        self.tfidf_.fit([t or "" for t in X.texts] + theme_texts)
        self.theme_lex_ = self.tfidf_.transform(theme_texts)
        self.lex_mean_, self.lex_std_ = self._stats(self._lexical_sim(X), valid)
        self.emb_mean_, self.emb_std_ = self._stats(self._embedding_sim(X, self.theme_vectors_), valid)
        prior = self.theme_vectors_
        for _ in range(self.refit_iter):
            self.theme_vectors_ = self._refit(X, prior, valid)
            self.emb_mean_, self.emb_std_ = self._stats(self._embedding_sim(X, self.theme_vectors_), valid)
        seg_sim = X.segment_vectors @ self.theme_vectors_.T if len(X.segment_vectors) else None
        if seg_sim is not None:
            self.seg_mean_, self.seg_std_ = self._stats(seg_sim, np.ones(len(seg_sim), dtype=bool))
        else:
            self.seg_mean_, self.seg_std_ = self.emb_mean_, self.emb_std_
        self.n_themes_ = len(themes)
        return self

    def _refit(self, X: FrameworkData, prior: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Transductive step: move each theme towards the centroid of the answers it confidently wins.

        Confident = best theme clears `tau` and beats the runner-up by `refit_margin`; the description
        vector stays as a prior (weight 1 vs `refit_weight`) so a theme cannot drift off its meaning.
        """
        z = self._mask_special(self._smooth(X, self._standardised(X), valid))
        if z.shape[1] < 2:
            return prior
        top2 = np.sort(z, axis=1)[:, -2:]
        best = z.argmax(axis=1)
        sure = valid & (top2[:, 1] >= self.tau) & (top2[:, 1] - top2[:, 0] >= self.refit_margin)
        out = prior.copy()
        for j in range(z.shape[1]):
            rows = np.flatnonzero(sure & (best == j))
            if len(rows) >= 3:
                cen = normalise(X.answer_vectors[rows].mean(axis=0, keepdims=True))[0]
                out[j] = prior[j] + self.refit_weight * cen
        return normalise(out)

    # -- inference -------------------------------------------------------------------------------
    def _mask_special(self, z: np.ndarray) -> np.ndarray:
        """Catch-all themes (theme_roles) never compete with the topics."""
        special = [j for j, r in enumerate(getattr(self, "roles_", [])) if r]
        if special:
            z = z.copy()
            z[:, special] = -np.inf
        return z

    def _scores(self, X: FrameworkData) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed standardised scores (cached for the last X once fitted; callers must not modify them)."""
        cache = self._score_cache
        if cache is not None and cache[0] is X:
            return cache[1], cache[2]
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        z = self._smooth(X, self._standardised(X), valid)
        if getattr(self, "n_themes_", None) is not None:
            self._score_cache = (X, z, valid)
        return z, valid

    def decision_function(self, X: FrameworkData) -> np.ndarray:
        z, valid = self._scores(X)
        prob = 1.0 / (1.0 + np.exp(-(self._mask_special(z) - self.tau)))
        prob = np.where(valid[:, None], prob, 0.0)
        for j, role in enumerate(self.roles_):
            if role == "residual":
                prob[:, j] = np.where(valid, 1.0 - prob.max(axis=1), 0.0)
            elif role == "nonanswer":
                prob[:, j] = (~valid).astype(float)
        return prob.astype(np.float32)

    def predict_proba(self, X: FrameworkData) -> np.ndarray:
        return zero_shot_confidence(self, X, self.zero_shot_calibration)

    def predict(self, X: FrameworkData) -> np.ndarray:
        z, valid = self._scores(X)
        z = self._mask_special(z)
        cos = self._embedding_sim(X, self.theme_vectors_)
        out = np.zeros(z.shape, dtype=bool)
        if not z.shape[1]:
            return out
        if all(self.roles_):
            return self._fill_special(out, valid)
        best = z.argmax(axis=1)
        for i in np.flatnonzero(valid):
            if cos[i, best[i]] < self.min_cosine:
                continue  # nothing in the frame is close: leave the answer unassigned
            top = z[i, best[i]]
            order = np.argsort(-z[i], kind="stable")[: self.max_labels]
            for j in order:
                if j == best[i] or (z[i, j] >= top - self.delta and z[i, j] >= self.tau):
                    out[i, j] = True
        # long answers: a segment that is clearly about a theme adds it even if the answer as a whole
        # is dominated by other themes (only for answers with several segments)
        if self.segment_tau and len(X.segment_vectors):
            n_seg = np.bincount(X.segment_answer, minlength=len(X))
            zs = self._mask_special((X.segment_vectors @ self.theme_vectors_.T - self.seg_mean_) / self.seg_std_)
            sb = zs.argmax(axis=1)
            strong = zs[np.arange(len(zs)), sb] >= self.segment_tau
            for s_i in np.flatnonzero(strong & (n_seg[X.segment_answer] >= 2) & valid[X.segment_answer]):
                a = X.segment_answer[s_i]
                if out[a].any() and out[a].sum() < self.max_labels and not self.roles_[sb[s_i]]:
                    out[a, sb[s_i]] = True
        return self._fill_special(out, valid)

    def _fill_special(self, out: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Residual theme for answers no topic fits; non-answer theme for empty / non-answers."""
        roles = self.roles_
        topics = np.array([not r for r in roles], dtype=bool)
        none_fit = valid & ~out[:, topics].any(axis=1)
        for j, role in enumerate(roles):
            if role == "residual":
                out[:, j] = none_fit
            elif role == "nonanswer":
                out[:, j] = ~valid
        return out


# -- special frame themes ------------------------------------------------------------------------------
_RESIDUAL_RE = re.compile(r"^\s*(none of the above|none of these|other|others|other issues?|something else|"
                          r"not covered|none)\s*\.?\s*$", re.IGNORECASE)
_NONANSWER_RE = re.compile(r"\b(no (substantive |relevant |real )?(answer|response)|non-?answers?|not answered|"
                           r"no comment|unintelligible|blank)\b", re.IGNORECASE)


def theme_roles(themes: SeedThemes) -> list[str]:
    """'residual' ("None of the above"), 'nonanswer' ("No substantive answer") or '' for every theme.

    Coding frames often carry these two catch-alls; they are not topics, so the mapper never scores them
    against the text: the residual theme goes to answers no other theme fits, the non-answer theme to
    answers the clean stage flags as non-answers (empty vectors)."""
    roles = []
    for label in themes.labels:
        if _RESIDUAL_RE.match(label):
            roles.append("residual")
        elif _NONANSWER_RE.search(label):
            roles.append("nonanswer")
        else:
            roles.append("")
    return roles


# -- learning from coded examples --------------------------------------------------------------------------
def _softplus(m: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, m)


@dataclass
class Design:
    """Feature rows as a dense block (embeddings) next to a sparse one (tf-idf): dense @ W goes to BLAS,
    which is several times faster than keeping the dense block inside a sparse matrix."""

    dense: np.ndarray
    lex: sparse.csr_matrix

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.dense), self.dense.shape[1] + self.lex.shape[1]

    def rows(self, idx: np.ndarray) -> Design:
        return Design(self.dense[idx], self.lex[idx])

    def columns(self, lex_cols: np.ndarray) -> Design:
        return Design(self.dense, self.lex[:, lex_cols].tocsr())

    def dot(self, W: np.ndarray) -> np.ndarray:
        d = self.dense.shape[1]
        return np.asarray(self.dense @ W[:d] + self.lex @ W[d:])

    def tdot(self, R: np.ndarray) -> np.ndarray:
        return np.vstack([self.dense.T @ R, np.asarray(self.lex.T @ R)])

    @staticmethod
    def stack(parts: list[Design]) -> Design:
        return Design(np.vstack([p.dense for p in parts]), sparse.vstack([p.lex for p in parts], format="csr"))


def fit_joint_logistic(
    X: Design,
    Z: np.ndarray,
    offset: np.ndarray,
    Y: np.ndarray,
    W8: np.ndarray,
    l2: float,
    l2_prior: float,
    l2_intercept: float,
    max_iter: int = 200,
    init: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-vs-rest logistic regressions for all themes at once, each on top of a fixed prior logit.

    logit_ij = offset_ij + a_j * Z_ij + X_i . W_j + c_j; L2 penalties `l2` on W (features), `l2_prior` on
    a (the zero-shot score's extra weight) and `l2_intercept` on c, so with few examples the model stays at
    the prior and with many it learns the features. `W8` (n x T) weighs every (row, theme) term (0 = unused).
    Solved jointly by L-BFGS (the loss separates by theme; one matrix product per step is much faster than
    T separate fits). `init` = starting parameters (e.g. the full-data solution for a CV fold)."""
    n, d = X.shape
    t = Y.shape[1]
    y = Y.astype(np.float64)

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return theta[: d * t].reshape(d, t), theta[d * t : d * t + t], theta[d * t + t :]

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        W, a, c = unpack(theta)
        m = offset + Z * a + X.dot(W) + c
        loss = float((W8 * (_softplus(m) - y * m)).sum())
        loss += 0.5 * (l2 * float((W * W).sum()) + l2_prior * float(a @ a) + l2_intercept * float(c @ c))
        r = W8 * (sigmoid(m) - y)
        gW = X.tdot(r) + l2 * W
        ga = (r * Z).sum(axis=0) + l2_prior * a
        gc = r.sum(axis=0) + l2_intercept * c
        return loss, np.concatenate([gW.ravel(), ga, gc])

    theta = lbfgs(fun, np.zeros(d * t + 2 * t) if init is None else init, max_iter=max_iter)
    return unpack(theta)


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.einsum("i,i->", a, b))


def lbfgs(
    fun: Any, x0: np.ndarray, max_iter: int = 200, memory: int = 10, gtol: float = 1e-5, ftol: float = 1e-9
) -> np.ndarray:
    """Minimise a smooth convex `fun(x) -> (value, gradient)` by L-BFGS with a backtracking line search.

    Written out because scipy's L-BFGS-B costs ~10 ms per step per 1e4 parameters, and the joint
    per-theme model has (features x themes) of them. Dot products go through einsum: BLAS threads on a busy
    machine made them 20x slower."""
    x = np.asarray(x0, dtype=np.float64).copy()
    f, g = fun(x)
    s_hist: list[np.ndarray] = []
    y_hist: list[np.ndarray] = []
    for _ in range(max_iter):
        if float(np.abs(g).max()) < gtol:
            break
        q = g.copy()
        alphas = []
        for s_k, y_k in zip(reversed(s_hist), reversed(y_hist), strict=True):
            rho = 1.0 / _dot(y_k, s_k)
            a_k = rho * _dot(s_k, q)
            alphas.append((rho, a_k))
            q -= a_k * y_k
        if s_hist:
            q *= _dot(s_hist[-1], y_hist[-1]) / _dot(y_hist[-1], y_hist[-1])
        else:
            q /= max(np.sqrt(_dot(g, g)), 1.0)
        for (s_k, y_k), (rho, a_k) in zip(zip(s_hist, y_hist, strict=True), reversed(alphas), strict=True):
            q += (a_k - rho * _dot(y_k, q)) * s_k
        direction = -q
        slope = _dot(g, direction)
        if slope >= 0:  # not a descent direction: restart from the gradient
            s_hist.clear()
            y_hist.clear()
            direction, slope = -g, -_dot(g, g)
        step = 1.0
        for _ls in range(30):
            x_new = x + step * direction
            f_new, g_new = fun(x_new)
            if f_new <= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break
        s_k, y_k = x_new - x, g_new - g
        if _dot(s_k, y_k) > 1e-12:
            s_hist.append(s_k)
            y_hist.append(y_k)
            if len(s_hist) > memory:
                s_hist.pop(0)
                y_hist.pop(0)
        done = abs(f - f_new) <= ftol * max(abs(f), 1.0)
        x, f, g = x_new, f_new, g_new
        if done:
            break
    return x


def _auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Rank AUC (0.5 when one class is missing)."""
    pos, neg = scores[y], scores[~y]
    if not len(pos) or not len(neg):
        return 0.5
    from scipy.stats import rankdata

    r = rankdata(np.concatenate([pos, neg]))
    return float((r[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _best_threshold(p: np.ndarray, y: np.ndarray, grid: np.ndarray) -> tuple[float, float]:
    """Threshold on `p` maximising F1 of the labels `y` (ties: the middle of the best run)."""
    f1 = np.array([2 * (y & (p >= g)).sum() / max(y.sum() + (p >= g).sum(), 1) for g in grid])
    best = np.flatnonzero(f1 >= f1.max() - 1e-9)
    return float(grid[best[len(best) // 2]]), float(f1.max())


class CodedFrameworkMapper(BaseEstimator):
    """Framework mapping learned from an analyst's coded examples, with the zero-shot mapper as prior.

    Per theme, a logistic regression on the answer embedding and TF-IDF sits on top of the zero-shot
    score: the prior logit is `a0 * z + b0` (one calibration shared by all themes, fitted on the
    examples, so bare-code frames whose descriptions say nothing get a0 ~ 0), and the per-theme weights
    are L2-shrunk towards it, so 1-3 examples per theme move a theme a little and hundreds move it a lot.
    The frame's descriptions enter as pseudo-examples (weighted by how well the zero-shot scores rank the
    examples). With enough examples, internal cross-validation gives out-of-fold probabilities for a
    Platt calibration and per-theme thresholds (shrunk towards a pooled threshold by the theme's number
    of positives). `fit(X, themes, rows, Y)`: X = every answer (the batch plus the examples), `rows` the
    example rows in X, Y their codes (bool, rows x themes).
    """

    def __init__(
        self,
        l2: float = _EX.l2,
        l2_prior: float = _EX.l2_prior,
        l2_intercept: float = _EX.l2_intercept,
        prior_C: float = _EX.prior_C,
        lexical_weight: float = _EX.lexical_weight,
        desc_weight: float = _EX.desc_weight,
        threshold: float = _EX.threshold,
        n_folds: int = _EX.n_folds,
        min_cv_examples: int = _EX.min_cv_examples,
        threshold_shrink: float = _EX.threshold_shrink,
        max_labels: int = _EX.max_labels,
        max_features: int = _EX.max_features,
        seed: int = 0,
        zero_shot: dict[str, Any] | None = None,
    ) -> None:
        self.l2 = l2
        self.l2_prior = l2_prior
        self.l2_intercept = l2_intercept
        self.prior_C = prior_C
        self.lexical_weight = lexical_weight
        self.desc_weight = desc_weight
        self.threshold = threshold
        self.n_folds = n_folds
        self.min_cv_examples = min_cv_examples
        self.threshold_shrink = threshold_shrink
        self.max_labels = max_labels
        self.max_features = max_features
        self.seed = seed
        self.zero_shot = zero_shot

    # -- pieces ------------------------------------------------------------------------------------
    def _prior_z(self, X: FrameworkData) -> np.ndarray:
        """Zero-shot evidence per theme, stacked: standardised score and the zero-shot decision (0/1).

        Catch-all themes get a score of their own kind (residual: how far the best topic is below tau)."""
        z, valid = self.zero_shot_._scores(X)
        z = z.astype(np.float64)
        topics = np.array([not r for r in self.roles_], dtype=bool)
        top = z[:, topics].max(axis=1) if topics.any() else np.zeros(len(z))
        for j, role in enumerate(self.roles_):
            if role == "residual":
                z[:, j] = self.zero_shot_.tau - top
            elif role == "nonanswer":
                z[:, j] = np.where(valid, -3.0, 3.0)
        z = np.where(valid[:, None], z, 0.0)
        decided = self.zero_shot_.predict(X).astype(np.float64)
        return np.stack([z, decided])

    def _design(self, X: FrameworkData, rows: np.ndarray | None = None) -> Design:
        """Embedding and TF-IDF rows (the zero-shot mapper's vocabulary and cached matrix)."""
        idx = np.arange(len(X)) if rows is None else rows
        lex = (self.zero_shot_.lex_matrix(X)[idx] * self.lexical_weight).tocsr()
        return Design(np.asarray(X.answer_vectors[idx], dtype=np.float64), lex)

    def _fit_once(
        self, Phi: Design, Z: np.ndarray, Y: np.ndarray, init: tuple | None = None
    ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray, np.ndarray]:
        """Pooled prior calibration, then the joint per-theme fit (with description pseudo-examples)."""
        topics = np.array([not r for r in self.roles_], dtype=bool)
        pooled = np.stack([Z[0][:, topics].ravel(), Z[1][:, topics].ravel()], axis=1)
        yt = Y[:, topics].ravel()
        a0 = np.array([1.0, 0.0])
        b0 = -self.zero_shot_.tau
        if yt.any() and not yt.all():
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=self.prior_C).fit(pooled, yt)
            a0, b0 = np.maximum(lr.coef_[0], 0.0), float(lr.intercept_[0])
        reliability = float(np.clip(2.0 * (_auc(pooled @ a0, yt) - 0.5), 0.0, 1.0))
        Z, Zd = Z[0], Z[1]
        t = Y.shape[1]
        offset = np.where(topics[None, :], a0[0] * Z + a0[1] * Zd + b0, 0.0)
        W8 = np.ones_like(offset)
        rows, Zr, Yr = [Phi], [Z], [Y]
        pw = self.desc_weight * reliability
        if pw > 0 and topics.any():
            rows.append(self.desc_features_.rows(np.flatnonzero(topics)))
            n_p = int(topics.sum())
            Zr.append(np.zeros((n_p, t)))
            yp = np.zeros((n_p, t), dtype=bool)
            yp[np.arange(n_p), np.flatnonzero(topics)] = True
            Yr.append(yp)
            offset = np.vstack([offset, np.where(topics[None, :], b0, 0.0).repeat(n_p, axis=0)])
            W8 = np.vstack([W8, np.where(topics[None, :], pw, 0.0).repeat(n_p, axis=0)])
        Xs = Design.stack(rows)
        df = Xs.lex.getnnz(axis=0)
        active = np.flatnonzero(df > 0)  # unseen terms keep zero weight: drop them
        if len(active) > self.max_features:  # the most frequent terms only
            active = np.sort(active[np.argsort(-df[active], kind="stable")[: self.max_features]])
        d = Xs.dense.shape[1]
        theta0 = None
        if init is not None:
            W0 = init[2]
            theta0 = np.concatenate([np.vstack([W0[:d], W0[d + active]]).ravel(), init[3], init[4]])
        Wa, a, c = fit_joint_logistic(Xs.columns(active), np.vstack(Zr), offset, np.vstack(Yr),
                                      W8, self.l2, self.l2_prior, self.l2_intercept, init=theta0)
        W = np.zeros((Xs.shape[1], t))
        W[:d] = Wa[:d]
        W[d + active] = Wa[d:]
        return a0, b0, W, a, c

    def _logits(self, Phi: Design, Z: np.ndarray, model: tuple) -> np.ndarray:
        a0, b0, W, a, c = model
        topics = np.array([not r for r in self.roles_], dtype=bool)
        offset = np.where(topics[None, :], a0[0] * Z[0] + a0[1] * Z[1] + b0, 0.0)
        return np.asarray(offset + Z[0] * a + Phi.dot(W) + c)

    # -- fitting -----------------------------------------------------------------------------------
    def fit(self, X: FrameworkData, themes: SeedThemes, rows: np.ndarray, Y: np.ndarray) -> CodedFrameworkMapper:
        if themes.vectors is None:
            raise ValueError("framework themes must be encoded (SeedThemes.encoded) before fitting")
        rows = np.asarray(rows, dtype=int)
        Y = np.asarray(Y, dtype=bool)
        self.themes_ = themes
        self.roles_ = theme_roles(themes)
        self.zero_shot_ = FrameworkMapper(**{**(self.zero_shot or {}), "seed": self.seed}).fit(X, themes)
        self.desc_features_ = Design(normalise(np.asarray(themes.vectors)).astype(np.float64),
                                     (self.zero_shot_.theme_lex_ * self.lexical_weight).tocsr())
        Z = self._prior_z(X)
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        keep = valid[rows]  # non-answers are coded by rule, not learned from
        rows, Y = rows[keep], Y[keep]
        self.n_examples_ = len(rows)
        self.n_positive_ = Y.sum(axis=0).astype(int)
        self.force_one_ = bool(len(Y)) and bool(Y.any(axis=1).all())
        Phi = self._design(X, rows)
        Zl = Z[:, rows]
        self.model_ = self._fit_once(Phi, Zl, Y)
        t = Y.shape[1]
        self.calibration_ = (1.0, 0.0)
        self.thresholds_ = np.full(t, self.threshold)
        self.cv_samples_f1_: float | None = None
        if len(rows) >= max(self.min_cv_examples, self.n_folds * 2):
            oof = np.zeros(Y.shape)
            fold = np.random.default_rng(self.seed).permutation(len(rows)) % self.n_folds
            for k in range(self.n_folds):
                tr, te = fold != k, fold == k
                model = self._fit_once(Phi.rows(np.flatnonzero(tr)), Zl[:, tr], Y[tr], init=self.model_)
                oof[te] = self._logits(Phi.rows(np.flatnonzero(te)), Zl[:, te], model)
            from sklearn.linear_model import LogisticRegression

            yy = Y.ravel()
            if yy.any() and not yy.all():
                cal = LogisticRegression(C=10.0).fit(oof.ravel()[:, None], yy)
                self.calibration_ = (float(cal.coef_[0, 0]), float(cal.intercept_[0]))
            p = self._calibrate(oof)
            grid = np.round(np.arange(0.05, 0.951, 0.025), 3)
            pooled, _ = _best_threshold(p.ravel(), yy, grid)
            for j in range(t):
                n_pos = int(Y[:, j].sum())
                own = _best_threshold(p[:, j], Y[:, j], grid)[0] if n_pos else pooled
                self.thresholds_[j] = (n_pos * own + self.threshold_shrink * pooled) / (n_pos + self.threshold_shrink)
            pred = self._decide(p, np.ones(len(p), dtype=bool))
            from pipeline.evaluate import per_sample_f1

            self.cv_samples_f1_ = float(per_sample_f1(Y, pred).mean())
        return self

    # -- inference ---------------------------------------------------------------------------------
    def _calibrate(self, logits: np.ndarray) -> np.ndarray:
        s, b = self.calibration_
        return np.asarray(sigmoid(s * logits + b))

    def predict_proba(self, X: FrameworkData) -> np.ndarray:
        """Calibrated probability that each theme applies (answers x themes); non-answers: rule."""
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        Phi = self._design(X)
        p = self._calibrate(self._logits(Phi, self._prior_z(X), self.model_))
        p = np.where(valid[:, None], p, 0.0)
        for j, role in enumerate(self.roles_):
            if role == "nonanswer":
                p[:, j] = np.where(valid, p[:, j], 1.0)
        return p

    def _decide(self, p: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Topics clearing their thresholds (best first, at most `max_labels`); when none clears, the best
        topic if every example had a code; a catch-all theme (residual, non-answer) replaces the topics
        when it clears its threshold and is more probable than every topic."""
        roles = self.roles_
        topics = np.array([not r for r in roles], dtype=bool)
        margin = p - self.thresholds_
        out = np.zeros(p.shape, dtype=bool)
        t_idx = np.flatnonzero(topics)
        special = [j for j, r in enumerate(roles) if r]
        for i in np.flatnonzero(valid):
            if len(t_idx):
                order = t_idx[np.argsort(-margin[i, t_idx], kind="stable")][: self.max_labels]
                chosen = [j for j in order if margin[i, j] >= 0]
                if not chosen and self.force_one_:
                    chosen = [order[0]]
                out[i, chosen] = True
            best_topic = p[i, t_idx].max() if len(t_idx) else 0.0
            cands = [j for j in special if margin[i, j] >= 0 and p[i, j] > best_topic]
            if cands:
                out[i] = False
                out[i, max(cands, key=lambda j: p[i, j])] = True
            elif not out[i, t_idx].any():
                for j in special:
                    out[i, j] = roles[j] == "residual"
        for j, role in enumerate(roles):
            if role == "nonanswer":
                out[~valid, j] = True
        return out

    def predict(self, X: FrameworkData) -> np.ndarray:
        valid = np.linalg.norm(X.answer_vectors, axis=1) > 0
        return self._decide(self.predict_proba(X), valid)


# -- coded examples: reading, matching, confidences ----------------------------------------------------------
@dataclass
class CodedExamples:
    """An analyst's coded answers: text, codes (bool, examples x frame themes), optional ids, file rows."""

    texts: list[str]
    labels: np.ndarray
    response_ids: list[str]
    question_ids: list[str]
    rows: list[int]
    file: str

    def __len__(self) -> int:
        return len(self.texts)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value).strip()
    if text.startswith("'") and text[1:2] in ("=", "+", "-", "@"):
        text = text[1:]  # a formula-neutralised cell written by the review sheet
    return text


def load_examples(path: Path | str, themes: SeedThemes) -> CodedExamples:
    """Read CODED (CSV/XLSX: answer, themes as ';'-separated frame ids, optional response_id, question_id).

    Every problem is an InputError naming the file and the spreadsheet row (header = row 1)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "coded examples file not found")
    if not len(themes):
        raise InputError(str(path), None, "the coding frame has no themes")
    try:
        df = read_table(path)
    except Exception as exc:  # unreadable spreadsheet / encoding: one line for the analyst
        raise InputError(str(path), None, f"cannot read the coded examples ({exc})") from exc
    df.columns = [str(c).strip().lower() for c in df.columns]
    missing = [c for c in ("answer", "themes") if c not in df.columns]
    if missing:
        raise InputError(str(path), "header", f"missing column(s) {', '.join(missing)}; coded examples need "
                         f"answer and themes (';'-separated frame ids), optional response_id; found: "
                         f"{', '.join(df.columns) or 'none'}")
    if df.empty:
        raise InputError(str(path), None, "no coded examples")
    ids = list(themes.ids)
    index = {t: j for j, t in enumerate(ids)}
    lower = {t.lower(): j for j, t in enumerate(ids)}
    texts, rids, qids, rows = [], [], [], []
    labels = np.zeros((len(df), len(ids)), dtype=bool)
    seen: dict[tuple[str, str], int] = {}
    has_rid, has_qid = "response_id" in df.columns, "question_id" in df.columns
    for k, rec in enumerate(df.to_dict("records")):
        row = k + 2
        text = _cell(rec.get("answer"))
        rid = _cell(rec.get("response_id")) if has_rid else ""
        qid = _cell(rec.get("question_id")) if has_qid else ""
        if not text and not rid:
            raise InputError(str(path), f"row {row}", "empty answer and no response_id")
        for code in (c.strip() for c in _cell(rec.get("themes")).split(";")):
            if not code:
                continue
            j = index.get(code, lower.get(code.lower()))
            if j is None:
                shown = ", ".join(ids[:30]) + (" ..." if len(ids) > 30 else "")
                raise InputError(str(path), f"row {row}", f"unknown theme id {code!r}; the frame has: {shown}")
            labels[k, j] = True
        if rid:
            key = (rid, qid)
            if key in seen:
                raise InputError(str(path), f"row {row}",
                                 f"duplicate response_id {rid!r}" + (f" for question {qid!r}" if qid else "")
                                 + f" (also row {seen[key]})")
            seen[key] = row
        texts.append(text)
        rids.append(rid)
        qids.append(qid)
        rows.append(row)
    return CodedExamples(texts, labels, rids, qids, rows, str(path))


def match_examples(examples: CodedExamples, answers: pd.DataFrame) -> dict[int, int]:
    """Example index -> row of `answers` for examples whose response_id (and question_id) is in the batch.

    Without a question_id, a response with answers to several questions is matched by its text; if that
    is ambiguous the analyst is asked for a question_id column."""
    by_rid: dict[str, list[int]] = {}
    for i, rid in enumerate(answers["response_id"].astype(str)):
        by_rid.setdefault(rid, []).append(i)
    qids = answers["question_id"].astype(str).to_numpy()
    text_col = "text_clean" if "text_clean" in answers.columns else "answer"
    texts = answers[text_col].fillna("").astype(str).to_numpy()
    out: dict[int, int] = {}
    used: set[int] = set()
    for k, rid in enumerate(examples.response_ids):
        cands = by_rid.get(rid, []) if rid else []
        if examples.question_ids[k]:
            cands = [i for i in cands if qids[i] == examples.question_ids[k]]
        if len(cands) > 1:
            norm = " ".join(examples.texts[k].split()).lower()
            same = [i for i in cands if " ".join(texts[i].split()).lower() == norm]
            if len(same) != 1:
                raise InputError(examples.file, f"row {examples.rows[k]}",
                                 f"response_id {rid!r} answered several questions; add a question_id column")
            cands = same
        if cands:
            if cands[0] in used:
                raise InputError(examples.file, f"row {examples.rows[k]}", f"answer {rid!r} is coded twice")
            used.add(cands[0])
            out[k] = cands[0]
    return out


def zero_shot_confidence(mapper: FrameworkMapper, X: FrameworkData, calibration: Any = None) -> np.ndarray:
    """Probability that a theme applies, from the zero-shot standardised score.

    `calibration` = [slope, intercept, decided] maps `slope * z + decided * [assigned] + intercept` through
    a sigmoid (fitted on hand-coded dev data, see benchmarks/framework_devsuite.py); catch-all themes keep
    the mapper's rule scores."""
    slope, intercept, decided = (list(calibration) + [0.0] * 3)[:3] if calibration else (1.0, -mapper.tau, 0.0)
    z, valid = mapper._scores(X)
    assigned = mapper.predict(X)
    p = sigmoid(float(slope) * mapper._mask_special(z).astype(np.float64) + float(decided) * assigned
                 + float(intercept))
    base = mapper.decision_function(X)
    for j, role in enumerate(mapper.roles_):
        if role:
            p[:, j] = base[:, j]
    return np.where(valid[:, None], p, base).astype(np.float64)


def answer_confidence(proba: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """How sure the coding of each answer is: the least sure of its per-theme decisions."""
    if not proba.shape[1]:
        return np.ones(len(proba))
    sure = np.where(labels, proba, 1.0 - proba)
    return np.asarray(sure.min(axis=1), dtype=np.float64)


def select_for_review(
    proba: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, candidates: np.ndarray, n: int
) -> list[tuple[int, int]]:
    """Rows an analyst should code next: first, for every theme, the candidate answer whose probability is
    nearest that theme's threshold (so every theme is covered), then the least sure answers overall.

    Returns (row, theme it was chosen for, or -1); `candidates` = rows that may be chosen (machine-coded,
    substantive); ties break by row order."""
    cand = np.flatnonzero(candidates)
    if n <= 0 or not len(cand):
        return []
    closeness = np.abs(proba[cand] - thresholds[None, :])
    chosen: list[tuple[int, int]] = []
    taken = np.zeros(len(cand), dtype=bool)
    for j in np.argsort(closeness.min(axis=0), kind="stable"):
        if len(chosen) >= n:
            break
        order = np.argsort(np.where(taken, np.inf, closeness[:, j]), kind="stable")
        if not taken[order[0]]:
            taken[order[0]] = True
            chosen.append((int(cand[order[0]]), int(j)))
    sure = answer_confidence(proba[cand], labels[cand])
    for k in np.argsort(sure, kind="stable"):
        if len(chosen) >= n:
            break
        if not taken[k]:
            taken[k] = True
            chosen.append((int(cand[k]), -1))
    return chosen
