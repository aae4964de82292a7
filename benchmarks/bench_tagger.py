"""Benchmark of the tagger: tagging speed with embeddings given, training time, model size, peak memory.

- tag: 10,000 real consultation answers (Australia's Safe and Responsible AI consultation, repeated to reach
  10k when needed) with their embeddings given (random unit vectors: the cost of scoring does not depend on
  the values), through the stage's pure core `tag_texts` (scores, the decision rules of params.yaml, mentions) using
  the CURRENT shipped model; mentions found by regex (in the pipeline they come precomputed from clean).
  Also a 1,000-answer run of long texts split into segments (max aggregation).
- train: `train.fit_on` on data/training/*.csv with embeddings cached (a first, uncached run also encodes).
- dev: a realistic check on 41 real answers labelled by one of us (benchmarks/tagger_dev_labels.csv holds ids
  and labels only; the texts are read at run time from ../shared: the 11 answers of the seed ITU response
  and paragraphs of NETmundial 2014 contributions), tagged like `wsis tag --input` (sentence passages, max).
  One annotator, no adjudication: read it as a trend, not as the judged score.

    .venv/bin/python benchmarks/bench_tagger.py [--n 10000] [--no-train] [--no-dev]

Writes benchmarks/results/bench_tagger.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WSIS_NO_PROGRESS", "1")

from pipeline import config  # noqa: E402
from pipeline.tagger import features, stage, train  # noqa: E402
from pipeline.tagger.taxonomy import split_codes  # noqa: E402

CORPUS = "corpora/au-safe-responsible-ai-2023/srai_shortened.csv"


def _shared() -> Path:
    env = os.environ.get("WSIS_SHARED_DIR")
    return Path(env) if env else ROOT.parent / "shared"


def load_texts(n: int) -> list[str]:
    path = _shared() / CORPUS
    if path.exists():
        texts = pd.read_csv(path, dtype=str, keep_default_na=False)["sub_value"].tolist()
    else:  # no ../shared: invented texts of similar length
        texts = [f"Answer {i}: broadband access, digital skills and cybersecurity matter for SDG {i % 17 + 1}."
                 for i in range(1000)]
    reps = -(-n // len(texts))
    return (texts * reps)[:n]


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def bench_tag(n: int, params: dict) -> dict:
    tagger, folder = train.load_model(params)
    rules = stage.DecisionRules.from_params(train.tag_params(params))  # what `wsis tag` decides with
    texts = load_texts(n)
    dim = np.asarray(tagger.label_vectors).shape[1]
    vecs = unit_vectors(n, dim, 1)
    t0 = time.perf_counter()
    mentions = [features.find_mentions(t) for t in texts]
    t_mentions = time.perf_counter() - t0
    best = []
    for _ in range(3):
        t0 = time.perf_counter()
        res = stage.tag_texts(tagger, texts, vecs, mentions, rules=rules)
        stage.label_strings(tagger, res.pred)
        best.append(time.perf_counter() - t0)
    # long texts: 1,000 answers of ~4 segments each, max-aggregated
    long_texts = [" ".join(texts[i: i + 8]) for i in range(0, 8000, 8)][:1000]
    segs, owners = [], []
    for i, t in enumerate(long_texts):
        parts = features.segment_text(t)
        segs += parts
        owners += [i] * len(parts)
    t0 = time.perf_counter()
    stage.tag_texts(tagger, long_texts, unit_vectors(len(long_texts), dim, 2),
                    [([], [])] * len(long_texts), segs, unit_vectors(len(segs), dim, 3),
                    np.asarray(owners), "max", rules=rules)
    t_long = time.perf_counter() - t0
    return {
        "model": folder.name, "n_texts": n, "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 1),
        "tag_seconds_best_of_3": round(min(best), 3), "tag_seconds_runs": [round(b, 3) for b in best],
        "texts_per_second": round(n / min(best)), "mentions_regex_seconds": round(t_mentions, 3),
        "long_docs": len(long_texts), "long_segments": len(segs), "long_seconds": round(t_long, 3),
        "model_file_bytes": (folder / "tagger.skops").stat().st_size,
    }


def bench_train(params: dict) -> dict:
    data = train.assemble([], train.tag_params(params))
    t0 = time.perf_counter()
    _, info = train.fit_on(data, params)
    total = time.perf_counter() - t0
    held = info.get("heldout", {})
    return {
        "n_train": info["n_train"], "n_heldout": info["n_heldout"], "embed_seconds": info["embed_seconds"],
        "fit_seconds": info["fit_seconds"], "total_seconds": round(total, 2),
        "heldout_action_lines_micro_f1": held.get("action_lines", {}).get("micro_f1"),
        "heldout_sdgs_micro_f1": held.get("sdgs", {}).get("micro_f1"),
        "heldout_sdg_named_accuracy": held.get("sdg_named_accuracy"),
    }


def dev_texts() -> dict[str, str]:
    """id -> text of the dev set, extracted deterministically from ../shared."""
    out: dict[str, str] = {}
    seed = (_shared() / "seed" / "itu-wsis20-response-83.txt").read_text(encoding="utf-8")
    parts = re.split(r"\n(\d+)\. ", seed)
    for i in range(1, len(parts) - 1, 2):
        n, body = int(parts[i]), parts[i + 1].split("\n\n", 1)
        if n >= 4 and len(body) > 1:
            out[f"seed83-q{n}"] = " ".join(body[1].split("\n##")[0].split())
    for f in sorted(glob.glob(str(_shared() / "corpora" / "netmundial-2014" / "netmundial-*.txt"))):
        text = Path(f).read_text(encoding="utf-8", errors="ignore")
        paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text)]
        paras = [p for p in paras if 50 <= len(p.split()) <= 160]
        for k, p in enumerate(paras[1:7:3]):
            out[f"{Path(f).name[:14]}-p{k}"] = p
    return out


def bench_dev(params: dict) -> dict:
    gold = pd.read_csv(ROOT / "benchmarks" / "tagger_dev_labels.csv", dtype=str, keep_default_na=False)
    texts = dev_texts()
    gold = gold[gold["id"].isin(texts)].reset_index(drop=True)
    tagger, folder = train.load_model(params)
    frame = pd.DataFrame({"id": gold["id"], "text": [texts[i] for i in gold["id"]]})
    out, _ = stage.tag_adhoc_frame(tagger, frame, params)
    ids = list(tagger.label_ids)
    pred = train.LabelledSet(pd.DataFrame({"labels": [
        split_codes(a, "action_line") + split_codes(s, "sdg") for a, s in zip(out["action_lines"], out["sdgs"],
                                                                             strict=True)]})).matrix(ids)
    ref = train.LabelledSet(pd.DataFrame({"labels": [
        split_codes(a, "action_line") + split_codes(s, "sdg") for a, s in zip(gold["action_lines"],
                                                                             gold["sdgs"], strict=True)]}))
    m = train.evaluate_predictions(ref.matrix(ids), pred, ids)
    return {"model": folder.name, "n": m["n"],
            "action_lines": {k: m["action_lines"][k] for k in ("micro_precision", "micro_recall", "micro_f1")},
            "sdgs": {k: m["sdgs"][k] for k in ("micro_precision", "micro_recall", "micro_f1")}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--no-train", action="store_true")
    ap.add_argument("--no-dev", action="store_true")
    args = ap.parse_args()
    params = config.load_params()
    result = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_average_start": os.getloadavg()},
        "tag": bench_tag(args.n, params),
    }
    if not args.no_train:
        result["train"] = bench_train(params)
    if not args.no_dev and (_shared() / "seed").is_dir():
        result["dev_real_answers"] = bench_dev(params)
    result["machine"]["load_average_end"] = os.getloadavg()
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out = ROOT / "benchmarks" / "results" / "bench_tagger.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
