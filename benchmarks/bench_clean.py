"""Benchmark of the clean stage: throughput on Global Dialogues, and older code vs this code side by side.

`gd` (default): end-to-end `clean_answers` on the Global Dialogues corpus (51,984 short open answers, or a
sample): answers/s, the spaCy pass on its own, per-step wall/CPU seconds, peak memory. Writes
benchmarks/results/clean.json.

    .venv/bin/python benchmarks/bench_clean.py [gd] [--n 10000] [--n-process 1] [--out PATH]

`compare`: the same answers cleaned by an older checkout (`--before`, e.g. `git worktree add /tmp/clean-before
SHA`) and by this code (frozen into a copy first), alternately, each run in a fresh subprocess (model load,
imports and ru_maxrss start from nothing), on TRAI (131 long submissions), the ITU-size batch of
bench_pipeline.py (about 1,100 answers) and a Global Dialogues sample. Outputs of every run must equal the
before code's (answers_clean and segments, every column); timings are reported as after/before ratios (the
machine is shared: ratios, not seconds, are the figures). Writes benchmarks/results/clean_before_after.json.

    .venv/bin/python benchmarks/bench_clean.py compare --before /tmp/clean-before [--data trai itu100 gd10k]
        [--n-process 1 2] [--ignore entities]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
CORPUS = "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"
TRAI = "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv"


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


def _cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _machine(load_before: tuple[float, ...]) -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


# --- gd: throughput on Global Dialogues ------------------------------------------------------------------

def run_gd(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from pipeline.clean import clean_answers
    from pipeline.clean.core import LAST_TIMINGS
    from pipeline.clean.nlp import load_nlp
    from pipeline.config import load_params

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
        "steps": steps,
        "peak_rss_mb": round(_peak_mb(), 0),
        "outputs": {
            "nonanswers": int(clean["is_nonanswer"].sum()),
            "dup_groups": int(clean.loc[clean["dup_group"] != "", "dup_group"].nunique()),
            "languages_top": {str(k): int(v) for k, v in clean["language"].value_counts().head(8).items()},
            "segments": len(segments),
        },
        "machine": _machine(load_before),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": ("shared 2-core machine: other engineers' jobs run concurrently (see loadavg), so "
                 "wall-clock rates understate the code's speed; *_per_cpu_s divides by the CPU "
                 "seconds this process (and its nlp.pipe workers) actually got"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


# --- compare: before vs after, side by side --------------------------------------------------------------

def worker(code: Path, answers_path: Path, out_dir: Path, overrides: dict[str, Any]) -> None:
    """One timed `clean_answers` call with the pipeline package of `code` (run in a fresh subprocess)."""
    sys.path.insert(0, str(code))
    os.chdir(code)
    from pipeline.clean import core
    from pipeline.clean.nlp import load_nlp
    from pipeline.config import load_params

    params = load_params(code / "params.yaml")
    params["clean"].update(overrides)
    answers = pd.read_parquet(answers_path)
    wall0, cpu0 = time.perf_counter(), _cpu_s()
    load_nlp(params["clean"]["spacy_model"])
    load_s = time.perf_counter() - wall0
    clean, segments = core.clean_answers(answers, params)
    wall, cpu = time.perf_counter() - wall0, _cpu_s() - cpu0
    clean.to_parquet(out_dir / "answers_clean.parquet")
    segments.to_parquet(out_dir / "segments.parquet")
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    (out_dir / "timing.json").write_text(json.dumps({
        "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "model_load_s": round(load_s, 2),
        "peak_rss_mb": round(_peak_mb()), "peak_rss_worker_mb": round(kids),
        "steps": dict(core.LAST_TIMINGS),
    }))


def _prepare(name: str, dest: Path) -> Path:
    """answers.parquet of a data set, ingested once with this code (both codes clean the same frame)."""
    sys.path.insert(0, str(ROOT))
    from pipeline.config import load_params
    from pipeline.ingest import ingest_paths

    out = dest / f"{name}.parquet"
    params = load_params()
    if name == "trai":
        answers = ingest_paths([_shared() / TRAI], None, params).answers
    elif name == "itu100":
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from bench_pipeline import build_itu100

        answers = ingest_paths([build_itu100(dest / "itu100")], None, params).answers
    elif name.startswith("gd"):
        answers = load_gd(int(name[2:].replace("k", "000")), int(params["seed"]))
    else:
        raise SystemExit(f"unknown data set {name!r}: trai, itu100 or gd<N>k")
    answers.to_parquet(out)
    return out


def _run(code: Path, answers: Path, out_dir: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "_worker", "--code", str(code), "--answers",
           str(answers), "--dir", str(out_dir), "--overrides", json.dumps(overrides)]
    load = os.getloadavg()[0]
    subprocess.run(cmd, check=True, cwd=code, env={**os.environ, "PYTHONPATH": str(code)})
    timing = json.loads((out_dir / "timing.json").read_text())
    timing["loadavg_1min_before"] = round(load, 2)
    return timing


def _same(a: Path, b: Path, ignore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Whether two runs wrote identical answers_clean and segments (every column but `ignore`, every value)."""
    out: dict[str, Any] = {}
    for name in ("answers_clean", "segments"):
        x, y = pd.read_parquet(a / f"{name}.parquet"), pd.read_parquet(b / f"{name}.parquet")
        x, y = x.drop(columns=[c for c in ignore if c in x]), y.drop(columns=[c for c in ignore if c in y])
        try:
            pd.testing.assert_frame_equal(x, y)
            out[name] = "identical"
        except AssertionError as err:
            out[name] = f"DIFFERENT: {str(err).splitlines()[0:3]}"
    return out


def run_compare(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from common import snapshot_code

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="wsis-bench-clean-"))
    after = snapshot_code(work / "after") if args.after is None else args.after
    before = args.before
    result: dict[str, Any] = {"before": str(before), "after": str(after), "data": {}}
    for name in args.data:
        answers = _prepare(name, work)
        frame = pd.read_parquet(answers)
        entry: dict[str, Any] = {"answers": len(frame), "chars": int(frame["answer"].str.len().sum()), "runs": {}}
        ref = work / name / "before"
        entry["runs"]["before"] = _run(before, answers, ref, {})
        for n_proc in args.n_process:
            key = f"after_n_process_{n_proc}"
            entry["runs"][key] = _run(after, answers, work / name / key, {"n_process": n_proc})
            entry["runs"][key]["outputs_vs_before"] = _same(ref, work / name / key, tuple(args.ignore))
            if args.ignore:
                entry["runs"][key]["outputs_vs_before"]["ignored_columns"] = list(args.ignore)
        b = entry["runs"]["before"]
        entry["ratios_after_over_before"] = {
            key: {"wall": round(r["wall_s"] / b["wall_s"], 3), "cpu": round(r["cpu_s"] / b["cpu_s"], 3),
                  "spacy_wall": round(r["steps"]["spacy"]["wall_s"] / b["steps"]["spacy"]["wall_s"], 3),
                  "spacy_cpu": round(r["steps"]["spacy"]["cpu_s"] / b["steps"]["spacy"]["cpu_s"], 3)}
            for key, r in entry["runs"].items() if key != "before"
        }
        result["data"][name] = entry
        print(name, json.dumps(entry["ratios_after_over_before"]), flush=True)
    result["machine"] = _machine(load_before)
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["command"] = "benchmarks/bench_clean.py " + " ".join(sys.argv[1:])
    result["note"] = ("each run is a fresh subprocess (model load included in wall_s/cpu_s); cpu_s includes the "
                      "nlp.pipe worker processes; shared 2-core machine: compare ratios, see loadavg")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode")
    gd = sub.add_parser("gd", help="throughput on Global Dialogues")
    cmp_ = sub.add_parser("compare", help="before vs after on the same answers")
    wk = sub.add_parser("_worker")
    for p in (ap, gd):
        p.add_argument("--n", type=int, default=0, help="sample size (0 = full corpus)")
        p.add_argument("--n-process", type=int, default=1)
        p.add_argument("--batch-size", type=int, default=256)
        p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/clean.json")
    cmp_.add_argument("--before", type=Path, required=True, help="checkout of the older code")
    cmp_.add_argument("--after", type=Path, default=None, help="checkout of the newer code (default: a frozen "
                      "copy of this one)")
    cmp_.add_argument("--data", nargs="+", default=["trai", "itu100", "gd10k"])
    cmp_.add_argument("--n-process", nargs="+", type=int, default=[1, 2])
    cmp_.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/clean_before_after.json")
    cmp_.add_argument("--ignore", nargs="*", default=[], help="columns left out of the before/after equality "
                      "(an output changed on purpose, e.g. entities)")
    wk.add_argument("--code", type=Path, required=True)
    wk.add_argument("--answers", type=Path, required=True)
    wk.add_argument("--dir", type=Path, required=True)
    wk.add_argument("--overrides", default="{}")
    args = ap.parse_args()
    if args.mode == "_worker":
        worker(args.code, args.answers, args.dir, json.loads(args.overrides))
    elif args.mode == "compare":
        run_compare(args)
    else:
        run_gd(args)


if __name__ == "__main__":
    main()
