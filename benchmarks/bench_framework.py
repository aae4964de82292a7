"""Framework-mode quality on two dev checks (reads ../shared at run time; no respondent text is stored).

bc : hand-coded gold (benchmarks/data/framework_gold_bc.yaml) for 2 BC AI survey questions, 80 sampled
     answers each, against frames written for this check; the mapper is fitted on ALL answers of the
     question (as in the stage) and scored on the coded ones with a non-empty gold (samples-F1).
gd : the 8 Global Dialogues questions of bench_themes.py quality (vendor tags as weak gold).
Both are compared with plain cosine (best description, plus any within 0.03).
Inputs go through the real clean and embed stages (embeddings via the usual cache); ~50 s on 2 cores.

    .venv/bin/python benchmarks/bench_framework.py [--set key=value ...] [--out NAME]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
GOLD = ROOT / "benchmarks" / "data" / "framework_gold_bc.yaml"
GD_QS = ["0e9cc226-d1d4-4ac3-bdd3-80dc542579d2", "ecb3b9b7-e8ce-404f-8ea4-e14a0cb586f1",
         "f5407fc4-4693-4284-9c71-9a436ed8a854", "722cf427-d884-477e-94a7-5c734b30acba",
         "387627e5-48a0-47e6-b740-6a74330c7ccf", "91fcb570-ec08-458e-af99-d9df0650384a",
         "9cc4f2fc-dee9-4196-b1c7-b437544668c8", "ded5e02c-b488-4fee-9487-552f965ca972"]


def _cases(shared: Path, params: dict, enc) -> list[dict]:
    """(check, question, frame records, data pieces, gold matrix rows) for every dev question."""
    from bench_themes import _prepare

    corp = shared / "corpora"
    cases: list[dict] = []
    gold_cfg = yaml.safe_load(GOLD.read_text(encoding="utf-8"))["questions"]
    bc = pd.read_csv(corp / "bc-ai-survey-2025/bc_ai_survey_responses.csv", dtype=str, keep_default_na=False)
    long = bc.melt(id_vars=["participant_id"], value_vars=list(gold_cfg), var_name="question_id",
                   value_name="answer").rename(columns={"participant_id": "response_id"})
    gd = pd.read_csv(corp / "cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv")
    g = gd[gd["question_id"].isin(GD_QS)].dropna(subset=["response_text"])
    long_gd = pd.DataFrame({"response_id": g["participant_id"].astype(str), "question_id": g["question_id"],
                            "answer": g["response_text"].astype(str)}).drop_duplicates(["response_id", "question_id"])
    tag_of = {(str(p), q): t for p, q, t in zip(g["participant_id"], g["question_id"], g["remesh_tags"], strict=True)}
    for check, lg in (("bc", long), ("gd", long_gd)):
        ans, seg, avec, svec = _prepare(lg, params, enc)
        for qid in sorted(set(ans["question_id"])):
            sub = ans[(ans["question_id"] == qid) & ~ans["is_nonanswer"]].reset_index()
            if check == "bc":
                frame = gold_cfg[qid]["frame"]
                coded = {str(k): v for k, v in gold_cfg[qid]["gold"].items()}
                pref = sub["response_id"].str[:8]
                rows = [i for i, p in enumerate(pref) if p in coded and coded[p]]
                gold_sets = [set(coded[pref[i]]) for i in rows]
            else:
                gl = [[x.strip() for x in str(tag_of.get((r, qid), "") or "").split("|")
                       if x.strip() and x.strip() not in ("Other", "Uninformative answer")]
                      for r in sub["response_id"]]
                counts = pd.Series([t for ts in gl for t in ts]).value_counts()
                tags = [t for t, c in counts.items() if c >= max(5, 0.02 * len(sub))]
                frame = [{"id": f"t{i}", "label": t, "description": t} for i, t in enumerate(tags)]
                keep = [i for i, ts in enumerate(gl) if any(t in tags for t in ts)]
                sub = sub.iloc[keep].reset_index(drop=True)
                rows = list(range(len(sub)))
                name = {t: f"t{i}" for i, t in enumerate(tags)}
                gold_sets = [{name[t] for t in gl[keep[i]] if t in name} for i in rows]
            pos = {a: i for i, a in enumerate(sub["answer_id"])}
            sm = seg["answer_id"].isin(pos).to_numpy() & ~seg["is_nonanswer"].to_numpy()
            ids = [f["id"] for f in frame]
            cases.append({"check": check, "question_id": qid, "frame": frame, "texts": sub["text_clean"].tolist(),
                          "avec": avec[sub["index"].to_numpy()], "svec": svec[sm],
                          "sans": seg.loc[sm, "answer_id"].map(pos).to_numpy(), "rows": np.array(rows, dtype=int),
                          "gold": np.array([[t in s for t in ids] for s in gold_sets], dtype=bool)})
    return cases


def evaluate(cases: list[dict], opts: dict, enc) -> dict:
    from sklearn.metrics import f1_score

    from pipeline.themes.framework import FrameworkData, FrameworkMapper, with_agreement
    from pipeline.themes.seeds import from_records

    out: dict = {"bc": [], "gd": []}
    for c in cases:
        frame = from_records(c["frame"]).encoded(enc)
        data = FrameworkData(c["texts"], c["avec"], c["svec"], c["sans"])
        cos = data.answer_vectors @ frame.vectors.T
        plain = cos >= cos.max(axis=1, keepdims=True) - 0.03
        t0 = time.perf_counter()
        data = with_agreement(data, frame, opts)  # the stance model's reading, as the stage does
        pred = FrameworkMapper(**opts).fit(data, frame).predict(data)
        sec = time.perf_counter() - t0
        r, gold = c["rows"], c["gold"]
        out[c["check"]].append({
            "question_id": c["question_id"], "frame_size": len(c["frame"]), "batch_answers": len(c["texts"]),
            "scored_answers": len(r), "gold_per_answer": round(float(gold.sum(1).mean()), 2),
            "pred_per_answer": round(float(pred[r].sum(1).mean()), 2),
            "plain_cosine_f1": round(float(f1_score(gold, plain[r], average="samples", zero_division=0)), 4),
            "samples_f1": round(float(f1_score(gold, pred[r], average="samples", zero_division=0)), 4),
            "seconds": round(sec, 2)})
    for k in ("bc", "gd"):
        rows = out[k]
        out[k] = {"per_question": rows, "mean_samples_f1": round(float(np.mean([x["samples_f1"] for x in rows])), 4),
                  "mean_plain_cosine_f1": round(float(np.mean([x["plain_cosine_f1"] for x in rows])), 4)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--set", nargs="*", default=[], help="mapper option overrides key=value (YAML values)")
    ap.add_argument("--out", default="", help="write benchmarks/results/framework_<out>.json")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WSIS_NO_PROGRESS", "1")
    from pipeline import config
    from pipeline.embed import encode

    params = config.load_params()
    cache = config.cache_dir()

    def enc(texts: list[str]) -> np.ndarray:
        return encode(list(texts), params, cache)

    cases = _cases(args.shared, params, enc)
    opts = dict(params["themes"].get("framework", {}) or {})
    for kv in args.set:
        k, v = kv.split("=", 1)
        opts[k] = yaml.safe_load(v)
    res = {"options": opts, **evaluate(cases, opts, enc)}
    print(json.dumps({k: res[k] for k in ("options",)}),
          {k: (res[k]["mean_samples_f1"], res[k]["mean_plain_cosine_f1"]) for k in ("bc", "gd")})
    if args.out:
        from pipeline.io import write_json

        res["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_json(res, ROOT / "benchmarks" / "results" / f"framework_{args.out}.json")


if __name__ == "__main__":
    main()
