"""Benchmark of the themes stage.

speed   : discovery on N segments with embeddings given (default 50,000 x 384), in a fresh process per
          layout (many questions / one big question); wall time, CPU time and peak RSS.
quality : on the real corpora in ../shared (read at run time, nothing copied): framework-mode
          samples-F1 on Global Dialogues questions (frame = the vendor's topic tags, worded by the
          vendor; gold = the tags per answer) vs plain cosine; discovery best-match F1 per tag
          (weighted by tag size); "other" share on several corpora; shuffled-input ARI.

    .venv/bin/python benchmarks/bench_themes.py speed   [--n 50000]
    .venv/bin/python benchmarks/bench_themes.py quality [--shared ../shared]
Results go to benchmarks/results/themes_speed.json and themes_quality.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results"
WORDS = [
    "access", "broadband", "rural", "privacy", "data", "consent", "skills", "training", "school",
    "teacher", "health", "clinic", "climate", "energy", "waste", "gender", "women", "girls",
    "finance", "fund", "investment", "security", "trust", "crime", "governance", "forum",
    "stakeholder", "language", "culture", "content", "rights", "freedom", "speech", "children",
    "safety", "market", "trade", "innovation", "startup", "identity", "payment", "government",
    "service", "standard", "network", "spectrum", "satellite", "ai", "model", "risk",
]


def _synthetic(n: int, n_questions: int, dim: int = 384, topics: int = 40, seed: int = 0):
    """Segments from a mixture of topic directions (realistic cluster structure, known cost profile)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(topics, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    topic = rng.integers(0, topics, size=n)
    vec = centres[topic] + 0.9 * rng.normal(size=(n, dim)).astype(np.float32) / np.sqrt(dim)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    words = np.array(WORDS)
    texts = [" ".join(words[(rng.integers(0, 6, size=12) + 5 * (t % 12)) % len(words)]) for t in topic]
    n_resp = max(n // (2 * n_questions), 1)
    resp = rng.integers(0, n_resp, size=n)
    q = rng.integers(0, n_questions, size=n)
    answer_id = [f"R{r:06d}::Q{qq:02d}" for r, qq in zip(resp, q, strict=True)]
    seg = pd.DataFrame({"answer_id": answer_id, "response_id": [f"R{r:06d}" for r in resp],
                        "question_id": [f"Q{qq:02d}" for qq in q], "text": texts})
    seg["seg_index"] = seg.groupby("answer_id").cumcount()
    seg["segment_id"] = seg["answer_id"] + "#" + seg["seg_index"].astype(str)
    seg["text_redacted"] = seg["text"]
    seg["is_nonanswer"] = False
    answers = seg.drop_duplicates("answer_id")[["answer_id", "response_id", "question_id"]].copy()
    answers["keyphrases"] = [[] for _ in range(len(answers))]
    return answers, seg, vec


def _speed_child(n: int, n_questions: int) -> dict:
    from pipeline.themes import discover_themes

    answers, seg, vec = _synthetic(n, n_questions)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    res = discover_themes(answers, seg, vec, {"seed": 20251, "themes": {}}, None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"segments": n, "questions": n_questions, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "rss_before_mb": round(rss0 / 1024, 1), **res.summary}


def speed(n: int) -> dict:
    runs = []
    for n_q in (11, 1):
        out = subprocess.run([sys.executable, __file__, "_child", str(n), str(n_q)], capture_output=True,
                             text=True, check=True, env={**os.environ, "WSIS_NO_PROGRESS": "1"})
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1], flush=True)
    return {"benchmark": "themes discovery, embeddings given", "machine": _machine(), "runs": runs,
            "note": "synthetic 384-d topic-mixture vectors and bag-of-word texts; BERTopic (bench extra) was "
                    "not installed in this environment, so no head-to-head timing is reported"}


def _machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


# ---------------------------------------------------------------------------------------------- quality
def _prepare(long: pd.DataFrame, params: dict, enc) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """Real clean stage (segments, keyphrases, non-answers) and embed stage on a canonical long table."""
    from pipeline.clean import clean_answers

    base = {c: "" for c in ["question_text", "org_name", "org_type", "stakeholder_group", "country",
                            "country_raw", "region", "subregion", "submitted_at", "source_file",
                            "source_record", "submission_group"]}
    df = long.assign(**{k: v for k, v in base.items() if k not in long.columns})
    df["question_number"] = pd.array([pd.NA] * len(df), dtype="Int64")
    df["source_format"] = "long"
    df["is_document"] = False
    df["is_current"] = True
    ans, seg = clean_answers(df, params)
    return ans, seg, enc(ans["text_clean"].fillna("").tolist()), enc(seg["text"].fillna("").tolist())


def quality(shared: Path) -> dict:
    from sklearn.metrics import adjusted_rand_score, f1_score

    from pipeline import config
    from pipeline.embed import encode
    from pipeline.themes import discover_themes
    from pipeline.themes.framework import FrameworkData, FrameworkMapper
    from pipeline.themes.seeds import from_records, load_seed_themes

    params = config.load_params()
    cache = config.cache_dir()

    def enc(texts: list[str]) -> np.ndarray:
        return encode(list(texts), params, cache)

    seeds = load_seed_themes().encoded(enc)
    out: dict = {"machine": _machine(), "note": (
        "Global Dialogues remesh tags are a weak (vendor-assigned) gold: frames = tags used on >= 2% of a "
        "question's answers, each described only by its tag wording; answers with no frame tag are left out. "
        "Discovery F1 = for each tag, the best discovered theme's F1 over the question's answers, averaged "
        "weighted by tag size. Inputs go through the real clean and embed stages.")}
    corp = shared / "corpora"
    # Global Dialogues: 8 questions of GD1-GD3
    gd = pd.read_csv(corp / "cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv")
    qs = ["0e9cc226-d1d4-4ac3-bdd3-80dc542579d2", "ecb3b9b7-e8ce-404f-8ea4-e14a0cb586f1",
          "f5407fc4-4693-4284-9c71-9a436ed8a854", "722cf427-d884-477e-94a7-5c734b30acba",
          "387627e5-48a0-47e6-b740-6a74330c7ccf", "91fcb570-ec08-458e-af99-d9df0650384a",
          "9cc4f2fc-dee9-4196-b1c7-b437544668c8", "ded5e02c-b488-4fee-9487-552f965ca972"]
    g = gd[gd["question_id"].isin(qs)].dropna(subset=["response_text"])
    long = pd.DataFrame({"response_id": g["participant_id"].astype(str), "question_id": g["question_id"],
                         "answer": g["response_text"].astype(str)}).drop_duplicates(["response_id", "question_id"])
    t0 = time.perf_counter()
    ans, seg, avec, svec = _prepare(long, params, enc)
    out["gd_prepare_s"] = round(time.perf_counter() - t0, 1)
    tag_of = {(str(p), q): t for p, q, t in zip(g["participant_id"], g["question_id"], g["remesh_tags"], strict=True)}
    ans["gold"] = [
        [x.strip() for x in str(tag_of.get((r, q), "") or "").split("|")
         if x.strip() and x.strip() not in ("Other", "Uninformative answer")]
        for r, q in zip(ans["response_id"], ans["question_id"], strict=True)
    ]
    fw_rows, disc_rows = [], []
    t0 = time.perf_counter()
    res = discover_themes(ans, seg, svec, params, seeds)
    out["gd_discovery_s"] = round(time.perf_counter() - t0, 2)
    out["gd_discovery_summary"] = res.summary
    ta = res.theme_assignments.set_index("answer_id")["themes"]
    for qid in qs:
        sub = ans[(ans["question_id"] == qid) & ~ans["is_nonanswer"]].reset_index()
        counts = pd.Series([t for ts in sub["gold"] for t in ts]).value_counts()
        # discovery: for each tag, the best-matching theme's F1, weighted by tag size
        pred = {a: set(x for x in ta.get(a, "").split(";") if x) for a in sub["answer_id"]}
        themes = sorted(set().union(*pred.values())) if pred else []
        num = den = 0.0
        for tag, n in counts.items():
            gold_set = {a for a, ts in zip(sub["answer_id"], sub["gold"], strict=True) if tag in ts}
            best = 0.0
            for th in themes:
                p = {a for a, s in pred.items() if th in s}
                tp = len(gold_set & p)
                best = max(best, 2 * tp / (len(gold_set) + len(p)) if tp else 0.0)
            num += best * n
            den += n
        disc_rows.append({"question_id": qid, "tags": len(counts), "themes": len(themes),
                          "weighted_best_f1": round(num / max(den, 1), 4)})
        # framework mode: frame = tags used on >= 2% of the answers, described by their own wording
        frame_tags = [t for t, c in counts.items() if c >= max(5, 0.02 * len(sub))]
        keep = sub["gold"].apply(lambda ts, ft=frame_tags: any(t in ft for t in ts)).to_numpy()
        s2 = sub[keep].reset_index(drop=True)
        gold = np.array([[t in ts for t in frame_tags] for ts in s2["gold"]])
        frame = from_records([{"id": f"t{i}", "label": t, "description": t} for i, t in enumerate(frame_tags)])
        frame = frame.encoded(enc)
        pos = {a: i for i, a in enumerate(s2["answer_id"])}
        sm = seg["answer_id"].isin(pos).to_numpy() & ~seg["is_nonanswer"].to_numpy()
        data = FrameworkData(s2["text_clean"].tolist(), avec[s2["index"].to_numpy()], svec[sm],
                             seg.loc[sm, "answer_id"].map(pos).to_numpy())
        cos = data.answer_vectors @ frame.vectors.T
        plain = f1_score(gold, cos >= cos.max(axis=1, keepdims=True) - 0.03, average="samples", zero_division=0)
        t1 = time.perf_counter()
        pred_fw = FrameworkMapper(**params["themes"].get("framework", {})).fit(data, frame).predict(data)
        fw_rows.append({"question_id": qid, "frame_size": len(frame_tags), "answers": len(s2),
                        "gold_per_answer": round(float(gold.sum(1).mean()), 2),
                        "pred_per_answer": round(float(pred_fw.sum(1).mean()), 2),
                        "plain_cosine_f1": round(plain, 4),
                        "samples_f1": round(f1_score(gold, pred_fw, average="samples", zero_division=0), 4),
                        "seconds": round(time.perf_counter() - t1, 2)})
        print(fw_rows[-1], disc_rows[-1], flush=True)
    out["framework_gd"] = {"per_question": fw_rows,
                           "mean_samples_f1": round(float(np.mean([r["samples_f1"] for r in fw_rows])), 4),
                           "mean_plain_cosine_f1": round(float(np.mean([r["plain_cosine_f1"] for r in fw_rows])), 4)}
    disc_mean = float(np.mean([r["weighted_best_f1"] for r in disc_rows]))
    out["discovery_gd"] = {"per_question": disc_rows, "mean_weighted_best_f1": round(disc_mean, 4)}
    from pipeline.io import write_json

    write_json({**out, "partial": True}, RESULTS / "themes_quality.json")
    # shuffled input
    perm = np.random.default_rng(7).permutation(len(seg))
    res2 = discover_themes(ans.sample(frac=1.0, random_state=1), seg.iloc[perm], svec[perm], params, seeds)
    a = res.segment_assignments.set_index("segment_id")["theme_id"]
    b = res2.segment_assignments.set_index("segment_id")["theme_id"].loc[a.index]
    out["gd_shuffle_ari"] = round(float(adjusted_rand_score(a, b)), 4)
    # other share on more corpora
    bc = pd.read_csv(corp / "bc-ai-survey-2025/bc_ai_survey_responses.csv", dtype=str, keep_default_na=False)
    idc = "participant_id" if "participant_id" in bc.columns else bc.columns[0]
    cols = [c for c in bc.columns if c.endswith("_text_OE")]
    bl = bc.melt(id_vars=[idc], value_vars=cols, var_name="question_id", value_name="answer")
    au = pd.read_csv(corp / "au-safe-responsible-ai-2023/srai_shortened.csv", dtype=str, keep_default_na=False)
    au = au[au["sub_label"].str.match(r"Q\d\d")]
    others = {}
    for name, long2 in (
        ("bc-ai-survey-2025", bl.rename(columns={idc: "response_id"})),
        ("au-safe-responsible-ai-2023", au.rename(columns={"sub_num": "response_id", "sub_label": "question_id",
                                                           "sub_value": "answer"})),
    ):
        long2 = long2[["response_id", "question_id", "answer"]].drop_duplicates(["response_id", "question_id"])
        a2, s2_, _, sv2 = _prepare(long2, params, enc)
        t1 = time.perf_counter()
        r2 = discover_themes(a2, s2_, sv2, params, seeds)
        others[name] = {**r2.summary, "seconds": round(time.perf_counter() - t1, 2)}
        print(name, others[name], flush=True)
    others["cip-global-dialogues (8 questions)"] = res.summary
    out["other_share"] = others
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        print(json.dumps(_speed_child(int(sys.argv[2]), int(sys.argv[3]))))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["speed", "quality"])
    ap.add_argument("--n", type=int, default=50000)
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("WSIS_NO_PROGRESS", "1")
    if args.mode == "speed":
        result = speed(args.n)
        target = RESULTS / "themes_speed.json"
    else:
        result = quality(args.shared)
        target = RESULTS / "themes_quality.json"
    result["generated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    from pipeline.io import write_json

    write_json(result, target)
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
