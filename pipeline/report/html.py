"""`report.html`: one self-contained offline page (inline CSS and SVG, no script, no network).

A Content-Security-Policy forbids scripts and every network fetch, as a second line of defence behind the
escaping of all text."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd

from pipeline.report import charts
from pipeline.report.content import Report, display_name, flagged_cells, is_share
from pipeline.report.safety import esc

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
MAX_HEATMAP_ROWS = 30

CSS = """
body{font-family:system-ui,'Segoe UI',Arial,sans-serif;margin:0;color:#1d1d1d;background:#fff;line-height:1.45}
header{background:#1f4e79;color:#fff;padding:18px 32px}header h1{margin:0;font-size:24px}
header p{margin:4px 0 0;opacity:.85}
nav{background:#eef3f8;padding:8px 32px;border-bottom:1px solid #d5dee8;position:sticky;top:0;z-index:2}
nav a{margin-right:14px;color:#1f4e79;text-decoration:none;font-size:14px}
main{padding:8px 32px 48px;max-width:1500px}
h2{border-bottom:2px solid #1f4e79;padding-bottom:4px;margin-top:36px}h3{margin-top:26px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #d5dee8;border-radius:6px;padding:10px 16px;min-width:120px;background:#f8fafc}
.card .n{font-size:26px;font-weight:600;color:#1f4e79}.card .l{font-size:13px;color:#555}
table{border-collapse:collapse;margin:10px 0 18px;font-size:13px}
th,td{border:1px solid #d5dee8;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#1f4e79;color:#fff}
td.num{text-align:right;font-variant-numeric:tabular-nums}tr:nth-child(even) td{background:#f6f8fb}
td.linked{background:#fce4b6 !important;font-weight:600}
.desc{color:#444;font-size:14px;max-width:1000px}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 12px}
blockquote{margin:8px 0 12px;padding:6px 14px;border-left:4px solid #9bb7d4;background:#f6f8fb}
blockquote .who{display:block;color:#555;font-size:12px;margin-top:4px}
.scroll{overflow-x:auto}details{margin:10px 0}summary{cursor:pointer;font-weight:600;color:#1f4e79}
.ok{color:#2e7d32;font-weight:600}.bad{color:#c62828;font-weight:600}
td.small{color:#9a9a9a;background:#f1f1f1 !important}
.side{font-size:11px;font-weight:600;text-transform:uppercase;padding:1px 6px;border-radius:3px;background:#e8e8e8}
.side.support{background:#d8efd9;color:#1b5e20}.side.oppose{background:#f8d7d7;color:#8e1b1b}
.side.conditional{background:#fff0c2;color:#6d4c00}
.finding{border-left:4px solid #1f4e79;padding:4px 14px;margin:12px 0 18px}
.finding h4{margin:4px 0}.finding .fig{font-weight:600;color:#1f4e79}.finding .by{color:#444;font-size:14px}
"""


def fmt(column: str, value: Any) -> tuple[str, bool]:
    """(escaped text, is numeric) of one cell."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "", False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int | float):
        if is_share(column):
            return f"{100 * float(value):.1f}%", True
        return esc(f"{value:g}" if isinstance(value, float) else value), True
    return esc(value), False


def html_table(df: pd.DataFrame, skip: set[str] | None = None, marks: pd.DataFrame | None = None,
               table_id: str = "", small: pd.DataFrame | None = None) -> str:
    """A table; `marks` cells are highlighted (matrix links), `small` cells greyed (shares of too-small groups)."""
    cols = [c for c in df.columns if c not in (skip or set())]
    out = [f'<div class="scroll"><table id="{esc(table_id)}"><thead><tr>']
    out += [f"<th>{esc(display_name(str(c)))}</th>" for c in cols]
    out.append("</tr></thead><tbody>")
    marked, greyed = flagged_cells(df[cols], marks, cols[0] if cols else None), flagged_cells(df[cols], small)
    for i, row in enumerate(df[cols].itertuples(index=False)):
        out.append("<tr>")
        for c, v in zip(cols, row, strict=True):
            text, numeric = fmt(str(c), v)
            classes = ["num"] if numeric else []
            if c in marked and marked[c][i]:
                classes.append("linked")
            tip = ""
            if c in greyed and greyed[c][i]:
                classes.append("small")
                tip = ' title="group too small for a meaningful share"'
            cls = f' class="{" ".join(classes)}"' if classes else ""
            out.append(f"<td{cls}{tip}>{text}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _section(report: Report, name: str, heading: str | None = None, skip: set[str] | None = None,
             marks: pd.DataFrame | None = None) -> str:
    t = next((x for x in report.tables if x.name == name), None)
    if t is None:
        return ""
    return (f'<h3 id="t-{esc(name)}">{esc(heading or t.title)}</h3><p class="desc">{esc(t.description)}</p>'
            + html_table(t.df, skip, marks, f"table-{name}", report.small_groups.get(name)))


def _findings(report: Report) -> str:
    """Per question: the share chart, then each theme with its description, figures, groups and quotes."""
    fnd = report.table("findings")
    if fnd is None or fnd.empty:
        return '<p class="note">No theme assignments in this batch.</p>'
    quotes = report.table("quotes")
    sbt = report.table("stance_by_theme")
    targets = ({} if sbt is None else
               {(str(a), str(b)): str(c) for a, b, c in zip(sbt["question_id"], sbt["theme_id"], sbt["stance_target"],
                                                            strict=True)})
    links = " ".join(f'<a href="#q-{esc(q)}">{esc(q)}</a>' for q in dict.fromkeys(fnd["question_id"]))
    out = [f'<p class="desc">Jump to: {links}</p>']
    for qid, grp in fnd.groupby("question_id", sort=False):
        qtext = str(grp["question_text"].iloc[0])
        out.append(f'<h3 id="q-{esc(qid)}">{esc(qid)}: {esc(qtext)}</h3>')
        n = int(grp["answering_respondents"].iloc[0])
        out.append(f'<p class="desc">{n} answering respondents. Share = respondents with the theme / answering '
                   f"respondents; one answer can carry several themes.</p>")
        out.append(charts.bar_chart(grp["theme"].astype(str).tolist(), grp["share_of_answering"].tolist(),
                                    f"{qid}: share of answering respondents per theme", chart_id=f"bars-{qid}",
                                    counts=grp["respondents"].tolist(), total=n))
        for r in grp.itertuples(index=False):
            parts = [f'<div class="finding"><h4>{esc(r.theme)}</h4>',
                     f'<p><span class="fig">{int(str(r.respondents))} of {int(str(r.answering_respondents))} answering '
                     f"respondents ({100 * float(str(r.share_of_answering)):.0f}%)</span>"]
            if str(r.description):
                parts.append(f" &middot; {esc(r.description)}")
            parts.append("</p>")
            if str(r.stance):
                toward = targets.get((str(qid), str(r.theme_id)), "")
                toward_text = f" toward \u201c{esc(toward)}\u201d" if toward else ""
                parts.append(f'<p class="by">Stance{toward_text}: <b>{esc(r.stance)}</b></p>')
            if str(r.raised_most_by):
                parts.append(f'<p class="by">Raised most by: {esc(r.raised_most_by)}</p>')
            if quotes is not None and len(quotes):
                sel = quotes[(quotes["question_id"] == qid) & (quotes["theme_id"] == r.theme_id)].head(3)
                for q in sel.itertuples(index=False):
                    who = ", ".join(esc(x) for x in (q.org_name, q.org_type, q.country) if str(x))
                    side = f'<span class="side {esc(q.stance)}">{esc(q.stance)}</span> ' if str(q.stance) else ""
                    parts.append(f'<blockquote class="quote">{side}{esc(q.quote)}<span class="who">response '
                                 f"{esc(q.response_id)}; {who}</span></blockquote>")
            parts.append("</div>")
            out.append("".join(parts))
    return "".join(out)


def _details(report: Report, name: str, title: str) -> str:
    """A collapsed appendix table, left out when the report has no such table."""
    if report.table(name) is None:
        return ""
    return f"<details><summary>{esc(title)}</summary>{_section(report, name)}</details>"


def _edits(report: Report) -> str:
    """The edit log, open when an edit no longer applies (the analyst must look at it)."""
    log = report.table("theme_edits")
    if log is None:
        return ""
    stale = int((~log["status"].astype(str).str.startswith("applied")).sum())
    flag = " open" if stale else ""
    note = f" ({stale} not applied)" if stale else ""
    return f"<details{flag}><summary>Theme edits{esc(note)}</summary>{_section(report, 'theme_edits')}</details>"


def _heatmaps(report: Report) -> tuple[str, str]:
    """(theme x stakeholder group heatmap, Action Line x SDG heatmap); empty strings when there is no data."""
    out = []
    txs = report.table("theme_x_stakeholder")
    if txs is not None and len(txs):
        top = txs.head(MAX_HEATMAP_ROWS).reset_index(drop=True)
        share_cols = [c for c in top.columns if c.endswith("(share)")]
        vals = top[share_cols]
        sizes = [int(top[c.replace("(share)", "(answering)")].max()) if c.replace("(share)", "(answering)")
                 in top.columns else 0 for c in share_cols]
        vals.columns = [f"{c.replace(' (share)', '')} (n={n})" for c, n in zip(share_cols, sizes, strict=True)]
        small = report.small_groups.get("theme_x_stakeholder")
        dim = None
        if small is not None:
            dim = small.head(MAX_HEATMAP_ROWS).reset_index(drop=True)[share_cols]
            dim.columns = vals.columns
        out.append('<h3 id="heat-stakeholder">Theme x stakeholder group</h3><p class="desc">Share of each group\'s '
                   "answering respondents that raised the theme in any question (themes ordered as in "
                   f"'Theme x question'); n is the group's answering respondents. Groups under "
                   f"{report.min_group_size} answering respondents are greyed out.</p>")
        out.append(charts.heatmap(vals, top["theme"].astype(str).tolist(), "Theme x stakeholder group",
                                  chart_id="heat-stakeholder-chart", cell=44, dim=dim))
    first = "".join(out)
    out = []
    axs = report.table("action_line_x_sdg")
    if axs is not None and len(axs):
        vals = axs.drop(columns=["action_line"])
        mask = report.matrix_mask.drop(columns=["action_line"]) if report.matrix_mask is not None else None
        out.append('<h3 id="heat-al-sdg">Action Line x SDG</h3><p class="desc">Answers tagged with both; cells with a '
                   "dark outline are pairs the WSIS-SDG matrix links.</p>")
        out.append(charts.heatmap(vals, axs["action_line"].astype(str).tolist(), "Action Line x SDG (answers)",
                                  percent=False, mask=mask, chart_id="heat-al-sdg-chart", cell=30, label_w=140))
    return first, "".join(out)


def _quotes(report: Report) -> str:
    quotes = report.table("quotes")
    if quotes is None or quotes.empty:
        return '<p class="note">No quotes (themes.parquet is absent or has none).</p>'
    out = []
    qtext = report.answers.drop_duplicates("question_id").set_index("question_id")["question_text"].to_dict()
    for qid, qgrp in quotes.groupby("question_id", sort=False):
        out.append(f"<h3>{esc(qid)}: {esc(qtext.get(qid, ''))}</h3>")
        for _, tgrp in qgrp.groupby("theme_id", sort=False):
            out.append(f"<h4>{esc(tgrp['theme'].iloc[0])}</h4>")
            for r in tgrp.itertuples(index=False):
                who = ", ".join(esc(x) for x in (r.org_name, r.org_type, r.country) if str(x))
                out.append(f'<blockquote class="quote">{esc(r.quote)}<span class="who">response '
                           f"{esc(r.response_id)}; {who}</span></blockquote>")
    return "".join(out)


def render_html(report: Report, generated_at: str | None = None) -> str:
    h = report.headline
    when = generated_at or datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    cards = "".join(
        f'<div class="card"><div class="n">{esc(v)}</div><div class="l">{esc(k)}</div></div>'
        for k, v in (("submissions", h["submissions"]), ("re-submissions (superseded)", h["resubmissions"]),
                     ("questions", h["questions"]), ("answered", h["answered"]), ("non-answers", h["non_answers"]),
                     ("themes", h["themes"]), ("'other' bucket", h["other_bucket"]),
                     ("quarantined", h["quarantined"]))
    )
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in report.notes)
    checks_ok = bool(report.checks["ok"].all()) if len(report.checks) else True
    amap = ""
    if len(report.answer_map):
        amap = charts.scatter_map(report.answer_map, report.theme_names,
                                  "Answers by theme (PCA of answer embeddings)", chart_id="answer-map")
    else:
        amap = '<p class="note">No embeddings: the map is left out.</p>'
    heat_stakeholder, heat_al_sdg = _heatmaps(report)
    nav = "".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in (
        ("findings", "Findings"), ("across", "Across questions"), ("tags", "Action Lines & SDGs"),
        ("map", "Map"), ("appendix", "Appendix: how to read, data quality, quotes, tables")))
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>WSIS themes report: {esc(report.batch_name)}</title><style>{CSS}</style></head>
<body><header><h1>WSIS themes report: {esc(report.batch_name)}</h1>
<p>Generated {esc(when)} by wsis-themes. Tables also in report.xlsx, CSV files and report.md.</p></header>
<nav>{nav}</nav><main>
<section id="glance"><div class="cards">{cards}</div>{notes}
<p class="{'ok' if checks_ok else 'bad'}">Reconciliation with ingest: {'all checks add up' if checks_ok else 'FAILED'}
({len(report.checks)} checks, see the appendix).</p></section>
<section id="findings"><h2>Findings by question</h2>{_findings(report)}</section>
<section id="across"><h2>Themes across questions and stakeholder groups</h2>
{_section(report, "theme_x_question")}{heat_stakeholder}</section>
<section id="tags"><h2>WSIS Action Lines and SDGs</h2>{_section(report, "action_lines_by_question")}
{_section(report, "sdgs_by_question")}{heat_al_sdg}
{_section(report, "action_line_x_sdg", marks=report.matrix_mask)}</section>
<section id="map"><h2>Map of the answers</h2><p class="desc">Each dot is an answered answer, placed by a
principal-component projection of its sentence embedding (similar answers lie close together) and coloured by its
main theme; hover a dot for its question and response.</p>{amap}</section>
<section id="appendix"><h2>Appendix</h2>
<section id="how"><h3>How to read this report</h3><ul>
<li>Counts are of <b>current submissions</b>: when an organisation submitted again, only its latest submission
counts (see 'Data quality' for what was superseded and why).</li>
<li>An <b>answering respondent</b> of a question gave a substantive answer (not empty, N/A, "see above"...). Shares are
respondents with the theme divided by the answering respondents of the question (or group, or region), shown next to
that number; shares of groups with fewer than {report.min_group_size} answering respondents are greyed out. One answer
can carry several themes, so shares do not add up to 100%.</li>
<li><b>Themes</b> are found per question: seed themes keep the same name in every question. The <b>other</b> bucket
holds answered answers no theme took; read them by hand.</li>
<li><b>Action Lines and SDGs</b> are tagged per answer by a model (scores in tags.parquet); outlined cells of the
Action Line x SDG heatmap are pairs the WSIS-SDG matrix links.</li>
<li>Quotes trace back to the submission by response id; emails and phone numbers are redacted in every output.</li>
</ul></section>
<section id="quality"><h3>Data quality</h3>{_section(report, "data_quality")}
{_section(report, "fallbacks")}{_section(report, "languages")}
{_section(report, "respondents")}
{_section(report, "answering_by_question", skip={"question_text"})}</section>
<section id="quotes"><h3>All quotes</h3>{_quotes(report)}</section>
<details><summary>Themes by question (table)</summary>
{_section(report, "themes_by_question", skip={"question_text"})}</details>
<details><summary>Themes by stakeholder group (per question)</summary>
{_section(report, "themes_by_stakeholder")}</details>
<details><summary>Themes by region (per question)</summary>{_section(report, "themes_by_region")}</details>
{_details(report, "stance_by_theme", "Stance by theme")}
<details><summary>Theme catalogue</summary>{_section(report, "themes")}</details>
{_edits(report)}
<details><summary>Duplicates and campaigns</summary>{_section(report, "duplicates")}</details>
<details><summary>Superseded submissions</summary>{_section(report, "superseded")}</details>
<details><summary>Flagged submissions</summary>{_section(report, "flagged")}</details>
<details><summary>Quarantine</summary>{_section(report, "quarantine")}</details>
<details open><summary>Reconciliation checks</summary>{_section(report, "reconciliation")}</details>
</section></main></body></html>
"""
    return body

