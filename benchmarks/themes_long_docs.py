"""Long documents through `wsis run`: themes held by nearly every document, quotes that are repeated text, boilerplate.

For each batch folder written by `wsis run` (or run here with --run NAME=INPUT[::MAPPING]) it measures:
- themes (per question, not other / non-answers) held by > 80% of the documents (respondents with an answer);
- quotes whose text is repeated across >= 30% of documents: >= half of the quote's words lie in word 5-shingles
  found in the clean text of >= 30% of documents (the measure is on the documents' full text, independent of the
  clean stage's boilerplate flags);
- boilerplate passages (segments.is_boilerplate) and campaign answers (dup_group) with a boilerplate passage
  (must be 0: campaign copies are opinions).

    .venv/bin/python benchmarks/themes_long_docs.py --run netmundial=../shared/corpora/netmundial-2014 \
        --batch before=/tmp/net_before --json benchmarks/results/themes_long_docs.json
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.clean.boilerplate import shingles, words  # noqa: E402


def repeated_quote_share(quote: str, holders: dict[tuple[str, ...], int], need: int) -> float:
    """Share of the quote's words inside 5-shingles held by >= `need` documents."""
    tk = words(quote.replace("…", " "))
    if len(tk) < 5:
        return 0.0
    covered = np.zeros(len(tk), dtype=bool)
    for j in range(len(tk) - 4):
        if holders.get(tuple(tk[j:j + 5]), 0) >= need:
            covered[j:j + 5] = True
    return float(covered.mean())


def measure(batch: Path, held_share: float = 0.8, repeat_share: float = 0.3) -> dict[str, Any]:
    ans = pd.read_parquet(batch / "answers_clean.parquet")
    seg = pd.read_parquet(batch / "segments.parquet")
    themes = pd.read_parquet(batch / "themes.parquet")
    sub = ans[~ans["is_nonanswer"].astype(bool)]
    docs: dict[str, list[str]] = defaultdict(list)
    for rid, text in zip(sub["response_id"].astype(str), sub["text_clean"].astype(str), strict=True):
        docs[rid].append(text)
    counts: dict[tuple[str, ...], int] = defaultdict(int)
    for texts in docs.values():
        for sh in {s for t in texts for s in shingles(words(t))}:
            counts[sh] += 1
    n_docs = len(docs)
    need = max(2, math.ceil(repeat_share * n_docs))
    per_q_docs = sub.groupby("question_id")["response_id"].nunique().to_dict()
    q = themes[(themes["scope"] != "all") & ~themes["theme_id"].isin(["other", "nonanswer"])]
    held_rows = []
    quotes_total = 0
    repeated: list[dict[str, Any]] = []
    for _, t in q.iterrows():
        n_q = int(per_q_docs.get(t["scope"], 0))
        if n_q and int(t["n_respondents"]) > held_share * n_q:
            held_rows.append({"theme_id": t["theme_id"], "label": t["label"], "n_respondents": int(t["n_respondents"]),
                              "documents": n_q})
        for quote in json.loads(t["quotes"] or "[]"):
            quotes_total += 1
            share = repeated_quote_share(str(quote["text"]), counts, need)
            if share >= 0.5:
                repeated.append({"theme_id": t["theme_id"], "covered": round(share, 2)})  # ids may hold names
    has_bp = "is_boilerplate" in seg.columns
    bp = seg[seg["is_boilerplate"].astype(bool)] if has_bp else seg.iloc[:0]
    campaign = set(ans.loc[ans["dup_group"].astype(str) != "", "answer_id"].astype(str))
    return {
        "documents": n_docs,
        "segments": len(seg),
        "boilerplate_segments": len(bp),
        "documents_with_boilerplate": int(bp["response_id"].nunique()),
        "campaign_answers": len(campaign),
        "campaign_answers_with_boilerplate": int(bp["answer_id"].astype(str).isin(campaign).sum()),
        "themes": len(q),
        "themes_held_by_gt_80pct_documents": len(held_rows),
        "themes_held": held_rows,
        "quotes": quotes_total,
        "quotes_repeated_across_ge_30pct_documents": len(repeated),
        "repeated_quotes": repeated,
    }


def _stop_words() -> frozenset[str]:
    """English, German, French, Spanish, Italian stop words (spaCy's lists), to count labels made of function words."""
    import importlib

    out: set[str] = set()
    for lang in ("en", "de", "fr", "es", "it"):
        out |= set(importlib.import_module(f"spacy.lang.{lang}.stop_words").STOP_WORDS)
    return frozenset(out)


def name_rows(before: Path, after: Path, questions: list[str] | None, max_questions: int) -> list[dict[str, Any]]:
    """Emergent themes of `after`, each with the `before` theme sharing most of its passages (same questions)."""
    tb, ta = pd.read_parquet(before / "themes.parquet"), pd.read_parquet(after / "themes.parquet")
    sb = pd.read_parquet(before / "segment_assignments.parquet")
    sa = pd.read_parquet(after / "segment_assignments.parquet")
    ta = ta[(ta["scope"] != "all") & (ta["origin"] == "emergent")]
    tb = tb[tb["scope"] != "all"]
    qs = questions or sorted(ta["scope"].unique())[:max_questions]
    label_b = dict(zip(zip(tb["scope"], tb["theme_id"], strict=True), tb["label"], strict=True))
    seg_b = sb.groupby("theme_id")["segment_id"].apply(set).to_dict()
    rows = []
    for q in qs:
        cand = {t: s for t, s in seg_b.items() if (q, t) in label_b and t not in ("other", "nonanswer")}
        for t in ta[ta["scope"] == q].itertuples():
            mine = set(sa.loc[sa["theme_id"] == t.theme_id, "segment_id"])
            best = max(cand, key=lambda b: (len(mine & cand[b]) / max(len(mine | cand[b]), 1), b), default=None)
            overlap = len(mine & cand[best]) / max(len(mine | cand[best]), 1) if best else 0.0
            rows.append({"question": q, "before": label_b.get((q, best), "") if best else "", "overlap": overlap,
                         "after": t.label, "description": t.description})
    return rows


def names_markdown(corpora: dict[str, list[dict[str, Any]]]) -> str:
    stop = _stop_words()

    def stopish(label: str) -> bool:
        ws = re.findall(r"[^\W\d_]+", label.lower())
        return bool(ws) and sum(w in stop for w in ws) * 2 >= len(ws)

    def keyword_list(label: str) -> bool:
        return "," in label

    out = ["# Theme names before / after (issue 14)", "",
           "Emergent themes through `wsis run` with default parameters; *before* is the theme of the run before",
           "this change that shares most passages with the new one (Jaccard of passage sets in brackets).",
           "Command: see benchmarks/README.md, section *Long documents and theme names*.", ""]
    for name, rows in corpora.items():
        nb = sum(keyword_list(r["before"]) for r in rows)
        na = sum(keyword_list(r["after"]) for r in rows)
        sb, sa = sum(stopish(r["before"]) for r in rows), sum(stopish(r["after"]) for r in rows)
        out += [f"## {name}", "",
                f"{len(rows)} themes; keyword-list labels (with commas): before {nb}, after {na}; labels half or more "
                f"stop words: before {sb}, after {sa}.", "",
                "| question | before | after | description (after) |", "|---|---|---|---|"]
        for r in rows:
            cells = [r["question"], f"{r['before']} ({r['overlap']:.2f})", r["after"], r["description"]]
            out.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", action="append", default=[], help="NAME=INPUT[::MAPPING]: `wsis run` it, then measure")
    ap.add_argument("--batch", action="append", default=[], help="NAME=BATCH_DIR: measure an existing batch")
    ap.add_argument("--work", type=Path, default=Path("/tmp/themes_long_docs"), help="batch folders for --run")
    ap.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--names", action="append", default=[],
                    help="NAME=BEFORE_DIR,AFTER_DIR[,Q1;Q2]: before/after theme names of two batches")
    ap.add_argument("--names-md", type=Path, default=None, help="write the --names tables here (markdown)")
    ap.add_argument("--max-questions", type=int, default=3)
    args = ap.parse_args(argv)
    if args.names:
        corpora = {}
        for spec in args.names:
            name, _, rest = spec.partition("=")
            parts = rest.split(",")
            qs = parts[2].split(";") if len(parts) > 2 and parts[2] else None
            corpora[name] = name_rows(Path(parts[0]), Path(parts[1]), qs, args.max_questions)
        md = names_markdown(corpora)
        print(md)
        if args.names_md:
            args.names_md.write_text(md + "\n", encoding="utf-8")
        return 0
    results: dict[str, Any] = {}
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import emit, run_batches

    for name, src, out, seconds in run_batches(args.run, args.work, args.params, ROOT):
        results[name] = {"input": src, "seconds": seconds, **measure(out)}
    for spec in args.batch:
        name, _, path = spec.partition("=")
        results[name] = {"batch": path, **measure(Path(path))}
    emit(results, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
