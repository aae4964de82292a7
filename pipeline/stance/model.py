"""`StanceModel`: a scikit-learn style estimator scoring (target, answer) pairs into four stances.

Why this shape: a multinomial logistic regression over the topic-free features of `features.featurize` (a few
dozen columns) learns from ~450 hand-written pairs without memorising topics, and its probabilities serve as
the confidence. The learned state is plain numpy arrays, so skops loads it with a one-type trusted list, and
the file's sha256 is recorded in its version folder's metrics.json and verified on load (the tagger's check).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from pipeline.errors import ModelFileError
from pipeline.registry import STANCE, load_verified_skops
from pipeline.stance import features as feats
from pipeline.tagger.model import check_scores

log = logging.getLogger(__name__)

STANCES: tuple[str, ...] = ("support", "oppose", "conditional", "neutral")
DEFAULT_EMBED: dict[str, Any] = {"backend": "torch", "model": "all-MiniLM-L6-v2", "max_seq_length": 256}
MODEL_FILE = STANCE.file_name
#: The only non-builtin type a stance model file may contain.
TRUSTED_TYPES: tuple[str, ...] = ("pipeline.stance.model.StanceModel",)

Pairs = Sequence[tuple[str, str]]


def default_encoder(embed: dict[str, Any] | None = None, cache_dir: Path | None = None) -> feats.Encoder:
    """Texts -> vectors through `pipeline.embed.encode` (content-addressed cache) in the model's space."""
    from pipeline.embed import encode

    section = dict(embed or DEFAULT_EMBED)

    def _encode(texts: list[str]) -> np.ndarray:
        return encode(list(texts), section, cache_dir)

    return _encode


class StanceModel(ClassifierMixin, BaseEstimator):
    """Four-way stance of an answer toward a target (a proposal): support, oppose, conditional, neutral.

    `X` is either a sequence of (target, answer) pairs, featurised with the packaged sentence model, or the
    (n, n_features) matrix `features.featurize` returns (what `stance_of` passes, with cached vectors).
    """

    def __init__(self, C: float = 0.5, top_k: int = feats.TOP_K, class_weight: str | None = "balanced",
                 embed: dict[str, Any] | None = None, max_iter: int = 2000) -> None:
        self.C = C
        self.top_k = top_k
        self.class_weight = class_weight
        self.embed = embed
        self.max_iter = max_iter

    def _features(self, X: Any) -> np.ndarray:
        if isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind == "f":
            if X.shape[1] != feats.N_DENSE:
                raise ValueError(f"feature matrix has {X.shape[1]} columns, expected {feats.N_DENSE}")
            return X.astype(np.float32, copy=False)
        pairs = list(X)
        enc = default_encoder(self.embed)
        return feats.featurize([p[0] for p in pairs], [p[1] for p in pairs], enc, top_k=int(self.top_k))

    def fit(self, X: Any, y: Sequence[str] | np.ndarray) -> StanceModel:
        """Standardise the features and fit a multinomial logistic regression (deterministic: lbfgs)."""
        F = self._features(X)
        labels = np.asarray(list(y), dtype=object)
        unknown = sorted(set(labels) - set(STANCES))
        if unknown:
            raise ValueError(f"unknown stance labels {unknown}; expected {list(STANCES)}")
        self.mean_ = F.mean(axis=0).astype(np.float64)
        self.scale_ = (F.std(axis=0) + 1e-3).astype(np.float64)
        lr = LogisticRegression(C=float(self.C), class_weight=self.class_weight, max_iter=int(self.max_iter))
        lr.fit((F - self.mean_) / self.scale_, labels)
        self.classes_ = np.asarray([str(c) for c in lr.classes_])
        self.coef_ = lr.coef_.astype(np.float64)
        self.intercept_ = lr.intercept_.astype(np.float64)
        self.n_features_in_ = F.shape[1]
        self.feature_names_ = feats.feature_names()
        self.n_train_ = len(labels)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        F = self._features(X)
        return ((F - self.mean_) / self.scale_) @ self.coef_.T + self.intercept_

    def predict_proba(self, X: Any) -> np.ndarray:
        """(n, 4) probabilities, columns in `classes_` order."""
        z = self.decision_function(X)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        check_scores(p, str(getattr(self, "source_file_", "") or "stance model"))
        return p

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("source_file_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


def check_state(model: StanceModel) -> str | None:
    """Why the learned state cannot come from `fit` (None if it can)."""
    for name in ("coef_", "intercept_", "mean_", "scale_", "classes_"):
        if not hasattr(model, name):
            return f"missing learned attribute {name} (not a fitted StanceModel)"
    if sorted(map(str, model.classes_)) != sorted(STANCES):
        return f"classes {list(model.classes_)} are not the four stances"
    coef = np.asarray(model.coef_, dtype=float)
    if coef.shape != (len(STANCES), feats.N_DENSE):
        return f"coefficients have shape {coef.shape}, expected {(len(STANCES), feats.N_DENSE)} (features changed?)"
    for name in ("coef_", "intercept_", "mean_", "scale_"):
        if not np.isfinite(np.asarray(getattr(model, name), dtype=float)).all():
            return f"non-finite values in {name}"
    if np.asarray(model.mean_).shape != (feats.N_DENSE,) or np.any(np.asarray(model.scale_, dtype=float) <= 0):
        return "feature scaling has the wrong size or is not positive"
    return None


def save_model(model: StanceModel, path: Any) -> None:
    """Write the model with skops (never pickle), byte-reproducibly."""
    import zipfile

    from pipeline.imports import skops_io

    sio = skops_io()

    from pipeline.io import atomic_path

    with atomic_path(path) as tmp:
        sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
        _fix_zip_times(tmp)
    Path(path).chmod(0o644)


def _fix_zip_times(path: Path) -> None:
    """Rewrite the archive so the same model gives the same bytes (and sha256): skops names arrays and
    memo entries after Python object ids and stamps the current time, so ids are renumbered in order of first
    appearance and every entry gets a fixed timestamp."""
    import re
    import zipfile

    with zipfile.ZipFile(path) as src:
        entries = {info.filename: src.read(info.filename) for info in src.infolist()}
    schema = entries.pop("schema.json").decode("utf-8")
    ids: dict[str, str] = {}
    for m in re.finditer(r'"__id__": (\d+)|"file": "(\d+)\.npy"', schema):
        old = m.group(1) or m.group(2)
        ids.setdefault(old, str(len(ids) + 1))
    schema = re.sub(r'(?<="__id__": )\d+|(?<="file": ")\d+(?=\.npy")', lambda m: ids[m.group(0)], schema)
    renamed = {(ids[n[:-4]] + ".npy" if n.endswith(".npy") and n[:-4] in ids else n): data
               for n, data in entries.items()}
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in [("schema.json", schema.encode("utf-8")), *sorted(renamed.items())]:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)


def load_model(path: Any) -> StanceModel:
    """Load a skops stance model through the registry's check (`registry.load_verified_skops`: its sha256 must match
    the one in the version folder's metrics.json, every type must be in `TRUSTED_TYPES`), then refuse learned state
    `fit` cannot produce; every refusal is a one-line `ModelFileError`."""
    path = Path(path)
    obj: StanceModel = load_verified_skops(path, TRUSTED_TYPES, StanceModel, require_hash=True)
    problem = check_state(obj)
    if problem:
        raise ModelFileError(path, f"{problem}: the model file is corrupt or has been tampered with")
    obj.source_file_ = str(path)
    return obj
