"""Answers whose Action Lines and SDGs disagree with the WSIS-SDG matrix (a hint for analysts, not an error:
the matrix is indicative)."""

from __future__ import annotations

import pandas as pd

from pipeline.tagger.taxonomy import Taxonomy, output_code, split_codes

COLUMNS = [
    "answer_id", "response_id", "question_id", "action_lines", "sdgs",
    "unlinked_pairs", "sdgs_without_action_line", "action_lines_without_sdg", "n_issues",
]


def links(taxonomy: Taxonomy) -> dict[str, set[str]]:
    """Action Line id -> linked SDG ids; C7 links to the union of its sub-areas (and vice versa)."""
    table: dict[str, set[str]] = {}
    for al, sdg in taxonomy.matrix:
        table.setdefault(al, set()).add(sdg)
    c7 = set().union(*(v for k, v in table.items() if k.startswith("C7")))
    table["C7"] = table.get("C7", set()) | c7
    return table


def check(action_lines: list[str], sdgs: list[str], table: dict[str, set[str]]) -> dict[str, list[str]]:
    """Issues of one answer: (Action Line, SDG) pairs with no link, SDGs no tagged Action Line links to,
    Action Lines linked to none of the tagged SDGs."""
    if not action_lines or not sdgs:
        return {"pairs": [], "sdgs": [], "als": []}
    pairs = [f"{al}~{output_code(s)}" for al in action_lines for s in sdgs if s not in table.get(al, set())]
    lonely_sdgs = [output_code(s) for s in sdgs if not any(s in table.get(al, set()) for al in action_lines)]
    lonely_als = [al for al in action_lines if not (table.get(al, set()) & set(sdgs))]
    return {"pairs": pairs, "sdgs": lonely_sdgs, "als": lonely_als}


def consistency_report(tags: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """One row per answer with at least one matrix disagreement (columns `COLUMNS`)."""
    table = links(taxonomy)
    rows = []
    for rec in tags.to_dict("records"):
        als = split_codes(rec.get("action_lines", ""), "action_line")
        sdgs = split_codes(rec.get("sdgs", ""), "sdg")
        issues = check(als, sdgs, table)
        n = len(issues["pairs"]) + len(issues["sdgs"]) + len(issues["als"])
        if n == 0:
            continue
        rows.append({
            "answer_id": str(rec.get("answer_id", rec.get("id", ""))),
            "response_id": str(rec.get("response_id", "")), "question_id": str(rec.get("question_id", "")),
            "action_lines": rec.get("action_lines", ""), "sdgs": rec.get("sdgs", ""),
            "unlinked_pairs": ";".join(issues["pairs"]),
            "sdgs_without_action_line": ";".join(issues["sdgs"]),
            "action_lines_without_sdg": ";".join(issues["als"]), "n_issues": n,
        })
    return pd.DataFrame(rows, columns=COLUMNS)
