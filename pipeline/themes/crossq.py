"""Themes across questions: which themes recur where (theme x question table, batch-scope rows)."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from pipeline.params import ThemesParams

# params.yaml `themes.cross_link_threshold`; callers with params pass theirs as `threshold`
CROSS_LINK_THRESHOLD = ThemesParams().cross_link_threshold


def _link_groups(keys: list[tuple[str, str]], cents: dict[tuple[str, str], np.ndarray],
                 origin: dict[tuple[str, str], str], threshold: float) -> dict[tuple[str, str], str]:
    """Cross-question group id per theme: its seed id, or emergent themes linked by centroid cosine."""
    parent = {k: k for k in keys}

    def find(k: tuple[str, str]) -> tuple[str, str]:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    emergent = [k for k in keys if origin.get(k) == "emergent" and k in cents]
    if len(emergent) > 1:
        m = np.stack([cents[k] for k in emergent])
        sim = m @ m.T
        for i in range(len(emergent)):
            for j in range(i + 1, len(emergent)):
                if emergent[i][0] != emergent[j][0] and sim[i, j] >= threshold:
                    a, b = find(emergent[i]), find(emergent[j])
                    if a != b:
                        parent[max(a, b)] = min(a, b)
    out = {}
    for k in keys:
        out[k] = k[1] if origin.get(k) != "emergent" else find(k)[1]
    return out


def theme_by_question(
    themes: pd.DataFrame, centroids: dict[tuple[str, str], np.ndarray],
    threshold: float = CROSS_LINK_THRESHOLD,
) -> pd.DataFrame:
    """One row per (theme, question): counts, share of the question's answers, cross-question group."""
    q = themes[themes["scope"] != "all"]
    keys = list(zip(q["scope"], q["theme_id"], strict=True))
    origin = dict(zip(keys, q["origin"], strict=True))
    groups = _link_groups(keys, centroids, origin, threshold)
    substantive = (
        q[q["theme_id"] != "nonanswer"].groupby("scope")["size"].sum().to_dict()
    )
    rows = []
    for (qid, tid), r in zip(keys, q.to_dict("records"), strict=True):
        rows.append(
            {
                "theme_id": tid,
                "question_id": qid,
                "label": r["label"],
                "origin": r["origin"],
                "cross_theme": groups[(qid, tid)],
                "n_answers": int(r["size"]),
                "n_segments": int(r["n_segments"]),
                "n_respondents": int(r["n_respondents"]),
                "share": round(int(r["size"]) / max(int(substantive.get(qid, 0)), 1), 4),
            }
        )
    df = pd.DataFrame(rows, columns=["theme_id", "question_id", "label", "origin", "cross_theme",
                                     "n_answers", "n_segments", "n_respondents", "share"])
    df["n_questions"] = (
        df.groupby("cross_theme")["question_id"].transform("nunique") if len(df) else pd.Series(dtype=int)
    )
    return df.sort_values(["cross_theme", "question_id", "theme_id"], kind="stable").reset_index(drop=True)


def batch_scope_rows(themes: pd.DataFrame, seg_assign: pd.DataFrame, seg: pd.DataFrame) -> pd.DataFrame:
    """Scope-"all" rows for themes whose id recurs across questions (seed themes, other, non-answers)."""
    q = themes[(themes["scope"] != "all") & (themes["origin"] != "emergent")]
    if q.empty:
        return themes.iloc[0:0].copy()
    sa = seg_assign.assign(response_id=seg["response_id"].to_numpy())
    rows: list[dict[str, Any]] = []
    for tid, grp in q.groupby("theme_id", sort=True):
        mine = sa[sa["theme_id"] == tid]
        kw: Counter[str] = Counter()
        for keywords in grp["keywords"]:
            for rank, k in enumerate([x for x in str(keywords).split(";") if x]):
                kw[k] += 1000 // (rank + 1)
        quotes: list[dict[str, str]] = []
        seen: set[str] = set()
        for qs in grp.sort_values("size", ascending=False)["quotes"]:
            for quote in json.loads(qs or "[]"):
                if quote["response_id"] not in seen and len(quotes) < 5:
                    seen.add(quote["response_id"])
                    quotes.append(quote)
        first = grp.iloc[0]
        rows.append(
            {
                "theme_id": tid, "scope": "all", "label": first["label"],
                "keywords": ";".join(k for k, _ in sorted(kw.items(), key=lambda t: (-t[1], t[0]))[:8]),
                "size": int(mine["answer_id"].nunique()), "n_segments": len(mine),
                "n_respondents": int(mine["response_id"].nunique()), "origin": first["origin"],
                "seed_id": first["seed_id"], "description": first["description"],
                "quotes": json.dumps(quotes, ensure_ascii=False),
                "seed_score": float(grp["seed_score"].max()),
            }
        )
    return pd.DataFrame(rows, columns=themes.columns)
