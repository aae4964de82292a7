"""Blind keep-rate of theme names (issue 14: ">= 80% on >= 30 names from >= 3 real corpora").

Two steps, so that whoever judges sees names and answers only, never how they were made:

    python benchmarks/theme_names_review.py packet --batch eu=DIR --batch netmundial=DIR --batch bc=DIR \
        --n 40 --packet /tmp/names/packet.md --key benchmarks/results/theme_names_review_key.csv
    # a reviewer reads packet.md and writes verdicts.csv: item,verdict(keep|edit|reject),reason
    python benchmarks/theme_names_review.py score --key benchmarks/results/theme_names_review_key.csv \
        --verdicts benchmarks/results/theme_names_review_verdicts.csv --json benchmarks/results/theme_names_review.json

The packet holds respondents' text (redacted passages) and stays outside the repository; the key and the verdicts
hold ids, generated labels and the reviewer's words only. "keep" = would go into a report as it is; "edit" = the
right theme but the name needs rewording; "reject" = the name does not say what the answers say.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20251
PASSAGES_PER_THEME = 6


def _themes(batch: Path) -> pd.DataFrame:
    themes = pd.read_parquet(batch / "themes.parquet")
    themes = themes[(themes["scope"] != "all") & (themes["origin"] != "other") & (themes["n_respondents"] > 0)]
    return themes.drop_duplicates(["scope", "theme_id"])


def _passages(batch: Path) -> pd.DataFrame:
    seg = pd.read_parquet(batch / "segments.parquet")
    sa = pd.read_parquet(batch / "segment_assignments.parquet")
    col = "text_redacted" if "text_redacted" in seg.columns else "text"
    keep = seg[~seg.get("is_boilerplate", pd.Series(False, index=seg.index)).fillna(False).astype(bool)]
    return sa.merge(keep[["segment_id", col]].rename(columns={col: "passage"}), on="segment_id")


def packet(batches: dict[str, Path], n: int, packet_file: Path, key_file: Path) -> None:
    rng = random.Random(SEED)
    pool: list[tuple[str, pd.Series]] = []
    for corpus, batch in batches.items():
        pool += [(corpus, row) for _, row in _themes(batch).iterrows()]
    per = max(1, n // len(batches))
    chosen: list[tuple[str, pd.Series]] = []
    for corpus in batches:  # the same number of names from each corpus (seeded sample)
        rows = [p for p in pool if p[0] == corpus]
        chosen += rng.sample(rows, min(per, len(rows)))
    rng.shuffle(chosen)
    lines = ["# Theme names to review", "",
             "For each item: a theme's name (and description, if any) and passages drawn at random from the answers "
             "the theme holds. Judge the NAME: keep (would go into a synthesis report as it is), edit (right theme, "
             "the name needs rewording), reject (the name does not say what these passages say). Write "
             "`item,verdict,reason` lines.", ""]
    key = []
    passages = {c: _passages(b) for c, b in batches.items()}
    for i, (corpus, row) in enumerate(chosen, 1):
        ps = passages[corpus]
        members = ps[(ps["theme_id"] == row["theme_id"]) & (ps["question_id"].astype(str) == str(row["scope"]))]
        if members.empty:
            members = ps[ps["theme_id"] == row["theme_id"]]
        texts = members["passage"].astype(str).tolist()
        sample = rng.sample(texts, min(PASSAGES_PER_THEME, len(texts)))
        lines += [f"## Item {i}", f"**Name:** {row['label']}"]
        desc = str(row.get("description") or "").strip()
        if desc:
            lines.append(f"**Description:** {desc}")
        lines += [f"Respondents holding it: {int(row['n_respondents'])}", ""]
        lines += [f"- {' '.join(t.split())[:400]}" for t in sample] + [""]
        key.append({"item": i, "corpus": corpus, "scope": row["scope"], "theme_id": row["theme_id"],
                    "label": row["label"], "origin": row["origin"], "n_respondents": int(row["n_respondents"])})
    packet_file.parent.mkdir(parents=True, exist_ok=True)
    packet_file.write_text("\n".join(lines), encoding="utf-8")
    pd.DataFrame(key).to_csv(key_file, index=False)
    print(f"{len(key)} items -> {packet_file} (key {key_file})")


def _ci(values: np.ndarray, n_boot: int = 2000) -> list[float]:
    rng = np.random.default_rng(SEED)
    boots = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(n_boot)]
    return [round(float(np.percentile(boots, 2.5)), 3), round(float(np.percentile(boots, 97.5)), 3)]


def score(key_file: Path, verdicts_file: Path, json_file: Path | None) -> dict[str, object]:
    key = pd.read_csv(key_file)
    verdicts = pd.read_csv(verdicts_file)
    df = key.merge(verdicts, on="item", how="left")
    missing = int(df["verdict"].isna().sum())
    df = df.dropna(subset=["verdict"])
    df["verdict"] = df["verdict"].str.strip().str.lower()
    keep = (df["verdict"] == "keep").to_numpy(float)
    usable = df["verdict"].isin(["keep", "edit"]).to_numpy(float)
    out: dict[str, object] = {
        "n_names": len(df), "missing_verdicts": missing, "corpora": df["corpus"].value_counts().to_dict(),
        "keep_rate": round(float(keep.mean()), 3), "keep_rate_ci": _ci(keep),
        "keep_or_edit_rate": round(float(usable.mean()), 3), "keep_or_edit_ci": _ci(usable),
        "by_corpus": {c: {"n": len(g), "keep_rate": round(float((g["verdict"] == "keep").mean()), 3)}
                      for c, g in df.groupby("corpus")},
        "verdicts": df["verdict"].value_counts().to_dict(),
    }
    if json_file:
        json_file.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out, indent=2))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("packet")
    p.add_argument("--batch", action="append", required=True, help="NAME=DIR of a batch written by `wsis run`")
    p.add_argument("--n", type=int, default=42)
    p.add_argument("--packet", type=Path, required=True)
    p.add_argument("--key", type=Path, required=True)
    s = sub.add_parser("score")
    s.add_argument("--key", type=Path, required=True)
    s.add_argument("--verdicts", type=Path, required=True)
    s.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.cmd == "packet":
        batches = {b.split("=", 1)[0]: Path(b.split("=", 1)[1]) for b in args.batch}
        packet(batches, args.n, args.packet, args.key)
    else:
        score(args.key, args.verdicts, args.json)


if __name__ == "__main__":
    main()
