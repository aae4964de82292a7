"""Pure table builders of the synthesis report: DataFrames in, new DataFrames out (inputs never mutated).

Counting rules (the same in every table, so figures reconcile):
- only answers of *current* submissions count (a re-submission replaces the organisation's earlier one);
- an *answering respondent* of a question is a current submission whose answer is not a non-answer;
- shares are respondents with the theme / answering respondents (of the question, group or region);
- the "other" bucket holds answering answers that no theme took (or that the themes stage put in `other`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
import pandas as pd

from pipeline.clean.normalise import damaged_words
from pipeline.errors import InputError
from pipeline.ingest.normalise import NOT_GIVEN
from pipeline.report.batch import Batch, Taxonomy, quotes_of
from pipeline.safety import safe_text
from pipeline.schemas import STAKEHOLDER_GROUPS

OTHER = "other"
OTHER_LABEL = "Other / no theme"
NONANSWER_THEMES = {"nonanswer", "non-answer"}
REGIONS = ["Africa", "Americas", "Asia", "Europe", "Oceania"]
UNKNOWN = "unknown"
MAP_CHUNK = 8192  # answers projected at once by `answer_map` (memory)


class ReconciliationError(InputError):
    """Report figures do not add up with ingest; the report must not be published (the CLI shows the reason)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(where, None, reason)


# ---------------------------------------------------------------------------------------------- basics
def _natural_key(text: str) -> tuple[Any, ...]:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(text)))


def base_answers(batch: Batch) -> pd.DataFrame:
    """One row per answer with the columns every table needs (answers_clean, or answers when clean is absent)."""
    src = batch.answers_clean if batch.answers_clean is not None else batch.answers
    out = src.copy()
    if "answer_id" not in out.columns:
        out["answer_id"] = out["response_id"].astype(str) + "::" + out["question_id"].astype(str)
    if "is_nonanswer" not in out.columns:
        out["is_nonanswer"] = out["answer"].fillna("").astype(str).str.strip().eq("")
        out["nonanswer_reason"] = np.where(out["is_nonanswer"], "empty", "")
    if "text_redacted" not in out.columns:
        from pipeline.clean.pii import redact

        out["text_redacted"] = out["answer"].fillna("").astype(str).map(redact)
    for col in ("dup_group", "dup_kind", "nonanswer_reason", "org_name", "org_type", "country", "region",
                "stakeholder_group", "submission_group", "question_text", "superseded_by", "superseded_reason",
                "ingest_flags", "source_file"):
        if col not in out.columns:
            out[col] = ""
        out[col] = out[col].fillna("").astype(str)
    if "is_current" not in out.columns:
        out["is_current"] = True
    if "dup_group_size" not in out.columns:
        out["dup_group_size"] = 1
    out["is_current"] = out["is_current"].fillna(True).astype(bool)
    out["is_nonanswer"] = out["is_nonanswer"].fillna(False).astype(bool)
    for col in ("answer_id", "response_id", "question_id"):
        out[col] = out[col].astype(str)
    out["stakeholder_group"] = out["stakeholder_group"].replace("", NOT_GIVEN)  # missing is not "other"
    out["region"] = out["region"].replace("", UNKNOWN)
    return out.reset_index(drop=True)


def questions(answers: pd.DataFrame) -> pd.DataFrame:
    """Questions in questionnaire order: question_id, question_number, question_text."""
    cols = ["question_id", "question_number", "question_text"]
    q = answers[[c for c in cols if c in answers.columns]].drop_duplicates("question_id").copy()
    if "question_number" not in q.columns:
        q["question_number"] = pd.NA
    q = q[cols]
    q["_num"] = pd.to_numeric(q["question_number"], errors="coerce").astype("float64").fillna(np.inf)
    q["_nat"] = q["question_id"].map(_natural_key)
    q = q.sort_values(["_num", "_nat"], kind="stable")
    return q[cols].reset_index(drop=True)


def question_order(answers: pd.DataFrame) -> list[str]:
    return questions(answers)["question_id"].tolist()


def current_answering(answers: pd.DataFrame) -> pd.DataFrame:
    return answers[answers["is_current"] & ~answers["is_nonanswer"]]


def split_codes(value: Any) -> list[str]:
    """';'-joined codes -> list (robust to None, NaN, lists and arrays)."""
    if value is None:
        return []
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v).strip() for v in value if str(v).strip()]
    if isinstance(value, float) and np.isnan(value):
        return []
    return [v.strip() for v in str(value).split(";") if v.strip()]


def theme_labels(themes: pd.DataFrame | None) -> dict[tuple[str, str], dict[str, str]]:
    """(scope, theme_id) -> {label, origin, keywords}; scope "all" rows serve as fallback for any question."""
    out: dict[tuple[str, str], dict[str, str]] = {}
    if themes is None:
        return out
    for r in themes.itertuples(index=False):
        out[(str(r.scope), str(r.theme_id))] = {
            "label": str(r.label), "origin": str(r.origin), "keywords": str(getattr(r, "keywords", "") or ""),
        }
    return out


def _label_of(labels: dict[tuple[str, str], dict[str, str]], qid: str, tid: str) -> dict[str, str]:
    if tid == OTHER:
        return {"label": OTHER_LABEL, "origin": "other", "keywords": ""}
    return labels.get((qid, tid)) or labels.get(("all", tid)) or {"label": tid, "origin": "", "keywords": ""}


_Memo = dict[tuple[Any, ...], tuple[tuple[Any, ...], pd.DataFrame]]
_SHARED: ContextVar[_Memo | None] = ContextVar("report_shared", default=None)


@contextmanager
def shared_intermediates() -> Iterator[None]:
    """While one report is built, the long tables several tables derive from the same frames (answers x themes,
    answers x tags) are computed once (`_shared`); outside it every call computes afresh."""
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(name: str, frames: tuple[Any, ...], compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """`compute()` once per (name, frames) inside `shared_intermediates` (frames by identity: the memo keeps them
    referenced, so an id is not reused while it lives); each caller gets its own copy to change."""
    memo = _SHARED.get()
    if memo is None:
        return compute()
    key = (name, *map(id, frames))
    if key not in memo:
        memo[key] = (frames, compute())
    return memo[key][1].copy()


def answer_themes(answers: pd.DataFrame, assignments: pd.DataFrame | None) -> pd.DataFrame:
    """Long table of current answering answers x theme (rank from 1); answers without a theme get `other`."""
    return _shared("answer_themes", (answers, assignments), lambda: _answer_themes(answers, assignments))


def _answer_themes(answers: pd.DataFrame, assignments: pd.DataFrame | None) -> pd.DataFrame:
    cols = ["answer_id", "response_id", "question_id", "theme_id", "rank"]
    base = current_answering(answers)[["answer_id", "response_id", "question_id"]]
    if assignments is None or assignments.empty or base.empty:
        return base.assign(theme_id=OTHER, rank=1)[cols].reset_index(drop=True)
    assign = pd.DataFrame({
        "answer_id": assignments["answer_id"].astype(str).to_numpy(),
        "theme_id": assignments["themes"].fillna("").astype(str).to_numpy(),
    }).drop_duplicates("answer_id")
    assign["theme_id"] = assign["theme_id"].str.split(";")
    long = assign.explode("theme_id", ignore_index=True)
    long["theme_id"] = long["theme_id"].fillna("").astype(str).str.strip()
    long = long[(long["theme_id"] != "") & ~long["theme_id"].isin(NONANSWER_THEMES)]
    long = long.drop_duplicates(["answer_id", "theme_id"])
    out = base.merge(long, on="answer_id", how="left")
    out["theme_id"] = out["theme_id"].fillna(OTHER)
    out["rank"] = out.groupby("answer_id", sort=False).cumcount() + 1
    return out[cols].reset_index(drop=True)


def cross_theme_map(theme_by_question: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """(question_id, theme_id) -> cross-question theme key (the themes stage links similar themes)."""
    if theme_by_question is None or "cross_theme" not in theme_by_question.columns:
        return {}
    return {
        (str(q), str(t)): str(c) for q, t, c in zip(
            theme_by_question["question_id"], theme_by_question["theme_id"], theme_by_question["cross_theme"],
            strict=True,
        )
    }


# ---------------------------------------------------------------------------------------------- themes
GROUP_SIZE = "(answering)"  # column suffix: the group's answering respondents, the denominator of its share


def themes_by_question(answers: pd.DataFrame, assignments: pd.DataFrame | None,
                       themes: pd.DataFrame | None) -> pd.DataFrame:
    """Per question and theme: answers, respondents and the share of the question's answering respondents."""
    cols = ["question_id", "question_text", "theme_id", "theme", "origin", "answers", "respondents",
            "answering_respondents", "share_of_answering", "keywords"]
    at = answer_themes(answers, assignments)
    labels = theme_labels(themes)
    qinfo = questions(answers).set_index("question_id")
    answering = current_answering(answers).groupby("question_id")["response_id"].nunique()
    rows = []
    for (qid, tid), grp in at.groupby(["question_id", "theme_id"], sort=False):
        info = _label_of(labels, str(qid), str(tid))
        n_resp = int(grp["response_id"].nunique())
        denom = int(answering.get(qid, 0))
        rows.append({
            "question_id": qid, "question_text": str(qinfo.at[str(qid), "question_text"]) if qid in qinfo.index else "",
            "theme_id": tid, "theme": info["label"], "origin": info["origin"],
            "answers": int(grp["answer_id"].nunique()), "respondents": n_resp, "answering_respondents": denom,
            "share_of_answering": round(n_resp / denom, 4) if denom else 0.0,
            "keywords": info["keywords"].replace(";", "; "),
        })
    df = pd.DataFrame(rows, columns=cols)
    return _order_question_theme(df, question_order(answers))


def _order_question_theme(df: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Questions in questionnaire order; within a question biggest theme first, `other` last, ties by id."""
    if df.empty:
        return df.reset_index(drop=True)
    key = df.assign(
        _q=df["question_id"].map({q: i for i, q in enumerate(order)}),
        _other=df["theme_id"].eq(OTHER).astype(int),
        _n=-df["respondents"],
    )
    key = key.sort_values(["_q", "_other", "_n", "theme_id"], kind="stable")
    return key.drop(columns=["_q", "_other", "_n"]).reset_index(drop=True)


def _themes_by_dimension(answers: pd.DataFrame, assignments: pd.DataFrame | None, themes: pd.DataFrame | None,
                         dim: str, values: list[str]) -> pd.DataFrame:
    at = answer_themes(answers, assignments)
    meta = answers[["answer_id", dim]]
    at = at.merge(meta, on="answer_id", how="left")
    labels = theme_labels(themes)
    denom = current_answering(answers).groupby(["question_id", dim])["response_id"].nunique().to_dict()
    present = [v for v in values if v in set(answers[dim])] + sorted(set(answers[dim]) - set(values))
    counts = at.groupby(["question_id", "theme_id", dim])["response_id"].nunique().to_dict()
    rows = []
    for (qid, tid), grp in at.groupby(["question_id", "theme_id"], sort=False):
        info = _label_of(labels, str(qid), str(tid))
        row: dict[str, Any] = {"question_id": qid, "theme_id": tid, "theme": info["label"],
                               "respondents": int(grp["response_id"].nunique())}
        for v in present:
            n = int(counts.get((qid, tid, v), 0))
            d = int(denom.get((qid, v), 0))
            row[f"{v} (n)"] = n
            row[f"{v} {GROUP_SIZE}"] = d
            row[f"{v} (share)"] = round(n / d, 4) if d else 0.0
        rows.append(row)
    cols = ["question_id", "theme_id", "theme", "respondents"] + [
        c for v in present for c in (f"{v} (n)", f"{v} {GROUP_SIZE}", f"{v} (share)")
    ]
    return _order_question_theme(pd.DataFrame(rows, columns=cols), question_order(answers))


def themes_by_stakeholder(answers: pd.DataFrame, assignments: pd.DataFrame | None,
                          themes: pd.DataFrame | None) -> pd.DataFrame:
    """Per question and theme: respondents and share of the group's answering respondents, per stakeholder group."""
    return _themes_by_dimension(answers, assignments, themes, "stakeholder_group", list(STAKEHOLDER_GROUPS))


def themes_by_region(answers: pd.DataFrame, assignments: pd.DataFrame | None,
                     themes: pd.DataFrame | None) -> pd.DataFrame:
    """Per question and theme: respondents and share of the region's answering respondents (UN M49 regions)."""
    return _themes_by_dimension(answers, assignments, themes, "region", [*REGIONS, UNKNOWN])


def answering_by_question(answers: pd.DataFrame) -> pd.DataFrame:
    """Per question: current answers, answering respondents, non-answers, and answering respondents per group."""
    cur = answers[answers["is_current"]]
    groups = [g for g in STAKEHOLDER_GROUPS if g in set(answers["stakeholder_group"])]
    groups += sorted(set(answers["stakeholder_group"]) - set(groups))
    regions = [r for r in [*REGIONS, UNKNOWN] if r in set(answers["region"])]
    answered = cur[~cur["is_nonanswer"]]
    n_answers = cur.groupby("question_id")["answer_id"].size().to_dict()
    n_non = cur.groupby("question_id")["is_nonanswer"].sum().to_dict()
    n_answered = answered.groupby("question_id")["answer_id"].size().to_dict()
    respondents = answered.groupby("question_id")["response_id"].nunique().to_dict()
    by_group = answered.groupby(["question_id", "stakeholder_group"])["response_id"].nunique().to_dict()
    by_region = answered.groupby(["question_id", "region"])["response_id"].nunique().to_dict()
    rows = []
    for q in questions(answers).itertuples(index=False):
        n_sub, n_ans = int(n_answers.get(q.question_id, 0)), int(n_answered.get(q.question_id, 0))
        row: dict[str, Any] = {
            "question_id": q.question_id, "question_text": q.question_text, "answers": n_sub,
            "answering_respondents": int(respondents.get(q.question_id, 0)),
            "non_answers": int(n_non.get(q.question_id, 0)),
            "answer_rate_share": round(n_ans / n_sub, 4) if n_sub else 0.0,
        }
        for g in groups:
            row[g] = int(by_group.get((q.question_id, g), 0))
        for r in regions:
            row[r] = int(by_region.get((q.question_id, r), 0))
        rows.append(row)
    return pd.DataFrame(rows)


def respondents_profile(answers: pd.DataFrame) -> pd.DataFrame:
    """Current submissions by stakeholder group and by UN region (counts and shares)."""
    cur = answers[answers["is_current"]].drop_duplicates("response_id")
    total = len(cur)
    rows = []
    for dim, label, order in (("stakeholder_group", "stakeholder group", list(STAKEHOLDER_GROUPS)),
                              ("region", "UN region", [*REGIONS, UNKNOWN])):
        counts = cur[dim].value_counts()
        values = [v for v in order if v in counts.index] + sorted(set(counts.index) - set(order))
        for v in values:
            rows.append({"dimension": label, "value": v, "submissions": int(counts[v]),
                         "share": round(int(counts[v]) / total, 4) if total else 0.0})
    return pd.DataFrame(rows, columns=["dimension", "value", "submissions", "share"])


def theme_x_question(answers: pd.DataFrame, assignments: pd.DataFrame | None, themes: pd.DataFrame | None,
                     theme_by_question: pd.DataFrame | None = None) -> pd.DataFrame:
    """Themes across the batch (linked across questions when the themes stage did so) x questions: respondents."""
    at = answer_themes(answers, assignments)
    order = question_order(answers)
    cross = cross_theme_map(theme_by_question)
    labels = theme_labels(themes)
    at = at.assign(key=[cross.get((q, t), t) for q, t in zip(at["question_id"], at["theme_id"], strict=True)])
    per_key_q = at.groupby(["key", "question_id"], sort=False)["response_id"].nunique().to_dict()
    per_key = at.groupby("key", sort=False)["response_id"].nunique().to_dict()
    first = at.drop_duplicates("key")
    rows = []
    for key, qid, tid in zip(first["key"], first["question_id"], first["theme_id"], strict=True):
        info = _label_of(labels, "all", str(key)) if ("all", str(key)) in labels or key == OTHER else _label_of(
            labels, str(qid), str(tid))
        row: dict[str, Any] = {"theme_id": key, "theme": info["label"], "origin": info["origin"]}
        for q in order:
            row[q] = int(per_key_q.get((key, q), 0))
        row["questions"] = sum(row[q] > 0 for q in order)
        row["respondents"] = int(per_key[key])
        rows.append(row)
    df = pd.DataFrame(rows, columns=["theme_id", "theme", "origin", *order, "questions", "respondents"])
    if df.empty:
        return df
    df = df.assign(_other=df["theme_id"].eq(OTHER).astype(int), _q=-df["questions"], _n=-df["respondents"])
    df = df.sort_values(["_other", "_q", "_n", "theme_id"], kind="stable")
    return df.drop(columns=["_other", "_q", "_n"]).reset_index(drop=True)


def theme_x_stakeholder(answers: pd.DataFrame, assignments: pd.DataFrame | None, themes: pd.DataFrame | None,
                        theme_by_question: pd.DataFrame | None = None) -> pd.DataFrame:
    """Batch-wide: share of each group's answering respondents that raised the theme in any question."""
    at = answer_themes(answers, assignments)
    cross = cross_theme_map(theme_by_question)
    at = at.assign(key=[cross.get((q, t), t) for q, t in zip(at["question_id"], at["theme_id"], strict=True)])
    at = at.merge(answers[["answer_id", "stakeholder_group"]], on="answer_id", how="left")
    denom = current_answering(answers).groupby("stakeholder_group")["response_id"].nunique()
    groups = [g for g in STAKEHOLDER_GROUPS if g in denom.index] + sorted(set(denom.index) - set(STAKEHOLDER_GROUPS))
    txq = theme_x_question(answers, assignments, themes, theme_by_question)
    by_key_group = at.groupby(["key", "stakeholder_group"], sort=False)["response_id"].nunique()
    counts: dict[tuple[str, Any], int] = {(str(key[0]), key[1]): int(n) for key, n in by_key_group.items()
                                          if isinstance(key, tuple)}
    rows = []
    for r in txq.itertuples(index=False):
        row: dict[str, Any] = {"theme_id": r.theme_id, "theme": r.theme, "respondents": int(str(r.respondents))}
        for g in groups:
            n = int(counts.get((str(r.theme_id), g), 0))
            row[f"{g} (n)"] = n
            row[f"{g} {GROUP_SIZE}"] = int(denom[g])
            row[f"{g} (share)"] = round(n / int(denom[g]), 4) if int(denom[g]) else 0.0
        rows.append(row)
    cols = [c for g in groups for c in (f"{g} (n)", f"{g} {GROUP_SIZE}", f"{g} (share)")]
    return pd.DataFrame(rows, columns=["theme_id", "theme", "respondents", *cols])


def small_group_mask(df: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """True for each `<group> (share)` cell whose group has fewer answering respondents than `min_group_size`:
    a share of 2 respondents says little, so the writers grey it out."""
    mask = pd.DataFrame(False, index=df.index, columns=df.columns)
    for col in df.columns:
        if isinstance(col, str) and col.endswith(" (share)"):
            size_col = col[: -len(" (share)")] + f" {GROUP_SIZE}"
            if size_col in df.columns:
                mask[col] = pd.to_numeric(df[size_col], errors="coerce").fillna(0) < min_group_size
    return mask


def theme_catalogue(themes: pd.DataFrame | None, answers: pd.DataFrame) -> pd.DataFrame:
    """Every theme as found by the themes stage: scope, label, keywords, description, sizes (all submissions)."""
    cols = ["scope", "theme_id", "theme", "origin", "size", "n_respondents", "keywords", "description"]
    if themes is None:
        return pd.DataFrame(columns=cols)
    df = themes.rename(columns={"label": "theme"}).copy()
    if "description" not in df.columns:
        df["description"] = ""
    df["keywords"] = df["keywords"].fillna("").astype(str).str.replace(";", "; ", regex=False)
    order = {q: i for i, q in enumerate(["all", *question_order(answers)])}
    df = df.assign(_s=df["scope"].map(order).fillna(len(order)), _n=-df["size"])
    df = df.sort_values(["_s", "_n", "theme_id"], kind="stable")
    return df[cols].reset_index(drop=True)


def findings(themes_by_q: pd.DataFrame, by_group: pd.DataFrame, catalogue: pd.DataFrame, quotes: pd.DataFrame,
             min_group_size: int = 5, top_groups: int = 2) -> pd.DataFrame:
    """The report's first table: per question, each theme with its description, respondents and share, the
    stakeholder groups that raise it most (only groups of at least `min_group_size` answering respondents, with
    their n), and the best quote."""
    cols = ["question_id", "question_text", "theme_id", "theme", "description", "respondents",
            "answering_respondents", "share_of_answering", "stance", "raised_most_by", "quote", "quote_by"]
    if themes_by_q.empty:
        return pd.DataFrame(columns=cols)
    desc = {(str(r.scope), str(r.theme_id)): str(r.description or "") for r in catalogue.itertuples(index=False)}
    groups = {(str(r["question_id"]), str(r["theme_id"])): r for _, r in by_group.iterrows()}
    best = {} if quotes.empty else {
        (str(r.question_id), str(r.theme_id)): r for r in quotes.sort_values("rank").itertuples(index=False)
        if int(str(r.rank)) == 1
    }
    rows = []
    for r in themes_by_q.itertuples(index=False):
        key = (str(r.question_id), str(r.theme_id))
        if r.theme_id == OTHER:
            description = "Answered answers that no theme took: read them by hand."
        else:
            description = desc.get(key) or desc.get(("all", str(r.theme_id)), "")
        raised = ""
        if key in groups:
            row = groups[key]
            cand = []
            for col in row.index:
                if not str(col).endswith(" (share)"):
                    continue
                name = str(col)[: -len(" (share)")]
                n, d = int(row.get(f"{name} (n)", 0)), int(row.get(f"{name} {GROUP_SIZE}", 0))
                if d >= min_group_size and n > 0:
                    cand.append((-n / d, -n, name, n, d))
            raised = "; ".join(f"{name} {100 * n / d:.0f}% ({n} of {d})"
                               for *_k, name, n, d in sorted(cand)[:top_groups])
        quote = best.get(key)
        rows.append({
            "question_id": r.question_id, "question_text": r.question_text, "theme_id": r.theme_id,
            "theme": r.theme, "description": description, "respondents": int(str(r.respondents)),
            "answering_respondents": int(str(r.answering_respondents)), "share_of_answering": r.share_of_answering,
            "stance": str(getattr(r, "stance", "") or ""), "raised_most_by": raised,
            "quote": "" if quote is None else str(quote.quote),
            "quote_by": "" if quote is None else ", ".join(
                x for x in (f"response {quote.response_id}", str(quote.org_name), str(quote.country)) if x),
        })
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------- tags
def _tag_long(answers: pd.DataFrame, tags: pd.DataFrame, column: str) -> pd.DataFrame:
    """Long table of current answering answers x code of one tags column (`_shared` in one report build)."""
    return _shared(f"tags:{column}", (answers, tags), lambda: _tag_long_of(answers, tags, column))


def _tag_long_of(answers: pd.DataFrame, tags: pd.DataFrame, column: str) -> pd.DataFrame:
    cur = current_answering(answers)[["answer_id", "response_id", "question_id"]]
    t = tags[["answer_id", column]].copy()
    t["answer_id"] = t["answer_id"].astype(str)
    t = cur.merge(t, on="answer_id", how="left")
    rows = [(a, r, q, c) for a, r, q, v in t.itertuples(index=False) for c in split_codes(v)]
    return pd.DataFrame(rows, columns=["answer_id", "response_id", "question_id", "code"])


def _by_question(answers: pd.DataFrame, long: pd.DataFrame, codes: dict[str, str], code_label: str,
                 mentioned: pd.DataFrame | None) -> pd.DataFrame:
    order = question_order(answers)
    answered = len(current_answering(answers))
    rows = []
    known = list(codes) + sorted(set(long["code"]) - set(codes), key=_natural_key)
    for code in known:
        grp = long[long["code"] == code]
        row: dict[str, Any] = {code_label: code, "title": codes.get(code, "")}
        per_q = grp.groupby("question_id")["answer_id"].nunique()
        for q in order:
            row[q] = int(per_q.get(q, 0))
        row["answers"] = int(grp["answer_id"].nunique())
        row["respondents"] = int(grp["response_id"].nunique())
        row["share_of_answers"] = round(row["answers"] / answered, 4) if answered else 0.0
        if mentioned is not None:
            row["explicitly_mentioned"] = int(mentioned.loc[mentioned["code"] == code, "answer_id"].nunique())
        rows.append(row)
    return pd.DataFrame(rows)


def action_lines_by_question(answers: pd.DataFrame, tags: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Action Line x question: current answering answers tagged with the Action Line."""
    long = _tag_long(answers, tags, "action_lines")
    mentioned = _tag_long(answers, tags, "mentioned_action_lines") if "mentioned_action_lines" in tags else None
    return _by_question(answers, long, taxonomy.action_lines, "action_line", mentioned)


def sdgs_by_question(answers: pd.DataFrame, tags: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """SDG x question: current answering answers tagged with the SDG."""
    long = _tag_long(answers, tags, "sdgs")
    long["code"] = long["code"].str.replace(r"(?i)^sdg\s*", "", regex=True)
    mentioned = None
    if "mentioned_sdgs" in tags:
        mentioned = _tag_long(answers, tags, "mentioned_sdgs")
        mentioned["code"] = mentioned["code"].str.replace(r"(?i)^sdg\s*", "", regex=True)
    return _by_question(answers, long, taxonomy.sdgs, "sdg", mentioned)


def matrix_links(taxonomy: Taxonomy, action_line: str, sdg: str) -> bool:
    """Whether the WSIS-SDG matrix links the pair; C7 counts as linked when any of its sub-areas is."""
    if (action_line, sdg) in taxonomy.matrix:
        return True
    if action_line == "C7":
        return any(a.startswith("C7.") and s == sdg for a, s in taxonomy.matrix)
    if action_line.startswith("C7."):
        return ("C7", sdg) in taxonomy.matrix
    return False


def action_line_sdg_pairs(answers: pd.DataFrame, tags: pd.DataFrame, taxonomy: Taxonomy) -> pd.DataFrame:
    """Every Action Line x SDG pair: answers tagged with both, and whether the WSIS-SDG matrix links them."""
    als = _tag_long(answers, tags, "action_lines").rename(columns={"code": "action_line"})
    sdgs = _tag_long(answers, tags, "sdgs").rename(columns={"code": "sdg"})
    sdgs["sdg"] = sdgs["sdg"].str.replace(r"(?i)^sdg\s*", "", regex=True)
    both = als.merge(sdgs[["answer_id", "sdg"]], on="answer_id")
    counts = both.groupby(["action_line", "sdg"])["answer_id"].nunique()
    rows = []
    al_codes = list(taxonomy.action_lines) + sorted(set(als["action_line"]) - set(taxonomy.action_lines))
    sdg_codes = list(taxonomy.sdgs) + sorted(set(sdgs["sdg"]) - set(taxonomy.sdgs), key=_natural_key)
    for a in al_codes:
        for s in sdg_codes:
            rows.append({
                "action_line": a, "action_line_title": taxonomy.action_lines.get(a, ""), "sdg": s,
                "sdg_title": taxonomy.sdgs.get(s, ""), "answers": int(counts.get((a, s), 0)),
                "in_wsis_sdg_matrix": "yes" if matrix_links(taxonomy, a, s) else "no",
            })
    return pd.DataFrame(rows, columns=["action_line", "action_line_title", "sdg", "sdg_title", "answers",
                                       "in_wsis_sdg_matrix"])


def action_line_x_sdg(pairs: pd.DataFrame) -> pd.DataFrame:
    """Wide co-occurrence counts (rows Action Lines, columns `SDG n`); matrix links are in `pairs`."""
    if pairs.empty:
        return pd.DataFrame(columns=["action_line"])
    wide = pairs.pivot(index="action_line", columns="sdg", values="answers")
    wide = wide.reindex(index=list(dict.fromkeys(pairs["action_line"])), columns=list(dict.fromkeys(pairs["sdg"])))
    wide.columns = [f"SDG {c}" for c in wide.columns]
    return wide.fillna(0).astype(int).reset_index()


def matrix_mask(pairs: pd.DataFrame) -> pd.DataFrame:
    """Booleans shaped like `action_line_x_sdg(pairs)`: True where the WSIS-SDG matrix links the cell."""
    if pairs.empty:
        return pd.DataFrame(columns=["action_line"])
    wide = pairs.assign(link=pairs["in_wsis_sdg_matrix"].eq("yes")).pivot(
        index="action_line", columns="sdg", values="link")
    wide = wide.reindex(index=list(dict.fromkeys(pairs["action_line"])), columns=list(dict.fromkeys(pairs["sdg"])))
    wide.columns = [f"SDG {c}" for c in wide.columns]
    return wide.fillna(False).astype(bool).reset_index()


# ---------------------------------------------------------------------------------------------- quotes
STANCE_ORDER = ("support", "oppose", "conditional", "neutral")


def _stance_lookup(stance: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    if stance is None or stance.empty:
        return {}
    scored = stance[stance["stance"].astype(str) != ""]
    return {(str(a), str(t)): str(s) for a, t, s in zip(scored["answer_id"], scored["theme_id"], scored["stance"],
                                                         strict=True)}


def _cover_sides(items: list[Any], side_of: dict[int, str]) -> list[Any]:
    """Candidates reordered so the first ones cover every stance present (best first within each side)."""
    if not side_of:
        return items
    buckets: dict[str, list[Any]] = {}
    for i, item in enumerate(items):
        buckets.setdefault(side_of.get(i, ""), []).append(item)
    order = [s for s in (*STANCE_ORDER, "") if s in buckets]
    out: list[Any] = []
    while any(buckets[s] for s in order):
        for s in order:
            if buckets[s]:
                out.append(buckets[s].pop(0))
    return out


def stance_by_theme(answers: pd.DataFrame, stance: pd.DataFrame | None, min_confidence: float = 0.5) -> pd.DataFrame:
    """Per question and theme: respondents (current, answering) by stance toward the theme's target, those below
    `min_confidence` counted as 'to review', and a summary such as "14 support, 3 oppose"."""
    cols = ["question_id", "theme_id", *STANCE_ORDER, "to_review", "stance", "stance_target"]
    if stance is None or stance.empty:
        return pd.DataFrame(columns=cols)
    cur = set(current_answering(answers)["answer_id"].astype(str))
    st = stance[stance["answer_id"].astype(str).isin(cur) & (stance["stance"].astype(str) != "")].copy()
    if st.empty:
        return pd.DataFrame(columns=cols)
    low = st["confidence"].astype(float) < min_confidence
    st["side"] = np.where(low, "to_review", st["stance"].astype(str))
    rows = []
    for (qid, tid), grp in st.groupby(["question_id", "theme_id"], sort=False):
        counts = grp.groupby("side")["response_id"].nunique()
        row: dict[str, Any] = {"question_id": qid, "theme_id": tid}
        for side in (*STANCE_ORDER, "to_review"):
            row[side] = int(counts.get(side, 0))
        parts = [f"{row[s]} {s}" for s in STANCE_ORDER if row[s]]
        if row["to_review"]:
            parts.append(f"{row['to_review']} to review")
        row["stance"] = ", ".join(parts)
        row["stance_target"] = str(grp["stance_target"].iloc[0])
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def with_stance(df: pd.DataFrame, by_theme: pd.DataFrame) -> pd.DataFrame:
    """`df` (question_id, theme_id, ...) with the `stance` summary column (empty where none was computed)."""
    if by_theme.empty:
        return df.assign(stance="")
    out = df.merge(by_theme[["question_id", "theme_id", "stance"]], on=["question_id", "theme_id"], how="left")
    out["stance"] = out["stance"].fillna("")
    return out


def quotes_table(answers: pd.DataFrame, themes: pd.DataFrame | None, segments: pd.DataFrame | None,
                 top: int = 5, stance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Up to `top` quotes per question theme, traced to response, organisation, type and country; PII-redacted."""
    from pipeline.clean.pii import redact

    cols = ["question_id", "theme_id", "theme", "rank", "response_id", "org_name", "org_type",
            "stakeholder_group", "country", "stance", "quote"]
    if themes is None or themes.empty:
        return pd.DataFrame(columns=cols)
    sides = _stance_lookup(stance)
    scoped = themes[themes["scope"] != "all"]
    if scoped.empty:
        scoped = themes
    scoped = scoped[~scoped["theme_id"].isin([OTHER, *NONANSWER_THEMES])]
    q = quotes_of(scoped)
    seg_text = (
        dict(zip(segments["segment_id"].astype(str), segments["text_redacted"].astype(str), strict=True))
        if segments is not None and "text_redacted" in segments.columns else {}
    )
    current = answers[answers["is_current"]].drop_duplicates("response_id")
    meta_cols = ["org_name", "org_type", "stakeholder_group", "country"]
    meta_of = dict(zip(current["response_id"].astype(str),
                       zip(*(current[c].tolist() for c in meta_cols), strict=True), strict=True))
    labels = theme_labels(themes)
    rows = []
    for (scope, tid), grp in q.groupby(["scope", "theme_id"], sort=False):
        n = 0
        cands = list(grp.sort_values("rank").itertuples(index=False))
        side_of = {i: sides[(str(c.segment_id).split("#")[0], str(tid))] for i, c in enumerate(cands)
                   if (str(c.segment_id).split("#")[0], str(tid)) in sides}
        for r in _cover_sides(cands, side_of):  # quotes from each side first, when stance is known
            meta = meta_of.get(str(r.response_id))
            if meta is None or n >= top:
                continue
            n += 1
            text = seg_text.get(str(r.segment_id), str(r.text))
            rows.append({
                "question_id": scope, "theme_id": tid, "theme": _label_of(labels, str(scope), str(tid))["label"],
                "rank": n, "response_id": r.response_id, **dict(zip(meta_cols, meta, strict=True)),
                "stance": sides.get((str(r.segment_id).split("#")[0], str(tid)), ""),
                "quote": redact(" ".join(str(text).split())),
            })
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return df
    order = {qq: i for i, qq in enumerate(["all", *question_order(answers)])}
    sizes = themes.set_index(["scope", "theme_id"])["size"].to_dict()
    df = df.assign(_q=df["question_id"].map(order).fillna(len(order)),
                   _n=[-int(sizes.get((s, t), 0)) for s, t in zip(df["question_id"], df["theme_id"], strict=True)])
    df = df.sort_values(["_q", "_n", "theme_id", "rank"], kind="stable")
    return df.drop(columns=["_q", "_n"]).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- quality
def duplicates_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Duplicate and campaign groups: kind, answers, respondents, organisations, an excerpt (redacted)."""
    cols = ["dup_group", "kind", "answers", "respondents", "questions", "organisations", "excerpt"]
    d = answers[answers["dup_group"] != ""]
    rows = []
    for gid, grp in d.groupby("dup_group", sort=True):
        kinds = sorted(set(grp["dup_kind"]) - {""})
        text = str(grp["text_redacted"].iloc[0]) if "text_redacted" in grp else ""
        rows.append({
            "dup_group": gid, "kind": ", ".join(kinds), "answers": len(grp),
            "respondents": int(grp["response_id"].nunique()),
            "questions": ", ".join(sorted(set(grp["question_id"]), key=_natural_key)),
            "organisations": "; ".join(sorted(set(grp["org_name"]) - {""})),
            "excerpt": (text[:157] + "...") if len(text) > 160 else text,  # text_redacted: already safe
        })
    return pd.DataFrame(rows, columns=cols)


# segments.boilerplate_kind -> (data-quality measure, note): passages not themed, tagged or quoted
SET_ASIDE_KINDS: dict[str, tuple[str, str]] = {
    "repeated": ("passages set aside as repeated boilerplate",
                 "headers, letterheads, disclaimers, signatures repeated across documents: not themed, tagged or "
                 "quoted"),
    "reference": ("passages set aside as references", "citations, footnotes, source lists in documents"),
    "table": ("passages set aside as tables", "tables of figures, tables of contents, address lines"),
    "list": ("passages set aside as lists of names", "signatories, members, address blocks, file headers"),
}
FLAG_NOTES = {
    "mixed_encoding": "the file mixes UTF-8 and Windows-1252 lines (decoded line by line); check accents",
    "not_consultation_text": "reads like a manual or other non-answer document; check it belongs to the batch",
}


def superseded_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Every superseded submission with the submission that counts instead and why (nothing drops silently)."""
    cols = ["response_id", "org_name", "source_file", "superseded_by", "superseded_reason"]
    old = answers[~answers["is_current"]].drop_duplicates("response_id")
    return old.reindex(columns=cols).fillna("").astype(str).reset_index(drop=True)


def flagged_table(answers: pd.DataFrame) -> pd.DataFrame:
    """Submissions that were read but carry an ingest warning (mixed encodings, not a consultation answer)."""
    cols = ["response_id", "org_name", "source_file", "flag", "note"]
    subs = answers.drop_duplicates("response_id")
    rows = [
        {"response_id": r.response_id, "org_name": r.org_name, "source_file": r.source_file, "flag": flag,
         "note": FLAG_NOTES.get(flag, "")}
        for r in subs.itertuples(index=False) for flag in split_codes(r.ingest_flags)
    ]
    return pd.DataFrame(rows, columns=cols)


def coding_confidence(answers: pd.DataFrame, assignments: pd.DataFrame | None, high: float) -> dict[str, int]:
    """Framework mode: current answering answers coded by the analyst, by the machine with high confidence
    (>= `high`), and by the machine with low confidence (the ones to review); {} when not a framework run."""
    if assignments is None or "source" not in assignments.columns or "confidence" not in assignments.columns:
        return {}
    cur = current_answering(answers)[["answer_id"]].merge(
        assignments[["answer_id", "source", "confidence"]].astype({"answer_id": str}), on="answer_id", how="left")
    analyst = cur["source"].astype(str).eq("analyst-coded")
    conf = pd.to_numeric(cur["confidence"], errors="coerce").fillna(0.0)
    return {"analyst-coded": int(analyst.sum()), "machine, high confidence": int((~analyst & (conf >= high)).sum()),
            "machine, low confidence": int((~analyst & (conf < high)).sum())}


def quarantine_table(quarantine: pd.DataFrame) -> pd.DataFrame:
    cols = ["source_file", "record", "reason", "excerpt"]
    q = quarantine.reindex(columns=cols).fillna("").astype(str)
    q["excerpt"] = q["excerpt"].map(safe_text).map(lambda t: (t[:157] + "...") if len(t) > 160 else t)
    return q.reset_index(drop=True)


NONE = "none"


def fallbacks_table(fallbacks: dict[str, list[str]] | None) -> pd.DataFrame:
    """Every fallback or scale switch a stage recorded (summary key `fallbacks`), one row each in run order;
    a single 'none' row when no stage took one, so an empty table is never mistaken for a missing one."""
    rows = [{"stage": safe_text(str(stage)), "fallback": safe_text(str(item))}
            for stage, items in (fallbacks or {}).items() for item in items]
    if not rows:
        rows = [{"stage": "", "fallback": NONE}]
    return pd.DataFrame(rows, columns=["stage", "fallback"])


def languages_by_question(answers: pd.DataFrame) -> pd.DataFrame:
    """Per question: answering answers per detected language (`answers_clean.language`, 'und' = too short or
    mixed to tell) and their share of the question's answering answers; most frequent first."""
    cols = ["question_id", "language", "answers", "share_of_answers"]
    if "language" not in answers.columns:
        return pd.DataFrame(columns=cols)
    cur = current_answering(answers)
    lang = cur["language"].fillna("").astype(str).replace("", "und")
    counts = (cur.assign(language=lang).groupby(["question_id", "language"]).size().rename("answers")
              .reset_index())
    totals = counts.groupby("question_id")["answers"].transform("sum")
    counts["share_of_answers"] = counts["answers"] / totals
    order = {q: i for i, q in enumerate(question_order(answers))}
    counts["_q"] = counts["question_id"].map(order)
    counts = counts.sort_values(["_q", "answers", "language"], ascending=[True, False, True], kind="stable")
    counts["answers"] = counts["answers"].astype(int)
    return counts[cols].reset_index(drop=True)


def lost_letters_rows(answered: pd.DataFrame) -> list[tuple[str, str, int | str, str]]:
    """The answers whose text lost letters before it reached the tool ("esen?iale": an export that wrote
    characters outside its code page as "?"), by language; no row when there are none."""
    damaged = answered["text_clean"].fillna("").astype(str).map(damaged_words)
    if not damaged.any():
        return []
    langs = (answered.loc[damaged > 0, "language"].fillna("").astype(str).replace("", "und").value_counts()
             if "language" in answered.columns else pd.Series(dtype=int))
    by_lang = ", ".join(f"'{lang}' {n}" for lang, n in sorted(langs.items(), key=lambda kv: (-kv[1], kv[0])))
    return [("answers", "answered, with letters lost before reading", int((damaged > 0).sum()),
             f"{int(damaged.sum())} words hold a '?' where the source lost a letter; they cannot be restored and "
             f"are not used in theme names or keywords" + (f" (by language: {by_lang})" if by_lang else ""))]


def data_quality(answers: pd.DataFrame, quarantine: pd.DataFrame, assignments: pd.DataFrame | None,
                 tags: pd.DataFrame | None, tag_consistency: pd.DataFrame | None = None,
                 missing: Iterable[str] = (), segments: pd.DataFrame | None = None,
                 coding: dict[str, int] | None = None) -> pd.DataFrame:
    """The counts an analyst checks first, each with a note on how it is counted."""
    cur = answers[answers["is_current"]]
    old = answers[~answers["is_current"]]
    at = answer_themes(answers, assignments)
    in_theme = at.loc[at["theme_id"] != OTHER, "answer_id"].nunique()
    other = at.loc[at["theme_id"] == OTHER, "answer_id"].nunique()
    rows: list[tuple[str, str, int | str, str]] = [
        ("submissions", "submissions read", int(answers["response_id"].nunique()), "distinct response ids"),
        ("submissions", "current submissions", int(cur["response_id"].nunique()),
         "latest submission of each organisation; all tables count these"),
        ("submissions", "superseded re-submissions", int(old["response_id"].nunique()),
         "earlier submissions replaced by a later one of the same organisation (not counted; see 'Superseded')"),
        ("answers", "answers read", len(answers), "submissions x questions, empty answers included"),
        ("answers", "answers of current submissions", len(cur), ""),
        ("answers", "answers of superseded submissions", len(old), "not counted"),
        ("answers", "answered (substantive)", int((~cur["is_nonanswer"]).sum()), "current answers that say something"),
        ("answers", "non-answers", int(cur["is_nonanswer"].sum()), "empty, N/A, 'see above', ... (below by reason)"),
    ]
    if "text_clean" in cur.columns:
        rows += lost_letters_rows(cur[~cur["is_nonanswer"]])
    reasons = cur.loc[cur["is_nonanswer"], "nonanswer_reason"].replace("", "unspecified").value_counts()
    for reason in sorted(reasons.index):
        rows.append(("non-answers by reason", str(reason), int(reasons[reason]), ""))
    rows += [
        ("themes", "answered, in at least one theme", int(in_theme), ""),
        ("themes", "answered, in the 'other' bucket", int(other), "no theme fitted; read these by hand"),
    ]
    d = cur[cur["dup_group"] != ""]
    for kind, note in (("exact", "identical text from different respondents (campaigns)"),
                       ("near", "near-identical text from different respondents"),
                       ("self", "the same respondent repeating an answer across questions")):
        k = d[d["dup_kind"] == kind]
        rows.append(("duplicates", f"{kind} duplicate groups", int(k["dup_group"].nunique()), note))
        rows.append(("duplicates", f"answers in {kind} duplicate groups", len(k), "kept and counted"))
    flags = flagged_table(answers)
    for flag, n in flags["flag"].value_counts().sort_index().items():
        rows.append(("submissions", f"flagged: {flag}", int(n), FLAG_NOTES.get(str(flag), "read and counted")))
    for kind, n in (coding or {}).items():
        rows.append(("framework coding", f"answered, {kind}", n,
                     "review the low-confidence ones first (wsis themes --review-sheet)" if "low" in kind else ""))
    if segments is not None and "is_boilerplate" in segments.columns:
        bp = segments[segments["is_boilerplate"].fillna(False).astype(bool)]
        kinds = (bp["boilerplate_kind"].replace("", "repeated") if "boilerplate_kind" in bp.columns
                 else pd.Series("repeated", index=bp.index))
        for kind, (measure, note) in SET_ASIDE_KINDS.items():
            if kind == "repeated" or (kinds == kind).any():
                rows.append(("passages", measure, int((kinds == kind).sum()), note))
        rows.append(("passages", "answers with passages set aside", int(bp["answer_id"].nunique()), ""))
    rows.append(("quarantine", "quarantined records", len(quarantine), "records that could not be read"))
    for reason, n in quarantine["reason"].astype(str).value_counts().sort_index().items() if len(quarantine) else []:
        rows.append(("quarantine", f"quarantined: {reason}", int(n), ""))
    if "language" in cur.columns:
        langs = cur.loc[~cur["is_nonanswer"], "language"].value_counts()
        for lang in sorted(langs.index):
            note = "too short or mixed to tell" if lang == "und" else ""
            rows.append(("languages", f"answered in '{lang}'", int(langs[lang]), note))
    if tags is not None:
        t = tags.assign(answer_id=tags["answer_id"].astype(str))
        t = current_answering(answers)[["answer_id"]].merge(t, on="answer_id", how="left")
        rows.append(("tags", "answered, with an Action Line", int(t["action_lines"].map(split_codes).map(bool).sum()),
                     ""))
        rows.append(("tags", "answered, with an SDG", int(t["sdgs"].map(split_codes).map(bool).sum()), ""))
    if tag_consistency is not None:
        rows.append(("tags", "answers whose tags the WSIS-SDG matrix does not link", len(tag_consistency),
                     "a hint for review, not an error (the matrix is indicative)"))
    for name in missing:
        rows.append(("missing artefacts", name, "absent", "tables that need it are left out"))
    return pd.DataFrame(rows, columns=["section", "measure", "value", "note"])


def reconcile(answers: pd.DataFrame, raw_answers: pd.DataFrame, quarantine: pd.DataFrame,
              assignments: pd.DataFrame | None, tags: pd.DataFrame | None,
              by_question: pd.DataFrame, ingest_summary: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every check that the report's figures add up with ingest: check, expected, found, ok."""
    cur = answers[answers["is_current"]]
    checks: list[tuple[str, Any, Any]] = []
    raw_ids = set(raw_answers["response_id"].astype(str) + "::" + raw_answers["question_id"].astype(str))
    checks.append(("answers in clean = answers from ingest", len(raw_answers), len(answers)))
    checks.append(("same (response, question) pairs as ingest", len(raw_ids), len(raw_ids & set(answers["answer_id"]))))
    checks.append(("answers in = current + superseded", len(answers),
                   len(cur) + int((~answers["is_current"]).sum())))
    n_old = int(answers.loc[~answers["is_current"], "response_id"].nunique())
    checks.append(("submissions = current + superseded", int(answers["response_id"].nunique()),
                   int(cur["response_id"].nunique()) + n_old))
    answered = int((~cur["is_nonanswer"]).sum())
    nonans = int(cur["is_nonanswer"].sum())
    checks.append(("current answers = answered + non-answers", len(cur), answered + nonans))
    checks.append(("non-answers = sum over reasons", nonans,
                   int(cur.loc[cur["is_nonanswer"], "nonanswer_reason"].value_counts().sum())))
    if assignments is not None:
        ids = assignments["answer_id"].astype(str)
        known = int(ids.isin(set(answers["answer_id"])).sum())
        checks.append(("one theme assignment row per answer", len(answers), known))
        checks.append(("theme assignments have no duplicate answers", 0, int(ids.duplicated().sum())))
        at = answer_themes(answers, assignments)
        checks.append(("answered = in a theme + other bucket", answered,
                       int(at.loc[at["theme_id"] != OTHER, "answer_id"].nunique())
                       + int(at.loc[at["theme_id"] == OTHER, "answer_id"].nunique())))
    if tags is not None:
        checks.append(("one tag row per answer", len(answers),
                       int(tags["answer_id"].astype(str).isin(set(answers["answer_id"])).sum())))
    if len(by_question):
        checks.append(("answered = sum of answering respondents over questions", answered,
                       int(by_question["answering_respondents"].sum())))
        checks.append(("current answers = sum over questions", len(cur), int(by_question["answers"].sum())))
    profile = respondents_profile(answers)
    for dim in profile["dimension"].unique():
        checks.append((f"current submissions = sum over {dim}", int(cur["response_id"].nunique()),
                       int(profile.loc[profile["dimension"] == dim, "submissions"].sum())))
    summary = ingest_summary or {}
    for key, label, value in (("answers", "answers", len(raw_answers)),
                              ("submissions", "submissions", int(raw_answers["response_id"].nunique())),
                              ("current_submissions", "current submissions", int(cur["response_id"].nunique())),
                              ("quarantined", "quarantined records", len(quarantine))):
        if isinstance(summary.get(key), int):
            checks.append((f"{label} = ingest summary", int(summary[key]), value))
    return pd.DataFrame(
        [{"check": c, "expected": e, "found": f, "ok": bool(e == f)} for c, e, f in checks],
        columns=["check", "expected", "found", "ok"],
    )


def reconcile_tables(by_question: pd.DataFrame, themes_by_q: pd.DataFrame, other_bucket: int) -> pd.DataFrame:
    """Cross-checks between report tables: theme denominators and the 'other' rows agree with the counts."""
    checks: list[tuple[str, Any, Any]] = []
    if len(themes_by_q):
        denominators = themes_by_q.drop_duplicates("question_id").set_index("question_id")["answering_respondents"]
        expected = by_question.set_index("question_id")["answering_respondents"].reindex(denominators.index)
        checks.append(("theme shares use the answering respondents of their question",
                       int(expected.sum()), int(denominators.sum())))
        checks.append(("'other' rows of themes by question = other bucket", other_bucket,
                       int(themes_by_q.loc[themes_by_q["theme_id"] == OTHER, "answers"].sum())))
    return pd.DataFrame(
        [{"check": c, "expected": e, "found": f, "ok": bool(e == f)} for c, e, f in checks],
        columns=["check", "expected", "found", "ok"],
    )


def assert_reconciled(checks: pd.DataFrame, where: str = "batch") -> None:
    """Raise ReconciliationError naming every check that does not add up."""
    bad = checks[~checks["ok"]]
    if len(bad):
        lines = "; ".join(f"{r.check}: expected {r.expected}, found {r.found}" for r in bad.itertuples())
        raise ReconciliationError(where, f"report figures do not reconcile with ingest: {lines}")


# ---------------------------------------------------------------------------------------------- map
def answer_map(answers: pd.DataFrame, embeddings: dict[str, np.ndarray] | None,
               assignments: pd.DataFrame | None) -> pd.DataFrame:
    """2-D PCA of the answer embeddings (current, answering), deterministic signs; with each answer's top theme."""
    cols = ["answer_id", "response_id", "question_id", "x", "y", "theme_id"]
    if embeddings is None or "answer_vectors" not in embeddings:
        return pd.DataFrame(columns=cols)
    ids = [str(a) for a in embeddings["answer_ids"]]
    vecs = np.asarray(embeddings["answer_vectors"])  # float32 at 50k answers; one float64 copy below, not three
    row = {a: i for i, a in enumerate(ids)}
    cur = current_answering(answers)
    cur = cur[cur["answer_id"].isin(row)]
    idx = np.array([row[a] for a in cur["answer_id"]], dtype=int)
    keep = np.any(vecs != 0, axis=1)[idx] if len(idx) else np.zeros(0, dtype=bool)  # same as norm > 0
    cur, idx = cur[keep], idx[keep]
    if len(cur) < 3:
        return pd.DataFrame(columns=cols)
    # principal axes from the d x d scatter matrix, built in chunks: an SVD of the n x d matrix held two
    # float64 copies of it (670 MB at 50k answers) for two axes
    chunks = [idx[i:i + MAP_CHUNK] for i in range(0, len(idx), MAP_CHUNK)]
    mean = sum(vecs[c].astype(np.float64).sum(axis=0) for c in chunks) / len(idx)
    scatter = np.zeros((vecs.shape[1], vecs.shape[1]))
    for c in chunks:
        x = vecs[c].astype(np.float64) - mean
        scatter += x.T @ x
    _, eigvecs = np.linalg.eigh(scatter)  # ascending eigenvalues
    comps = eigvecs[:, ::-1][:, :2].T
    signs = np.sign(comps[np.arange(len(comps)), np.abs(comps).argmax(axis=1)])
    axes = (comps * signs[:, None]).T
    coords = np.vstack([(vecs[c].astype(np.float64) - mean) @ axes for c in chunks])
    top = answer_themes(answers, assignments)
    first = top[top["rank"] == 1].set_index("answer_id")["theme_id"]
    main = {str(k): str(v) for k, v in first.items()}
    return pd.DataFrame({
        "answer_id": cur["answer_id"].to_numpy(), "response_id": cur["response_id"].to_numpy(),
        "question_id": cur["question_id"].to_numpy(), "x": np.round(coords[:, 0], 5),
        "y": np.round(coords[:, 1], 5) if coords.shape[1] > 1 else 0.0,
        "theme_id": [main.get(str(a), OTHER) for a in cur["answer_id"]],
    }, columns=cols)
