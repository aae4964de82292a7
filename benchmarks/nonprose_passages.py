"""Non-prose passages of documents (references, tables, lists of names): how many are set aside, and what they did
to the themes.

1. Counts: for each batch folder holding answers_clean.parquet + segments.parquet (from `wsis clean`), the document
   passages (answers with >= `clean.boilerplate_min_segments` passages, not repeated boilerplate) by
   `pipeline.clean.nonprose` kind, with a seeded sample of each kind's ids for reading by hand (ids only: the text
   stays in ../shared).
2. Themes, before/after: given a batch folder themed with the old rule (`--before`) and one themed with the new
   (`--after`; same answers), the themes whose passages are mostly (>= 50%) non-prose by the new rule (their
   labels), the number of themes, and the quotes that are non-prose passages.

    .venv/bin/python benchmarks/nonprose_passages.py --batch trai=/tmp/prof/trai --batch netmundial=/tmp/prof/nm \
        --batch au=/tmp/prof/au --before /tmp/prof/trai --after /tmp/prof/trai_after \
        --json benchmarks/results/nonprose_passages.json

The thresholds of `pipeline/clean/nonprose.py` were chosen by reading TRAI passages; NETmundial and AU are the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.clean.nonprose import segment_nonprose_kinds  # noqa: E402


def kinds_of(batch: Path, min_segments: int = 3) -> pd.DataFrame:
    """segments of `batch` with the new rule's kind (repeated boilerplate kept as 'repeated')."""
    clean = pd.read_parquet(batch / "answers_clean.parquet")
    seg = pd.read_parquet(batch / "segments.parquet")
    kinds = segment_nonprose_kinds(clean, seg, min_segments)
    seg = seg.assign(kind=kinds)
    seg.loc[seg["is_boilerplate"].astype(bool) & seg.get("boilerplate_kind", pd.Series("", index=seg.index))
            .fillna("").isin(["", "repeated"]), "kind"] = "repeated"
    return seg


def counts(batch: Path, sample: int = 10) -> dict[str, Any]:
    seg = kinds_of(batch)
    clean = pd.read_parquet(batch / "answers_clean.parquet")
    docs = set(clean.loc[clean["n_segments"] >= 3, "answer_id"].astype(str))
    doc_seg = seg[seg["answer_id"].astype(str).isin(docs)]
    by_kind = doc_seg["kind"].replace("", "prose").value_counts()
    out: dict[str, Any] = {"documents": len(docs), "document_passages": len(doc_seg),
                           "by_kind": {str(k): int(v) for k, v in by_kind.items()}}
    out["nonprose_share"] = round(float(doc_seg["kind"].isin(["reference", "table", "list"]).mean()), 4) \
        if len(doc_seg) else 0.0
    out["sample_ids"] = {
        k: doc_seg.loc[doc_seg["kind"] == k, "segment_id"].sample(
            min(sample, int((doc_seg["kind"] == k).sum())), random_state=0).tolist()
        for k in ("reference", "table", "list")}
    return out


def theme_makeup(batch: Path, kinds: pd.DataFrame) -> dict[str, Any]:
    """Per emergent theme: share of its passages that are non-prose by the new rule."""
    sa = pd.read_parquet(batch / "segment_assignments.parquet")
    themes = pd.read_parquet(batch / "themes.parquet")
    kind = kinds.set_index("segment_id")["kind"]
    sa = sa.assign(nonprose=sa["segment_id"].map(kind).isin(["reference", "table", "list"]))
    share = sa.groupby("theme_id")["nonprose"].mean()
    t = themes[themes["scope"] != "batch"] if "scope" in themes.columns else themes
    t = t[~t["theme_id"].astype(str).str.endswith(("other", "nonanswer"))]
    made = [{"theme_id": str(r.theme_id), "label": str(r.label),
             "nonprose_share": round(float(share.get(r.theme_id, 0)), 3)}
            for r in t.itertuples() if share.get(r.theme_id, 0) >= 0.5]
    quotes = [q for qs in t["quotes"].fillna("[]") for q in json.loads(qs or "[]")]
    quote_kinds = pd.Series([str(kind.get(q.get("segment_id"), "")) for q in quotes], dtype="str")
    return {"themes": len(t), "mostly_nonprose": len(made), "mostly_nonprose_themes": made,
            "quotes": len(quotes),
            "nonprose_quotes": int(quote_kinds.isin(["reference", "table", "list"]).sum()),
            "nonprose_quotes_by_kind": {str(k): int(v) for k, v in quote_kinds[quote_kinds.isin(
                ["reference", "table", "list"])].value_counts().items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", action="append", default=[], help="NAME=FOLDER (cleaned batch)")
    ap.add_argument("--before", type=Path, help="batch themed before the change")
    ap.add_argument("--after", type=Path, help="the same batch themed after it")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    out: dict[str, Any] = {"command": " ".join(["benchmarks/nonprose_passages.py", *sys.argv[1:]]), "counts": {}}
    for item in a.batch:
        name, _, folder = item.partition("=")
        out["counts"][name] = counts(Path(folder))
        print(name, json.dumps({k: v for k, v in out["counts"][name].items() if k != "sample_ids"}))
    if a.before and a.after:
        kinds = kinds_of(a.before)
        out["themes_before"] = theme_makeup(a.before, kinds)
        out["themes_after"] = theme_makeup(a.after, kinds)
        for side in ("themes_before", "themes_after"):
            r = out[side]
            print(side, r["themes"], "themes,", r["mostly_nonprose"], "mostly non-prose:",
                  [t["label"] for t in r["mostly_nonprose_themes"]], "; quotes", r["quotes"], "non-prose",
                  r["nonprose_quotes_by_kind"])
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
