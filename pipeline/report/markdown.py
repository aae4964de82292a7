"""`report.md`: the tables and the top quotes in Markdown, ready to paste into a synthesis report.
All respondent text is HTML-escaped and Markdown-escaped (a Markdown viewer renders inline HTML)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.report.content import Report, display_name, flagged_cells, is_share
from pipeline.report.safety import md_cell, md_text

# tables shown in the Markdown report, in order (the widest ones stay in the workbook/CSV)
MD_TABLES = [
    "themes_by_question", "theme_x_question", "theme_x_stakeholder", "action_lines_by_question", "sdgs_by_question",
    "action_line_x_sdg",
]
APPENDIX_TABLES = ["stance_by_theme", "theme_edits", "data_quality", "fallbacks", "languages", "respondents",
                   "answering_by_question", "duplicates", "superseded", "flagged", "quarantine"]
SKIP_COLUMNS = {"themes_by_question": {"question_text"}, "answering_by_question": {"question_text"}}


def fmt(column: str, value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return ""
    if is_share(column) and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{100 * float(value):.1f}%"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return md_cell(value)


def md_table(df: pd.DataFrame, skip: set[str] | None = None, marks: pd.DataFrame | None = None,
             small: pd.DataFrame | None = None) -> str:
    """A pipe table; `marks` (same shape, booleans) appends ' \\*' to marked cells, `small` appends ' †' to
    shares of groups too small to mean much."""
    cols = [c for c in df.columns if c not in (skip or set())]
    if not cols:
        return "_(empty)_\n"
    numeric = {c for c in cols if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])}
    lines = ["| " + " | ".join(md_cell(display_name(str(c))) for c in cols) + " |",
             "|" + "|".join("---:" if c in numeric else "---" for c in cols) + "|"]
    marked, greyed = flagged_cells(df[cols], marks, cols[0]), flagged_cells(df[cols], small)
    for i, row in enumerate(df[cols].itertuples(index=False)):
        cells = []
        for c, v in zip(cols, row, strict=True):
            text = fmt(str(c), v)
            if c in marked and marked[c][i]:
                text += " \\*"
            if c in greyed and greyed[c][i]:
                text += " †"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    if df.empty:
        lines.append("| " + " | ".join("" for _ in cols) + " |")
    return "\n".join(lines) + "\n"


def _findings(report: Report) -> list[str]:
    fnd = report.table("findings")
    if fnd is None or fnd.empty:
        return ["_No theme assignments in this batch._\n"]
    out: list[str] = []
    for qid, grp in fnd.groupby("question_id", sort=False):
        n = int(grp["answering_respondents"].iloc[0])
        out.append(f"### {md_text(qid)}: {md_text(grp['question_text'].iloc[0])}\n")
        out.append(f"{n} answering respondents.\n")
        for r in grp.itertuples(index=False):
            share = 100 * float(str(r.share_of_answering))
            line = (f"- **{md_text(r.theme)}**: {int(str(r.respondents))} of "
                    f"{int(str(r.answering_respondents))} answering respondents ({share:.0f}%).")
            if str(r.description):
                line += f" {md_text(r.description)}"
            if str(r.stance):
                line += f" Stance: {md_text(r.stance)}."
            if str(r.raised_most_by):
                line += f" Raised most by: {md_text(r.raised_most_by)}."
            out.append(line)
            if str(r.quote):
                out.append(f"  > {md_text(r.quote)} ({md_text(r.quote_by)})")
        out.append("")
    return out


def render_markdown(report: Report) -> str:
    h = report.headline
    out = [
        f"# WSIS themes report: {md_text(report.batch_name)}\n",
        "## At a glance\n",
        f"| Submissions | Re-submissions (superseded) | Questions | Answered | Non-answers | Themes | "
        f"'Other' bucket | Quarantined |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {h['submissions']} | {h['resubmissions']} | {h['questions']} | {h['answered']} | {h['non_answers']} | "
        f"{h['themes']} | {h['other_bucket']} | {h['quarantined']} |\n",
    ]
    for note in report.notes:
        out.append(f"> Note: {md_text(note)}\n")
    out.append("## Findings by question\n")
    out += _findings(report)
    for table in report.tables:
        if table.name not in MD_TABLES:
            continue
        out.append(f"## {md_text(table.title)}\n")
        out.append(f"{md_text(table.description)}\n")
        marks = report.matrix_mask if table.name == "action_line_x_sdg" else None
        out.append(md_table(table.df, SKIP_COLUMNS.get(table.name), marks, report.small_groups.get(table.name)))
    out += [
        "## Appendix\n",
        "### How to read this report\n",
        "- Counts are of **current submissions**: when an organisation submitted again, only its latest "
        "submission counts (the data quality table says what was superseded and why).",
        "- An **answering respondent** of a question gave a substantive answer (not empty, N/A, 'see above'...). "
        "Shares are respondents with the theme divided by answering respondents of the question (or of the "
        "group/region), which are shown next to them; one answer can carry several themes, so shares do not add "
        f"up to 100%. Shares marked † are of groups with fewer than {report.min_group_size} answering respondents.",
        "- **Themes** are found per question; seed themes keep the same id in every question. The **other** bucket "
        "holds answered answers no theme took.",
        "- **Action Lines and SDGs** are tagged per answer by a model; cells marked \\* in the Action Line x SDG "
        "table are pairs the WSIS-SDG matrix links.",
        "- Quotes are traced to the submission (response id); emails and phone numbers are redacted in every "
        "output.\n",
    ]
    for table in report.tables:
        if table.name not in APPENDIX_TABLES:
            continue
        out.append(f"### {md_text(table.title)}\n")
        out.append(f"{md_text(table.description)}\n")
        out.append(md_table(table.df, SKIP_COLUMNS.get(table.name)))
    quotes = report.table("quotes")
    if quotes is not None and len(quotes):
        out.append("### Quotes\n")
        out.append("Best quotes per theme, traced to the submission (PII redacted).\n")
        qtext = report.answers.drop_duplicates("question_id").set_index("question_id")["question_text"].to_dict()
        for qid, qgrp in quotes.groupby("question_id", sort=False):
            out.append(f"#### {md_text(qid)}: {md_text(qtext.get(qid, ''))}\n")
            for _, tgrp in qgrp.groupby("theme_id", sort=False):
                out.append(f"**{md_text(tgrp['theme'].iloc[0])}**\n")
                for r in tgrp.itertuples(index=False):
                    who = ", ".join(md_text(x) for x in (r.org_name, r.org_type, r.country) if str(x))
                    out.append(f"> {md_text(r.quote)}\n>\n> (response {md_text(r.response_id)}; {who})\n")
    rec = report.table("reconciliation")
    if rec is not None:
        out.append("### Reconciliation\n")
        out.append(md_table(rec))
    return "\n".join(out)
