"""`stance_of`: the stance of answers toward targets, for the themes stage and the report (see the package doc)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.registry import STANCE
from pipeline.stance import features as feats
from pipeline.stance.model import STANCES, StanceModel, default_encoder, load_model

_LOCK = threading.Lock()
_LOADED: dict[str, StanceModel] = {}


def current_model_file(models_dir: Path | None = None) -> Path:
    """The model file of the version `models/stance/CURRENT` names (the registry's; `models_dir`: another folder)."""
    registry = STANCE if models_dir is None else STANCE.at(models_dir)
    return registry.model_file("current")


def get_model(path: Path | None = None) -> StanceModel:
    """The shipped (or given) model, loaded and verified once per process."""
    file = Path(path) if path is not None else current_model_file()
    key = str(file.resolve())
    with _LOCK:
        model = _LOADED.get(key)
        if model is None:
            model = _LOADED[key] = load_model(file)
        return model


def stance_of(
    answers: Sequence[str],
    targets: str | Sequence[str],
    answer_vectors: np.ndarray | None = None,
    model: StanceModel | None = None,
    cache_dir: Path | None = None,
) -> pd.DataFrame:
    """Stance of each answer toward its target: a DataFrame row-aligned with `answers`.

    Columns: `stance` (support | oppose | conditional | neutral), `confidence` (probability of that stance),
    and `p_support`, `p_oppose`, `p_conditional`, `p_neutral`. `targets` is one proposal for all answers or
    one per answer. `answer_vectors` (n, 384), unit-norm all-MiniLM-L6-v2 vectors of the answers as the embed
    stage stores them, save encoding whole answers; sentence vectors always come through the embedding
    cache (`cache_dir`, default the project's). Blank answers are `neutral` with confidence 1.
    """
    texts = ["" if a is None or (isinstance(a, float) and np.isnan(a)) else str(a) for a in answers]
    n = len(texts)
    tlist = [targets] * n if isinstance(targets, str) else [str(t) for t in targets]
    if len(tlist) != n:
        raise ValueError(f"{len(tlist)} targets for {n} answers (give one target or one per answer)")
    cols = ["stance", "confidence"] + [f"p_{s}" for s in STANCES]
    if n == 0:
        return pd.DataFrame({c: pd.Series(dtype=object if c == "stance" else float) for c in cols})
    m = model if model is not None else get_model()
    blank = np.array([not t.strip() for t in texts])
    proba = np.zeros((n, len(STANCES)))
    live = np.flatnonzero(~blank)
    if len(live):
        vecs = None if answer_vectors is None else np.asarray(answer_vectors, dtype=np.float32)[live]
        if vecs is not None and vecs.shape[1] != 384:
            raise ValueError(f"answer_vectors are {vecs.shape[1]}-d; the stance model works in the 384-d "
                             "all-MiniLM-L6-v2 space (pass None to let it embed the answers)")
        X = feats.featurize([tlist[i] for i in live], [texts[i] for i in live],
                            default_encoder(m.embed, cache_dir), answer_vectors=vecs, top_k=int(m.top_k))
        p = m.predict_proba(X)
        order = [list(m.classes_).index(s) for s in STANCES]
        proba[live] = p[:, order]
    proba[blank, STANCES.index("neutral")] = 1.0
    best = proba.argmax(axis=1)
    out: dict[str, Any] = {"stance": [STANCES[i] for i in best], "confidence": proba[np.arange(n), best]}
    for j, s in enumerate(STANCES):
        out[f"p_{s}"] = proba[:, j]
    return pd.DataFrame(out)


def stance_summary(stances: Sequence[str]) -> str:
    """"14 support, 3 oppose, 2 conditional, 5 neutral" for a table cell (zero counts left out, fixed order)."""
    counts = pd.Series(list(stances), dtype=object).value_counts()
    parts = [f"{int(counts[s])} {s}" for s in STANCES if s in counts.index and counts[s] > 0]
    return ", ".join(parts) if parts else "no answers"
