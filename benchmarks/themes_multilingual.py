"""Multilingual batches and catch-all seed themes (issue 14 parts 2 and 4), measured on `wsis run` batch folders.

For each batch folder it counts, per question and in all:
- **single-language share**: non-English answers (clean stage `language`, "und" left out) whose first theme has
  >= 75% of its answers in the answer's own language (a German answer in a theme of mostly English answers is in
  a mixed theme), with a bootstrap 95% CI over answers; and the stricter **apart share**: non-English answers
  all of whose themes have < 10% English answers;
- **stop-word labels**: theme labels half or more of whose words are function words (spaCy lists en/de/fr/es/it
  and those of every language of the batch);
- **other share**: substantive passages in "other";
- **catch-alls**: themes held by > 50% of the question's answers (and by > 80% of the documents of document batches),
  with the seed themes' held shares listed;
- themes per question and the label of every theme (labels are generated, not respondents' text).

    .venv/bin/python benchmarks/themes_multilingual.py --run eu_q49_q57=/tmp/eu_q49_57.csv --params /tmp/ml.yaml \
        --batch before=/tmp/h14/final/eu_q49_q57 --json benchmarks/results/themes_multilingual.json
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SINGLE_LANGUAGE_SHARE = 0.75  # at 0.75 the before-run gives the 40% (39%); 0.9 misses de+fr+it themes
UNKNOWN_LANGUAGES = frozenset({"", "und", "unknown", "none"})


def _stop_words() -> frozenset[str]:
    """English, German, French, Spanish, Italian stop words (spaCy's lists): the measure of issue 14."""
    import importlib

    out: set[str] = set()
    for lang in ("en", "de", "fr", "es", "it"):
        out |= set(importlib.import_module(f"spacy.lang.{lang}.stop_words").STOP_WORDS)
    return frozenset(out)


def stopword_label(label: str, stop: frozenset[str] | None = None) -> bool:
    """True when half or more of the label's words are function words ("Faut and sécurité", "Und, die, der").

    The heading joiner "and" and acronyms written in capitals ("AI", "EU": Italian and Portuguese stop words
    in lower case) are not counted; hyphenated words are one word ("E-health").
    """
    stop = stop if stop is not None else _stop_words()
    ws = [w for w in re.findall(r"[^\W\d_](?:[\w'-]*[^\W_])?", label) if not (w.isupper() and len(w) > 1)]
    low = [w.lower() for w in ws]
    if "and" in low:
        low.remove("and")
    return bool(low) and sum(w in stop for w in low) * 2 >= len(low)


def _held(assign: pd.DataFrame) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for aid, ts in zip(assign["answer_id"].astype(str), assign["themes"].fillna("").astype(str), strict=True):
        out[aid] = [t for t in ts.split(";") if t]
    return out


def single_language_flags(answers: pd.DataFrame, assign: pd.DataFrame, main: str = "en") -> pd.DataFrame:
    """One row per non-main-language answer with a theme.

    `single`: its first (best-scoring) theme has >= SINGLE_LANGUAGE_SHARE of its answers in the answer's own
    language. `apart`: every theme it holds has < 10% main-language answers (it never meets the main language).
    """
    lang = dict(zip(answers["answer_id"].astype(str), answers["language"].fillna("").astype(str), strict=True))
    qid = dict(zip(answers["answer_id"].astype(str), answers["question_id"].astype(str), strict=True))
    held = _held(assign)
    members: dict[tuple[str, str], list[str]] = {}
    for aid, ts in held.items():
        for t in ts:
            g = lang.get(aid, "")
            if g not in UNKNOWN_LANGUAGES:
                members.setdefault((qid.get(aid, ""), t), []).append(g)
    shares = {key: pd.Series(gs).value_counts(normalize=True).to_dict() for key, gs in members.items()}
    rows = []
    for aid, ts in held.items():
        g = lang.get(aid, "")
        if g in UNKNOWN_LANGUAGES or g == main or not ts:
            continue
        q = qid.get(aid, "")
        single = shares.get((q, ts[0]), {}).get(g, 0.0) >= SINGLE_LANGUAGE_SHARE
        apart = all(shares.get((q, t), {}).get(main, 0.0) < 0.1 for t in ts)
        rows.append({"answer_id": aid, "question_id": q, "language": g, "single": single, "apart": apart})
    return pd.DataFrame(rows, columns=["answer_id", "question_id", "language", "single", "apart"])


def bootstrap_ci(values: np.ndarray, n_boot: int = 2000, seed: int = 0) -> list[float]:
    """95% percentile interval of the mean of 0/1 values, resampling answers."""
    if not len(values):
        return [0.0, 0.0]
    rng = np.random.default_rng(seed)
    means = rng.choice(values.astype(float), size=(n_boot, len(values)), replace=True).mean(axis=1)
    return [round(float(np.quantile(means, 0.025)), 4), round(float(np.quantile(means, 0.975)), 4)]


def measure(batch: Path, main: str = "en", held_share: float = 0.5, doc_share: float = 0.8) -> dict[str, Any]:
    """The issue-14 counts of one `wsis run` batch folder (see the module docstring)."""
    ans = pd.read_parquet(batch / "answers_clean.parquet")
    themes = pd.read_parquet(batch / "themes.parquet")
    assign = pd.read_parquet(batch / "theme_assignments.parquet")
    sa = pd.read_parquet(batch / "segment_assignments.parquet")
    from pipeline.themes.naming import language_stop_words

    stop = _stop_words()  # plus the function words of every language of the batch ("och", "pentru", "det")
    stop = stop.union(*(language_stop_words(str(g)) for g in ans["language"].fillna("").unique()))
    flags = single_language_flags(ans, assign, main)
    sub = ans[~ans["is_nonanswer"].fillna(False).astype(bool)]
    per_q_answers = sub.groupby("question_id")["answer_id"].nunique().to_dict()
    per_q_resp = sub.groupby("question_id")["response_id"].nunique().to_dict()
    docs = bool(ans.get("is_document", pd.Series(False, index=ans.index)).fillna(False).astype(bool).mean() > 0.5)
    q = themes[(themes["scope"] != "all") & ~themes["theme_id"].isin(["other", "nonanswer"])]
    seg_sub = sa[sa["theme_id"] != "nonanswer"]
    questions: dict[str, Any] = {}
    for qid in sorted(q["scope"].unique()):
        tq = q[q["scope"] == qid]
        n_a = int(per_q_answers.get(qid, 0))
        n_r = int(per_q_resp.get(qid, 0))
        fq = flags[flags["question_id"] == qid]
        sq = seg_sub[seg_sub["question_id"] == qid]
        broad = tq[tq["size"] > held_share * max(n_a, 1)]
        questions[qid] = {
            "answers": n_a,
            "themes": len(tq),
            "other_share": round(float((sq["theme_id"] == "other").mean()) if len(sq) else 0.0, 4),
            "non_main_answers": len(fq),
            "single_language_share": round(float(fq["single"].mean()) if len(fq) else 0.0, 4),
            "apart_share": round(float(fq["apart"].mean()) if len(fq) else 0.0, 4),
            "stopword_labels": int(sum(stopword_label(lab, stop) for lab in tq["label"].astype(str))),
            "themes_held_by_gt_half_of_answers": [
                {"theme_id": t, "label": lab, "share": round(int(s) / max(n_a, 1), 3)}
                for t, lab, s in zip(broad["theme_id"], broad["label"], broad["size"], strict=True)
            ],
            "themes_held_by_gt_80pct_documents": int((tq["n_respondents"] > doc_share * max(n_r, 1)).sum())
            if docs else None,
            "seed_themes": {
                str(t): round(int(s) / max(n_a, 1), 3)
                for t, s, o in zip(tq["theme_id"], tq["size"], tq["origin"], strict=True) if o == "seed"
            },
            "labels": {str(t): str(lab) for t, lab in zip(tq["theme_id"], tq["label"], strict=True)},
            "languages": {str(t): str(g) for t, g in zip(tq["theme_id"], tq.get("languages", pd.Series(
                "", index=tq.index)).fillna(""), strict=True)},
        }
    n_sub = len(seg_sub)
    return {
        "answers": len(ans),
        "documents": docs,
        "non_main_answers": len(flags),
        "single_language_share": round(float(flags["single"].mean()) if len(flags) else 0.0, 4),
        "single_language_share_ci95": bootstrap_ci(flags["single"].to_numpy()) if len(flags) else [0.0, 0.0],
        "apart_share": round(float(flags["apart"].mean()) if len(flags) else 0.0, 4),
        "stopword_labels": int(sum(v["stopword_labels"] for v in questions.values())),
        "other_share": round(float((seg_sub["theme_id"] == "other").sum()) / max(n_sub, 1), 4),
        "themes_per_question": {k: v["themes"] for k, v in questions.items()},
        "themes_held_by_gt_half_of_answers": int(sum(len(v["themes_held_by_gt_half_of_answers"])
                                                     for v in questions.values())),
        "themes_held_by_gt_80pct_documents": int(sum(v["themes_held_by_gt_80pct_documents"] or 0
                                                     for v in questions.values())) if docs else None,
        "questions": questions,
    }


def shuffle_ari(batch: Path, params_file: Path, seed: int = 7) -> float:
    """ARI of the passages' themes between the batch as it is and with its rows shuffled (must stay 1.0)."""
    from sklearn.metrics import adjusted_rand_score

    from pipeline import config
    from pipeline.themes.stage import load_inputs, make_encoder, themes_core

    params = config.load_params(params_file)
    answers, segments, ans_vec, seg_vec = load_inputs(batch)
    enc = make_encoder(params)
    a = themes_core(answers, segments, ans_vec, seg_vec, params, None, enc).segment_assignments
    rng = np.random.default_rng(seed)
    pa, ps = rng.permutation(len(answers)), rng.permutation(len(segments))
    b = themes_core(answers.iloc[pa], segments.iloc[ps], ans_vec[pa], seg_vec[ps], params, None, enc)
    m = a[["segment_id", "theme_id"]].merge(b.segment_assignments[["segment_id", "theme_id"]], on="segment_id")
    return round(float(adjusted_rand_score(m["theme_id_x"], m["theme_id_y"])), 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="NAME=INPUT[::MAPPING]: `wsis run` it, then measure")
    ap.add_argument("--batch", action="append", default=[], help="NAME=BATCH_DIR: measure an existing batch")
    ap.add_argument("--work", type=Path, default=Path("/tmp/themes_multilingual"), help="batch folders for --run")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--main-language", default="en")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--shuffle", action="store_true", help="also the ARI of themes with the rows shuffled (--run)")
    args = ap.parse_args(argv)
    results: dict[str, Any] = {}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import emit, run_batches

    for name, src, out, seconds in run_batches(args.run, args.work, args.params, ROOT):
        results[name] = {"input": src, "params": str(args.params), "seconds": seconds,
                         **measure(out, args.main_language)}
        if args.shuffle:
            results[name]["shuffle_ari"] = shuffle_ari(out, args.params)
    for spec in args.batch:
        name, _, path = spec.partition("=")
        results[name] = {"batch": path, **measure(Path(path), args.main_language)}
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
