"""Blind keep-rate of theme names (issue 14: ">= 80% on >= 30 names from >= 3 real corpora").

Two steps, so that whoever judges sees names and answers only, never how they were made:

    python benchmarks/theme_names_review.py packet --batch eu=DIR --batch netmundial=DIR --batch bc=DIR \
        --n 40 --packet /tmp/names/packet.md --key benchmarks/results/theme_names_review_key.csv
    # a reviewer reads packet.md and writes verdicts.csv: item,verdict(keep|edit|reject),reason
    python benchmarks/theme_names_review.py score --key benchmarks/results/theme_names_review_key.csv \
        --verdicts benchmarks/results/theme_names_review_verdicts.csv --json benchmarks/results/theme_names_review.json

Old vs new rule, blind (issue 14 item 1): `pairs` re-runs discovery on batch folders and names every emergent
theme twice, with the rule of commit eb77e98 ("head phrase and second keyword", kept below as `_old_name_theme`)
and with today's `naming.name_theme`; each name is a row of its own, rows shuffled, the key apart:

    python benchmarks/theme_names_review.py pairs --batch eu=DIR --batch netmundial=DIR --batch au=DIR \
        --batch bc=DIR --per-corpus 12 --sheet /tmp/names/pairs_sheet.md \
        --ids benchmarks/results/theme_names_pairs_sheet.csv --key benchmarks/results/theme_names_pairs_key.csv \
        --form benchmarks/results/theme_names_pairs_form.json --descriptions /tmp/names/theme_descriptions_new.md
    python benchmarks/theme_names_review.py score-pairs --key benchmarks/results/theme_names_pairs_key.csv \
        --verdicts VERDICTS.csv --json benchmarks/results/theme_names_pairs.json

The packet holds respondents' text (redacted passages) and stays outside the repository; the key and the verdicts
hold ids, generated labels and the reviewer's words only. "keep" = would go into a report as it is; "edit" = the
right theme but the name needs rewording; "reject" = the name does not say what the answers say.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SEED = 20251
PAIRS_SEED = 20261202
PASSAGES_PER_THEME = 6


def _themes(batch: Path) -> pd.DataFrame:
    themes = pd.read_parquet(batch / "themes.parquet")
    themes = themes[(themes["scope"] != "all") & (themes["origin"] != "other") & (themes["n_respondents"] > 0)]
    return themes.drop_duplicates(["scope", "theme_id"])


def theme_passages(batch: Path) -> pd.DataFrame:
    """Each theme's passages (segment_assignments x segments, redacted text as `passage`), boilerplate left out."""
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
    passages = {c: theme_passages(b) for c, b in batches.items()}
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


# ---------------------------------------------------------------------------------------------------------------
# Old vs new names, blind. The old rule (pipeline/themes/naming.py at eb77e98), kept here only to be compared.

def _old_heading_label(keywords: Sequence[str], surface: dict[str, str], case: dict[str, str],
                       taken: set[str], max_words: int = 6) -> str:
    from pipeline.themes.naming import _cased, nameable

    cands = nameable(keywords)
    if not cands:
        return "Unlabelled theme"
    heads = [k for k in cands[:3] if len(k.split()) >= 2] + cands[:3]
    options: list[str] = []

    def parts(phrase: str) -> set[str]:
        return set(re.split(r"[\s-]+", phrase))

    for head in dict.fromkeys(heads):
        hw = parts(head)
        for other in cands:
            if other == head or hw & parts(other):
                continue
            if len(head.split()) + len(other.split()) + 1 <= max_words:
                options.append(f"{_cased(head, surface, case)} and {_cased(other, surface, case)}")
                break
        if len(head.split()) >= 2:
            options.append(_cased(head, surface, case))
    options += [_cased(k, surface, case) for k in cands]
    for opt in options:
        label = opt[:1].upper() + opt[1:]
        if label.lower() not in {t.lower() for t in taken}:
            return label
    label = options[0]
    return label[:1].upper() + label[1:]


def _old_name_theme(keywords: Sequence[str], member_texts: Sequence[str], case: dict[str, str], taken: set[str],
                    languages: Sequence[str]) -> str:
    from pipeline.themes.naming import nameable, surface_forms

    cands = nameable(keywords, languages)
    return _old_heading_label(cands, surface_forms(cands, member_texts), case, taken)


def _named_twice(batch: Path) -> tuple[list[dict[str, Any]], pd.DataFrame]:
    """Discovery on a batch folder (inputs and parameters as `wsis themes` would use), every emergent theme
    named by both rules from the same inputs. Returns (one record per emergent theme, passages by theme)."""
    from pipeline import config
    from pipeline.embed.stage import batch_params
    from pipeline.themes import naming, stage

    params = config.load_params()
    answers, segments, ans_vec, seg_vec = stage.load_inputs(batch)
    encoder = stage.make_encoder(batch_params(batch, params))
    calls: list[dict[str, Any]] = []
    old_taken: dict[int, set[str]] = {}
    new_rule = naming.name_theme

    def both(keywords: Sequence[str], member_texts: Sequence[str], in_share: dict[str, float],
             out_share: dict[str, float], case: dict[str, str], taken: set[str] | frozenset[str] = frozenset(),
             languages: Sequence[str] = ()) -> tuple[str, str]:
        t0 = time.process_time()
        label, desc = new_rule(keywords, member_texts, in_share, out_share, case, taken, languages)
        t1 = time.process_time()
        seen = old_taken.setdefault(id(taken), set())
        old = _old_name_theme(keywords, member_texts, case, seen, languages)
        seen.add(old)
        calls.append({"new": label, "old": old, "description": desc, "keywords": list(keywords),
                      "cpu_new": t1 - t0, "cpu_old": time.process_time() - t1})
        return label, desc

    naming.name_theme = both  # type: ignore[assignment]
    try:
        res = stage.themes_core(answers, segments, ans_vec, seg_vec, params, None, encoder)
    finally:
        naming.name_theme = new_rule  # type: ignore[assignment]
    themes = res.themes[(res.themes["origin"] == "emergent") & (res.themes["scope"] != "all")]
    records: list[dict[str, Any]] = []
    used: set[int] = set()
    for row in themes.itertuples():
        j = next((i for i, c in enumerate(calls) if i not in used and c["new"] == row.label), None)
        if j is None:
            continue
        used.add(j)
        records.append({"scope": str(row.scope), "theme_id": str(row.theme_id), **calls[j]})
    seg = segments.copy()
    col = "text_redacted" if "text_redacted" in seg.columns else "text"
    if "is_boilerplate" in seg.columns:
        seg = seg[~seg["is_boilerplate"].fillna(False).astype(bool)]
    sa = res.segment_assignments[["segment_id", "theme_id"]].astype(str)
    seg = seg[["segment_id", col]].rename(columns={col: "passage"}).astype({"segment_id": str})
    return records, sa.merge(seg, on="segment_id")


def _form(records: list[dict[str, Any]], passages: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Form of every emergent theme's old and new name (no judgement): share of names with "and", with a comma,
    of 2-6 words, of one word, and written (as stems, contiguous) in at least one of the theme's passages."""
    from pipeline.themes.naming import _stem, tokens

    def stems(text: str) -> str:
        return " " + " ".join(_stem(w) for w in tokens(text)) + " "

    by_theme = {t: [stems(p) for p in g["passage"].astype(str)] for t, g in passages.groupby("theme_id")}
    out = {}
    for rule in ("old", "new"):
        labels = [(r[rule], by_theme.get(r["theme_id"], [])) for r in records]
        n = max(len(labels), 1)
        out[rule] = {
            "and": round(sum(" and " in f" {lab.lower()} " for lab, _ in labels) / n, 3),
            "comma": round(sum("," in lab for lab, _ in labels) / n, 3),
            "words_2_6": round(sum(2 <= len(lab.split()) <= 6 for lab, _ in labels) / n, 3),
            "one_word": round(sum(len(lab.split()) == 1 for lab, _ in labels) / n, 3),
            "written_in_passages": round(sum(any(stems(lab) in p for p in ps) for lab, ps in labels) / n, 3),
            "naming_cpu_seconds": round(sum(r[f"cpu_{rule}"] for r in records), 2),
        }
    return out


def pairs(batches: dict[str, Path], per_corpus: int, sheet_file: Path, ids_file: Path, key_file: Path,
          passages_per_theme: int = 5, form_file: Path | None = None, descriptions_file: Path | None = None) -> None:
    """Sheet of shuffled name rows (old and new name of the same themes, unmarked) with passages; ids and key.
    `form_file`: JSON of the names' form on every emergent theme (`_form`), per corpus; `descriptions_file`: the
    new descriptions of the sampled themes (respondents' sentences: keep it outside the repository)."""
    from pipeline.themes.naming import redact_pii

    rng = random.Random(PAIRS_SEED)
    items: list[dict[str, Any]] = []
    forms: dict[str, Any] = {}
    descriptions: list[str] = ["# New theme descriptions of the sampled themes", ""]
    for corpus, batch in batches.items():
        records, passages = _named_twice(batch)
        forms[corpus] = {"emergent_themes": len(records), **_form(records, passages)}
        chosen = rng.sample(records, min(per_corpus, len(records)))
        for rec in chosen:
            held = passages[passages["theme_id"] == rec["theme_id"]].sort_values("segment_id")
            picks = rng.sample(range(len(held)), min(passages_per_theme, len(held)))
            sample = held.iloc[sorted(picks)]
            theme_key = f"{corpus}:{rec['theme_id']}"
            descriptions += [f"- **{theme_key}** {rec['new']}: {rec['description']}"]
            rules = {"old": rec["old"], "new": rec["new"]}
            names = [("both", rec["new"])] if rec["old"] == rec["new"] else list(rules.items())
            for rule, label in names:
                items.append({"corpus": corpus, "theme": theme_key, "rule": rule, "label": label,
                              "segment_ids": ";".join(sample["segment_id"]),
                              "passages": [redact_pii(" ".join(str(t).split()))[:400] for t in sample["passage"]]})
        print(f"{corpus}: {len(records)} emergent themes, {len(chosen)} sampled", flush=True)
    rng.shuffle(items)
    lines = ["# Theme names to review (blind)", "",
             "Each row is a theme name with passages drawn at random from the answers the theme holds. Several rows "
             "may show the same passages under different names: judge each row on its own. Judge the NAME: keep "
             "(would go into a synthesis report as it is), edit (right theme, the name needs rewording), reject "
             "(the name does not say what these passages say). Write `item,verdict,reason` lines.", ""]
    for i, it in enumerate(items, 1):
        it["item"] = i
        lines += [f"## Item {i}", f"**Name:** {it['label']}", ""] + [f"- {t}" for t in it["passages"]] + [""]
    sheet_file.parent.mkdir(parents=True, exist_ok=True)
    sheet_file.write_text("\n".join(lines), encoding="utf-8")
    df = pd.DataFrame(items)
    df[["item", "label", "segment_ids"]].to_csv(ids_file, index=False)
    df[["item", "corpus", "theme", "rule", "label"]].to_csv(key_file, index=False)
    print(f"{len(items)} rows ({df['theme'].nunique()} themes) -> {sheet_file}; ids {ids_file}; key {key_file}")
    if descriptions_file:
        descriptions_file.write_text("\n".join(descriptions) + "\n", encoding="utf-8")
    if form_file:
        form_file.write_text(json.dumps(forms, indent=2) + "\n", encoding="utf-8")
        print(json.dumps(forms, indent=2))


def paired_rates(old: np.ndarray, new: np.ndarray, seed: int = PAIRS_SEED, n_boot: int = 2000) -> dict[str, object]:
    """Keep and keep-or-edit rates of the old and the new name of the same themes (verdicts, paired by position),
    with bootstrap CIs over themes and the CI of the paired difference new - old."""
    rng = np.random.default_rng(seed)
    out: dict[str, object] = {}
    for what, ok in (("keep", ("keep",)), ("keep_or_edit", ("keep", "edit"))):
        n_new = np.isin(new, ok).astype(float)
        n_old = np.isin(old, ok).astype(float)
        boots = rng.integers(0, len(n_new), (n_boot, len(n_new))) if len(n_new) else np.zeros((0, 0), int)

        def ci(v: np.ndarray) -> list[float]:
            return [round(float(np.percentile(v, q)), 3) for q in (2.5, 97.5)] if len(v) else []
        out[what] = {
            "new": round(float(n_new.mean()), 3) if len(n_new) else None, "new_ci": ci(n_new[boots].mean(1)),
            "old": round(float(n_old.mean()), 3) if len(n_new) else None, "old_ci": ci(n_old[boots].mean(1)),
            "new_minus_old_ci": ci((n_new - n_old)[boots].mean(1)),
        }
    return out


def score_pairs(key_file: Path, verdicts_file: Path, json_file: Path | None) -> dict[str, object]:
    """Keep-rate of old and new names (a "both" row counts for each), bootstrap CIs over themes, and the paired
    difference new - old."""
    key = pd.read_csv(key_file)
    verdicts = pd.read_csv(verdicts_file)
    df = key.merge(verdicts[["item", "verdict"]], on="item", how="left")
    missing = int(df["verdict"].isna().sum())
    df = df.dropna(subset=["verdict"])
    df["verdict"] = df["verdict"].str.strip().str.lower()
    rows = []
    for _, r in df.iterrows():
        for rule in (["old", "new"] if r["rule"] == "both" else [r["rule"]]):
            rows.append({"theme": r["theme"], "corpus": r["corpus"], "rule": rule, "verdict": r["verdict"]})
    long = pd.DataFrame(rows)
    wide = long.pivot_table(index="theme", columns="rule", values="verdict", aggfunc="first").dropna()
    out: dict[str, object] = {"n_rows": len(df), "missing_verdicts": missing, "n_themes_paired": len(wide),
                              "identical_names": int((key["rule"] == "both").sum())}
    out.update(paired_rates(wide["old"].to_numpy(), wide["new"].to_numpy()))
    out["by_corpus"] = {c: {rule: round(float(g[g["rule"] == rule]["verdict"].eq("keep").mean()), 3)
                            for rule in ("old", "new")} for c, g in long.groupby("corpus")}
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
    q = sub.add_parser("pairs")
    q.add_argument("--batch", action="append", required=True, help="NAME=DIR of a batch written by `wsis run`")
    q.add_argument("--per-corpus", type=int, default=12)
    q.add_argument("--sheet", type=Path, required=True, help="sheet with passages (keep it outside the repository)")
    q.add_argument("--ids", type=Path, required=True, help="rows with names and passage ids only")
    q.add_argument("--key", type=Path, required=True)
    q.add_argument("--form", type=Path, help="JSON: form of all emergent theme names, old and new (no judgement)")
    q.add_argument("--descriptions", type=Path, help="new descriptions of the sampled themes (outside the repository)")
    r = sub.add_parser("score-pairs")
    r.add_argument("--key", type=Path, required=True)
    r.add_argument("--verdicts", type=Path, required=True)
    r.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.cmd == "pairs":
        batches = {b.split("=", 1)[0]: Path(b.split("=", 1)[1]) for b in args.batch}
        pairs(batches, args.per_corpus, args.sheet, args.ids, args.key, form_file=args.form,
              descriptions_file=args.descriptions)
    elif args.cmd == "score-pairs":
        score_pairs(args.key, args.verdicts, args.json)
    elif args.cmd == "packet":
        batches = {b.split("=", 1)[0]: Path(b.split("=", 1)[1]) for b in args.batch}
        packet(batches, args.n, args.packet, args.key)
    else:
        score(args.key, args.verdicts, args.json)


if __name__ == "__main__":
    main()
