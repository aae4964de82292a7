"""Issue 16 benchmark: 1 vs 2 single-threaded Dask workers on the embed and tag stages, peak RSS per worker.

Input: real Global Dialogues GD1-3 answers (`--mapping global_dialogues_gd1_3`), whole participants drawn with
a fixed seed up to `--answers`; above the corpus size (51,984 answers) the corpus is replicated with a seeded
permutation of participants under new participant ids (stated in the result). The batch is ingested and
cleaned once, cut into partitions of `--partition-rows` answers, then for 1 and for 2 workers
(`LocalCluster(n_workers=n, threads_per_worker=1, processes=True)`, a fresh embedding cache each time, models
loaded on every worker before the clock starts) the embed and tag phases of `pipeline.cluster.run` are timed.
Peak RSS of each worker process is sampled at 10 Hz (psutil). The load average is recorded with each figure:
the 2-core box is shared with other sessions, so the ratio is measured side by side in one run.

Sentence scoring of the tag stage is decided on `--target` answers (default 50,000: off, as in a 50k run), so a
smaller measured batch behaves per answer like the 50k one; the 50k time is extrapolated from the measured
throughput (per-partition work is linear in the answers) and says so.

    .venv/bin/python benchmarks/bench_cluster.py --answers 4000          # -> results/cluster.json
    .venv/bin/python benchmarks/bench_cluster.py --answers 51984 --target 51984
    .venv/bin/python benchmarks/bench_cluster.py --equality 20000      # -> results/cluster_equality_20000.json
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, machine_info, shared_dir, write_result  # noqa: E402

from pipeline import config, io  # noqa: E402
from pipeline.cluster.partitions import part_name  # noqa: E402

WORK = Path(os.environ.get("WSIS_BENCH_DIR", "/tmp/wsis-bench-cluster"))
GD_DIR = "corpora/cip-global-dialogues"
GD_FILE = "GD1-3_open_responses_with_remesh_tags.csv"
SEED = 16
TARGETS = {"speedup_2_vs_1": 1.7, "peak_rss_gb_per_worker": 2.0}


def build_input(dest: Path, answers: int, seed: int = SEED) -> tuple[Path, dict[str, Any]]:
    """Whole participants in a seeded order up to `answers`; copies under new ids past the corpus size."""
    src = shared_dir() / GD_DIR
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "GD1-3_questions.csv", dest / "GD1-3_questions.csv")
    df = pd.read_csv(src / GD_FILE, dtype=str, keep_default_na=False)
    people = df[["dialogue", "participant_id"]].drop_duplicates()
    sizes = df.groupby(["dialogue", "participant_id"]).size()
    frames, total, copy = [], 0, 0
    while total < answers:
        order = people.sample(frac=1.0, random_state=seed + copy)
        for key in order.itertuples(index=False):
            frames.append((copy, tuple(key)))
            total += int(sizes[tuple(key)])
            if total >= answers:
                break
        copy += 1
    chosen: dict[int, list[tuple[str, str]]] = {}
    for c, key in frames:
        chosen.setdefault(c, []).append(key)
    index = pd.MultiIndex.from_frame(df[["dialogue", "participant_id"]])
    parts = []
    for c, keys in chosen.items():
        sub = df[index.isin(pd.MultiIndex.from_tuples(keys))].copy()
        if c:
            sub["participant_id"] = sub["participant_id"] + f"-copy{c}"
        parts.append(sub)
    out = pd.concat(parts, ignore_index=True)
    out.to_csv(dest / GD_FILE, index=False)
    return dest / GD_FILE, {"answers_in_file": len(out), "replicated_copies": max(chosen) if chosen else 0,
                            "corpus_answers": len(df)}


def prepare(src: Path, batch: Path, params: dict[str, Any], rows: int) -> tuple[Path, int, int]:
    """Ingest and clean locally once; cut answers_clean/segments into partition folders."""
    from pipeline.clean import stage as clean_stage
    from pipeline.ingest import stage as ingest_stage

    if not (batch / "answers_clean.parquet").exists():
        ingest_stage.run([src], batch, params, None, "global_dialogues_gd1_3")
        clean_stage.run(batch, params)
    clean = pd.read_parquet(batch / "answers_clean.parquet")
    segments = pd.read_parquet(batch / "segments.parquet")
    root = batch / "partitions"
    shutil.rmtree(root, ignore_errors=True)
    n_parts = 0
    for i, start in enumerate(range(0, len(clean), rows)):
        part = clean.iloc[start:start + rows].reset_index(drop=True)
        folder = root / "batches" / part_name(i, "")
        folder.mkdir(parents=True, exist_ok=True)
        io.write_parquet(part, folder / "answers_clean.parquet")
        io.write_parquet(segments[segments["answer_id"].isin(set(part["answer_id"]))].reset_index(drop=True),
                         folder / "segments.parquet")
        n_parts += 1
    return root, n_parts, len(clean)


class WorkerRss:
    """Peak RSS (MB) of each worker process, sampled at 10 Hz."""

    def __init__(self, pids: list[int]) -> None:
        import psutil

        self.procs = {pid: psutil.Process(pid) for pid in pids}
        self.peak = {pid: 0.0 for pid in pids}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            for pid, proc in self.procs.items():
                try:
                    self.peak[pid] = max(self.peak[pid], proc.memory_info().rss / 2**20)
                except Exception:  # noqa: BLE001 - a worker that ended keeps its last peak
                    continue
            self._stop.wait(0.1)

    def __enter__(self) -> WorkerRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _warm(params: dict[str, Any], cache_dir: str) -> int:
    """Load the encoder and the tagger in this worker (as the first task of a run would)."""
    from pipeline.cluster.run import worker_params
    from pipeline.embed.backends import get_backend
    from pipeline.embed.core import embed_section
    from pipeline.tagger.train import load_model

    get_backend(embed_section(worker_params(params)), Path(cache_dir))
    load_model(params, None)
    return os.getpid()


def measure(n_workers: int, root: Path, n_parts: int, n_answers: int, params: dict[str, Any],
            tag_params: dict[str, Any]) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    from pipeline.cluster.run import embed_partition, tag_partition

    cache = WORK / f"cache-{n_workers}w"
    shutil.rmtree(cache, ignore_errors=True)
    cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        pids = sorted(client.run(_warm, params, str(cache)).values())
        out: dict[str, Any] = {"workers": n_workers, "worker_pids": pids}
        with WorkerRss(pids) as rss:
            for stage, fn, args in (("embed", embed_partition, (params, root, cache)),
                                    ("tag", tag_partition, (tag_params, root))):
                load0 = load_average()
                t0 = time.perf_counter()
                futures = [client.submit(fn, i, *args, pure=False) for i in range(n_parts)]
                results = client.gather(futures)
                wall = time.perf_counter() - t0
                out[stage] = {"wall_s": round(wall, 2), "answers_per_s": round(n_answers / wall, 2),
                              "task_wall_s": round(sum(r["seconds"] for r in results), 2),
                              "task_cpu_s": round(sum(r["cpu_s"] for r in results), 2),
                              "cpu_s_per_1k_answers": round(1000 * sum(r["cpu_s"] for r in results) / n_answers, 2),
                              "load_before": load0, "load_after": load_average()}
                if stage == "embed":
                    out[stage]["texts_encoded"] = sum(r["stats"]["encoded"] for r in results)
        out["peak_rss_mb_per_worker"] = {str(k): round(v, 1) for k, v in rss.peak.items()}
        return out
    finally:
        client.close()
        cluster.close()


def compare_batches(local: Path, dist: Path) -> dict[str, Any]:
    """How far the distributed batch is from the local one: differing rows per file, vector gaps, themes ARI."""
    import numpy as np
    from sklearn.metrics import adjusted_rand_score

    out: dict[str, Any] = {}
    for name in ("answers.parquet", "answers_clean.parquet", "segments.parquet"):
        a, b = pd.read_parquet(local / name), pd.read_parquet(dist / name)
        out[name] = "identical" if a.equals(b) else f"differs ({len(a)} vs {len(b)} rows)"
    ea, eb = np.load(local / "embeddings.npz"), np.load(dist / "embeddings.npz")
    out["embeddings_max_abs_diff"] = float(np.abs(ea["answer_vectors"] - eb["answer_vectors"]).max())
    ta, tb = pd.read_parquet(local / "tags.parquet"), pd.read_parquet(dist / "tags.parquet")
    labels = ["answer_id", "action_lines", "sdgs", "mentioned_action_lines", "mentioned_sdgs"]
    out["tags_rows_with_other_labels"] = int((ta[labels] != tb[labels]).any(axis=1).sum())
    scores = [c for c in ta.columns if c.startswith("score_")]
    out["tags_max_score_diff"] = float(np.abs(ta[scores].to_numpy() - tb[scores].to_numpy()).max())
    sa = pd.read_parquet(local / "theme_assignments.parquet")
    sb = pd.read_parquet(dist / "theme_assignments.parquet")
    out["themes_ari"] = float(adjusted_rand_score(sa["themes"], sb["themes"]))
    tables = sorted(p.name for p in (local / "report" / "tables").glob("*.csv"))
    out["report_tables_differing"] = [n for n in tables if (local / "report" / "tables" / n).read_bytes()
                                      != (dist / "report" / "tables" / n).read_bytes()]
    out["report_tables"] = len(tables)
    return out


def equality(n: int) -> None:
    """`run_all` and `run_distributed` (local:2) on the same real batch of `n` answers, compared."""
    from pipeline.cluster import run_distributed
    from pipeline.runner import run_all

    params = config.load_params()
    src, info = build_input(WORK / f"eq-in-{n}", n)
    out = WORK / f"eq-{n}"
    shutil.rmtree(out, ignore_errors=True)
    os.environ["WSIS_CACHE_DIR"] = str(out / "cache-local")
    t0 = time.perf_counter()
    run_all([src], out / "local", params, mapping="global_dialogues_gd1_3")
    t1 = time.perf_counter()
    result = run_distributed([src], out / "dist", params, "local:2", mapping="global_dialogues_gd1_3",
                             cache_dir=out / "cache-dist")
    t2 = time.perf_counter()
    payload = {"input": {"corpus": "cip-global-dialogues GD1-3", **info},
               "local_s": round(t1 - t0, 1), "distributed_local2_s": round(t2 - t1, 1),
               "stages": {o.name: round(o.seconds, 1) for o in result.stages},
               "comparison": compare_batches(out / "local", out / "dist"), "machine": machine_info()}
    print(write_result(f"cluster_equality_{n}", payload))
    print(payload["comparison"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", type=int, default=50000, help="answers measured")
    ap.add_argument("--target", type=int, default=50000, help="batch size the figures are for")
    ap.add_argument("--partition-rows", type=int, default=500)
    ap.add_argument("--name", default="cluster")
    ap.add_argument("--equality", type=int, default=0, help="instead: local vs distributed run on N answers")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.equality:
        equality(args.equality)
        return
    from pipeline.cluster.run import tag_params_for_batch

    params = config.load_params()
    src, input_info = build_input(WORK / f"in-{args.answers}", args.answers)
    batch = WORK / f"batch-{args.answers}"
    t0 = time.perf_counter()
    root, n_parts, n_answers = prepare(src, batch, params, args.partition_rows)
    prep_s = time.perf_counter() - t0
    clean = pd.read_parquet(batch / "answers_clean.parquet", columns=["is_nonanswer"])
    n_real_target = int(round((~clean["is_nonanswer"]).mean() * args.target))
    tag_params = tag_params_for_batch(params, n_real_target)
    runs = [measure(n, root, n_parts, n_answers, params, tag_params) for n in (1, 2)]
    one, two = runs
    speed = {s: round(two[s]["answers_per_s"] / one[s]["answers_per_s"], 3) for s in ("embed", "tag")}
    both = {"1": one["embed"]["wall_s"] + one["tag"]["wall_s"], "2": two["embed"]["wall_s"] + two["tag"]["wall_s"]}
    peak = max(v for r in runs for v in r["peak_rss_mb_per_worker"].values())
    result = {
        "input": {"corpus": "cip-global-dialogues GD1-3", **input_info, "answers": n_answers,
                  "partitions": n_parts, "partition_rows": args.partition_rows,
                  "sentence_scoring_decided_for": args.target,
                  "tag_sentence_scoring": tag_params["tag"]["sentence_scoring"],
                  "prepare_ingest_clean_s": round(prep_s, 1)},
        "runs": runs,
        "speedup_2_vs_1": speed | {"embed+tag": round(both["1"] / both["2"], 3)},
        "peak_rss_mb_any_worker": round(peak, 1),
        "extrapolated_to_target": {
            f"{n}w_embed+tag_s": round(args.target / n_answers * both[str(n)], 1) for n in (1, 2)
        } if args.target != n_answers else "measured at the target size",
        "targets": TARGETS,
        "meets": {"speedup": min(speed.values()) >= TARGETS["speedup_2_vs_1"],
                  "memory": peak <= TARGETS["peak_rss_gb_per_worker"] * 1024},
        "machine": machine_info(),
    }
    path = write_result(args.name, result)
    print(path)
    print({"speedup": result["speedup_2_vs_1"], "peak_rss_mb": peak, "runs": [
        {k: r[k] for k in ("workers", "embed", "tag")} for r in runs]})


if __name__ == "__main__":
    main()
