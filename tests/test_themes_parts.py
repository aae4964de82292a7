"""Discovery parts (pipeline/themes/parts.py): swappable reducer, clusterer, refinement, representation.

Real text: the 120 answers of question 20 of Australia's Safe and Responsible AI consultation
(../shared/devsets/framework_au_srai, read at test time; skipped when absent), through the real clean and
embed stages. The pre-refactor clustering (k-means with k selection, then merge/fold) is kept below as the
reference the default parts must equal label for label.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans, MiniBatchKMeans

from pipeline import config
from pipeline.embed.vectors import normalise
from pipeline.errors import InputError
from pipeline.themes.discovery import discover_themes, theme_params
from pipeline.themes.parts import (
    AgglomerativeClusterer,
    Clusterer,
    HDBSCANClusterer,
    KMeansClusterer,
    MergeFoldRefiner,
    NoRefiner,
    PCAReducer,
    build_parts,
    cosine_silhouette,
)


# ------------------------------------------------------------------ the pre-refactor functions (reference)
def _old_fit_kmeans(x: np.ndarray, k: int, seed: int, minibatch_above: int) -> np.ndarray:
    if len(x) > minibatch_above:
        km: KMeans | MiniBatchKMeans = MiniBatchKMeans(
            n_clusters=k, random_state=seed, n_init=3, batch_size=2048, max_iter=100
        )
    else:
        km = KMeans(n_clusters=k, random_state=seed, n_init=3, max_iter=200)
    return np.asarray(km.fit_predict(x))


def _old_k_bounds(n: int, cfg: dict[str, Any]) -> tuple[int, int]:
    kmax_size = max(1, int(math.sqrt(n / float(cfg["k_per_segments"]))))
    kmax = max(1, min(int(cfg["max_themes"]), kmax_size, n // max(int(cfg["min_theme_size"]), 1)))
    return max(1, min(int(cfg["min_themes"]), kmax)), kmax


def _old_choose_clusters(x: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    n = len(x)
    kmin, kmax = _old_k_bounds(n, cfg)
    seed = int(cfg["seed"])
    if kmax <= 1 or n < 4:
        return np.zeros(n, dtype=int)
    if cfg["k_selection"] == "max" or kmin == kmax:
        return _old_fit_kmeans(x, kmax, seed, int(cfg["minibatch_above"]))
    cands = sorted({int(round(v)) for v in np.linspace(kmin, kmax, num=min(6, kmax - kmin + 1))})
    rng = np.random.default_rng(seed)
    m = int(cfg["silhouette_sample"])
    sample = np.sort(rng.choice(n, size=m, replace=False)) if n > m else np.arange(n)
    best: tuple[float, int, np.ndarray] | None = None
    for k in cands:
        labels = _old_fit_kmeans(x, k, seed, int(cfg["minibatch_above"]))
        if len(np.unique(labels[sample])) < 2:
            continue
        score = cosine_silhouette(x[sample], labels[sample])
        if best is None or score > best[0] + 1e-9:
            best = (score, k, labels)
    return best[2] if best is not None else np.zeros(n, dtype=int)


def _old_centroids(x: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    c = np.zeros((k, x.shape[1]), dtype=np.float32)
    np.add.at(c, labels[labels >= 0], x[labels >= 0])
    return normalise(c)


def _old_relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    uniq = [u for u in dict.fromkeys(labels.tolist()) if u >= 0]
    mapping = {u: i for i, u in enumerate(uniq)}
    return np.array([mapping.get(v, -1) for v in labels.tolist()], dtype=int), len(uniq)


def _old_refine(x: np.ndarray, labels: np.ndarray, respondents: np.ndarray, cfg: dict[str, Any],
                min_k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    labels, k = _old_relabel(labels)
    merge_t, other_t = float(cfg["merge_threshold"]), float(cfg["other_threshold"])
    min_size = int(cfg["min_theme_size"])
    for _ in range(50):
        cent = _old_centroids(x, labels, k)
        sim = cent @ cent.T
        np.fill_diagonal(sim, -1)
        if k > max(min_k, 1) and sim.max() > merge_t:
            i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
            labels, k = _old_relabel(np.where(labels == max(i, j), min(i, j), labels))
            continue
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
            labels, k = _old_relabel(np.where(labels == drop, nl, labels))
            continue
        if tiny and k == 1:
            new = np.full(len(x), -1)
        if np.array_equal(new, labels):
            break
        labels, k = _old_relabel(new)
    return labels, _old_centroids(x, labels, k)


# ------------------------------------------------------------------ real text
@pytest.fixture(scope="module")
def q20(au_question: Any) -> dict[str, Any]:
    """Q20 answers through the real clean and embed stages (embeddings via the usual cache)."""
    from pipeline.clean import clean_answers
    from pipeline.embed import encode

    raw = au_question("q20")[0]
    params = config.load_params()
    base = {c: "" for c in ["org_name", "org_type", "stakeholder_group", "country", "country_raw", "region",
                            "subregion", "submitted_at", "source_file", "source_record", "submission_group"]}
    df = raw.assign(**base, source_format="long", is_document=False, is_current=True)
    df["response_id"] = df["response_id"].astype(str)
    df["question_number"] = pd.array([pd.NA] * len(df), dtype="Int64")
    ans, seg = clean_answers(df, params)
    vec = encode(seg["text"].fillna("").tolist(), params, config.cache_dir())
    return {"answers": ans, "segments": seg, "vectors": vec, "params": params}


def _substantive(case: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    seg = case["segments"]
    keep = ~seg["is_nonanswer"].fillna(False).astype(bool).to_numpy()
    x = normalise(np.asarray(case["vectors"], dtype=np.float32)[keep])
    return x, seg["response_id"].astype(str).to_numpy()[keep]


@pytest.mark.parametrize("k_selection", ["max", "silhouette"])
def test_issue11_default_parts_equal_the_pre_refactor_clustering_on_real_text(q20: dict, k_selection: str) -> None:
    x, resp = _substantive(q20)
    cfg = theme_params({**q20["params"], "themes": {**q20["params"]["themes"], "k_selection": k_selection}})
    parts = build_parts(cfg)
    assert parts.reducer is None and isinstance(parts.clusterer, KMeansClusterer)
    assert isinstance(parts.refiner, MergeFoldRefiner)
    min_k = _old_k_bounds(len(x), cfg)[0]
    old_labels, old_cent = _old_refine(x, _old_choose_clusters(x, cfg), resp, cfg, min_k)
    new_raw = parts.clusterer.fit_predict(x)
    assert np.array_equal(new_raw, _old_choose_clusters(x, cfg))
    new_labels, new_cent = parts.refiner.refine(x, new_raw, resp, min_k)
    assert len(set(old_labels.tolist()) - {-1}) >= 3  # a real partition, not a trivial one
    assert np.array_equal(new_labels, old_labels)
    assert np.array_equal(new_cent, old_cent)


@pytest.mark.parametrize("overrides", [
    {"reducer": "pca", "reducer_components": 20},
    {"clusterer": "agglomerative"},
    {"clusterer": "hdbscan"},
    {"clusterer": "hdbscan", "refinement": "none"},
    {"refinement": "none"},
    {"reducer": "pca", "clusterer": "agglomerative", "k_selection": "silhouette"},
])
def test_issue11_each_alternative_part_runs_through_discover_themes_on_real_text(q20: dict, overrides: dict) -> None:
    params = {**q20["params"], "themes": {**q20["params"]["themes"], **overrides}}
    res = discover_themes(q20["answers"], q20["segments"], q20["vectors"], params, None)
    again = discover_themes(q20["answers"], q20["segments"], q20["vectors"], params, None)
    sa, themes = res.segment_assignments, res.themes
    q_themes = themes[(themes["scope"] != "all") & (themes["origin"] == "emergent")]
    assert len(q_themes) >= 2
    assert set(sa["theme_id"]) <= set(themes["theme_id"])  # every assignment names a theme row (or other)
    assert (q_themes["label"].str.strip() != "").all()
    assert res.summary["other_share"] < 1.0
    pd.testing.assert_frame_equal(sa, again.segment_assignments)  # deterministic with the seed


def test_issue11_parts_change_the_clustering_when_chosen(q20: dict) -> None:
    """The parameter reaches the part: agglomerative and hdbscan give other partitions than k-means."""
    x, _ = _substantive(q20)
    cfg = theme_params(q20["params"])
    km = build_parts(cfg).clusterer.fit_predict(x)
    for name in ("agglomerative", "hdbscan"):
        other = build_parts({**cfg, "clusterer": name}).clusterer.fit_predict(x)
        assert len(other) == len(x) and not np.array_equal(other, km), name
    hd = build_parts({**cfg, "clusterer": "hdbscan"}).clusterer.fit_predict(x)
    assert (hd == -1).any()  # density clustering leaves noise: "other"


def test_issue11_unknown_part_name_is_a_params_error_naming_the_key() -> None:
    with pytest.raises(InputError, match=r"themes\.clusterer"):
        config.load_params(overrides={"themes": {"clusterer": "spectral"}})
    with pytest.raises(InputError, match=r"themes\.reducer"):
        config.load_params(overrides={"themes": {"reducer": "umap"}})
    # a plain dict handed to discover_themes (no validation on the way) is checked when the parts are built
    with pytest.raises(InputError, match=r"themes\.refinement"):
        build_parts(theme_params({"themes": {"refinement": "split"}}))


class _ByWord:
    """A user's clusterer: one cluster per first word of a fixed vocabulary (-1 when none), via fit_predict."""

    def __init__(self, texts: list[str], words: tuple[str, ...]) -> None:
        self.texts = texts
        self.words = words
        self.calls = 0

    def fit_predict(self, X: np.ndarray) -> np.ndarray:
        self.calls += 1
        assert len(X) == len(self.texts)
        return np.array([next((i for i, w in enumerate(self.words) if w in t), -1) for t in self.texts])


def _toy() -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, list[str]]:
    """Written examples: three topics, random vectors (only the custom clusterer can find the topics)."""
    topics = {"broadband": "broadband for rural schools is too slow", "privacy": "privacy rules for health data",
              "skills": "skills training for older workers"}
    texts, rows = [], []
    for i in range(18):
        word = list(topics)[i % 3]
        texts.append(f"{topics[word]} ({i})")
        rows.append({"segment_id": f"R{i:02d}::Q1#0", "answer_id": f"R{i:02d}::Q1", "response_id": f"R{i:02d}",
                     "question_id": "Q1", "text": texts[-1], "text_redacted": texts[-1], "is_nonanswer": False})
    seg = pd.DataFrame(rows)
    ans = seg[["answer_id", "response_id", "question_id"]].assign(text_clean=seg["text"])
    vec = normalise(np.random.default_rng(0).normal(size=(len(seg), 16)).astype(np.float32))
    return ans, seg, vec, texts


def test_issue11_custom_fit_predict_object_is_used() -> None:
    ans, seg, vec, texts = _toy()
    mine = _ByWord(texts, ("broadband", "privacy", "skills"))
    assert isinstance(mine, Clusterer)
    params = {"seed": 1, "themes": {"other_threshold": -1.0}}
    parts = build_parts(theme_params(params), clusterer=mine, refiner=NoRefiner())
    res = discover_themes(ans, seg, vec, params, None, parts=parts)
    assert mine.calls == 1
    sa = res.segment_assignments.merge(seg[["segment_id", "text"]], on="segment_id")
    by_theme = sa.groupby("theme_id")["text"].apply(lambda s: {t.split()[0] for t in s})
    assert sorted(map(sorted, by_theme)) == [["broadband"], ["privacy"], ["skills"]]
    # the default k-means on random vectors does not find the three topics
    plain = discover_themes(ans, seg, vec, params, None).segment_assignments.merge(seg[["segment_id", "text"]])
    assert plain.groupby("theme_id")["text"].apply(lambda s: len({t.split()[0] for t in s})).max() > 1
    with pytest.raises(TypeError, match="colourer"):
        build_parts(theme_params(params), colourer=mine)


def test_issue11_parts_follow_the_scikit_learn_contract() -> None:
    x = normalise(np.random.default_rng(3).normal(size=(60, 12)).astype(np.float32))
    for est in (KMeansClusterer(random_state=4), AgglomerativeClusterer(k_selection="silhouette"),
                HDBSCANClusterer(min_cluster_size=4), PCAReducer(n_components=5, random_state=4)):
        twin = clone(est)
        assert twin.get_params() == est.get_params()
        assert not any(k.endswith("_") for k in vars(twin))  # nothing learned before fit
        if isinstance(est, PCAReducer):
            out = est.fit_transform(x)
            assert out.shape == (60, 5) and np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
            assert np.allclose(out, twin.fit_transform(x))
        else:
            labels = est.fit_predict(x)
            assert hasattr(est, "labels_") and hasattr(est, "n_clusters_")
            assert np.array_equal(labels, twin.fit_predict(x))
    # k-means respects the k bounds of the question's size (sqrt(60 / 2) = 5)
    assert KMeansClusterer(random_state=0).fit(x).n_clusters_ == 5
    # fewer rows than components: the reducer only re-normalises
    few = PCAReducer(n_components=50).fit_transform(x[:3])
    assert few.shape == (3, 12) and np.allclose(few, x[:3], atol=1e-6)
