"""Discovery as swappable parts, BERTopic-style: (reduction) -> clusterer -> refinement -> representation.

Why: the k-means, the merge/fold pass and the naming used to be one function, so trying another clusterer
meant editing discovery. Each part is now chosen by a typed parameter (`themes.reducer`, `themes.clusterer`,
`themes.refinement`; see `pipeline.params.ThemesParams`) or passed in code (`build_parts(cfg, clusterer=...)`
then `discover_themes(..., parts=...)`). Per question, discovery runs

    reduced = reducer.fit_transform(X)            # optional; X = the question's unit segment vectors
    labels = clusterer.fit_predict(reduced)       # one int per row; -1 = no theme ("other")
    labels, centroids = refiner.refine(X, labels, respondents, min_k)   # on the unreduced X
    rows, n_other_language = representation.represent(...)             # names, keywords, quotes

Protocols (what a library user's own object needs): a clusterer has `fit_predict(X) -> labels` (any
scikit-learn clusterer does; it is refit for every question, so it may keep learned state); a reducer has
`fit_transform(X) -> array`. Refinement, seed matching, centroids and assignment always work on the
unreduced unit vectors: their cosine thresholds (`merge_threshold`, `other_threshold`) are calibrated there.
The implementations follow the scikit-learn contract (parameters stored unchanged by `__init__`, learned
attributes end in `_`, deterministic with `random_state`); their defaults are those of `ThemesParams`.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import HDBSCAN, AgglomerativeClustering, KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA

from pipeline.embed.vectors import normalise
from pipeline.errors import InputError
from pipeline.params import ThemesParams
from pipeline.themes import naming
from pipeline.themes.seeds import SeedThemes

log = logging.getLogger(__name__)

_D = ThemesParams()  # constructor defaults come from the params model (one definition)


# ------------------------------------------------------------------------------------------------ protocols
@runtime_checkable
class Reducer(Protocol):
    """Maps a question's unit vectors (n, d) to the (n, d') vectors the clusterer sees."""

    def fit_transform(self, X: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Clusterer(Protocol):
    """One label per row; -1 means no theme ('other'). Any scikit-learn clusterer fits."""

    def fit_predict(self, X: np.ndarray) -> np.ndarray: ...


@runtime_checkable
class Refiner(Protocol):
    """Turns raw cluster labels into theme labels 0..k-1 (-1 = other) and their unit centroids (k, d)."""

    def refine(
        self, x: np.ndarray, labels: np.ndarray, respondents: np.ndarray, min_k: int = 1
    ) -> tuple[np.ndarray, np.ndarray]: ...


@runtime_checkable
class Representation(Protocol):
    """Theme rows (id, label, keywords, description, quotes, seed match) of one question, in label order."""

    def represent(
        self, qid: str, qseg: pd.DataFrame, labels: np.ndarray, closeness: np.ndarray,
        seeds_m: list[tuple[int, float]], seeds: SeedThemes | None, keyphrases: dict[str, list[str]],
        question_text: str, langs: list[str], main: str,
    ) -> tuple[list[dict[str, Any]], int]: ...


# ------------------------------------------------------------------------------------------------ helpers
def k_bounds(n_segments: int, min_themes: int, max_themes: int, k_per_segments: float,
             min_theme_size: int) -> tuple[int, int]:
    """Bounds on the number of themes, scaled down for small questions."""
    kmax_size = max(1, int(math.sqrt(n_segments / float(k_per_segments))))
    kmax = max(1, min(int(max_themes), kmax_size, n_segments // max(int(min_theme_size), 1)))
    kmin = max(1, min(int(min_themes), kmax))
    return kmin, kmax


def cosine_silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with cosine distance for unit vectors (one matrix product, float32)."""
    uniq, lab = np.unique(labels, return_inverse=True)
    if len(uniq) < 2:
        return -1.0
    dist = 1.0 - x @ x.T
    onehot = np.zeros((len(x), len(uniq)), dtype=np.float32)
    onehot[np.arange(len(x)), lab] = 1.0
    sums = dist @ onehot
    counts = onehot.sum(axis=0)
    own = counts[lab]
    a = sums[np.arange(len(x)), lab] / np.maximum(own - 1, 1)
    mean_other = sums / counts
    mean_other[np.arange(len(x)), lab] = np.inf
    b = mean_other.min(axis=1)
    s = np.where(own > 1, (b - a) / np.maximum(np.maximum(a, b), 1e-12), 0.0)
    return float(s.mean())


def centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Unit mean vector of each label 0..k-1 (-1 rows left out)."""
    c = np.zeros((k, x.shape[1]), dtype=np.float32)
    np.add.at(c, labels[labels >= 0], x[labels >= 0])
    return normalise(c)


def relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Compact cluster numbers to 0..k-1 in order of first appearance (-1 stays -1)."""
    uniq = [u for u in dict.fromkeys(labels.tolist()) if u >= 0]
    mapping = {u: i for i, u in enumerate(uniq)}
    return np.array([mapping.get(v, -1) for v in labels.tolist()], dtype=int), len(uniq)


# ------------------------------------------------------------------------------------------------ reducers
class PCAReducer(TransformerMixin, BaseEstimator):
    """PCA to `n_components` (centred, so the question's common direction goes), rows re-normalised.

    Fewer rows or dimensions than `n_components`: no projection, the rows are only re-normalised."""

    def __init__(self, n_components: int = _D.reducer_components, random_state: int = 0) -> None:
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: Any = None) -> PCAReducer:
        X = np.asarray(X, dtype=np.float32)
        k = int(self.n_components)
        self.pca_ = PCA(n_components=k, random_state=self.random_state).fit(X) if k < min(X.shape) else None
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        out = X if self.pca_ is None else self.pca_.transform(X).astype(np.float32)
        return normalise(out)


# ------------------------------------------------------------------------------------------------ clusterers
class _BoundedK(ClusterMixin, BaseEstimator):
    """A clusterer with k within `k_bounds` of the question's size: the upper bound (`k_selection: max`,
    merging/folding then shrinks it) or the best cosine silhouette on a seeded sample of up to 6 candidates."""

    min_themes: int
    max_themes: int
    k_per_segments: float
    min_theme_size: int
    k_selection: str
    silhouette_sample: int
    random_state: int

    def _fit_k(self, X: np.ndarray, k: int) -> np.ndarray:
        raise NotImplementedError

    def fit(self, X: np.ndarray, y: Any = None) -> _BoundedK:
        X = np.asarray(X, dtype=np.float32)
        self.labels_ = self._select(X)
        self.n_clusters_ = len(np.unique(self.labels_[self.labels_ >= 0]))
        return self

    def _select(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        kmin, kmax = k_bounds(n, self.min_themes, self.max_themes, self.k_per_segments, self.min_theme_size)
        if kmax <= 1 or n < 4:
            return np.zeros(n, dtype=int)
        if self.k_selection == "max" or kmin == kmax:
            return self._fit_k(x, kmax)
        cands = sorted({int(round(v)) for v in np.linspace(kmin, kmax, num=min(6, kmax - kmin + 1))})
        rng = np.random.default_rng(self.random_state)
        m = int(self.silhouette_sample)
        sample = np.sort(rng.choice(n, size=m, replace=False)) if n > m else np.arange(n)
        best: tuple[float, int, np.ndarray] | None = None
        for k in cands:
            labels = self._fit_k(x, k)
            if len(np.unique(labels[sample])) < 2:
                continue
            score = cosine_silhouette(x[sample], labels[sample])
            log.debug("k=%d silhouette=%.4f", k, score)
            if best is None or score > best[0] + 1e-9:
                best = (score, k, labels)
        return best[2] if best is not None else np.zeros(n, dtype=int)


class KMeansClusterer(_BoundedK):
    """k-means (MiniBatchKMeans above `minibatch_above` rows: faster, not identical), k within bounds."""

    def __init__(
        self, min_themes: int = _D.min_themes, max_themes: int = _D.max_themes,
        k_per_segments: float = _D.k_per_segments, min_theme_size: int = _D.min_theme_size,
        k_selection: str = _D.k_selection, silhouette_sample: int = _D.silhouette_sample,
        minibatch_above: int = _D.minibatch_above, random_state: int = 0,
    ) -> None:
        self.min_themes = min_themes
        self.max_themes = max_themes
        self.k_per_segments = k_per_segments
        self.min_theme_size = min_theme_size
        self.k_selection = k_selection
        self.silhouette_sample = silhouette_sample
        self.minibatch_above = minibatch_above
        self.random_state = random_state

    def _fit_k(self, X: np.ndarray, k: int) -> np.ndarray:
        if len(X) > int(self.minibatch_above):
            km: KMeans | MiniBatchKMeans = MiniBatchKMeans(
                n_clusters=k, random_state=self.random_state, n_init=3, batch_size=2048, max_iter=100
            )
        else:
            km = KMeans(n_clusters=k, random_state=self.random_state, n_init=3, max_iter=200)
        return np.asarray(km.fit_predict(X))


class AgglomerativeClusterer(_BoundedK):
    """Average-linkage agglomerative clustering on cosine distance, k within the same bounds as k-means.

    Quadratic memory in the question's segments (a full distance matrix): for questions of a few thousand
    passages, not for 50k."""

    def __init__(
        self, min_themes: int = _D.min_themes, max_themes: int = _D.max_themes,
        k_per_segments: float = _D.k_per_segments, min_theme_size: int = _D.min_theme_size,
        k_selection: str = _D.k_selection, silhouette_sample: int = _D.silhouette_sample, random_state: int = 0,
    ) -> None:
        self.min_themes = min_themes
        self.max_themes = max_themes
        self.k_per_segments = k_per_segments
        self.min_theme_size = min_theme_size
        self.k_selection = k_selection
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def _fit_k(self, X: np.ndarray, k: int) -> np.ndarray:
        return np.asarray(AgglomerativeClustering(n_clusters=k, metric="cosine", linkage="average").fit_predict(X))


class HDBSCANClusterer(ClusterMixin, BaseEstimator):
    """sklearn HDBSCAN (density; the number of themes is not bounded, noise -> -1 = other).

    Euclidean distance on unit vectors orders pairs as cosine does. Deterministic (no random state)."""

    def __init__(self, min_cluster_size: int = _D.hdbscan_min_cluster_size,
                 min_samples: int | None = _D.hdbscan_min_samples) -> None:
        self.min_cluster_size = min_cluster_size
        self.min_samples = min_samples

    def fit(self, X: np.ndarray, y: Any = None) -> HDBSCANClusterer:
        X = np.asarray(X, dtype=np.float64)
        if len(X) <= max(int(self.min_cluster_size), 2):
            self.labels_ = np.zeros(len(X), dtype=int)
        else:
            hd = HDBSCAN(min_cluster_size=int(self.min_cluster_size), min_samples=self.min_samples, copy=True)
            self.labels_ = np.asarray(hd.fit_predict(X), dtype=int)
        self.n_clusters_ = len(np.unique(self.labels_[self.labels_ >= 0]))
        return self


# ------------------------------------------------------------------------------------------------ refiners
class MergeFoldRefiner:
    """Merge near-duplicate clusters, fold tiny ones, send far-away segments to 'other' (-1).

    Merging stops at `min_k` themes: in a question where every answer is about the same broad topic,
    all centroids are close and unbounded merging would collapse distinct sub-themes.
    """

    def __init__(self, merge_threshold: float = _D.merge_threshold, other_threshold: float = _D.other_threshold,
                 min_theme_size: int = _D.min_theme_size) -> None:
        self.merge_threshold = merge_threshold
        self.other_threshold = other_threshold
        self.min_theme_size = min_theme_size

    def refine(
        self, x: np.ndarray, labels: np.ndarray, respondents: np.ndarray, min_k: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        labels, k = relabel(np.asarray(labels))
        merge_t = float(self.merge_threshold)
        other_t = float(self.other_threshold)
        min_size = int(self.min_theme_size)
        for _ in range(50):
            cent = centroids(x, labels, k)
            sim = cent @ cent.T
            np.fill_diagonal(sim, -1)
            if k > max(min_k, 1) and sim.max() > merge_t:
                i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
                labels = np.where(labels == max(i, j), min(i, j), labels)
                labels, k = relabel(labels)
                continue
            # reassign every segment to its closest centroid; too far from all -> other
            seg_sim = x @ cent.T if k else np.zeros((len(x), 0))
            new = seg_sim.argmax(axis=1) if k else np.full(len(x), -1)
            best = seg_sim.max(axis=1) if k else np.zeros(len(x))
            new = np.where(best >= other_t, new, -1)
            sizes = {c: len(set(respondents[new == c].tolist())) for c in range(k)}
            tiny = [c for c in range(k) if sizes[c] < min_size]
            if tiny and k > 1:
                drop = min(tiny, key=lambda c: (sizes[c], c))
                keep = [c for c in range(k) if c != drop]
                sub = seg_sim[:, keep]
                nl = np.array(keep)[sub.argmax(axis=1)]
                nl = np.where(sub.max(axis=1) >= other_t, nl, -1)
                labels, k = relabel(np.where(labels == drop, nl, labels))
                continue
            if tiny and k == 1:
                new = np.full(len(x), -1)
            if np.array_equal(new, labels):
                break
            labels, k = relabel(new)
        return labels, centroids(x, labels, k)


class NoRefiner:
    """The clusterer's labels as they are (compacted; -1 stays other), with their centroids."""

    def refine(
        self, x: np.ndarray, labels: np.ndarray, respondents: np.ndarray, min_k: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        labels, k = relabel(np.asarray(labels))
        return labels, centroids(x, labels, k)


# ------------------------------------------------------------------------------------------------ representation
def segment_terms(
    seg: pd.DataFrame, kp: dict[str, list[str]], question_text: str = "", langs: list[str] | None = None
) -> list[list[str]]:
    """Naming terms per segment, from the PII-redacted text (keywords are shown to readers).

    Terms made only of words of the question itself ("milestone", "action line" when the question asks about
    milestones of the Action Lines) echo the question rather than name a theme, so they are left out.
    Tokens and function words are those of each segment's language (`langs`, the answer's clean-stage code).
    """
    echo = naming.question_words(question_text)
    langs = langs or [""] * len(seg)
    terms = []
    indexes: dict[tuple[str, str], naming.KeyphraseIndex] = {}  # one per answer and language (documents: linear)
    for aid, text, lang in zip(seg["answer_id"], seg["text_redacted"], langs, strict=True):
        key = (str(aid), str(lang or ""))
        if key not in indexes:
            indexes[key] = naming.KeyphraseIndex(kp.get(str(aid), []), lang)
        t = indexes[key].terms_in(str(text))
        t = t + naming.ngram_terms(str(text), lang) if len(t) < 2 else t
        terms.append([term for term in t if not set(term.split()) <= echo])
    return terms


def naming_mask(labels: np.ndarray, langs: list[str], main: str, k: int, min_passages: int) -> tuple[
    np.ndarray, list[bool]
]:
    """Which passages name their theme: those in the main language when the theme has >= `min_passages` of
    them, else all its passages (a theme of German answers only is named in German).

    Returns (naming labels: the theme or -1, per theme whether it was named from the main language).
    """
    is_main = np.array([(g == main) if main else True for g in langs], dtype=bool)
    out = labels.copy()
    in_main: list[bool] = []
    for c in range(k):
        mem = labels == c
        ok = int((mem & is_main).sum()) >= max(int(min_passages), 1) or not main
        in_main.append(bool(ok) or bool(mem.any() and is_main[mem].all()))
        if ok:
            out[mem & ~is_main] = -1
    return out, in_main


class KeywordRepresentation:
    """Today's naming (`pipeline.themes.naming`): class-based tf-idf keywords, a label and a description from
    them and the theme's passages, quotes closest to the centre from distinct respondents; seed themes keep
    their seed's id, label and description."""

    def __init__(self, n_keywords: int = _D.n_keywords, n_quotes: int = _D.n_quotes,
                 label_min_passages: int = _D.label_min_passages, spacy_model: str | None = None) -> None:
        self.n_keywords = n_keywords
        self.n_quotes = n_quotes
        self.label_min_passages = label_min_passages
        self.spacy_model = spacy_model

    def represent(
        self, qid: str, qseg: pd.DataFrame, labels: np.ndarray, closeness: np.ndarray,
        seeds_m: list[tuple[int, float]], seeds: SeedThemes | None, keyphrases: dict[str, list[str]],
        question_text: str, langs: list[str], main: str,
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows of themes 0..k-1 and how many were named from other languages than `main`."""
        k = len(seeds_m)
        n_kw = int(self.n_keywords)
        resp = qseg["response_id"].to_numpy()
        seg_ids = qseg["segment_id"].to_numpy()
        terms = segment_terms(qseg, keyphrases, question_text, langs)
        # labels and keywords come from the theme's passages in the label language when it has enough of them
        name_labels, named_main = naming_mask(labels, langs, main, k, int(self.label_min_passages))
        batch_langs = sorted({g for g in langs if g})
        ctf, names = naming.class_tfidf(terms, name_labels, k)
        kws = naming.top_keywords(ctf, names, n_kw) if k else []
        # names choose among more candidates than the keywords shown: function words are skipped when naming
        name_kws = naming.top_keywords(ctf, names, 3 * n_kw) if k else []
        rows: list[dict[str, Any]] = []
        n_emergent = 0
        red = qseg["text_redacted"].tolist()
        case = naming.acronyms(red)
        ins, outs = naming.term_shares(terms, name_labels, k)
        taken: set[str] = set()
        for c in range(k):
            mem = np.flatnonzero(labels == c)
            order = np.lexsort((seg_ids[mem].astype(str), -closeness[mem]))
            quotes = naming.pick_quotes(mem[order], resp, seg_ids, red, int(self.n_quotes))
            s_idx, s_score = seeds_m[c]
            if s_idx >= 0 and seeds is not None:
                tid, label, origin, seed_id = seeds.ids[s_idx], seeds.labels[s_idx], "seed", seeds.ids[s_idx]
                desc = seeds.descriptions[s_idx]
            else:
                n_emergent += 1
                tid, origin, seed_id = f"{qid}.emergent-{n_emergent}", "emergent", ""
                cands = naming.nameable(name_kws[c], batch_langs)[:n_kw]
                label, desc = naming.name_theme(
                    cands, [red[i] for i in np.flatnonzero(name_labels == c)], ins[c], outs[c], case, taken,
                    batch_langs, self.spacy_model,
                )
            taken.add(label)
            rows.append(
                {
                    "theme_id": tid,
                    "scope": qid,
                    "label": label,
                    "keywords": ";".join(kws[c]),
                    "origin": origin,
                    "seed_id": seed_id,
                    "seed_score": round(float(s_score), 4),
                    "description": desc,
                    "quotes": json.dumps(quotes, ensure_ascii=False),
                }
            )
        return rows, sum(not m for m in named_main)


# ------------------------------------------------------------------------------------------------ assembly
@dataclass(frozen=True)
class DiscoveryParts:
    """The parts one discovery run uses; `reducer=None` clusters the unit vectors themselves."""

    clusterer: Clusterer
    refiner: Refiner
    representation: Representation
    reducer: Reducer | None = None


def _reducer(cfg: dict[str, Any]) -> Reducer | None:
    return PCAReducer(int(cfg["reducer_components"]), int(cfg["seed"]))


def _kmeans(cfg: dict[str, Any]) -> Clusterer:
    return KMeansClusterer(
        int(cfg["min_themes"]), int(cfg["max_themes"]), float(cfg["k_per_segments"]), int(cfg["min_theme_size"]),
        str(cfg["k_selection"]), int(cfg["silhouette_sample"]), int(cfg["minibatch_above"]), int(cfg["seed"]),
    )


def _agglomerative(cfg: dict[str, Any]) -> Clusterer:
    return AgglomerativeClusterer(
        int(cfg["min_themes"]), int(cfg["max_themes"]), float(cfg["k_per_segments"]), int(cfg["min_theme_size"]),
        str(cfg["k_selection"]), int(cfg["silhouette_sample"]), int(cfg["seed"]),
    )


def _hdbscan(cfg: dict[str, Any]) -> Clusterer:
    ms = cfg.get("hdbscan_min_samples")
    return HDBSCANClusterer(int(cfg["hdbscan_min_cluster_size"]), None if ms is None else int(ms))


REDUCERS: dict[str, Callable[[dict[str, Any]], Reducer | None]] = {"none": lambda cfg: None, "pca": _reducer}
CLUSTERERS: dict[str, Callable[[dict[str, Any]], Clusterer]] = {
    "kmeans": _kmeans, "agglomerative": _agglomerative, "hdbscan": _hdbscan,
}
REFINERS: dict[str, Callable[[dict[str, Any]], Refiner]] = {
    "merge_fold": lambda cfg: MergeFoldRefiner(
        float(cfg["merge_threshold"]), float(cfg["other_threshold"]), int(cfg["min_theme_size"])
    ),
    "none": lambda cfg: NoRefiner(),
}


def _pick(table: dict[str, Callable[[dict[str, Any]], Any]], cfg: dict[str, Any], key: str) -> Any:
    name = str(cfg[key])
    if name not in table:
        raise InputError("params", f"themes.{key}", f"unknown {key} {name!r}: use one of {', '.join(table)}")
    return table[name](cfg)


def build_parts(cfg: dict[str, Any], **overrides: Any) -> DiscoveryParts:
    """The parts named by the themes parameters (`discovery.theme_params` output); `overrides` replace any of
    them by object (clusterer=, reducer=, refiner=, representation=), e.g. a library user's own clusterer."""
    parts = {
        "reducer": _pick(REDUCERS, cfg, "reducer"),
        "clusterer": _pick(CLUSTERERS, cfg, "clusterer"),
        "refiner": _pick(REFINERS, cfg, "refinement"),
        "representation": KeywordRepresentation(
            int(cfg["n_keywords"]), int(cfg["n_quotes"]), int(cfg["label_min_passages"]),
            cfg.get("spacy_model"),  # clean's model (theme_params); None: naming's default, CleanParams
        ),
    }
    unknown = set(overrides) - set(parts)
    if unknown:
        raise TypeError(f"unknown discovery parts: {', '.join(sorted(unknown))}")
    return DiscoveryParts(**(parts | overrides))
