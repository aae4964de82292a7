"""Does a faster way of embedding hold quality? The embedding variants side by side, in one run, on the dev sets:

- backends: `torch` (the reference the tagger and stance models were trained on) vs `onnx` (int8 export);
- answer vectors: `whole` (the answer text encoded) vs `passage_mean` (an answer of 2+ clean passages gets the
  normalised mean of its passages' vectors: one encode of each long text saved).

Dev sets (texts read at run time from ../shared, never stored):
1. tags: `../shared/devsets/tags_real_answers` (200 answers, two annotators), scored as in
   `benchmarks/tags_real_answers.py` (model trained on written examples only; whole text + sentence passages);
   2-fold cross-validated micro-F1 (decision parameters tuned on one half, reported on the other), 95% bootstrap
   CIs, and the paired bootstrap CI of the difference to torch/whole (same resamples).
2. framework: `../shared/devsets/framework_au_srai` Q20 and Q11 zero-shot samples-F1 (shipped parameters, and
   parameters tuned on the other question), as in `benchmarks/framework_devsuite.py`, with the paired CI of the
   difference to torch/whole.
3. stance (`--parts stance`, backends only): the shipped stance model with its sentence and answer vectors from
   torch or onnx, as in `benchmarks/stance_eval.py`: AU Q20 accuracy on the held-out half (both coders) and TRAI
   (40 labelled submissions), with the paired bootstrap CI of the difference to torch.

    .venv/bin/python benchmarks/embed_quality.py [--n-boot 1000]            # -> results/embed_quality.json
    .venv/bin/python benchmarks/embed_quality.py --parts stance --out embed_quality_stance
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import framework_devsuite as fw  # noqa: E402
import tags_real_answers as tra  # noqa: E402

from pipeline import config  # noqa: E402
from pipeline.embed.passages import passage_mean_vectors  # noqa: E402
from pipeline.evaluate import binarize, bootstrap_multilabel, bootstrap_weights, percentile_ci  # noqa: E402
from pipeline.tagger import features, stage, train  # noqa: E402

BACKENDS = ("torch", "onnx")
ANSWER_VECTORS = ("whole", "passage_mean")


def clean_segments(texts: list[str], params: dict[str, Any]) -> tuple[list[str], np.ndarray]:
    """The clean stage's passages of each text (what embeddings.npz holds as segments), with owners."""
    from bench_themes import _prepare

    long = pd.DataFrame({"response_id": [f"r{i}" for i in range(len(texts))], "question_id": "q",
                         "answer": texts})
    ans, seg, _, _ = _prepare(long, params, lambda t: np.zeros((len(t), 1), dtype=np.float32))
    owner_of = {a: i for i, a in enumerate(ans["answer_id"].astype(str))}
    seg = seg[~seg["is_nonanswer"].astype(bool)]
    return seg["text"].fillna("").astype(str).tolist(), np.array(
        [owner_of[a] for a in seg["answer_id"].astype(str)], dtype=np.int64)


def with_answer_vectors(whole: np.ndarray, seg_vecs: np.ndarray, owners: np.ndarray, mode: str) -> np.ndarray:
    return whole if mode == "whole" else passage_mean_vectors(whole, seg_vecs, owners)


# ------------------------------------------------------------------------------------------------- tags
def tags_scored(df: pd.DataFrame, params: dict[str, Any], mode: str, segs: tuple[list[str], np.ndarray]
                ) -> tra.Scored:
    tagger, _ = train.load_model(params)
    section = train.tag_params(params)
    texts = df["text"].astype(str).tolist()
    skip = np.array([not t.strip() for t in texts])
    sents, owners = stage.sentence_passages(texts, int(section.get("sentence_max_words", 20)), skip)
    enc_params = train.encoder_params(params, tagger)
    vecs = features.encode(texts + sents + segs[0], enc_params, config.cache_dir())
    n, m = len(texts), len(sents)
    answer = with_answer_vectors(vecs[:n], vecs[n + m:], segs[1], mode)
    proba = tagger.predict_proba(texts, answer)
    seg_proba = tagger.predict_proba(sents, vecs[n:n + m]) if sents else np.zeros((0, proba.shape[1]))
    return tra.Scored(tagger, texts, proba, seg_proba, owners, [features.find_mentions(t) for t in texts],
                      np.array([len(t.split()) for t in sents], dtype=np.int64))


def tags_cv(df: pd.DataFrame, s: tra.Scored, params: dict[str, Any]) -> dict[str, list[list[str]]]:
    """2-fold CV predictions: decision parameters tuned on one half, applied to the other."""
    import dataclasses

    half = tra.halves(df)
    base = stage.DecisionRules.from_params(train.tag_params(params))
    points = tra.grid_points()
    preds = {k: tra.predict(s, params, dataclasses.replace(base, **pt)) for k, pt in enumerate(points)}
    cv: dict[str, list[list[str]]] = {k: [[] for _ in range(len(df))] for k in tra.KINDS}
    for h in (0, 1):
        k, _ = tra.tune(df, preds, half == h)
        for kind in tra.KINDS:
            for i in np.flatnonzero(half != h):
                cv[kind][i] = preds[k][kind][i]
    return cv


def micro_f1_boot(df: pd.DataFrame, pred: dict[str, list[list[str]]], kind: str, n_boot: int, seed: int
                  ) -> np.ndarray:
    """Micro-F1 per bootstrap resample, mean of the two annotators (fixed seed: same resamples for every call)."""
    out = []
    for a in (1, 2):
        g = tra.gold(df, kind, a)
        labels = sorted({x for r in g + pred[kind] for x in r})
        yt, _ = binarize(g, labels)
        yp, _ = binarize(pred[kind], labels)
        out.append(bootstrap_multilabel(yt, yp, n_boot, seed)["micro_f1"])
    return np.mean(np.vstack(out), axis=0)


def rounded_ci(values: np.ndarray) -> list[float] | None:
    ci = percentile_ci(np.asarray(values))
    return [round(x, 4) for x in ci] if ci else None


# -------------------------------------------------------------------------------------------- framework
def framework_figures(params: dict[str, Any], mode: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Zero-shot figures (shipped and tuned-on-the-other-question) and per-answer F1 under shipped params."""
    from pipeline.embed import encode
    from pipeline.themes.stage import map_framework

    cache = config.cache_dir()

    def enc(texts: list[str]) -> np.ndarray:
        return encode(list(texts), params, cache)

    suite = fw.load_suite(tra.shared_dir(), params, enc)
    if mode == "passage_mean":
        for case in suite.values():
            owner_of = {a: i for i, a in enumerate(case["ans"]["answer_id"].astype(str))}
            owners = np.array([owner_of[a] for a in case["seg"]["answer_id"].astype(str)], dtype=np.int64)
            real = ~case["seg"]["is_nonanswer"].astype(bool).to_numpy()
            case["avec"] = passage_mean_vectors(np.asarray(case["avec"]), np.asarray(case["svec"])[real],
                                                owners[real])
    zs, tuned = fw.zero_shot(suite, params)
    per_answer = {}
    for q, case in suite.items():
        args = (case["ans"], case["seg"], case["avec"], case["svec"], case["frame"])
        per_answer[q] = fw.per_answer_f1(case, map_framework(*args, params).theme_assignments)
    return {"shipped": zs["shipped"], "tuned_on_other_question": {
        q: {k: v[k] for k in ("samples_f1", "ci", "chosen_on")} for q, v in tuned.items()}}, per_answer


def paired_ci(diff: np.ndarray, seed: int = 0) -> list[float]:
    boot = np.concatenate([w @ diff / len(diff) for w in bootstrap_weights(len(diff), 2000, seed)])
    out = percentile_ci(boot)
    return [round(x, 4) for x in out] if out else []


def stance_figures(n_boot: int) -> dict[str, Any]:
    """Stance accuracy with the model's vectors from torch vs onnx (same model, same answers, same run)."""
    import copy

    import stance_eval as se

    from pipeline.stance import stance_of
    from pipeline.stance.api import get_model
    from pipeline.stance.model import DEFAULT_EMBED

    answers, g1, g2 = se.load_q20()
    held = ~np.array([se.in_tuning_half(r) for r in answers.response_id])
    texts, trai_gold, _ = se.load_trai()
    out: dict[str, Any] = {"q20_held_out_answers": int(held.sum()), "trai_submissions": len(texts)}
    correct: dict[str, dict[str, np.ndarray]] = {}
    for backend in BACKENDS:
        model = copy.copy(get_model())
        model.embed = {**(model.embed or DEFAULT_EMBED), "backend": backend}
        q20 = stance_of(list(answers.answer), se.Q20_TARGET, model=model).stance.to_numpy(dtype=object)
        trai = stance_of(texts, se.TRAI_TARGET, model=model).stance.to_numpy(dtype=object)
        correct[backend] = {"q20_coder1": (q20 == g1)[held].astype(float), "q20_coder2": (q20 == g2)[held].astype(
            float), "trai": (trai == trai_gold).astype(float)}
        out[backend] = {k: {"accuracy": round(float(v.mean()), 4), "ci": se.scores(
            g1[held] if k == "q20_coder1" else g2[held] if k == "q20_coder2" else trai_gold,
            (q20[held] if k.startswith("q20") else trai), n_boot)["accuracy_ci"]} for k, v in correct[backend].items()}
    for k, v in correct["onnx"].items():
        out["onnx"][k]["minus_torch_ci"] = paired_ci(v - correct["torch"][k])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", default="embed_quality")
    ap.add_argument("--parts", default="tags,framework", help="tags,framework and/or stance")
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.parts == "stance":
        from pipeline.io import write_json

        res = {"command": f"benchmarks/embed_quality.py --parts stance --out {args.out}",
               "stance": stance_figures(args.n_boot), "seconds": round(time.perf_counter() - t0, 1),
               "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        print(res["stance"], flush=True)
        write_json(res, ROOT / "benchmarks" / "results" / f"{args.out}.json")
        return
    shared = tra.shared_dir()
    base = config.load_params(overrides={"tag": {"model_version": tra.WRITTEN_ONLY_MODEL}})
    seed = int(base.get("seed", 0))
    df = tra.load_devset(shared).reset_index(drop=True)
    segs = clean_segments(df["text"].astype(str).tolist(), base)
    result: dict[str, Any] = {"command": "benchmarks/embed_quality.py" + (
        f" --n-boot {args.n_boot}" if args.n_boot != 1000 else ""),
        "tags_devset": "../shared/devsets/tags_real_answers (200 answers)", "tags_model": tra.WRITTEN_ONLY_MODEL,
        "framework_devset": "../shared/devsets/framework_au_srai (Q20, Q11; 120 answers each)",
        "answers_with_2plus_passages": int((np.bincount(segs[1], minlength=len(df)) >= 2).sum()),
        "variants": {}}
    ref_boot: dict[str, np.ndarray] = {}
    ref_fw: dict[str, np.ndarray] = {}
    for backend in BACKENDS:
        for mode in ANSWER_VECTORS:
            name = f"{backend}/{mode}"
            t1 = time.perf_counter()
            params = config.deep_merge(base, {"embed": {"backend": backend}})
            s = tags_scored(df, params, mode, segs)
            cv = tags_cv(df, s, params)
            everyone = np.ones(len(df), dtype=bool)
            tags = tra.with_ci(df, cv, everyone, args.n_boot, seed)
            for kind in tra.KINDS:
                boot = micro_f1_boot(df, cv, kind, args.n_boot, seed)
                if name == "torch/whole":
                    ref_boot[kind] = boot
                else:
                    tags[kind]["f1_minus_torch_whole_ci"] = rounded_ci(boot - ref_boot[kind])
            frame, per_answer = framework_figures(params, mode)
            for q, s_q in per_answer.items():
                if name == "torch/whole":
                    ref_fw[q] = s_q
                else:
                    frame["shipped"][q]["minus_torch_whole"] = round(float((s_q - ref_fw[q]).mean()), 4)
                    frame["shipped"][q]["minus_torch_whole_ci"] = paired_ci(s_q - ref_fw[q])
            result["variants"][name] = {"tags_cross_validated": tags, "framework_zero_shot": frame,
                                        "seconds": round(time.perf_counter() - t1, 1)}
            print(name, {k: tags[k]["f1"] for k in tra.KINDS},
                  {q: v["samples_f1"] for q, v in frame["shipped"].items()}, flush=True)
    result["seconds"] = round(time.perf_counter() - t0, 1)
    result["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    from pipeline.io import write_json

    write_json(result, ROOT / "benchmarks" / "results" / f"{args.out}.json")


if __name__ == "__main__":
    main()
