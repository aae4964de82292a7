"""Issue 16: the pipeline on a Dask cluster gives the local run's files; the chunk cache survives a killed worker.

The batch-wide clean decisions (duplicates, boilerplate) are checked against the local functions on synthetic
batches split into partitions (fast, no models). The end-to-end comparison uses a real Global Dialogues batch
of about 1,200 answers (CI time; the 20k comparison is in benchmarks/bench_cluster.py) on
LocalCluster(n_workers=2, threads_per_worker=1, processes=True).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.clean.boilerplate import boilerplate_mask
from pipeline.clean.duplicates import find_duplicates
from pipeline.cluster import batchwide

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"seed": 0, "clean": {}}


def _synthetic_answers(n: int = 240, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(400)]
    campaign = " ".join(rng.choice(vocab, 40))
    rows = []
    for i in range(n):
        kind = i % 6
        if kind == 0:
            text = campaign  # exact campaign copies spread over every partition
        elif kind == 1:
            words = campaign.split()
            words[int(rng.integers(0, 40))] = "changed"
            text = " ".join(words)  # near copies
        elif kind == 2:
            text = "N/A"
        else:
            text = " ".join(rng.choice(vocab, int(rng.integers(3, 60))))
        owner = f"r{i // 3}" if i % 7 else "r-self"  # some owners answer many questions (self copies)
        rows.append({"response_id": f"{owner}-{i}" if owner != "r-self" else "r-self", "question_id": f"q{i}",
                     "question_text": "What do you think?", "answer": text, "submission_group": owner})
    solo = " ".join(rng.choice(vocab, 30))
    for j in (5, n // 2, n - 3):  # one respondent pasting the same text into three questions: "self"
        rows.insert(j, {"response_id": "solo", "question_id": f"s{j}", "question_text": "What do you think?",
                        "answer": solo, "submission_group": "solo"})
    return pd.DataFrame(rows)


def _split(df: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    bounds = np.linspace(0, len(df), k + 1).astype(int)
    return [df.iloc[a:b].reset_index(drop=True) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def test_duplicate_groups_from_partition_statistics_equal_find_duplicates() -> None:
    from pipeline.clean.core import clean_params
    from pipeline.clean.nonanswers import nonanswer_reason
    from pipeline.clean.normalise import normalise_text

    answers = _synthetic_answers()
    parts = _split(answers, 4)
    stats = pd.concat([batchwide.dedup_stats(p, PARAMS) for p in parts], ignore_index=True)

    def fetch(wanted: set[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for p in parts:
            out.update(batchwide.tokens_for_keys(p, wanted, PARAMS))
        return out

    got = batchwide.group_duplicates(stats, fetch, PARAMS).set_index("answer_id")
    cfg = clean_params(PARAMS)
    texts = [normalise_text(a) for a in answers["answer"]]
    ids = [f"{r}::{q}" for r, q in zip(answers["response_id"], answers["question_id"], strict=True)]
    want = find_duplicates(ids, texts, batchwide.owners_of(answers),
                           eligible=[not nonanswer_reason(t, "What do you think?") for t in texts],
                           threshold=float(cfg["near_duplicate_threshold"]),
                           min_words=int(cfg["min_duplicate_words"]),
                           min_exact_words=int(cfg["min_exact_duplicate_words"]), seed=0)
    assert {k for k in want.kind if k} == {"exact", "near", "self"}
    for i, answer_id in enumerate(ids):
        if want.group[i]:
            assert (got.loc[answer_id, "dup_group"], got.loc[answer_id, "dup_group_size"],
                    got.loc[answer_id, "dup_kind"]) == (want.group[i], want.size[i], want.kind[i])
        else:
            assert answer_id not in got.index


def test_boilerplate_from_shingle_counts_equals_boilerplate_mask() -> None:
    rng = np.random.default_rng(5)
    vocab = [f"v{i}" for i in range(300)]
    header = "Submission to the consultation on digital cooperation page 3 of 12 by the undersigned"
    clean_rows, seg_rows = [], []
    for d in range(30):
        n_seg = 2 if d % 5 == 0 else 4  # short answers are never candidates
        aid = f"doc{d}::q1"
        clean_rows.append({"answer_id": aid, "response_id": f"doc{d}", "submission_group": f"g{d // 2}",
                           "n_segments": n_seg, "dup_group": "dup-x" if d == 7 else ""})
        for k in range(n_seg):
            text = header if (k == 0 and d % 3) else " ".join(rng.choice(vocab, 25))
            seg_rows.append({"answer_id": aid, "text": text})
    clean = pd.DataFrame(clean_rows)
    segments = pd.DataFrame(seg_rows)
    # partitions cut through a submission group (g5 = doc10 + doc11 lands in two partitions)
    cuts = [("doc0", "doc10"), ("doc11", "doc20"), ("doc21", "doc99")]
    def in_range(aid: str, lo: str, hi: str) -> bool:
        n = int(aid.split("::")[0][3:])
        return int(lo[3:]) <= n <= int(hi[3:])
    pairs, part_frames = [], []
    for lo, hi in cuts:
        c = clean[[in_range(a, lo, hi) for a in clean["answer_id"]]].reset_index(drop=True)
        s = segments[[in_range(a, lo, hi) for a in segments["answer_id"]]].reset_index(drop=True)
        part_frames.append((c, s))
        pairs.append(batchwide.shingle_doc_pairs(c, s, PARAMS))
    allp = pd.concat(pairs).drop_duplicates()
    n_docs = int((allp["shingle"] == batchwide.DOC_MARK).sum())
    counts = allp[allp["shingle"] != batchwide.DOC_MARK].groupby("shingle").size()
    common = {int(s) for s in counts[counts >= batchwide.boilerplate_need(n_docs, PARAMS)].index}
    got = np.concatenate([batchwide.boilerplate_flags(c, s, common, PARAMS) for c, s in part_frames])

    owner = dict(zip(clean["answer_id"], batchwide.owners_of(clean), strict=True))
    row = clean.set_index("answer_id")
    eligible = [row.loc[a, "n_segments"] >= 3 and not row.loc[a, "dup_group"] for a in segments["answer_id"]]
    want = boilerplate_mask(segments["text"].tolist(), [owner[a] for a in segments["answer_id"]], eligible)
    assert want.sum() >= 10
    assert got.tolist() == want.tolist()


def test_default_path_imports_no_dask() -> None:
    code = ("import sys, pipeline.cli, pipeline.runner, pipeline.cluster\n"
            "import pipeline.clean.stage, pipeline.embed.stage, pipeline.tagger.stage, pipeline.themes.stage\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'dask', 'distributed'})\n"
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_worker_params_keep_each_worker_to_its_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 1-thread Dask worker cleans in its own process (no forked spaCy workers: the cluster is the parallelism)
    and encodes with a 1-thread ONNX session; outside a worker the params are unchanged."""
    from pipeline import config
    from pipeline.cluster import run as cluster_run

    params = config.load_params()
    assert params["clean"]["n_process"] == 2
    assert cluster_run.worker_params(params) is params  # not on a worker
    monkeypatch.setattr(cluster_run, "_limit_threads", lambda: 1)
    on_worker = cluster_run.worker_params(params)
    assert on_worker["clean"]["n_process"] == 1 and on_worker["embed"]["threads"] == 1
    assert params["clean"]["n_process"] == 2  # the caller's params are not changed


def test_cluster_option_errors_name_the_option() -> None:
    pytest.importorskip("distributed")
    from pipeline.cluster.run import connect
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="local:N"):
        connect("local:two")


def test_wsis_run_cluster_option_reaches_the_distributed_path(tmp_path: Path) -> None:
    """`wsis run --cluster X` (or run.cluster in params) goes through run_distributed: a bad value is a one-line
    error naming the option, no traceback, nothing run."""
    pytest.importorskip("distributed")
    from typer.testing import CliRunner

    from pipeline.cli import app

    res = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "b"), "--cluster", "local:two"])
    assert res.exit_code != 0 and "local:N" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "b" / "answers.parquet").exists()
    params = tmp_path / "p.yaml"
    params.write_text("run:\n  cluster: local:two\n", encoding="utf-8")
    res = CliRunner().invoke(app, ["run", "--out", str(tmp_path / "c"), "--params", str(params)])
    assert res.exit_code != 0 and "local:N" in res.output


# ------------------------------------------------------------------------------- end to end (real data)
GD = "corpora/cip-global-dialogues"
GD_FILE = "GD1-3_open_responses_with_remesh_tags.csv"


def _gd_batch(shared: Path, dest: Path, target: int, seed: int = 16) -> Path:
    """Whole Global Dialogues participants (seeded order) up to `target` answers."""
    import shutil

    src = shared / GD
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(src / "GD1-3_questions.csv", dest / "GD1-3_questions.csv")
    df = pd.read_csv(src / GD_FILE, dtype=str, keep_default_na=False)
    people = df[["dialogue", "participant_id"]].drop_duplicates().sample(frac=1.0, random_state=seed)
    sizes = df.groupby(["dialogue", "participant_id"]).size()
    chosen, total = [], 0
    for key in people.itertuples(index=False):
        chosen.append(tuple(key))
        total += int(sizes[tuple(key)])
        if total >= target:
            break
    keep = pd.MultiIndex.from_frame(df[["dialogue", "participant_id"]]).isin(pd.MultiIndex.from_tuples(chosen))
    df[keep].to_csv(dest / GD_FILE, index=False)
    return dest / GD_FILE


@pytest.fixture(scope="module")
def two_workers():
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    os.environ.setdefault("WSIS_NO_PROGRESS", "1")
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()


def _report_tables(batch: Path) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_csv(p, dtype=str, keep_default_na=False)
            for p in sorted((batch / "report" / "tables").glob("*.csv"))}


def assert_same_batch(local: Path, dist: Path) -> None:
    """Identical answers, clean answers, passages, tags and report tables; embeddings equal up to the last bits
    (other batch padding); themes ARI >= 0.99."""
    from sklearn.metrics import adjusted_rand_score

    for name in ("answers.parquet", "answers_clean.parquet", "segments.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(local / name), pd.read_parquet(dist / name), obj=name)
    ea, eb = np.load(local / "embeddings.npz"), np.load(dist / "embeddings.npz")
    assert (ea["answer_ids"] == eb["answer_ids"]).all() and (ea["segment_ids"] == eb["segment_ids"]).all()
    assert np.abs(ea["answer_vectors"] - eb["answer_vectors"]).max() < 1e-5  # batch padding: last bits only
    ta, tb = pd.read_parquet(local / "tags.parquet"), pd.read_parquet(dist / "tags.parquet")
    labels = ["answer_id", "action_lines", "sdgs", "mentioned_action_lines", "mentioned_sdgs"]
    pd.testing.assert_frame_equal(ta[labels], tb[labels])
    scores = [c for c in ta.columns if c.startswith("score_")]
    assert np.abs(ta[scores].to_numpy() - tb[scores].to_numpy()).max() <= 2e-4
    sa = pd.read_parquet(local / "theme_assignments.parquet")
    sb = pd.read_parquet(dist / "theme_assignments.parquet")
    assert (sa["answer_id"] == sb["answer_id"]).all()
    assert adjusted_rand_score(sa["themes"], sb["themes"]) >= 0.99
    ra, rb = _report_tables(local), _report_tables(dist)
    assert ra.keys() == rb.keys() and len(ra) >= 3
    for name in ra:
        pd.testing.assert_frame_equal(ra[name], rb[name], obj=name)


@pytest.mark.slow
@pytest.mark.shared
def test_distributed_run_equals_local_run(shared_dir: Path, tmp_path: Path, two_workers,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import config
    from pipeline.cluster import run_distributed
    from pipeline.runner import run_all

    src = _gd_batch(shared_dir, tmp_path / "in", 1200)
    params = config.load_params()
    params["run"] = {**(params.get("run") or {}), "partition_rows": 300}
    monkeypatch.setenv("WSIS_CACHE_DIR", str(tmp_path / "cache-local"))
    run_all([src], tmp_path / "local", params, mapping="global_dialogues_gd1_3")
    result = run_distributed([src], tmp_path / "dist", params, two_workers, mapping="global_dialogues_gd1_3",
                             cache_dir=tmp_path / "cache-dist")
    local, dist = tmp_path / "local", tmp_path / "dist"
    assert json.loads((dist / "report" / "run_manifest.json").read_text())["cluster"]["partitions"] >= 4
    assert [o.name for o in result.stages] == ["ingest", "clean", "embed", "themes", "stance", "tag", "report"]
    assert_same_batch(local, dist)


@pytest.mark.slow
@pytest.mark.shared
def test_killed_worker_loses_no_embedding_work(shared_dir: Path, tmp_path: Path, two_workers,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import config
    from pipeline.cluster import run_distributed
    from pipeline.cluster.cache import chunk_dir

    src = _gd_batch(shared_dir, tmp_path / "in", 600, seed=7)
    params = config.load_params()
    params["run"] = {**(params.get("run") or {}), "partition_rows": 100}
    params["embed"] = {**params["embed"], "shard_size": 16}
    monkeypatch.setenv("WSIS_CACHE_DIR", str(tmp_path / "cache-local"))
    chunks = chunk_dir(tmp_path / "cache", params)
    pids = two_workers.run(os.getpid)
    killed: list[int] = []

    def kill_when_embedding() -> None:
        deadline = time.time() + 600
        while time.time() < deadline and len(list(chunks.glob("*.npz"))) < 8:
            time.sleep(0.05)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)

    killer = threading.Thread(target=kill_when_embedding, daemon=True)
    killer.start()
    first = run_distributed([src], tmp_path / "dist", params, two_workers, mapping="global_dialogues_gd1_3",
                            cache_dir=tmp_path / "cache")
    killer.join(timeout=5)
    assert killed, "the worker was never killed (embedding finished too fast)"
    assert set(two_workers.run(os.getpid).values()) != set(pids.values())  # the nanny started a new worker

    # nothing lost: every text has a vector
    emb = np.load(tmp_path / "dist" / "embeddings.npz")
    clean = pd.read_parquet(tmp_path / "dist" / "answers_clean.parquet")
    real = ~clean["is_nonanswer"].to_numpy() & clean["text_clean"].str.strip().ne("").to_numpy()
    assert (np.linalg.norm(emb["answer_vectors"][real], axis=1) > 0.99).all()
    assert len(emb["segment_ids"]) == len(pd.read_parquet(tmp_path / "dist" / "segments.parquet"))
    # nothing done twice: the retried task reused the chunks the killed worker had finished, and every chunk
    # of the run is one file (encoded once by a live task or by the killed worker, then reused)
    embed_first = next(o for o in first.stages if o.name == "embed").summary
    assert embed_first["chunks_reused"] >= 1
    assert len(list(chunks.glob("*.npz"))) == embed_first["chunks_encoded"] + embed_first["chunks_reused"]
    # and the result equals a run that nobody interrupted (same chunks: served from the cache)
    again = run_distributed([src], tmp_path / "again", params, two_workers, mapping="global_dialogues_gd1_3",
                            cache_dir=tmp_path / "cache")
    embed = next(o for o in again.stages if o.name == "embed").summary
    assert embed["encoded"] == 0 and embed["chunks_reused"] > 0
    emb2 = np.load(tmp_path / "again" / "embeddings.npz")
    assert np.array_equal(emb["answer_vectors"], emb2["answer_vectors"])
    assert np.array_equal(emb["segment_vectors"], emb2["segment_vectors"])
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "dist" / "tags.parquet"),
                                  pd.read_parquet(tmp_path / "again" / "tags.parquet"))
