"""`run_distributed`: the pipeline over a Dask cluster, writing the same batch files as `wsis run`.

Phases (docs/CLUSTER.md has the why and the 5M-answer plan):

1. ingest on the driver (answers.parquet, quarantine.csv: re-submissions are batch-wide), then cut into
   contiguous Parquet partitions (`partitions/answers/`);
2. duplicates: `dask.dataframe.read_parquet(...).map_partitions(dedup_stats)`, candidates verified on the driver;
3. clean per partition (`clean_answers` of the stage, the batch-wide duplicate columns put in), each writing its
   answers_clean/segments part and its (shingle, document) pairs;
4. boilerplate: a Dask shuffle of the pairs counts documents per shingle; each partition flags its passages;
5. embed per partition through the chunk cache (`pipeline.cluster.cache`: encoder loaded once per worker);
6. themes and stance: the local stages on the assembled batch, as one task on a worker;
7. tag per partition (`pipeline.tagger.stage.run` on the partition's folder), then the report on the driver.

Every task writes its files atomically and is safe to re-run, so a task of a worker that dies is simply run
again elsewhere (`retries`).
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import __version__, config, io
from pipeline.cluster import batchwide
from pipeline.cluster.cache import ChunkStats, encode_texts, space
from pipeline.cluster.partitions import PARTS_DIR, concat_npz, concat_parquet, part_name, write_partitions
from pipeline.errors import InputError

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PARTITION_ROWS", "connect", "embed_partition", "run_distributed", "tag_partition",
           "tag_params_for_batch"]

DEFAULT_PARTITION_ROWS = 5000
RETRIES = 3
# batch-wide decisions handed to the tasks as files in the batch folder (not scattered: a killed worker must
# not take the only copy with it)
DUPLICATES_FILE = "duplicates.parquet"
SHINGLES_FILE = "boilerplate_shingles.npy"


# ------------------------------------------------------------------------------------------- cluster
def connect(cluster: Any, params: dict[str, Any] | None = None) -> tuple[Any, Callable[[], None]]:
    """A `distributed.Client` for `local`, `local:N` (N single-threaded worker processes) or a scheduler
    address; an existing Client is used as it is. Returns (client, close) where close ends what we started."""
    try:
        import dask.dataframe  # noqa: F401 - the phases below need it; say so before any work
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise InputError("--cluster", str(cluster), "needs Dask: pip install 'wsis-themes[cluster]'") from exc

    if isinstance(cluster, Client):
        return cluster, lambda: None
    spec = str(cluster or "").strip()
    if not spec:
        raise InputError("--cluster", None, "empty: give local, local:N or a scheduler address")
    if spec == "local" or spec.startswith("local:"):
        count = spec.partition(":")[2]
        if count and not count.isdigit():
            raise InputError("--cluster", spec, "expected local:N with N a number of workers")
        n = int(count) if count else (os.cpu_count() or 1)
        section = (params or {}).get("run", {}) or {}
        local = LocalCluster(n_workers=max(n, 1), threads_per_worker=1, processes=True,
                             memory_limit=section.get("worker_memory", "auto"), dashboard_address=None)
        client = Client(local)

        def close() -> None:
            client.close()
            local.close()
        return client, close
    try:
        client = Client(spec, timeout="30s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError("--cluster", spec, f"cannot reach the Dask scheduler ({exc})") from exc
    return client, client.close


def _limit_threads() -> int | None:
    """Torch/BLAS threads = the worker's threads: two 1-thread workers must not each use every core.
    Returns the worker's thread count (None outside a worker), which the ONNX session also takes."""
    try:
        from distributed import get_worker

        n = int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None
    _set_threads(n)
    return n


def worker_params(params: dict[str, Any]) -> dict[str, Any]:
    """`params` for work on this worker: its thread count for torch/BLAS, for spaCy's processes (`clean.n_process`:
    a worker does not fork, the cluster is the parallelism) and, unless `embed.threads` is set, for the
    ONNX/multilingual session too (two 1-thread workers must not each start a 2-thread session)."""
    n_threads = _limit_threads()
    if not n_threads:
        return params
    params = config.deep_merge(params, {"clean": {"n_process": 1}})
    if not (params.get("embed") or {}).get("threads"):
        return config.deep_merge(params, {"embed": {"threads": n_threads}})
    return params


@functools.lru_cache(maxsize=1)
def _set_threads(n: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("RAYON_NUM_THREADS", str(n))  # the tokenizers' batch encoding pool
    if n == 1:
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(n)


# ------------------------------------------------------------------------------------------- tasks
def _clean_task(i: int, answers_part: Path, params: dict[str, Any], root: Path) -> int:
    """Clean one partition; duplicate columns from the batch-wide groups; boilerplate left for phase 4."""
    from pipeline.clean.core import clean_answers, clean_params
    from pipeline.clean.nonprose import segment_nonprose_kinds, with_set_aside

    dups = pd.read_parquet(root / DUPLICATES_FILE)
    answers = pd.read_parquet(answers_part)
    clean, segments = clean_answers(answers, worker_params(params))
    grouped = dups.set_index("answer_id")
    ids = clean["answer_id"]
    clean["dup_group"] = ids.map(grouped["dup_group"]).fillna("").astype("str")
    clean["dup_group_size"] = ids.map(grouped["dup_group_size"]).fillna(1).astype("int64")
    clean["dup_kind"] = ids.map(grouped["dup_kind"]).fillna("").astype("str")
    # repeated boilerplate needs the whole batch (phase 4); a passage's non-prose kind is its own
    cfg = clean_params(params)
    kinds = segment_nonprose_kinds(clean, segments, int(cfg["boilerplate_min_segments"]),
                                   bool(cfg["set_aside_nonprose"]))
    segments = with_set_aside(segments, [False] * len(segments), kinds)
    out = root / "batches" / part_name(i, "")
    out.mkdir(parents=True, exist_ok=True)
    io.write_parquet(segments, out / "segments.parquet")
    io.write_parquet(clean, out / "answers_clean.parquet")
    io.write_parquet(batchwide.shingle_doc_pairs(clean, segments, params),
                     root / "shingles" / part_name(i))
    return len(clean)


def _flag_task(i: int, params: dict[str, Any], root: Path) -> int:
    from pipeline.clean.nonprose import with_set_aside

    common = {int(x) for x in np.load(root / SHINGLES_FILE)}
    folder = root / "batches" / part_name(i, "")
    clean = pd.read_parquet(folder / "answers_clean.parquet")
    segments = pd.read_parquet(folder / "segments.parquet")
    repeated = batchwide.boilerplate_flags(clean, segments, common, params)
    segments = with_set_aside(segments, repeated, segments["boilerplate_kind"].tolist())
    io.write_parquet(segments, folder / "segments.parquet")
    return int(segments["is_boilerplate"].sum())


def embed_partition(i: int, params: dict[str, Any], root: Path, cache_dir: Path) -> dict[str, Any]:
    """embeddings.npz of one partition, with the embed stage's texts and arrays (answers, segments and the tag
    stage's sentence passages), through the chunk cache. `params` carry the batch-wide decisions (a concrete
    `embed.backend`, `tag.sentence_scoring` always/never: see `batch_params`)."""
    from pipeline.embed.passages import passage_digest
    from pipeline.embed.stage import _texts, batch_sentences

    params = worker_params(params)
    t0, c0 = time.perf_counter(), time.process_time()
    folder = root / "batches" / part_name(i, "")
    answers = pd.read_parquet(folder / "answers_clean.parquet")
    segments = pd.read_parquet(folder / "segments.parquet")
    a_texts = _texts(answers, "text_clean", "answers_clean.parquet")
    s_texts = _texts(segments, "text", "segments.parquet") if len(segments) else []
    sents, sent_owner, _switch = batch_sentences(answers, params)
    vectors, stats = encode_texts(a_texts + s_texts + sents, params, cache_dir)
    n_a, n_s = len(a_texts), len(s_texts)
    io.write_npz(folder / "embeddings.npz",
                 answer_ids=np.asarray(answers["answer_id"].astype(str).tolist(), dtype=str),
                 answer_vectors=vectors[:n_a],
                 segment_ids=np.asarray(segments["segment_id"].astype(str).tolist() if len(segments) else [],
                                        dtype=str),
                 segment_vectors=vectors[n_a:n_a + n_s],
                 sentence_owner=np.asarray(sent_owner, dtype=str),
                 sentence_digests=np.asarray([passage_digest(t) for t in sents], dtype=str),
                 sentence_vectors=vectors[n_a + n_s:],
                 model_id=np.asarray(space(params)[2]))
    return {"stats": stats.__dict__, "sentence_passages": len(sents), "seconds": time.perf_counter() - t0,
            "cpu_s": time.process_time() - c0, "pid": os.getpid(), "rss_mb": _rss_mb()}


def tag_partition(i: int, params: dict[str, Any], root: Path) -> dict[str, Any]:
    """The tag stage on one partition's folder (its own answers_clean, segments and embeddings)."""
    from pipeline.tagger import stage as tag_stage

    _limit_threads()
    t0, c0 = time.perf_counter(), time.process_time()
    summary = tag_stage.run(root / "batches" / part_name(i, ""), params, None)
    return {"summary": summary, "seconds": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
            "pid": os.getpid(), "rss_mb": _rss_mb()}


def _whole_batch_task(batch_dir: Path, params: dict[str, Any], framework: Path | None, examples: Path | None,
                      edits: Path | None, cache_dir: Path) -> dict[str, Any]:
    """Themes and stance need every answer of a question at once: the local stages, on one worker."""
    from pipeline.stance import stage as stance_stage
    from pipeline.themes import stage as themes_stage

    _limit_threads()
    t0 = time.perf_counter()
    themes = themes_stage.run(batch_dir, params, framework, examples, None, 50, edits)
    t1 = time.perf_counter()
    stance = stance_stage.run(batch_dir, params, cache_dir)
    return {"themes": themes, "themes_s": t1 - t0, "stance": stance, "stance_s": time.perf_counter() - t1,
            "rss_mb": _rss_mb()}


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------------------------------- driver
def _gather(client: Any, futures: Sequence[Any]) -> list[Any]:
    return list(client.gather(list(futures)))


def _map(client: Any, fn: Callable[..., Any], items: Sequence[Any], *args: Any, **kwargs: Any) -> list[Any]:
    futures = [client.submit(fn, item, *args, pure=False, retries=RETRIES, **kwargs) for item in items]
    return _gather(client, futures)


def _duplicates(client: Any, parts_dir: Path, paths: list[Path], params: dict[str, Any]) -> pd.DataFrame:
    """Phase 2: dask.dataframe over the answer partitions -> statistics -> batch-wide duplicate groups."""
    import dask.dataframe as dd

    ddf = dd.read_parquet(str(parts_dir), columns=None)
    meta = pd.DataFrame({c: pd.Series([], dtype="str" if c in {"answer_id", "owner", "key"} else
                                      ("bool" if c == "has_bands" else "int64"))
                         for c in batchwide.STATS_COLUMNS})
    stats = ddf.map_partitions(batchwide.dedup_stats, params, meta=meta).compute()
    repeated = stats["answer_id"][stats["answer_id"].duplicated()]
    if len(repeated):
        raise InputError("answers.parquet", str(repeated.iloc[0]),
                         f"{repeated.nunique()} duplicate answer_id(s)")

    def fetch(wanted: set[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        futures = [client.submit(_tokens_task, p, wanted, params, pure=False, retries=RETRIES) for p in paths]
        for part in _gather(client, futures):
            for k, v in part.items():
                found.setdefault(k, v)
        return found

    return batchwide.group_duplicates(stats, fetch, params)


def _tokens_task(path: Path, wanted: set[str], params: dict[str, Any]) -> dict[str, list[str]]:
    return batchwide.tokens_for_keys(pd.read_parquet(path), wanted, params)


def _common_shingles(root: Path, params: dict[str, Any]) -> tuple[set[int], int]:
    """Phase 4: shuffle the (shingle, document) pairs; shingles held by enough documents."""
    import dask
    import dask.dataframe as dd

    pairs = dd.read_parquet(str(root / "shingles")).drop_duplicates()
    n_docs_d = (pairs["shingle"] == batchwide.DOC_MARK).sum()
    counts_d = pairs[pairs["shingle"] != batchwide.DOC_MARK].groupby("shingle").size()
    n_docs, counts = dask.compute(n_docs_d, counts_d)
    n_docs = int(n_docs)
    if n_docs == 0:
        return set(), 0
    need = batchwide.boilerplate_need(n_docs, params)
    if n_docs < need:
        return set(), n_docs
    return {int(s) for s in counts[counts >= need].index}, n_docs


def _clean_summary(clean: pd.DataFrame, segments: pd.DataFrame, seconds: float) -> dict[str, Any]:
    """The counts `pipeline.clean.stage.run` reports."""
    from pipeline.clean.stage import summarise

    return {**summarise(clean, segments), "seconds": round(seconds, 2)}


def tag_params_for_batch(params: dict[str, Any], n_real: int) -> dict[str, Any]:
    """Sentence scoring is decided on the batch's size (`tag.sentence_scoring: auto`), not the partition's."""
    from pipeline.embed.passages import sentence_scoring

    on, _switch = sentence_scoring(dict(params.get("tag") or {}), n_real)
    return config.deep_merge(params, {"tag": {"sentence_scoring": "always" if on else "never"}})


def batch_params(params: dict[str, Any], clean: pd.DataFrame) -> tuple[dict[str, Any], list[str]]:
    """The batch-wide choices a partition cannot make alone, fixed on the driver: `embed.backend: auto`
    resolved from the batch's share of non-English answers, sentence scoring from its size. Returns the
    params for the partition tasks and the switch lines the local stages would report."""
    from pipeline.embed.backends import AUTO, resolve_backend
    from pipeline.embed.core import embed_section
    from pipeline.embed.passages import sentence_scoring
    from pipeline.embed.stage import non_english_count, non_english_share

    n_real = int((~clean["is_nonanswer"].astype(bool)).sum())
    out = tag_params_for_batch(params, n_real)
    switches: list[str] = []
    section = embed_section(params)
    if str(section.get("backend")) == AUTO:
        chosen, reason = resolve_backend(section, non_english_share(clean), non_english_count(clean))
        out = config.deep_merge(out, {"embed": {"backend": chosen}})
        switches.append(reason)
    switch = sentence_scoring(dict(params.get("tag") or {}), n_real)[1]
    if switch:
        switches.append(switch)
    return out, switches


def run_distributed(
    inputs: list[Path],
    batch_dir: Path,
    params: dict[str, Any],
    cluster: Any,
    questionnaire: Path | None = None,
    mapping: str | None = None,
    framework: Path | None = None,
    examples: Path | None = None,
    edits: Path | None = None,
    force: bool = True,
    console: Any = None,
    cache_dir: Path | None = None,
) -> Any:
    """Run ingest -> report over a Dask cluster (`local`, `local:N`, a scheduler address or a Client) into
    `batch_dir`, with the same files as `pipeline.runner.run_all`. Returns a `pipeline.runner.RunResult`
    whose stage summaries carry per-phase timings. Every stage runs (no skip logic yet: `force` is implied)."""
    from pipeline import runner
    from pipeline.ingest import stage as ingest_stage
    from pipeline.report import stage as report_stage

    runner.check_inputs(inputs)
    if framework is not None or examples is not None:
        from pipeline.themes.stage import check_framework_inputs

        check_framework_inputs(framework, examples, None)
    batch_dir = Path(batch_dir)
    runner.make_batch_dir(batch_dir)
    cache_dir = Path(cache_dir) if cache_dir is not None else config.cache_dir()
    run_section = params.get("run", {}) or {}
    rows = int(run_section.get("partition_rows", DEFAULT_PARTITION_ROWS))
    root = batch_dir / PARTS_DIR
    started = time.perf_counter()
    outcomes: list[Any] = []

    def done(name: str, t0: float, summary: dict[str, Any]) -> None:
        outcomes.append(runner.StageOutcome(name, "ran", time.perf_counter() - t0, summary))
        if console is not None:
            console.print(f"[bold]{name:<7}[/bold] done in {time.perf_counter() - t0:.1f} s (cluster)")

    client, close = connect(cluster, params)  # a missing extra or an unreachable scheduler fails first
    try:
        t0 = time.perf_counter()
        ingest_summary = ingest_stage.run(inputs, batch_dir, params, questionnaire, mapping)
        if not ingest_summary.get("answers"):
            raise InputError(", ".join(map(str, inputs)), None,
                             f"nothing could be read, no later stage ran (see {batch_dir / 'quarantine.csv'})")
        paths = write_partitions(batch_dir / "answers.parquet", root / "answers", rows)
        done("ingest", t0, ingest_summary | {"partitions": len(paths), "partition_rows": rows})

        workers = client.scheduler_info().get("workers", {})
        cluster_info = {"address": str(client.scheduler.address), "workers": len(workers),
                        "threads": sum(int(w.get("nthreads", 1)) for w in workers.values()),
                        "partitions": len(paths), "partition_rows": rows}
        for sub in ("shingles", "batches"):
            (root / sub).mkdir(parents=True, exist_ok=True)
            for old in (root / sub).glob("part-*"):
                if old.is_file():
                    old.unlink()
        idx = list(range(len(paths)))

        t0 = time.perf_counter()
        dups = _duplicates(client, root / "answers", paths, params)
        t_dup = time.perf_counter() - t0
        io.write_parquet(dups, root / DUPLICATES_FILE)
        _gather(client, [client.submit(_clean_task, i, paths[i], params, root, pure=False,
                                       retries=RETRIES) for i in idx])
        t_clean = time.perf_counter() - t0
        common, n_docs = _common_shingles(root, params)
        with io.atomic_path(root / SHINGLES_FILE) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.asarray(sorted(common), dtype=np.int64))
        _gather(client, [client.submit(_flag_task, i, params, root, pure=False, retries=RETRIES) for i in idx])
        parts = [root / "batches" / part_name(i, "") for i in idx]
        clean = concat_parquet([p / "answers_clean.parquet" for p in parts])
        segments = concat_parquet([p / "segments.parquet" for p in parts])
        io.write_parquet(clean, batch_dir / "answers_clean.parquet")
        io.write_parquet(segments, batch_dir / "segments.parquet")
        part_params, switches = batch_params(params, clean)
        done("clean", t0, _clean_summary(clean, segments, time.perf_counter() - t0)
             | {"duplicates_s": round(t_dup, 3), "per_partition_s": round(t_clean - t_dup, 3),
                "boilerplate_documents": n_docs, "boilerplate_shingles": len(common)})
        del clean, segments

        t0 = time.perf_counter()
        embeds = _map(client, embed_partition, idx, part_params, root, cache_dir)
        io.write_npz(batch_dir / "embeddings.npz", **concat_npz([p / "embeddings.npz" for p in parts]))
        total = ChunkStats()
        for e in embeds:
            total.add(ChunkStats(**e["stats"]))
        done("embed", t0, {**total.__dict__, "switches": switches, "fallbacks": [],
                           "sentence_passages": sum(e["sentence_passages"] for e in embeds),
                           "task_seconds": round(sum(e["seconds"] for e in embeds), 3),
                           "worker_peak_rss_mb": _peaks(embeds)})

        t0 = time.perf_counter()
        whole = client.submit(_whole_batch_task, batch_dir, params, framework, examples, edits, cache_dir,
                              pure=False, retries=RETRIES).result()
        outcomes.append(runner.StageOutcome("themes", "ran", whole["themes_s"], whole["themes"]))
        outcomes.append(runner.StageOutcome("stance", "ran", whole["stance_s"], whole["stance"]))

        t0 = time.perf_counter()
        tags = _map(client, tag_partition, idx, part_params, root)
        io.write_parquet(concat_parquet([p / "tags.parquet" for p in parts]), batch_dir / "tags.parquet")
        io.write_parquet(concat_parquet([p / "tag_consistency.parquet" for p in parts]),
                         batch_dir / "tag_consistency.parquet")
        summary = _sum_counts([t["summary"] for t in tags])
        # the batch-level sentence-scoring switch, which the partitions (told always/never) do not see
        summary["switches"] = [*summary.get("switches", []), *(x for x in switches if x.startswith("tag."))]
        done("tag", t0, summary | {"task_seconds": round(sum(t["seconds"] for t in tags), 3),
                                   "worker_peak_rss_mb": _peaks(tags)})
    finally:
        close()

    t0 = time.perf_counter()
    manifest = _manifest(params, inputs, questionnaire, framework, examples, edits, cluster_info, outcomes)
    report_summary = report_stage.run(batch_dir, params, manifest)
    done("report", t0, report_summary)
    report_dir = batch_dir / "report"
    files = sorted(p for p in report_dir.iterdir() if p.is_file()) if report_dir.exists() else []
    return runner.RunResult(batch_dir, outcomes, files, time.perf_counter() - started)


def _peaks(results: list[dict[str, Any]]) -> dict[str, float]:
    """Peak RSS (MB) per worker process, from the tasks it ran."""
    out: dict[str, float] = {}
    for r in results:
        out[str(r["pid"])] = max(out.get(str(r["pid"]), 0.0), round(float(r["rss_mb"]), 1))
    return out


def _sum_counts(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-partition stage summaries added up: numbers summed, lists (fallbacks, switches) joined without
    repeats, anything else from the first partition."""
    out: dict[str, Any] = {}
    for s in summaries:
        for k, v in s.items():
            if isinstance(v, int | float) and not isinstance(v, bool):
                out[k] = out.get(k, 0) + v
            elif isinstance(v, list):
                out[k] = [*out.get(k, []), *(x for x in v if x not in out.get(k, []))]
            else:
                out.setdefault(k, v)
    return out


def _manifest(params: dict[str, Any], inputs: list[Path], questionnaire: Path | None, framework: Path | None,
              examples: Path | None, edits: Path | None, cluster_info: dict[str, Any],
              outcomes: list[Any]) -> dict[str, Any]:
    """The run manifest the report embeds (as `runner.run_all` writes it, plus the cluster)."""
    from pipeline import runner

    return {
        "wsis_themes_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": runner.package_versions(),
        "params": params,
        "inputs": {str(p): io.sha256_file(p) for p in runner.expand_inputs(inputs)},
        "questionnaire": str(questionnaire) if questionnaire else params.get("ingest", {}).get("questionnaire"),
        "framework": str(framework) if framework else None,
        "examples": str(examples) if examples else None,
        "edits": str(edits) if edits else None,
        "models": {"tagger": runner.current_model_dir(params).name,
                   "embedding": params.get("embed", {}).get("model")},
        "cluster": cluster_info,
        "stages": {o.name: {"status": o.status, "seconds": round(o.seconds, 3),
                            "summary": runner._jsonable(o.summary)} for o in outcomes},
    }
