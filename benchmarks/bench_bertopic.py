"""Side-by-side: our themes stage vs BERTopic on the SAME embeddings, Global Dialogues GD1-3.

Needs a Global Dialogues batch already processed by the pipeline (`bench_pipeline.py gd50k --keep`, or
`wsis run <GD csv> --mapping global_dialogues_gd1_3 --out DIR`): it reads `embeddings.npz` (answer vectors),
`answers_clean.parquet` and `theme_assignments.parquet` / `themes.parquet` from it. BERTopic is fitted per
question (like our themes stage, and like the vendor tags, which are per question) on the answer vectors of
non-empty answers, with its defaults (UMAP 15 neighbours / 5 components / cosine, HDBSCAN min_cluster_size 10)
and a fixed UMAP seed. Both systems are scored against the vendor (Remesh) topic tags with
`pipeline.evaluate.discovery_report`, codes and themes keyed per question.

BERTopic lives only in the benchmark environment (never in .venv):

    python3 -m venv .venv-bench && .venv-bench/bin/pip install torch==2.13.0 && \
        .venv-bench/bin/pip install bertopic && .venv-bench/bin/pip install -e .
    .venv-bench/bin/python benchmarks/bench_bertopic.py --batch /tmp/wsis-bench/runs/gd50k/batch
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    PeakSampler,
    machine_info,
    measure,
    read_result,
    shared_dir,
    write_result,
)

from pipeline import evaluate as ev  # noqa: E402
from pipeline.io import read_npz  # noqa: E402

SEED = 20251
GD_FILE = "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"
log = logging.getLogger("bench_bertopic")


def gold_frame() -> pd.DataFrame:
    """Vendor tags as a discovery gold file: answer_id + ";"-joined codes (from the "|"-separated tags)."""
    df = pd.read_csv(shared_dir() / GD_FILE, dtype=str, keep_default_na=False)
    return pd.DataFrame({
        "answer_id": df["dialogue"] + "-" + df["participant_id"] + "::" + df["question_id"],
        "question_id": df["question_id"],
        "codes": df["remesh_tags"].str.split("|").map(lambda tags: ";".join(t.strip() for t in tags if t.strip())),
    })


def per_question(labels: pd.Series, questions: pd.Series, keep: set[str] | None = None) -> pd.Series:
    """Prefix every label with its question so that codes/themes of different questions never merge."""
    out = []
    for value, q in zip(labels.tolist(), questions.tolist(), strict=True):
        labs = ev.split_labels(value)
        out.append(";".join(lab if keep and lab in keep else f"{q}|{lab}" for lab in labs))
    return pd.Series(out, index=labels.index)


def fit_bertopic(docs: list[str], vectors: np.ndarray, seed: int, min_cluster_size: int) -> tuple[np.ndarray, int]:
    from bertopic import BERTopic
    from hdbscan import HDBSCAN
    from sklearn.feature_extraction.text import CountVectorizer
    from umap import UMAP

    n_neighbors = min(15, max(2, len(docs) - 1))
    model = BERTopic(
        umap_model=UMAP(n_neighbors=n_neighbors, n_components=5, min_dist=0.0, metric="cosine", random_state=seed),
        hdbscan_model=HDBSCAN(min_cluster_size=min_cluster_size, metric="euclidean", cluster_selection_method="eom",
                              prediction_data=True),
        vectorizer_model=CountVectorizer(stop_words="english"),
        calculate_probabilities=False,
    )
    topics, _ = model.fit_transform(docs, embeddings=vectors)
    topics = np.asarray(topics)
    return topics, int(len(set(topics.tolist()) - {-1}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=Path, default=Path("/tmp/wsis-bench/runs/gd50k/batch"))
    ap.add_argument("--min-cluster-size", type=int, default=10)
    ap.add_argument("--max-questions", type=int, default=None, help="only the first N questions (quick check)")
    ap.add_argument("--suffix", default="_gd")
    ap.add_argument("--wait", type=float, default=0.0,
                    help="seconds to wait for the pipeline run's later stages (start BERTopic once embed is done)")
    ap.add_argument("--pipeline-result", default="pipeline_gd50k_onnx",
                    help="results/<name>.json of the pipeline run that produced --batch (our themes timing)")
    ap.add_argument("--out-dir", type=Path, default=Path("/tmp/wsis-bench/bertopic"),
                    help="where the prediction/gold CSVs are written (for `wsis evaluate --kind discovery`)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    batch = args.batch
    emb = read_npz(batch / "embeddings.npz")
    clean = pd.read_parquet(batch / "answers_clean.parquet", columns=["answer_id", "question_id", "text_clean",
                                                                      "is_nonanswer"])
    vec_index = {a: i for i, a in enumerate(emb["answer_ids"].astype(str).tolist())}
    vectors = emb["answer_vectors"]
    clean = clean[clean["answer_id"].isin(vec_index)]
    questions = sorted(clean["question_id"].unique().tolist())
    if args.max_questions:
        questions = questions[: args.max_questions]
        clean = clean[clean["question_id"].isin(questions)]

    # ----- BERTopic per question, on our answer vectors
    pred_rows: list[dict[str, str]] = []
    n_topics = 0
    n_docs = 0
    n_outliers = 0
    per_q_time: dict[str, float] = {}
    with PeakSampler() as sampler, measure(sampler) as m_bt:
        for q in questions:
            part = clean[(clean["question_id"] == q) & ~clean["is_nonanswer"]]
            idx = np.array([vec_index[a] for a in part["answer_id"]], dtype=int)
            ok = np.linalg.norm(vectors[idx], axis=1) > 0
            part, idx = part[ok], idx[ok]
            if len(part) < max(args.min_cluster_size * 2, 20):
                topics = np.full(len(part), -1)
                k = 0
            else:
                t0 = time.perf_counter()
                topics, k = fit_bertopic(part["text_clean"].tolist(), vectors[idx], SEED, args.min_cluster_size)
                per_q_time[q] = round(time.perf_counter() - t0, 3)
            n_topics += k
            n_docs += len(part)
            n_outliers += int((topics == -1).sum())
            pred_rows.extend({"answer_id": a, "themes": f"t{t}" if t >= 0 else "-1"}
                             for a, t in zip(part["answer_id"], topics.tolist(), strict=True))
    bt = pd.DataFrame(pred_rows, columns=["answer_id", "themes"])

    # ----- our themes (the pipeline run may still be finishing its later stages: wait for them)
    deadline = time.monotonic() + args.wait
    while not (batch / "tags.parquet").exists() and time.monotonic() < deadline:
        time.sleep(10)
    ours = pd.read_parquet(batch / "theme_assignments.parquet", columns=["answer_id", "question_id", "themes"])
    themes = pd.read_parquet(batch / "themes.parquet", columns=["theme_id", "scope", "origin"])

    # ----- gold and both systems, keyed per question
    gold = gold_frame()
    gold = gold[gold["answer_id"].isin(set(clean["answer_id"]))].copy()
    qmap = dict(zip(clean["answer_id"], clean["question_id"], strict=True))
    gold["codes"] = per_question(gold["codes"], gold["question_id"])
    bt["themes"] = per_question(bt["themes"], bt["answer_id"].map(qmap), keep={"-1"})
    ours = ours[ours["answer_id"].isin(set(clean["answer_id"]))].copy()
    ours["themes"] = per_question(ours["themes"], ours["question_id"], keep={"other"})

    params = {"seed": SEED, "evaluate": {"outlier_labels": ["other", "-1"]}}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    gold[["answer_id", "codes"]].to_csv(args.out_dir / "gold_remesh.csv", index=False)
    bt.to_csv(args.out_dir / "pred_bertopic.csv", index=False)
    ours[["answer_id", "themes"]].to_csv(args.out_dir / "pred_ours.csv", index=False)
    scores: dict[str, Any] = {}
    for name, pred in (("ours", ours[["answer_id", "themes"]]), ("bertopic", bt)):
        res = ev.evaluate_frames(pred, gold[["answer_id", "codes"]], "discovery", params)
        rep = res["groups"]["discovery"]
        scores[name] = {k: rep[k] for k in ("n_codes", "n_themes", "best_match_f1_mean", "best_match_f1_weighted",
                                            "hungarian_f1_mean", "hungarian_f1_weighted", "nmi", "ari",
                                            "n_primary_pairs", "pred_outlier_share")}
        scores[name]["n_missing_in_pred"] = res["n_missing_in_pred"]
    # agreement between the two systems (ours as "gold" codes, BERTopic as prediction)
    ours_as_gold = ours.rename(columns={"themes": "codes"})[["answer_id", "codes"]]
    cross = ev.evaluate_frames(bt, ours_as_gold, "discovery", params)["groups"]["discovery"]

    # ----- our themes stage: timing from the pipeline benchmark of the same batch, counts from its outputs
    ours_non_other = themes[themes["origin"] != "other"]
    ours_out = ours["themes"].map(lambda v: (ev.split_labels(v) or ["other"])[0] == "other")
    answered = ours["answer_id"].isin(set(clean.loc[~clean["is_nonanswer"], "answer_id"]))
    pipe = read_result(args.pipeline_result)
    ours_timing = pipe["cold"]["stages"].get("themes") if pipe else None
    result: dict[str, Any] = {
        "batch": str(batch),
        "n_questions": len(questions),
        "n_answers_evaluated": len(gold),
        "bertopic": {
            "settings": {"umap": "n_neighbors=15, n_components=5, min_dist=0, cosine", "seed": SEED,
                         "hdbscan_min_cluster_size": args.min_cluster_size, "per_question": True,
                         "embeddings": "our embed stage's answer vectors (embeddings.npz)"},
            "time": m_bt.as_dict(),
            "n_docs": n_docs,
            "n_topics": n_topics,
            "outlier_share": round(n_outliers / n_docs, 4) if n_docs else None,
            "seconds_per_question": per_q_time,
            "agreement_with_vendor_tags": scores["bertopic"],
        },
        "ours": {
            "time": ours_timing,
            "time_source": f"themes stage of results/{args.pipeline_result}.json (cold run on the same batch)",
            "n_themes": int(len(ours_non_other)),
            "n_themes_by_origin": themes["origin"].value_counts().to_dict(),
            "outlier_share": round(float(ours_out[answered].mean()), 4) if answered.any() else None,
            "agreement_with_vendor_tags": scores["ours"],
        },
        "ours_vs_bertopic": {k: cross[k] for k in ("nmi", "ari", "best_match_f1_weighted")},
        "files": {"gold": str(args.out_dir / "gold_remesh.csv"), "bertopic": str(args.out_dir / "pred_bertopic.csv"),
                  "ours": str(args.out_dir / "pred_ours.csv")},
        "machine": machine_info(),
    }
    try:
        from importlib import metadata

        result["machine"]["bench_packages"] = {n: metadata.version(n) for n in
                                               ("bertopic", "umap-learn", "hdbscan", "numba", "torch")}
    except Exception:  # noqa: BLE001 - informational only
        pass
    path = write_result(f"bertopic{args.suffix}", ev._jsonable(result))
    print(json.dumps({k: result[k] for k in ("n_answers_evaluated", "ours_vs_bertopic")}, default=str))
    print("bertopic", json.dumps({k: v for k, v in result["bertopic"].items() if k != "seconds_per_question"},
                                 default=str))
    print("ours", json.dumps(result["ours"], default=str))
    print("->", path)


if __name__ == "__main__":
    main()
