"""The tagger's learning part is a scikit-learn estimator on a feature matrix (`TaggerEstimator` on the matrix of
`TaggerFeatures`): it clones, runs in a `Pipeline` and under `cross_val_predict`/`KFold`, and `Tagger` is exactly
their composition. The shipped model's scores are unchanged by the split (real answers, skipped without
../shared). The tagger's passages come from the clean stage's splitter (one segmenter)."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import Pipeline

from pipeline import config
from pipeline.numeric import sigmoid
from pipeline.tagger import features
from pipeline.tagger.features import TaggerFeatures, pairs
from pipeline.tagger.model import Tagger, TaggerEstimator, load_tagger, save_tagger

DIM = 64
LABELS = ["C2", "C5", "SDG9", "SDG16"]
KINDS = ["action_line", "action_line", "sdg", "sdg"]
KEYWORDS = {"broadband": [0, 2], "fibre": [0, 2], "cable": [0], "infrastructure": [2],
            "cyber": [1, 3], "ransomware": [1], "fraud": [1, 3], "justice": [3]}
TOPICS = [  # invented texts: (phrase, label indices)
    ("broadband reaches rural towns", [0, 2]), ("fibre cable to every school", [0, 2]),
    ("new cable landing station and backbone", [0]), ("roads and power infrastructure for industry", [2]),
    ("cyber attacks on ministries", [1, 3]), ("ransomware hit the hospital systems", [1]),
    ("online fraud and phishing of pensioners", [1, 3]), ("courts and justice institutions online", [3]),
    ("the meeting is next tuesday", []), ("thank you for this opportunity", []),
]
CONTEXTS = ["We think {} matters.", "Our agency reports on {}.", "Citizens ask about {}.",
            "Firms invest in {} now.", "Studies show {} is growing."]


def encode(texts: list[str]) -> np.ndarray:
    """Hashed word counts, unit norm: a deterministic stand-in for the sentence model."""
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    for i, text in enumerate(texts):
        for tok in features.normalise(text).split():
            out[i, zlib.crc32(tok.encode()) % DIM] += 1.0
        if out[i].any():
            out[i] /= np.linalg.norm(out[i])
    return out


@pytest.fixture(scope="module")
def data() -> dict:
    texts, rows = [], []
    for phrase, labels in TOPICS:
        for ctx in CONTEXTS:
            texts.append(ctx.format(phrase))
            rows.append([int(j in labels) for j in range(len(LABELS))])
    texts.append("")  # an empty text: zero vector, scores 0
    rows.append([0] * len(LABELS))
    V = encode(["broadband fibre cable network", "cyber security ransomware fraud",
                "industry infrastructure innovation", "peace justice institutions"])
    return {"texts": texts, "E": encode(texts), "Y": np.array(rows), "V": V}


def _features(d: dict) -> TaggerFeatures:
    return TaggerFeatures(label_vectors=d["V"], keywords=KEYWORDS)


def _estimator() -> TaggerEstimator:
    return TaggerEstimator(label_kinds=KINDS, keyword_labels=list(KEYWORDS.values()), n_folds=3)


def _tagger(d: dict) -> Tagger:
    return Tagger(label_ids=LABELS, label_kinds=KINDS, label_vectors=d["V"], keywords=KEYWORDS, n_folds=3)


def test_feature_matrix_layout(data) -> None:
    feats = _features(data).fit()
    X = feats.transform(pairs(data["texts"], data["E"]))
    n_kw = len(KEYWORDS)
    assert X.dtype == np.float32 and X.shape == (len(data["texts"]), DIM + 2 * len(LABELS) + n_kw)
    assert len(feats.get_feature_names_out()) == X.shape[1]
    np.testing.assert_array_equal(X, feats.transform_texts(data["texts"], data["E"]))
    i = data["texts"].index("Our agency reports on fibre cable to every school.")
    hits = X[i, -n_kw:]
    kws = list(KEYWORDS)
    assert hits[kws.index("fibre")] == 1 and hits[kws.index("cable")] == 2 and hits[kws.index("cyber")] == 0
    with pytest.raises(ValueError, match="embeddings have shape"):
        feats.transform_texts(data["texts"], data["E"][:3])


def test_estimator_clones_and_checks_its_input(data) -> None:
    est = _estimator()
    twin = clone(est)
    assert twin is not est and twin.get_params() == est.get_params() and not hasattr(twin, "coef_")
    X = _features(data).fit().transform_texts(data["texts"], data["E"])
    fitted = est.fit(X, data["Y"])
    assert fitted is est and list(est.classes_) == list(range(len(LABELS)))
    assert not hasattr(clone(est), "coef_")
    proba = est.predict_proba(X)
    assert proba.shape == data["Y"].shape and proba.min() >= 0 and proba.max() <= 1
    assert not proba[-1].any()  # the empty text
    np.testing.assert_array_equal(est.predict(X), (proba >= est.thresholds_).astype(np.int8))
    with pytest.raises(ValueError, match="Y has shape"):
        clone(est).fit(X, data["Y"][:, :2])
    with pytest.raises(ValueError, match="columns"):
        clone(est).fit(X[:, : 2 * len(LABELS) + len(KEYWORDS)], data["Y"])
    with pytest.raises(ValueError, match="positive finite"):
        clone(est).fit(X, data["Y"], sample_weight=np.zeros(len(X)))


def test_tagger_is_the_pipeline_of_its_two_parts(data) -> None:
    """Same scores from `Tagger` and from `Pipeline([TaggerFeatures, TaggerEstimator])` on (text, vector) pairs,
    with and without sample weights; `Tagger.estimator_` is the fitted estimator the pipeline learns."""
    texts, E, Y = data["texts"], data["E"], data["Y"]
    w = np.linspace(0.5, 2.0, len(texts))
    for weights in (None, w):
        pipe = Pipeline([("features", _features(data)), ("model", _estimator())])
        pipe.fit(pairs(texts, E), Y, model__sample_weight=weights)
        tagger = _tagger(data).fit(texts, Y, E, sample_weight=weights)
        np.testing.assert_array_equal(pipe.predict_proba(pairs(texts, E)), tagger.predict_proba(texts, E))
        for name in ("coef_", "calib_a_", "thresholds_", "keyword_reliability_"):
            np.testing.assert_array_equal(getattr(pipe[-1], name), getattr(tagger.estimator_, name))
    assert set(tagger.keyword_reliability_) == set(KEYWORDS)  # the saved state keeps its dict layout


def test_cross_val_predict_with_kfold_on_the_matrix_and_on_pairs(data) -> None:
    X = _features(data).fit().transform_texts(data["texts"], data["E"])
    Y = data["Y"]
    cv = KFold(n_splits=3, shuffle=True, random_state=0)
    oof = cross_val_predict(_estimator(), X, Y, cv=cv, method="predict_proba")
    manual = np.zeros(Y.shape)
    for tr, te in cv.split(X):
        manual[te] = clone(_estimator()).fit(X[tr], Y[tr]).predict_proba(X[te])
    np.testing.assert_array_equal(oof, manual)
    pipe = Pipeline([("features", _features(data)), ("model", _estimator())])
    np.testing.assert_array_equal(
        cross_val_predict(pipe, pairs(data["texts"], data["E"]), Y, cv=cv, method="predict_proba"), oof)
    labels = cross_val_predict(_estimator(), X, Y, cv=cv)
    assert labels.shape == Y.shape and set(np.unique(labels)) <= {0, 1}


def test_saved_file_keeps_one_trusted_type_after_the_parts_were_used(data, tmp_path: Path) -> None:
    """The parts are views: they never reach the file, so the trusted-type list stays `Tagger` alone."""
    import skops.io as sio

    tagger = _tagger(data).fit(data["texts"], data["Y"], data["E"])
    before = tagger.predict_proba(data["texts"], data["E"])  # builds and caches the parts
    assert isinstance(tagger.features_, TaggerFeatures)
    path = tmp_path / "tagger.skops"
    save_tagger(tagger, path)
    assert sio.get_untrusted_types(file=path) == ["pipeline.tagger.model.Tagger"]
    loaded = load_tagger(path)
    np.testing.assert_array_equal(loaded.predict_proba(data["texts"], data["E"]), before)
    loaded.thresholds_ = loaded.thresholds_ * 0.5  # what training's threshold shift does after fit
    np.testing.assert_array_equal(loaded.estimator_.thresholds_, loaded.thresholds_)


def _pre_split_scores(t: Tagger, texts: list[str], embeddings: np.ndarray) -> np.ndarray:
    """The tagger's scoring as written before the split into two parts (one function on the flat state)."""
    lex = features.KeywordLexicon(dict(t.keywords or {}), len(t.label_ids))
    hits = [list(dict.fromkeys(lex.matches(x))) for x in texts]
    E = np.asarray(embeddings, dtype=np.float32)
    S = E @ np.asarray(t.label_vectors, dtype=np.float32).T
    owner = np.asarray(t.prototype_owner)
    sims = E @ np.asarray(t.prototype_vectors, dtype=np.float32).T
    M = np.stack([sims[:, owner == j].max(axis=1) if np.any(owner == j) else S[:, j]
                  for j in range(len(t.label_ids))], axis=1)
    K = np.zeros((len(hits), len(t.label_ids)), dtype=np.float32)
    for i, kws in enumerate(hits):
        for kw in kws:
            K[i, t.keywords.get(kw, [])] += 1.0
    S2, K = np.hstack([S, M]), np.log1p(K)
    kinds = np.asarray(list(t.label_kinds))
    feats = []
    for Sx in (S2[:, : K.shape[1]], S2[:, K.shape[1]:]):
        rel, gap = np.zeros_like(Sx), np.zeros_like(Sx)
        for k in np.unique(kinds):
            sub = Sx[:, kinds == k]
            rel[:, kinds == k] = (sub - sub.mean(axis=1, keepdims=True)) / (sub.std(axis=1, keepdims=True) + 1e-3)
            gap[:, kinds == k] = sub - np.sort(sub, axis=1)[:, -1:]
        feats += [rel, gap * 10.0, Sx * 5.0]
    P = np.stack([*feats, K, (K > 0).astype(np.float32)], axis=-1)
    Xs = (np.hstack([E, S2 * 2.0, K]).astype(np.float32) - t.feature_mean_) / t.feature_scale_
    w = float(t.prior_weight)
    raw = (1 - w) * (Xs @ t.coef_.T + t.intercept_) + w * (P @ t.prior_coef_ + t.prior_intercept_)
    proba = sigmoid(raw * t.calib_a_ + t.calib_b_)
    evidence = np.zeros_like(proba)
    for i, kws in enumerate(hits):
        miss = np.ones(len(t.label_ids))
        for kw in kws:
            miss *= 1.0 - t.keyword_reliability_[kw]
        evidence[i] = 1.0 - miss
    proba = 1.0 - (1.0 - proba) * (1.0 - float(t.keyword_weight) * evidence)
    proba[~np.any(E != 0, axis=1)] = 0.0
    return proba


@pytest.mark.shared
def test_shipped_model_scores_real_answers_exactly_as_before_the_split(shared_dir, tmp_path: Path) -> None:
    import importlib.util

    from pipeline.tagger import stage, train

    loader = shared_dir / "devsets" / "tags_real_answers" / "load.py"
    if not loader.is_file():
        pytest.skip("no ../shared/devsets/tags_real_answers")
    spec = importlib.util.spec_from_file_location("tags_real_answers_load", loader)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    texts = mod.load_devset()["text"].astype(str).tolist()[:40]
    seg, _ = stage.sentence_passages(texts, 20)
    texts = texts + seg + ["", "No comment."]
    root = config.PROJECT_ROOT / "models" / "tagger"
    tagger = load_tagger(root / (root / "CURRENT").read_text(encoding="utf-8").strip() / "tagger.skops")
    vecs = features.encode(texts, train.encoder_params(config.load_params(), tagger), tmp_path)
    proba = tagger.predict_proba(texts, vecs)
    assert proba[:40].max() > 0.5 and not proba[-2].any()
    np.testing.assert_array_equal(proba, _pre_split_scores(tagger, texts, vecs))
    design = tagger.features_.transform(pairs(texts, vecs))
    np.testing.assert_array_equal(proba, tagger.estimator_.predict_proba(design))


def test_tagger_passages_are_the_clean_splitter_with_long_sentences_kept_whole() -> None:
    from pipeline.clean.segments import text_passages

    long = " ".join(["Broadband networks reach villages and schools and clinics"] * 4) + "."
    text = (f"Rural towns need fibre. Schools need laptops for every pupil and teacher. {long}\n\n"
            "Ransomware hit two ministries last year. Police need cyber skills. Courts need digital files.")
    got = features.segment_text(text, max_words=20, min_words=4)
    assert got == [text[s:e] for s, e in text_passages(text, 20, 4, cut_long=False)]
    assert all(p in text for p in got) and long in got  # slices of the text; the 32-word sentence stays whole
    assert got[-1].startswith("Ransomware")  # a new paragraph starts a new passage
    cut = features.segment_text(text, max_words=20, min_words=4, cut_long=True)
    assert max(len(p.split()) for p in cut) <= 20 < len(long.split())
    assert features.segment_text("   ") == ["   "]
