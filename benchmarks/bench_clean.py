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
from pipeline.clean.core import LAST_TIMINGS  # noqa: E402
from pipeline.clean.nlp import load_nlp  # noqa: E402
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
    steps = dict(LAST_TIMINGS)
    n_spacy = int((~clean["is_nonanswer"]).sum())
    spacy_wall, spacy_cpu = steps["spacy"]["wall_s"], steps["spacy"]["cpu_s"]
    cpu_total = sum(v["cpu_s"] for v in steps.values())

    result = {
        "corpus": CORPUS,
        "sample": args.n or "full",
        "answers": n,
        "words": int(words),
        "spacy_model": params["clean"]["spacy_model"],
        "n_process": args.n_process,
        "batch_size": args.batch_size,
        "model_load_s": round(model_load_s, 2),
        "clean_answers_wall_s": round(total_s, 2),
        "clean_answers_cpu_s": round(cpu_total, 2),
        "clean_answers_per_s_wall": round(n / total_s, 1),
        "clean_answers_per_cpu_s": round(n / cpu_total, 1),
        "spacy_pass_answers": n_spacy,
        "spacy_pass_wall_s": spacy_wall,
        "spacy_pass_cpu_s": spacy_cpu,
        "spacy_pass_answers_per_s_wall": round(n_spacy / spacy_wall, 1),
        "spacy_pass_answers_per_cpu_s": round(n_spacy / spacy_cpu, 1),
        "spacy_pass_answers_per_s_2cores_estimate": round(2 * n_spacy / spacy_cpu, 1),
        "steps": steps,
        "peak_rss_mb": round(_peak_mb(), 0),
        "outputs": {
            "nonanswers": int(clean["is_nonanswer"].sum()),
            "nonanswer_reasons": {str(k): int(v) for k, v in
                                  clean.loc[clean["is_nonanswer"], "nonanswer_reason"]
                                  .value_counts().items()},
            "dup_groups": int(clean.loc[clean["dup_group"] != "", "dup_group"].nunique()),
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
        "note": ("shared 2-core machine: other engineers' jobs run concurrently (see loadavg), so "
                 "wall-clock rates understate the code's speed; *_per_cpu_s divides by the CPU "
                 "seconds this process (and its nlp.pipe workers) actually got"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
