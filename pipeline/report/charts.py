"""Inline SVG charts drawn here (no JavaScript, no external library): bars, heatmaps, a scatter map.
Every label is HTML-escaped; hovering an element shows its <title> tooltip."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.report.safety import esc, safe_text

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
           "#9c755f", "#17becf"]
GREY = "#bab0ac"
FONT = "font-family:system-ui,Segoe UI,Arial,sans-serif"


def _short(text: str, n: int) -> str:
    """A one-line label cut to `n` characters (redacted first, so a cut can never hide an email from redaction)."""
    text = safe_text(" ".join(str(text).split()))
    return text if len(text) <= n else text[: n - 1] + "\u2026"


def _blue(v: float) -> str:
    """0..1 -> white to dark blue."""
    v = float(min(max(v, 0.0), 1.0))
    lo, hi = np.array([247, 251, 255]), np.array([8, 48, 107])
    r, g, b = (lo + (hi - lo) * v).round().astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


def _wrap(text: str, width: int, lines: int = 2) -> list[str]:
    """Split a label into at most `lines` lines of about `width` characters at word boundaries (the last is cut)."""
    words, out, cur = safe_text(" ".join(str(text).split())).split(" "), [], ""
    for w in words:
        if cur and len(cur) + 1 + len(w) > width:
            out.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}".strip()
    out.append(cur)
    if len(out) > lines:
        out = out[: lines - 1] + [_short(" ".join(out[lines - 1:]), width)]
    return out


def bar_chart(labels: Sequence[str], values: Sequence[float], title: str, percent: bool = True,
              width: int = 720, chart_id: str = "", counts: Sequence[int] | None = None,
              total: int | None = None) -> str:
    """Horizontal bars (values 0..1 shown as % when `percent`, with "n of total" when counts are given); labels
    wrap onto two lines instead of being cut."""
    label_w, bar_h, gap, top = 330, 30, 6, 28
    plot_w = width - label_w - 110
    vmax = max([*values, 1e-9]) if not percent else max(1.0 if max([*values, 0]) > 0.5 else 0.5, 1e-9)
    height = top + len(labels) * (bar_h + gap) + 10
    parts = [f'<svg class="chart chart-bars" id="{esc(chart_id)}" role="img" aria-label="{esc(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" style="{FONT};font-size:12px">',
             f'<text x="0" y="16" font-weight="bold">{esc(_short(title, 100))}</text>']
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + i * (bar_h + gap)
        w = max(1.0, plot_w * float(value) / vmax)
        shown = f"{100 * value:.0f}%" if percent else f"{value:g}"
        if counts is not None:
            shown += f" ({int(counts[i])}" + (f" of {int(total)})" if total else ")")
        lines = _wrap(label, 48)
        first_y = y + bar_h / 2 + 4 - 7 * (len(lines) - 1)
        tspans = "".join(f'<tspan x="{label_w - 6}" y="{first_y + 14 * k:.1f}">{esc(line)}</tspan>'
                         for k, line in enumerate(lines))
        parts.append(
            f'<text text-anchor="end">{tspans}</text>'
            f'<rect class="bar" x="{label_w}" y="{y + 4}" width="{w:.1f}" height="{bar_h - 8}" fill="{PALETTE[0]}">'
            f'<title>{esc(label)}: {esc(shown)}</title></rect>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h / 2 + 4:.1f}">{esc(shown)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def heatmap(df: pd.DataFrame, row_labels: Sequence[str], title: str, percent: bool = True,
            mask: pd.DataFrame | None = None, chart_id: str = "", cell: int = 30, label_w: int = 300,
            dim: pd.DataFrame | None = None) -> str:
    """A heatmap of the numeric frame `df` (rows x columns); `mask` cells get a dark outline, `dim` cells are
    greyed out (a share of a group too small to mean much)."""
    cols = [str(c) for c in df.columns]
    values = df.to_numpy(dtype=float) if len(df) else np.zeros((0, len(cols)))
    vmax = float(values.max()) if values.size and values.max() > 0 else 1.0
    head = 110
    width = label_w + cell * len(cols) + 20
    height = head + cell * len(row_labels) + 30
    parts = [f'<svg class="chart chart-heatmap" id="{esc(chart_id)}" role="img" aria-label="{esc(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" style="{FONT};font-size:11px">',
             f'<text x="0" y="16" font-weight="bold" font-size="13">{esc(_short(title, 100))}</text>']
    for j, c in enumerate(cols):
        x = label_w + j * cell + cell / 2
        parts.append(f'<text x="{x:.1f}" y="{head - 6}" transform="rotate(-55 {x:.1f} {head - 6})">'
                     f'{esc(_short(c, 28))}</text>')
    for i, label in enumerate(row_labels):
        y = head + i * cell
        parts.append(f'<text x="{label_w - 6}" y="{y + cell / 2 + 4:.1f}" text-anchor="end">'
                     f'{esc(_short(label, 46))}</text>')
        for j, c in enumerate(cols):
            v = float(values[i, j])
            linked = mask is not None and c in mask.columns and bool(mask[c].iloc[i])
            greyed = dim is not None and c in dim.columns and bool(dim[c].iloc[i])
            shown = f"{100 * v:.0f}%" if percent else f"{v:g}"
            stroke = ' stroke="#222" stroke-width="2"' if linked else ' stroke="#fff" stroke-width="1"'
            note = " (linked in the WSIS-SDG matrix)" if linked else ""
            note += " (group too small for a meaningful share)" if greyed else ""
            fill = "#e6e6e6" if greyed else _blue(v / vmax)
            parts.append(
                f'<rect class="cell{" linked" if linked else ""}{" small" if greyed else ""}" '
                f'x="{label_w + j * cell}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="{fill}"{stroke}>'
                f'<title>{esc(label)} x {esc(c)}: {esc(shown)}{esc(note)}</title></rect>'
            )
            if greyed:
                continue
            if v > 0:
                colour = "#fff" if v / vmax > 0.55 else "#222"
                parts.append(f'<text x="{label_w + j * cell + (cell - 2) / 2:.1f}" y="{y + cell / 2 + 3:.1f}" '
                             f'text-anchor="middle" font-size="9" fill="{colour}" pointer-events="none">'
                             f'{esc(shown)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter_map(points: pd.DataFrame, names: dict[str, str], title: str, max_legend: int = 10,
                chart_id: str = "", width: int = 900, height: int = 560) -> str:
    """Answers as dots on their 2-D projection, coloured by theme (the most frequent themes; the rest grey)."""
    counts = points["theme_id"].value_counts()
    ranked = sorted(counts.index, key=lambda t: (t == "other", -int(counts[t]), str(t)))
    shown = [t for t in ranked if t != "other"][: max_legend - 1]
    colour = {t: PALETTE[i % len(PALETTE)] for i, t in enumerate(shown)}
    legend_w, pad = 340, 20
    plot_w, plot_h = width - legend_w - 2 * pad, height - 2 * pad - 20
    xs, ys = points["x"].to_numpy(dtype=float), points["y"].to_numpy(dtype=float)
    x0, x1 = (float(xs.min()), float(xs.max())) if len(xs) else (0.0, 1.0)
    y0, y1 = (float(ys.min()), float(ys.max())) if len(ys) else (0.0, 1.0)
    sx = plot_w / (x1 - x0 or 1.0)
    sy = plot_h / (y1 - y0 or 1.0)
    parts = [f'<svg class="chart chart-map" id="{esc(chart_id)}" role="img" aria-label="{esc(title)}" '
             f'xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" style="{FONT};font-size:12px">',
             f'<text x="0" y="16" font-weight="bold">{esc(title)}</text>',
             f'<rect x="{pad}" y="{pad + 20}" width="{plot_w}" height="{plot_h}" fill="#fafafa" stroke="#ddd"/>']
    order = np.argsort([t in colour for t in points["theme_id"]], kind="stable")  # grey first, coloured on top
    for k in order:
        r = points.iloc[int(k)]
        tid = str(r["theme_id"])
        cx = pad + (float(r["x"]) - x0) * sx
        cy = pad + 20 + plot_h - (float(r["y"]) - y0) * sy
        tip = f"{r['question_id']} | response {r['response_id']} | {names.get(tid, tid)}"
        parts.append(f'<circle class="point" cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour.get(tid, GREY)}" '
                     f'fill-opacity="0.8"><title>{esc(tip)}</title></circle>')
    lx = width - legend_w + 10
    parts.append(f'<g class="legend"><text x="{lx}" y="{pad + 30}" font-weight="bold">Theme (answers)</text>')
    entries = [(t, colour[t]) for t in shown] + [("__rest__", GREY)]
    for i, (tid, col) in enumerate(entries):
        y = pad + 48 + i * 20
        if tid == "__rest__":
            n = int(len(points) - sum(int(counts[t]) for t in shown))
            label = f"other themes and 'other' ({n})"
        else:
            label = f"{_short(names.get(tid, tid), 42)} ({int(counts[tid])})"
        parts.append(f'<rect class="legend-key" x="{lx}" y="{y - 10}" width="12" height="12" fill="{col}"/>'
                     f'<text x="{lx + 18}" y="{y}">{esc(label)}</text>')
    parts.append("</g></svg>")
    return "".join(parts)
