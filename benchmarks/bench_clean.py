"""Benchmark of the clean stage on the Global Dialogues corpus (51,984 short open answers).

Measures end-to-end `clean_answers` throughput (answers/s), the spaCy pass on its own, the
duplicate detector, peak memory (ru_maxrss), and records machine info and load average (the
machine is shared, so timings are noisy). Writes benchmarks/results/clean.json.

    .venv/bin/python benchmarks/bench_clean.py [--n 10000] [--n-process 1] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.clean import clean_answers  # noqa: E402
from pipeline.clean.duplicates import find_duplicates  # noqa: E402
from pipeline.clean.nlp import analyse_texts, load_nlp  # noqa: E402
from pipeline.config import load_params  # noqa: E402

CORPUS = "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"


def _shared() -> Path:
    env = os.environ.get("WSIS_SHARED_DIR")
    return Path(env) if env else ROOT.parent / "shared"


def load_gd(n: int | None, seed: int) -> pd.DataFrame:
    """Global Dialogues as an answers frame (participant = respondent, question id as given)."""
    raw = pd.read_csv(_shared() / CORPUS, dtype=str, keep_default_na=False)
    if n and n < len(raw):
        raw = raw.sample(n=n, random_state=seed)
    return pd.DataFrame({
        "response_id": raw["participant_id"].to_numpy(),
        "question_id": (raw["dialogue"] + "-" + raw["question_id"]).to_numpy(),
        "question_text": "",
        "answer": raw["response_text"].to_numpy(),
        "stakeholder_group": "individual",
        "is_document": False,
    }).drop_duplicates(["response_id", "question_id"]).reset_index(drop=True)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=0, help="sample size (0 = full corpus)")
    ap.add_argument("--n-process", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/clean.json")
    args = ap.parse_args()

    params = load_params()
    params["clean"]["n_process"] = args.n_process
    params["clean"]["batch_size"] = args.batch_size
    load_before = os.getloadavg()
    answers = load_gd(args.n or None, params["seed"])
    n = len(answers)
    words = answers["answer"].str.split().str.len().sum()
    print(f"{n} answers, {words} words", flush=True)

    t = time.perf_counter()
    load_nlp(params["clean"]["spacy_model"])
    model_load_s = time.perf_counter() - t

    t = time.perf_counter()
    clean, segments = clean_answers(answers, params)
    total_s = time.perf_counter() - t
    peak_after_clean = _peak_mb()

    texts = clean["text_clean"].tolist()
    skip = clean["is_nonanswer"].tolist()
    t = time.perf_counter()
    analyse_texts(texts, skip, params["clean"]["spacy_model"], batch_size=args.batch_size,
                  n_process=args.n_process)
    spacy_s = time.perf_counter() - t

    t = time.perf_counter()
    dups = find_duplicates(clean["answer_id"].tolist(), texts, clean["response_id"].tolist(),
                           [not s for s in skip], threshold=params["clean"]["near_duplicate_threshold"],
                           min_words=params["clean"]["min_duplicate_words"])
    dup_s = time.perf_counter() - t

    result = {
        "corpus": CORPUS,
        "sample": args.n or "full",
        "answers": n,
        "words": int(words),
        "spacy_model": params["clean"]["spacy_model"],
        "n_process": args.n_process,
        "batch_size": args.batch_size,
        "model_load_s": round(model_load_s, 2),
        "clean_answers_s": round(total_s, 2),
        "clean_answers_per_s": round(n / total_s, 1),
        "spacy_pass_s": round(spacy_s, 2),
        "spacy_pass_answers_per_s": round((n - sum(skip)) / spacy_s, 1),
        "spacy_pass_words_per_s": round(int(words) / spacy_s, 0),
        "duplicates_s": round(dup_s, 2),
        "peak_rss_mb": round(max(peak_after_clean, _peak_mb()), 0),
        "outputs": {
            "nonanswers": int(clean["is_nonanswer"].sum()),
            "nonanswer_reasons": {str(k): int(v) for k, v in
                                  clean.loc[clean["is_nonanswer"], "nonanswer_reason"]
                                  .value_counts().items()},
            "dup_groups": int(pd.Series(dups.group).replace("", pd.NA).nunique()),
            "dup_kinds": {str(k): int(v) for k, v in clean["dup_kind"].value_counts().items()
                          if k},
            "languages_top": {str(k): int(v) for k, v in
                              clean["language"].value_counts().head(8).items()},
            "segments": len(segments),
        },
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "shared 2-core machine: other engineers' jobs run concurrently; see loadavg",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
