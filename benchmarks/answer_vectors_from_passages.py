"""Would answer vectors built from passage vectors work as well as whole-answer vectors? (issue 11, "encode once")

An answer of several passages is encoded today twice: whole (its answer vector) and passage by passage (segments).
Building its vector as the normalised mean of its passage vectors would save the whole-answer encoding (about half
of the encoder's tokens on an ITU-size batch). This measures what that does to tags on the real-answer dev set,
with the real-answer head's 2-fold CV of `tags_real_answers.py` (head fitted on one half, scored on the other; the
written-example base model; nothing tuned here), both variants in one run, and a paired bootstrap of the
difference in micro-F1 over answers; and on framework mode's zero-shot mapping (shipped parameters, nothing tuned)
on the framework dev suite (AU Q20, Q11), where the answer vector becomes the mean of the answer's real
segments (the clean stage's), with a paired bootstrap of the samples-F1 difference. Also: the tag stage's sentence
passages cut at the segments' size (`tag.sentence_max_words` 30 instead of 20), which would let them coincide with
the segments the embed stage encodes anyway. Nothing in the pipeline changes.

    .venv/bin/python benchmarks/answer_vectors_from_passages.py     # -> results/answer_vectors_from_passages.json
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from pipeline import config  # noqa: E402
from pipeline.clean.segments import text_passages  # noqa: E402
from pipeline.embed.vectors import normalise  # noqa: E402
from pipeline.params import CleanParams  # noqa: E402
from pipeline.tagger import features  # noqa: E402

_spec = importlib.util.spec_from_file_location("tags_real_answers", HERE / "tags_real_answers.py")
assert _spec is not None and _spec.loader is not None
tra = importlib.util.module_from_spec(_spec)
sys.modules["tags_real_answers"] = tra  # its dataclasses look their module up
_spec.loader.exec_module(tra)

WHOLE_ENCODE = features.encode


def encode_from_passages(texts: Any, params: dict[str, Any], cache_dir: Path | None = None) -> np.ndarray:
    """`features.encode`, except that a text of several passages (the clean stage's segment rules) gets the
    normalised mean of its passage vectors."""
    texts = [str(t) for t in texts]
    cp = CleanParams()
    spans = [text_passages(t, cp.segment_max_words, cp.segment_min_words) for t in texts]
    parts = [[t[s:e] for s, e in sp] if len(sp) > 1 else [] for t, sp in zip(texts, spans, strict=True)]
    flat = [p for ps in parts for p in ps]
    vecs = WHOLE_ENCODE(texts, params, cache_dir)
    if flat:
        pv = WHOLE_ENCODE(flat, params, cache_dir)
        k = 0
        for i, ps in enumerate(parts):
            if ps:
                vecs[i] = normalise(pv[k:k + len(ps)].mean(axis=0, keepdims=True))[0]
                k += len(ps)
    return vecs


def paired(df: Any, a: dict[str, list[list[str]]], b: dict[str, list[list[str]]], n_boot: int,
           seed: int, names: tuple[str, str] = ("whole", "from_passages")) -> dict[str, Any]:
    """micro-F1 of b minus a per kind (mean of the two annotators), with a paired bootstrap over answers."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    n = len(df)
    for kind in tra.KINDS:
        golds = [tra.gold(df, kind, k) for k in (1, 2)]

        def f1(pred: list[list[str]], idx: np.ndarray, golds: list[Any] = golds) -> float:
            return float(np.mean([tra.micro_f1([g[i] for i in idx], [pred[i] for i in idx]) for g in golds]))

        everyone = np.arange(n)
        diffs = []
        for _ in range(n_boot):
            idx = rng.integers(0, n, n)
            diffs.append(f1(b[kind], idx) - f1(a[kind], idx))
        lo, hi = np.percentile(diffs, [2.5, 97.5])
        out[kind] = {names[0]: round(f1(a[kind], everyone), 4), names[1]: round(f1(b[kind], everyone), 4),
                     "difference": round(f1(b[kind], everyone) - f1(a[kind], everyone), 4),
                     "difference_ci95": [round(float(lo), 4), round(float(hi), 4)]}
    return out


def framework_part(seed: int) -> dict[str, Any]:
    """Zero-shot framework mapping with whole-answer vs mean-of-segment answer vectors, per dev-suite question."""
    spec = importlib.util.spec_from_file_location("framework_devsuite", HERE / "framework_devsuite.py")
    assert spec is not None and spec.loader is not None
    fds = importlib.util.module_from_spec(spec)
    sys.modules["framework_devsuite"] = fds
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(fds)
    from pipeline.embed import encode
    from pipeline.themes.stage import map_framework

    params = config.load_params()
    cache = config.cache_dir()
    suite = fds.load_suite(Path(tra.shared_dir()), params, lambda texts: encode(list(texts), params, cache))
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for q, case in suite.items():
        ans, seg, avec, svec = case["ans"], case["seg"], np.asarray(case["avec"]), np.asarray(case["svec"])
        owner = seg["answer_id"].astype(str).to_numpy()
        mean_vec = avec.copy()
        several = 0
        for i, aid in enumerate(ans["answer_id"].astype(str)):
            rows = np.flatnonzero(owner == aid)
            if len(rows) > 1:
                mean_vec[i] = normalise(svec[rows].mean(axis=0, keepdims=True))[0]
                several += 1
        f = {name: fds.per_answer_f1(case, map_framework(ans, seg, v, svec, case["frame"], params).theme_assignments)
             for name, v in (("whole", avec), ("from_passages", mean_vec))}
        d = f["from_passages"] - f["whole"]
        boots = [d[rng.integers(0, len(d), len(d))].mean() for _ in range(2000)]
        out[q] = {"answers": len(ans), "answers_with_several_segments": several,
                  "whole": round(float(f["whole"].mean()), 4),
                  "from_passages": round(float(f["from_passages"].mean()), 4),
                  "difference": round(float(d.mean()), 4),
                  "difference_ci95": [round(float(x), 4) for x in np.percentile(boots, [2.5, 97.5])]}
    return out


def main() -> None:
    t0 = time.perf_counter()
    shared = tra.shared_dir()
    params = config.load_params(overrides={"tag": {"model_version": tra.WRITTEN_ONLY_MODEL}})
    df = tra.load_devset(shared).reset_index(drop=True)
    half = tra.halves(df)
    seed = int(params.get("seed", 0))
    cp = CleanParams()
    several = sum(len(text_passages(str(t), cp.segment_max_words, cp.segment_min_words)) > 1 for t in df["text"])
    results: dict[str, Any] = {}
    preds: dict[str, dict[str, list[list[str]]]] = {}
    for name, fn in (("whole", WHOLE_ENCODE), ("from_passages", encode_from_passages)):
        features.encode = fn  # type: ignore[assignment]
        try:
            r = _head_cv_with_preds(df, half, params, seed)
        finally:
            features.encode = WHOLE_ENCODE  # type: ignore[assignment]
        results[name], preds[name] = r
    # the tag stage's own sentence passages (<= 20 words) vs passages of the segments' size (30 words): with the
    # latter they would mostly be the segments the embed stage encodes anyway (about 15% of the tokens saved)
    results["segment_sized_passages"], preds["segment_sized_passages"] = _head_cv_with_preds(
        df, half, params, seed, {"sentence_max_words": cp.segment_max_words})
    out = {"dev_set": "devsets/tags_real_answers (200 real answers, two annotators)", "answers": len(df),
           "answers_with_several_passages": int(several), "protocol": "real-answer head 2-fold CV (both annotators'"
           " labels), written-example base model, both variants in one run; micro-F1 is the mean over the two "
           "annotators", "cross_validated": {k: v["cross_validated"] for k, v in results.items()},
           "paired": paired(df, preds["whole"], preds["from_passages"], 1000, seed),
           "paired_segment_sized_passages": paired(df, preds["whole"], preds["segment_sized_passages"], 1000, seed,
                                                   ("sentence_passages_20_words", "segment_sized_30_words")),
           "framework_zero_shot": framework_part(seed),
           "seconds": round(time.perf_counter() - t0, 1), "command": "benchmarks/answer_vectors_from_passages.py"}
    path = tra.write_result("answer_vectors_from_passages", out) if hasattr(tra, "write_result") else None
    if path is None:
        import json

        path = HERE / "results" / "answer_vectors_from_passages.json"
        path.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(path)
    print(out["paired"])
    print(out["paired_segment_sized_passages"])
    print(out["framework_zero_shot"])


def _head_cv_with_preds(df: Any, half: np.ndarray, params: dict[str, Any], seed: int,
                        overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
    """`tags_real_answers.head_cv` with its per-answer predictions kept (for the paired bootstrap)."""
    captured: dict[str, Any] = {}
    original = tra.with_ci

    def keep(d: Any, pred: dict[str, list[list[str]]], rows: np.ndarray, n_boot: int, s: int) -> Any:
        if rows.all():
            captured["pred"] = {k: [list(x) for x in v] for k, v in pred.items()}
        return original(d, pred, rows, n_boot, s)

    tra.with_ci = keep
    try:
        r = tra.head_cv(df, half, params, (1, 2), 1000, seed, overrides)
    finally:
        tra.with_ci = original
    return r, captured["pred"]


if __name__ == "__main__":
    main()
