"""Assemble every report table from a loaded batch, in the order people read them."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.report import tables as T
from pipeline.report.batch import Batch

log = logging.getLogger(__name__)


@dataclass
class Table:
    """One report table: file stem, sheet title, a sentence saying what it shows and how it counts."""

    name: str
    title: str
    description: str
    df: pd.DataFrame


@dataclass
class Report:
    batch_name: str
    tables: list[Table]
    answers: pd.DataFrame
    checks: pd.DataFrame
    headline: dict[str, int]
    matrix_mask: pd.DataFrame | None = None
    answer_map: pd.DataFrame = field(default_factory=pd.DataFrame)
    theme_names: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    small_groups: dict[str, pd.DataFrame] = field(default_factory=dict)  # table -> shares of too-small groups
    min_group_size: int = 5

    def table(self, name: str) -> pd.DataFrame | None:
        for t in self.tables:
            if t.name == name:
                return t.df
        return None


LABELS = {
    "question_id": "Question", "question_text": "Question text", "theme_id": "Theme id", "theme": "Theme",
    "origin": "Origin", "answers": "Answers", "respondents": "Respondents",
    "answering_respondents": "Answering respondents", "share_of_answering": "Share of answering respondents",
    "keywords": "Keywords", "non_answers": "Non-answers", "answer_rate_share": "Answer rate",
    "action_line": "Action Line", "action_line_title": "Action Line title", "sdg": "SDG", "sdg_title": "SDG title",
    "title": "Title", "share_of_answers": "Share of answered", "explicitly_mentioned": "Explicitly mentioned",
    "in_wsis_sdg_matrix": "Linked in WSIS-SDG matrix", "rank": "Rank", "response_id": "Response id",
    "org_name": "Organisation", "org_type": "Type", "stakeholder_group": "Stakeholder group", "country": "Country",
    "quote": "Quote (PII redacted)", "dup_group": "Group", "kind": "Kind", "questions": "Questions",
    "organisations": "Organisations", "excerpt": "Excerpt", "section": "Section", "measure": "Measure",
    "value": "Value", "note": "Note", "check": "Check", "expected": "Expected", "found": "Found", "ok": "OK",
    "source_file": "Source file", "record": "Record", "reason": "Reason", "dimension": "Dimension",
    "submissions": "Submissions", "share": "Share", "scope": "Scope", "size": "Answers (all submissions)",
    "n_respondents": "Respondents (all submissions)", "description": "Description",
    "support": "Support", "oppose": "Oppose", "conditional": "Conditional", "neutral": "No position",
    "to_review": "To review", "stance": "Stance", "stance_target": "Stance toward",
    "edit": "Edit", "action": "Action", "status": "Status", "answers_affected": "Answers affected",
    "comment": "Comment", "themes_edited": "Themes",
    "superseded_by": "Superseded by", "superseded_reason": "Why", "flag": "Flag",
    "raised_most_by": "Raised most by (share of the group's answering respondents)", "quote_by": "Quoted from",
    "stage": "Stage", "fallback": "Fallback or scale switch", "language": "Language",
}


def display_name(column: str) -> str:
    return LABELS.get(column, column)


def is_share(column: str) -> bool:
    """Columns holding fractions 0..1 (shown as percentages)."""
    return "share" in column or column == "answer_rate_share"


def flagged_cells(df: pd.DataFrame, flags: pd.DataFrame | None, skip_first: str | None = None) -> dict[str, np.ndarray]:
    """Column -> boolean array of the cells of `df` that `flags` (same rows) marks; columns it lacks are left out,
    and `skip_first` too (a table's first column is its row name, never marked)."""
    if flags is None:
        return {}
    return {c: flags[c].to_numpy(dtype=bool) for c in df.columns if c in flags.columns and c != skip_first}


def build_report(batch: Batch, params: dict[str, Any], ingest_summary: dict[str, Any] | None = None,
                 fallbacks: dict[str, list[str]] | None = None) -> Report:
    """Every table of the report; raises ReconciliationError when the counts do not add up with ingest.
    `fallbacks` ({stage: [one line, ...]}, from the run manifest) fills 'Fallbacks and scale switches'."""
    with T.shared_intermediates():
        return _build_report(batch, params, ingest_summary, fallbacks)


def _build_report(batch: Batch, params: dict[str, Any], ingest_summary: dict[str, Any] | None,
                  fallbacks: dict[str, list[str]] | None) -> Report:
    cfg = params.get("report", {}) or {}
    top = max(3, min(5, int(cfg.get("top_quotes", 5))))
    min_group = max(1, int(cfg.get("min_group_size", 5)))
    if str(cfg.get("map_method", "pca")).lower() != "pca":
        raise InputError("params.yaml", "report.map_method", "only 'pca' is supported (deterministic, no extra model)")
    answers = T.base_answers(batch)
    assign = batch.theme_assignments
    notes: list[str] = []
    if assign is None:
        notes.append("theme_assignments.parquet is absent: every answered answer is counted in the 'other' bucket.")
    taken = [f"{stage}: {line}" for stage, lines in (fallbacks or {}).items() for line in lines]
    if taken:  # shown at the top of HTML and Markdown too: a fallback changes what the figures mean
        notes.append("Fallbacks and scale switches in this run (see that table): " + "; ".join(taken) + ".")
    by_q = T.answering_by_question(answers)
    high = float(((params.get("themes") or {}).get("framework") or {}).get("high_confidence", 0.6))
    coding = T.coding_confidence(answers, assign, high)
    if coding:
        notes.append("Coding frame: " + ", ".join(f"{n} {k}" for k, n in coding.items())
                     + f" answered answers (high confidence = {high:g} or more).")
    min_conf = float((params.get("stance") or {}).get("min_confidence", 0.5))
    stance_themes = T.stance_by_theme(answers, batch.theme_stance, min_conf)
    tables = [
        Table("data_quality", "Data quality",
              "Submissions, answers, non-answers, duplicates, quarantine and the 'other' bucket; every figure "
              "reconciles with ingest (see 'reconciliation').",
              T.data_quality(answers, batch.quarantine, assign, batch.tags, batch.tag_consistency, batch.missing,
                             batch.segments, coding)),
        Table("fallbacks", "Fallbacks and scale switches",
              "What a stage did differently from its normal method (a missing model, a method switched off or "
              "changed because of the batch size), as each stage recorded it; 'none' when no stage did.",
              T.fallbacks_table(fallbacks)),
        Table("languages", "Languages",
              "Per question: answered answers of current submissions per detected language ('und' = too short or "
              "mixed to tell) and their share of the question's answered answers.", T.languages_by_question(answers)),
        Table("respondents", "Respondents",
              "Current submissions by stakeholder group and by UN region.", T.respondents_profile(answers)),
        Table("answering_by_question", "Answering by question",
              "Per question: current answers, answering respondents (the share denominators), non-answers, and "
              "answering respondents per stakeholder group and region.", by_q),
        Table("themes_by_question", "Themes by question",
              "Per question: each theme with its respondents and their share of the question's answering "
              "respondents; 'other' holds answered answers no theme took.",
              T.with_stance(T.themes_by_question(answers, assign, batch.themes), stance_themes)),
        Table("themes_by_stakeholder", "Themes by stakeholder group",
              "Per question and theme: respondents of each stakeholder group (n) and their share of that group's "
              "answering respondents for the question.",
              T.themes_by_stakeholder(answers, assign, batch.themes)),
        Table("themes_by_region", "Themes by region",
              "Per question and theme: respondents of each UN region (n) and their share of that region's "
              "answering respondents for the question.",
              T.themes_by_region(answers, assign, batch.themes)),
        Table("theme_x_question", "Theme x question",
              "Themes across the batch (similar themes linked across questions) x questions: respondents per "
              "question; 'questions' counts where the theme recurs.",
              T.theme_x_question(answers, assign, batch.themes, batch.theme_by_question)),
        Table("theme_x_stakeholder", "Theme x stakeholder group",
              "Batch-wide: share of each group's answering respondents that raised the theme in any question.",
              T.theme_x_stakeholder(answers, assign, batch.themes, batch.theme_by_question)),
    ]
    mask = None
    if batch.tags is not None and batch.taxonomy is not None:
        pairs = T.action_line_sdg_pairs(answers, batch.tags, batch.taxonomy)
        mask = T.matrix_mask(pairs)
        tables += [
            Table("action_lines_by_question", "Action Lines by question",
                  "Answered answers tagged with each WSIS Action Line, per question; 'explicitly mentioned' "
                  "counts answers naming it.", T.action_lines_by_question(answers, batch.tags, batch.taxonomy)),
            Table("sdgs_by_question", "SDGs by question",
                  "Answered answers tagged with each SDG, per question.",
                  T.sdgs_by_question(answers, batch.tags, batch.taxonomy)),
            Table("action_line_x_sdg", "Action Line x SDG",
                  "Answered answers tagged with both the Action Line and the SDG; shaded cells (marked * in "
                  "Markdown) are pairs the WSIS-SDG matrix links.", T.action_line_x_sdg(pairs)),
            Table("action_line_sdg_pairs", "Action Line-SDG pairs",
                  "Every Action Line x SDG pair with its co-occurrence count and whether the WSIS-SDG matrix "
                  "links it.", pairs),
        ]
    else:
        notes.append("tags.parquet is absent: the Action Line and SDG tables are left out.")
    tables += [
        Table("quotes", "Quotes",
              f"Up to {top} quotes per theme (best first, each stance toward the theme represented when known), "
              "traced to the submission; emails and phone numbers are redacted.",
              T.quotes_table(answers, batch.themes, batch.segments, top, batch.theme_stance)),
        *([Table("stance_by_theme", "Stance by theme",
                 "Per question and theme: answering respondents who support, oppose, conditionally support or take "
                 "no position on the target (a frame theme's label, the question's proposal, or a closed "
                 f"question); stances below {min_conf:g} confidence are counted 'to review'.", stance_themes)]
          if len(stance_themes) else []),
        Table("themes", "Theme catalogue",
              "Every theme the themes stage found (all submissions), with keywords and description.",
              T.theme_catalogue(batch.themes, answers)),
        Table("duplicates", "Duplicates and campaigns",
              "Groups of identical or near-identical answers (kept and counted).", T.duplicates_table(answers)),
        *([Table("theme_edits", "Theme edits",
                 "The analyst's edits of the discovered themes, applied after discovery on every run, in order; "
                 "an edit whose theme no longer exists is listed as not applied.", batch.theme_edits)]
          if batch.theme_edits is not None else []),
        Table("superseded", "Superseded submissions",
              "Submissions replaced by a later one of the same organisation (same round, form and kind of "
              "document), with the submission that counts instead and why.", T.superseded_table(answers)),
        Table("flagged", "Flagged submissions",
              "Submissions read and counted but with an ingest warning to check.", T.flagged_table(answers)),
        Table("quarantine", "Quarantine", "Records ingest could not read, with the reason.",
              T.quarantine_table(batch.quarantine)),
    ]
    by_name = {t.name: t.df for t in tables}
    tables.insert(0, Table(
        "findings", "Findings by question",
        f"Per question, each theme with what it is about, how many answering respondents raised it and their share, "
        f"the stakeholder groups that raise it most (groups of at least {min_group} answering respondents, with n), "
        "and its best quote.",
        T.findings(by_name["themes_by_question"], by_name["themes_by_stakeholder"], by_name["themes"],
                   by_name["quotes"], min_group)))
    small = {name: T.small_group_mask(by_name[name], min_group)
             for name in ("themes_by_stakeholder", "themes_by_region", "theme_x_stakeholder")}
    if batch.theme_stance is not None:
        no_target = sorted(set(batch.theme_stance.loc[batch.theme_stance["target_kind"] == "open question",
                                                      "question_id"].astype(str)), key=T._natural_key)
        if no_target:
            notes.append(f"No stance for {', '.join(no_target)}: open questions without a proposal to be for or "
                         "against (set stance.proposals in params.yaml to add one).")
    checks = T.reconcile(answers, batch.answers, batch.quarantine, assign, batch.tags, by_q, ingest_summary)
    at_all = T.answer_themes(answers, assign)
    n_other = int(at_all.loc[at_all["theme_id"] == T.OTHER, "answer_id"].nunique())
    tbq = next(t.df for t in tables if t.name == "themes_by_question")
    checks = pd.concat([checks, T.reconcile_tables(by_q, tbq, n_other)], ignore_index=True)
    tables.append(Table("reconciliation", "Reconciliation",
                        "Checks that the report's figures add up with ingest (all must be OK).", checks))
    T.assert_reconciled(checks, str(batch.batch_dir))
    cur = answers[answers["is_current"]]
    at = T.answer_themes(answers, assign)
    headline = {
        "submissions": int(cur["response_id"].nunique()),
        "resubmissions": int(answers.loc[~answers["is_current"], "response_id"].nunique()),
        "questions": int(answers["question_id"].nunique()),
        "answered": int((~cur["is_nonanswer"]).sum()),
        "non_answers": int(cur["is_nonanswer"].sum()),
        "themes": int(at.loc[at["theme_id"] != T.OTHER, ["question_id", "theme_id"]].drop_duplicates().shape[0]),
        "other_bucket": int(at.loc[at["theme_id"] == T.OTHER, "answer_id"].nunique()),
        "quarantined": len(batch.quarantine),
    }
    txq = next(t.df for t in tables if t.name == "theme_x_question")
    names = dict(zip(txq["theme_id"].astype(str), txq["theme"].astype(str), strict=True)) if len(txq) else {}
    amap = T.answer_map(answers, batch.embeddings, assign)
    max_points = int(cfg.get("map_max_points", 5000))
    if len(amap) > max_points:  # keep report.html light: a deterministic sample of the dots (PCA used all)
        keep = np.sort(np.random.default_rng(int(params.get("seed", 0))).choice(len(amap), max_points, replace=False))
        amap = amap.iloc[keep].reset_index(drop=True)
        notes.append(f"The map shows a random sample of {max_points} of the answers.")
    if batch.embeddings is None:
        notes.append("embeddings.npz is absent: the map of answers is left out.")
    cross = T.cross_theme_map(batch.theme_by_question)
    if len(amap):
        amap = amap.assign(theme_id=[cross.get((q, t), t) for q, t in zip(amap["question_id"], amap["theme_id"],
                                                                            strict=True)])
    return Report(batch.name, tables, answers, checks, headline, mask, amap, names, notes, small, min_group)
