"""Benchmark of the whole pipeline (`pipeline.runner.run_all`): wall time, CPU time and peak memory per stage.

Scenarios (inputs are built in a temporary folder, never in the repository):

- ``itu100``: a 100-submission ITU batch (about 1,100 answers) in the ITU wide export format, built from the
  bundled sample batch by giving new response ids and recombining, per question, sentences of different
  sample answers (so texts are new: no exact duplicates, no embedding cache hits);
- ``gd1k``, ``gd10k``, ``gd50k``: Global Dialogues GD1-3 (`--mapping global_dialogues_gd1_3`), whole
  participants drawn with a fixed seed up to about 1k / 10k answers, and the full 51,984 answers;
- ``eu``: EU AI White Paper consultation open answers (6,648, `--mapping eu_ai_white_paper_2020`).
- ``trai``: the TRAI differential-pricing consultation, 131 long written submissions (`--mapping
  trai_differential_pricing_2015`): the long-document case (issue 11: cold <= 5 minutes, peak <= 2 GB).

Each scenario runs COLD (fresh batch folder and fresh embedding cache, `WSIS_CACHE_DIR`) then WARM (a second
`run_all` on the same batch in a new process: every stage should be skipped), each in its own subprocess so
that models, imports and ru_maxrss start from nothing. Per-stage peak RSS comes from a 20 Hz sampler thread.

    .venv/bin/python benchmarks/bench_pipeline.py itu100 gd10k            # -> results/pipeline_<scenario>.json
    .venv/bin/python benchmarks/bench_pipeline.py gd50k --embed-backend onnx

Before vs after in one run (`--before`: a checkout of the older code, e.g. `git worktree add /tmp/before SHA`;
`--after`: another checkout, default a frozen copy of this one): for each scenario the two codes run
alternately (cold before, cold after, warm before, warm after) on the same inputs, each with its own batch and
cache, and the result holds both with after/before ratios per stage (the machine is shared: ratios, not
seconds, are the figures). `--after-overrides` gives the after code parameters its params.yaml does not have
yet (e.g. '{"embed": {"backend": "onnx"}}'); `--seed-onnx-export` copies a built int8 export into each fresh
cache, so a cold run is a fresh batch and fresh vectors on a machine where the export is already built
(the one-off export is timed on its own, `onnx_export_s`).

    .venv/bin/python benchmarks/bench_pipeline.py itu100 --before /tmp/before --after /tmp/after \
        --after-overrides '{"embed": {"backend": "onnx"}}' --seed-onnx-export --suffix _before_after
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    ROOT,
    PeakSampler,
    load_average,
    machine_info,
    max_rss_mb,
    measure,
    shared_dir,
    snapshot_code,
    write_result,
)

WORK = Path(os.environ.get("WSIS_BENCH_DIR", "/tmp/wsis-bench"))
SEED = 20251
GD_DIR = "corpora/cip-global-dialogues"
GD_FILE = "GD1-3_open_responses_with_remesh_tags.csv"
SCENARIOS = ("itu100", "trai", "gd1k", "gd10k", "gd50k", "eu")
TARGETS = {
    "itu100_cold_total_s": 20.0,  # issue 11 targets
    "non_embed_share_of_embed_at_50k": 0.25,
    "peak_rss_gb_at_50k": 2.0,
    "warm_share_of_cold": 0.05,
}


# ------------------------------------------------------------------------------------------------ inputs
def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text.strip())
    return [p.strip() for p in parts if len(p.strip().split()) >= 3]


_ORG_WORDS = (
    ("Northern", "Coastal", "Highland", "Central", "Eastern", "Western", "Island", "Southern", "Riverside", "Lakeside"),
    ("Digital", "Connectivity", "Telecom", "Information Society", "Open Internet"),
    ("Agency", "Council", "Network", "Institute"),
)


def _org_name(i: int) -> str:
    """A distinct made-up organisation per submission (same names would be read as re-submissions)."""
    a, b, c = _ORG_WORDS
    return f"{a[i % len(a)]} {b[(i // len(a)) % len(b)]} {c[(i // (len(a) * len(b))) % len(c)]}"


def build_itu100(dest: Path, n: int = 100, seed: int = SEED) -> Path:
    """A wide ITU export (CSV) of `n` new submissions recombined from the sample batch's answers."""
    from pipeline import config
    from pipeline.ingest import ingest_paths

    sample = config.SAMPLE_BATCH_DIR
    header = pd.read_csv(sample / "wsis20-sample-export.csv", dtype=str, nrows=0).columns.tolist()
    answers = ingest_paths([sample], None, config.load_params()).answers
    answers = answers[answers["is_current"]]
    rng = np.random.default_rng(seed)
    qcols = {int(c.split(".", 1)[0]): c for c in header if re.match(r"^\d+\. ", c)}
    by_q = {qn: g for qn, g in answers.groupby("question_number")}
    subs = answers.drop_duplicates("response_id")[["org_name", "org_type", "country"]].reset_index(drop=True)
    rows = []
    for i in range(n):
        meta = subs.iloc[int(rng.integers(len(subs)))]
        row: dict[str, str] = {
            "Response ID": str(5000 + i),
            "Submitted": f"{1 + i % 28:02d}/02/2025 {9 + i % 8:02d}:{i % 60:02d}",
            qcols[1]: _org_name(i), qcols[2]: str(meta["org_type"]),
            qcols[3]: str(meta["country"]),
        }
        for qn, col in qcols.items():
            if qn <= 3:
                continue
            group = by_q.get(qn)
            if group is None or group.empty:
                row[col] = ""
                continue
            template = str(group["answer"].iloc[int(rng.integers(len(group)))])
            k = len(_sentences(template))
            pool = [s for a in group["answer"].astype(str) for s in _sentences(a)]
            if k == 0 or not pool:
                row[col] = template  # non-answers ("N/A", empty) stay as they are
                continue
            # at least two sentences, so that short answers do not repeat one sentence word for word
            picks = rng.choice(len(pool), size=min(max(k, 2), len(pool)), replace=False)
            row[col] = " ".join(pool[j] for j in picks)
        rows.append(row)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / "itu100-export.csv"
    pd.DataFrame(rows, columns=header).to_csv(out, index=False)
    return out


def build_gd(dest: Path, target: int | None, seed: int = SEED) -> Path:
    """Global Dialogues GD1-3: whole participants (seeded order) up to `target` answers, or all of them."""
    src = shared_dir() / GD_DIR
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "GD1-3_questions.csv", dest / "GD1-3_questions.csv")
    out = dest / GD_FILE
    if target is None:
        shutil.copy(src / GD_FILE, out)
        return out
    df = pd.read_csv(src / GD_FILE, dtype=str, keep_default_na=False)
    people = df[["dialogue", "participant_id"]].drop_duplicates().sample(frac=1.0, random_state=seed)
    counts = df.groupby(["dialogue", "participant_id"]).size()
    chosen, total = [], 0
    for key in people.itertuples(index=False):
        chosen.append(tuple(key))
        total += int(counts[tuple(key)])
        if total >= target:
            break
    keep = pd.MultiIndex.from_tuples(chosen)
    sub = df[pd.MultiIndex.from_frame(df[["dialogue", "participant_id"]]).isin(keep)]
    sub.to_csv(out, index=False)
    return out


def scenario_inputs(name: str) -> tuple[list[Path], str | None]:
    data = WORK / "data" / name
    if name == "itu100":
        return [build_itu100(data)], None
    if name.startswith("gd"):
        target = {"gd1k": 1000, "gd10k": 10000, "gd50k": None}[name]
        return [build_gd(data, target)], "global_dialogues_gd1_3"
    if name == "trai":
        return [shared_dir() / "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv"], \
            "trai_differential_pricing_2015"
    if name == "eu":
        return [shared_dir() / "corpora/eu-ai-white-paper-consultation-2020/open_ended_long.csv"], \
            "eu_ai_white_paper_2020"
    raise SystemExit(f"unknown scenario {name}: {', '.join(SCENARIOS)}")


# ---------------------------------------------------------------------------------------------- one run
def run_once(inputs: list[Path], batch: Path, mapping: str | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """One `run_all` in this process, with per-stage wall/CPU/peak RSS (run_stage is wrapped)."""
    from pipeline import config, runner

    params = config.load_params(overrides=overrides)
    stages: dict[str, Any] = {}
    original = runner.run_stage
    with PeakSampler() as sampler:

        def wrapped(spec: Any, batch_dir: Path, p: dict[str, Any], force: bool = False) -> Any:
            with measure(sampler) as m:
                outcome = original(spec, batch_dir, p, force=force)
            stages[spec.name] = m.as_dict() | {"status": outcome.status, "runner_s": round(outcome.seconds, 3),
                                               "summary": {k: v for k, v in outcome.summary.items()
                                                           if isinstance(v, int | float | str)}}
            return outcome

        runner.run_stage = wrapped  # type: ignore[assignment]
        try:
            with measure(sampler) as total:
                result = runner.run_all(inputs, batch, params, mapping=mapping)
        finally:
            runner.run_stage = original  # type: ignore[assignment]
    return {
        "stages": stages,
        "total": total.as_dict() | {"runner_s": round(result.seconds, 3)},
        "max_rss_mb": round(max_rss_mb(), 1),
        "n_report_files": len(result.report_files),
    }


def child_main(args: argparse.Namespace) -> None:
    """Entry of the subprocess: run once and print the JSON on the last line."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    overrides = json.loads(args.overrides)
    inputs = [Path(p) for p in json.loads(args.inputs)]
    load0 = load_average()
    out = run_once(inputs, Path(args.batch), args.mapping or None, overrides)
    out["load_before"], out["load_after"] = load0, load_average()
    import pipeline

    out["pipeline_code"] = str(Path(pipeline.__file__).parent)
    print("RESULT " + json.dumps(out))


def run_child(inputs: list[Path], batch: Path, mapping: str | None, overrides: dict[str, Any],
              cache: Path, code: Path) -> dict[str, Any]:
    # the ONNX export is looked up in the run's own cache (seeded or not), never in the code folder's
    env = os.environ | {"WSIS_CACHE_DIR": str(cache), "WSIS_ONNX_DIR": str(cache), "WSIS_NO_PROGRESS": "1",
                        "HF_HUB_OFFLINE": "1",
                        "TRANSFORMERS_OFFLINE": "1", "WSIS_CODE_ROOT": str(code),
                        "WSIS_MODELS_DIR": str(code / "models")}
    cmd = [sys.executable, __file__, "--child", "--batch", str(batch), "--mapping", mapping or "",
           "--inputs", json.dumps([str(p) for p in inputs]), "--overrides", json.dumps(overrides)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=code)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-5000:])
        raise SystemExit(f"benchmark run failed ({proc.returncode}): {' '.join(cmd[:4])}")
    out: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    out["process_wall_s"] = round(wall, 3)  # includes interpreter start and imports
    out["stderr_tail"] = proc.stderr[-1500:]
    return out


def count_rows(batch: Path) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, file in (("answers", "answers.parquet"), ("segments", "segments.parquet")):
        path = batch / file
        if path.exists():
            out[name] = len(pd.read_parquet(path, columns=[]))
    path = batch / "answers_clean.parquet"
    if path.exists():
        clean = pd.read_parquet(path, columns=["is_nonanswer", "response_id"])
        out["non_answers"] = int(clean["is_nonanswer"].sum())
        out["submissions"] = int(clean["response_id"].nunique())
    return out


def targets_for(name: str, cold: dict[str, Any], warm: dict[str, Any]) -> dict[str, Any]:
    """Each target: measured value, limit, met?, on wall and on CPU time."""
    out: dict[str, Any] = {}
    st = cold["stages"]
    total_wall = cold["total"]["wall_s"]
    total_cpu = cold["total"]["cpu_s"]
    out["warm_share_of_cold"] = {
        "wall": round(warm["total"]["wall_s"] / total_wall, 4),
        "limit": TARGETS["warm_share_of_cold"],
        "met": warm["total"]["wall_s"] / total_wall < TARGETS["warm_share_of_cold"],
        "warm_all_skipped": all(s["status"] == "skipped" for s in warm["stages"].values()),
    }
    if name == "itu100":
        out["itu100_cold_total_s"] = {"wall": total_wall, "cpu": total_cpu,
                                      "cpu_over_2_cores": round(total_cpu / 2, 2),
                                      "limit": TARGETS["itu100_cold_total_s"],
                                      "met": total_wall < TARGETS["itu100_cold_total_s"]}
    if "embed" in st and st["embed"]["wall_s"] > 0:
        other_wall = sum(s["wall_s"] for k, s in st.items() if k != "embed")
        other_cpu = sum(s["cpu_s"] for k, s in st.items() if k != "embed")
        share = {"wall": round(other_wall / st["embed"]["wall_s"], 3),
                 "cpu": round(other_cpu / max(st["embed"]["cpu_s"], 1e-9), 3),
                 "limit": TARGETS["non_embed_share_of_embed_at_50k"]}
        share["met"] = share["wall"] < share["limit"]
        out["non_embed_share_of_embed"] = share
        peak = max(s["peak_rss_mb"] for s in st.values()) / 1024
        out["peak_rss_gb"] = {"value": round(peak, 3), "limit": TARGETS["peak_rss_gb_at_50k"],
                              "met": peak < TARGETS["peak_rss_gb_at_50k"]}
    return out


def fresh_cache(root: Path, onnx_export: Path | None) -> Path:
    """An empty embedding cache, with the built int8 export copied in when given (see `--seed-onnx-export`)."""
    cache = root / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    if onnx_export is not None:
        shutil.copytree(onnx_export, cache / "onnx" / onnx_export.name)
    return cache


def build_onnx_export(code: Path) -> tuple[Path, float]:
    """Build the int8 export once in a scratch cache with the code under test; (its folder, seconds)."""
    scratch = WORK / "onnx-export"
    shutil.rmtree(scratch, ignore_errors=True)
    script = ("import json,time,sys; from pathlib import Path; t=time.perf_counter(); "
              "from pipeline.embed.onnx_export import OnnxBackend; "
              f"b=OnnxBackend('all-MiniLM-L6-v2', 256, Path({str(scratch)!r})); "
              "print('RESULT', json.dumps([str(b.folder), time.perf_counter()-t]))")
    env = os.environ | {"PYTHONPATH": str(code), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, cwd=code)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not line:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit("ONNX export failed")
    folder, seconds = json.loads(line[-1][len("RESULT "):])
    return Path(folder), round(float(seconds), 1)


def bench(name: str, overrides: dict[str, Any], keep: bool, code: Path, label: str = "",
          onnx_export: Path | None = None) -> dict[str, Any]:
    root = WORK / "runs" / (f"{name}-{label}" if label else name)
    if root.exists():
        shutil.rmtree(root)
    batch = root / "batch"
    cache = fresh_cache(root, onnx_export)
    t0 = time.perf_counter()
    inputs, mapping = scenario_inputs(name)
    prep_s = time.perf_counter() - t0
    print(f"[{name}] inputs ready in {prep_s:.1f} s: {[str(p) for p in inputs]}", flush=True)
    cold = run_child(inputs, batch, mapping, overrides, cache, code)
    print(f"[{name}] cold: {cold['total']['wall_s']:.1f} s wall, {cold['total']['cpu_s']:.1f} s CPU", flush=True)
    warm = run_child(inputs, batch, mapping, overrides, cache, code)
    print(f"[{name}] warm: {warm['total']['wall_s']:.2f} s wall", flush=True)
    result = {
        "scenario": name,
        "inputs": [str(p) for p in inputs],
        "mapping": mapping,
        "param_overrides": overrides,
        "code": str(code),
        "counts": count_rows(batch),
        "cold": cold,
        "warm": warm,
        "targets": targets_for(name, cold, warm),
        "machine": machine_info(),
    }
    if not keep:
        shutil.rmtree(root, ignore_errors=True)
    return result


def git_sha(path: Path) -> str:
    out = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True)
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "") if out.returncode == 0 else "copy"


def compare(name: str, codes: dict[str, Path], overrides: dict[str, dict[str, Any]], keep: bool,
            onnx_export: Path | None) -> dict[str, Any]:
    """Before and after alternately on the same inputs: cold, cold, warm, warm; with after/before ratios."""
    runs: dict[str, dict[str, Any]] = {}
    for label in codes:
        # seeded whatever the backend: the default (auto) encodes with the int8 export, and a torch run ignores it
        seed = onnx_export
        runs[label] = {"root": WORK / "runs" / f"{name}-{label}", "cache_seed": seed}
        root = runs[label]["root"]
        shutil.rmtree(root, ignore_errors=True)
        runs[label]["cache"] = fresh_cache(root, seed)
    inputs, mapping = scenario_inputs(name)
    for phase in ("cold", "warm"):
        for label, code in codes.items():
            r = runs[label]
            r[phase] = run_child(inputs, r["root"] / "batch", mapping, overrides[label], r["cache"], code)
            print(f"[{name}] {label} {phase}: {r[phase]['total']['wall_s']:.2f} s wall", flush=True)
    out: dict[str, Any] = {"scenario": name, "inputs": [str(p) for p in inputs], "mapping": mapping}
    for label, code in codes.items():
        r = runs[label]
        out[label] = {"code": str(code), "git": git_sha(code), "param_overrides": overrides[label],
                      "onnx_export_seeded": r["cache_seed"] is not None,
                      "counts": count_rows(r["root"] / "batch"), "cold": r["cold"], "warm": r["warm"],
                      "targets": targets_for(name, r["cold"], r["warm"])}
        if not keep:
            shutil.rmtree(r["root"], ignore_errors=True)
    b, a = out["before"], out["after"]

    def ratio(x: float, y: float) -> float | None:
        return round(x / y, 3) if y > 0 else None

    stages = sorted(set(b["cold"]["stages"]) | set(a["cold"]["stages"]),
                    key=lambda k: list(a["cold"]["stages"]).index(k) if k in a["cold"]["stages"] else 99)
    out["side_by_side"] = {
        "cold_total_wall_s": {"before": b["cold"]["total"]["wall_s"], "after": a["cold"]["total"]["wall_s"],
                              "after_over_before": ratio(a["cold"]["total"]["wall_s"], b["cold"]["total"]["wall_s"])},
        "cold_total_cpu_s": {"before": b["cold"]["total"]["cpu_s"], "after": a["cold"]["total"]["cpu_s"],
                             "after_over_before": ratio(a["cold"]["total"]["cpu_s"], b["cold"]["total"]["cpu_s"])},
        "warm_total_wall_s": {"before": b["warm"]["total"]["wall_s"], "after": a["warm"]["total"]["wall_s"]},
        "warm_share_of_cold": {k: ratio(out[k]["warm"]["total"]["wall_s"], out[k]["cold"]["total"]["wall_s"])
                               for k in ("before", "after")},
        "cold_stage_wall_s": {
            k: {"before": b["cold"]["stages"].get(k, {}).get("wall_s"),
                "after": a["cold"]["stages"].get(k, {}).get("wall_s"),
                "after_over_before": ratio(a["cold"]["stages"].get(k, {}).get("wall_s", 0.0),
                                           b["cold"]["stages"].get(k, {}).get("wall_s", 0.0))}
            for k in stages},
        "cold_stage_cpu_s": {
            k: {"before": b["cold"]["stages"].get(k, {}).get("cpu_s"),
                "after": a["cold"]["stages"].get(k, {}).get("cpu_s"),
                "after_over_before": ratio(a["cold"]["stages"].get(k, {}).get("cpu_s", 0.0),
                                           b["cold"]["stages"].get(k, {}).get("cpu_s", 0.0))}
            for k in stages},
        "texts_encoded": {k: sum(int(s["summary"].get("encoded", 0)) for s in out[k]["cold"]["stages"].values())
                          for k in ("before", "after")},
    }
    out["machine"] = machine_info()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", default=["itu100", "gd10k"], help=", ".join(SCENARIOS))
    ap.add_argument("--embed-backend", default=None, help="override embed.backend (torch | onnx)")
    ap.add_argument("--keep", action="store_true", help="keep the batch folders under $WSIS_BENCH_DIR/runs")
    ap.add_argument("--suffix", default="", help="results file suffix, e.g. _onnx")
    ap.add_argument("--no-snapshot", action="store_true", help="run the checkout itself, not a frozen copy")
    ap.add_argument("--before", type=Path, default=None, help="checkout of the older code: run both side by side")
    ap.add_argument("--after", type=Path, default=None, help="checkout of the newer code (default: this one)")
    ap.add_argument("--after-overrides", default="{}", help="JSON parameters only the after code gets")
    ap.add_argument("--seed-onnx-export", action="store_true",
                    help="copy a built int8 export into each fresh cache of an onnx run (timed once on its own)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--batch", help=argparse.SUPPRESS)
    ap.add_argument("--mapping", help=argparse.SUPPRESS)
    ap.add_argument("--inputs", help=argparse.SUPPRESS)
    ap.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child_main(args)
        return
    overrides: dict[str, Any] = {}
    if args.embed_backend:
        overrides["embed"] = {"backend": args.embed_backend}
    # freeze the code under test: the checkout may be edited while this runs
    code = args.after or (ROOT if args.no_snapshot else snapshot_code(WORK / f"code-{os.getpid()}"))
    if args.before is not None:
        after_overrides = json.loads(args.after_overrides)
        codes = {"before": args.before.resolve(), "after": Path(code).resolve()}
        per_code = {"before": overrides, "after": config_merge(overrides, after_overrides)}
        export, export_s = (build_onnx_export(codes["after"]) if args.seed_onnx_export else (None, None))
        for name in args.scenarios:
            result = compare(name, codes, per_code, args.keep, export)
            result["onnx_export_s"] = export_s
            result["command"] = "benchmarks/bench_pipeline.py " + " ".join(sys.argv[1:])
            path = write_result(f"pipeline_{name}{args.suffix or '_before_after'}", result)
            print(f"[{name}] -> {path}: {json.dumps(result['side_by_side'])}", flush=True)
        return
    export = build_onnx_export(code)[0] if args.seed_onnx_export else None
    for name in args.scenarios:
        result = bench(name, overrides, args.keep, code, onnx_export=export)
        path = write_result(f"pipeline_{name}{args.suffix}", result)
        print(f"[{name}] -> {path}: {json.dumps(result['targets'])}", flush=True)


def config_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = config_merge(out.get(k, {}), v) if isinstance(v, dict) else v
    return out


if __name__ == "__main__":
    main()
