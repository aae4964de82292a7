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

`embed_quality.py` asks the same about answer vectors with the base model's decision rules (and torch vs onnx);
this script measures it on the shipped tagging path (the real-answer head) and reuses its helpers
(`pipeline.embed.passages.passage_mean_vectors`, `embed_quality.micro_f1_boot` / `paired_ci`).

    .venv/bin/python benchmarks/answer_vectors_from_passages.py     # -> results/answer_vectors_from_passages.json
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import embed_quality as eq  # noqa: E402
import framework_devsuite as fw  # noqa: E402
import tags_real_answers as tra  # noqa: E402

from pipeline import config  # noqa: E402
from pipeline.clean.segments import text_passages  # noqa: E402
from pipeline.embed.passages import passage_mean_vectors  # noqa: E402
from pipeline.io import write_json  # noqa: E402
from pipeline.params import CleanParams  # noqa: E402
from pipeline.tagger import features  # noqa: E402

WHOLE_ENCODE = features.encode
N_BOOT = 1000


def encode_from_passages(texts: Any, params: dict[str, Any], cache_dir: Path | None = None) -> np.ndarray:
    """`features.encode`, except that a text of several passages (the clean stage's segment rules) gets the
    normalised mean of its passage vectors."""
    texts = [str(t) for t in texts]
    cp = CleanParams()
    parts = [[t[a:b] for a, b in text_passages(t, cp.segment_max_words, cp.segment_min_words)] for t in texts]
    owners = np.array([i for i, ps in enumerate(parts) for _ in ps], dtype=np.int64)
    flat = [x for ps in parts for x in ps]
    whole = WHOLE_ENCODE(texts, params, cache_dir)
    return passage_mean_vectors(whole, WHOLE_ENCODE(flat, params, cache_dir), owners) if flat else whole


def paired(df: Any, a: dict[str, list[list[str]]], b: dict[str, list[list[str]]], seed: int,
           names: tuple[str, str] = ("whole", "from_passages")) -> dict[str, Any]:
    """micro-F1 of a and b per kind (mean of the two annotators) and the paired bootstrap CI of b - a (the same
    resamples for both, `embed_quality.micro_f1_boot`)."""
    everyone = np.ones(len(df), dtype=bool)
    out: dict[str, Any] = {}
    for kind in tra.KINDS:
        f = [tra.with_ci(df, pred, everyone, 0, seed)[kind]["f1"] for pred in (a, b)]
        diff = eq.micro_f1_boot(df, b, kind, N_BOOT, seed) - eq.micro_f1_boot(df, a, kind, N_BOOT, seed)
        out[kind] = {names[0]: f[0], names[1]: f[1], "difference": round(f[1] - f[0], 4),
                     "difference_ci95": eq.rounded_ci(diff)}
    return out


def framework_part(seed: int) -> dict[str, Any]:
    """Zero-shot framework mapping with whole-answer vs mean-of-segment answer vectors, per dev-suite question."""
    from pipeline.embed import encode
    from pipeline.themes.stage import map_framework

    params = config.load_params()
    cache = config.cache_dir()
    suite = fw.load_suite(Path(tra.shared_dir()), params, lambda texts: encode(list(texts), params, cache))
    out: dict[str, Any] = {}
    for q, case in suite.items():
        ans, seg, avec, svec = case["ans"], case["seg"], np.asarray(case["avec"]), np.asarray(case["svec"])
        owner_of = {a: i for i, a in enumerate(ans["answer_id"].astype(str))}
        owners = np.array([owner_of[a] for a in seg["answer_id"].astype(str)], dtype=np.int64)
        mean_vec = passage_mean_vectors(avec, svec, owners)
        f = {name: fw.per_answer_f1(case, map_framework(ans, seg, v, svec, case["frame"], params).theme_assignments)
             for name, v in (("whole", avec), ("from_passages", mean_vec))}
        d = f["from_passages"] - f["whole"]
        out[q] = {"answers": len(ans), "answers_with_several_segments": int((np.bincount(owners) > 1).sum()),
                  "whole": round(float(f["whole"].mean()), 4),
                  "from_passages": round(float(f["from_passages"].mean()), 4),
                  "difference": round(float(d.mean()), 4), "difference_ci95": eq.paired_ci(d, seed)}
    return out


def head_cv(df: Any, half: np.ndarray, params: dict[str, Any], seed: int,
            overrides: dict[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, list[list[str]]]]:
    """`tags_real_answers.head_cv` (both annotators' labels) and its per-answer codes."""
    pred: dict[str, list[list[str]]] = {}
    result = tra.head_cv(df, half, params, (1, 2), N_BOOT, seed, overrides, predictions=pred)
    return result, pred


def main() -> None:
    t0 = time.perf_counter()
    params = config.load_params(overrides={"tag": {"model_version": tra.WRITTEN_ONLY_MODEL}})
    df = tra.load_devset(tra.shared_dir()).reset_index(drop=True)
    half = tra.halves(df)
    seed = int(params.get("seed", 0))
    cp = CleanParams()
    several = sum(len(text_passages(str(t), cp.segment_max_words, cp.segment_min_words)) > 1 for t in df["text"])
    results: dict[str, Any] = {}
    preds: dict[str, dict[str, list[list[str]]]] = {}
    for name, fn in (("whole", WHOLE_ENCODE), ("from_passages", encode_from_passages)):
        features.encode = fn  # type: ignore[assignment]
        try:
            results[name], preds[name] = head_cv(df, half, params, seed)
        finally:
            features.encode = WHOLE_ENCODE  # type: ignore[assignment]
    # the tag stage's own sentence passages (<= 20 words) vs passages of the segments' size (30 words): with the
    # latter they would mostly be the segments the embed stage encodes anyway
    results["segment_sized_passages"], preds["segment_sized_passages"] = head_cv(
        df, half, params, seed, {"sentence_max_words": cp.segment_max_words})
    out = {"dev_set": "devsets/tags_real_answers (200 real answers, two annotators)", "answers": len(df),
           "answers_with_several_passages": int(several), "protocol": "real-answer head 2-fold CV (both annotators'"
           " labels), written-example base model, all variants in one run; micro-F1 is the mean over the two "
           "annotators", "cross_validated": {k: v["cross_validated"] for k, v in results.items()},
           "paired": paired(df, preds["whole"], preds["from_passages"], seed),
           "paired_segment_sized_passages": paired(df, preds["whole"], preds["segment_sized_passages"], seed,
                                                   ("sentence_passages_20_words", "segment_sized_30_words")),
           "framework_zero_shot": framework_part(seed),
           "seconds": round(time.perf_counter() - t0, 1), "command": "benchmarks/answer_vectors_from_passages.py"}
    path = ROOT / "benchmarks" / "results" / "answer_vectors_from_passages.json"
    write_json(out, path)
    print(path)
    for key in ("paired", "paired_segment_sized_passages", "framework_zero_shot"):
        print(key, out[key])


if __name__ == "__main__":
    main()
