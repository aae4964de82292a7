"""Evidence behind each tag, for `wsis tag --explain`: scores vs thresholds, explicit mentions, matched
keywords, and the nearest hand-written training examples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.tagger.model import Tagger
from pipeline.tagger.taxonomy import output_code


def _name(label: str) -> str:
    return f"SDG {output_code(label)}" if label.startswith("SDG") else label


def explain(
    tagger: Tagger, texts: Sequence[str], vectors: np.ndarray, proba: np.ndarray, pred: np.ndarray,
    mentions: Sequence[tuple[list[str], list[str]]], top_k: int = 5, n_examples: int = 3,
    thresholds: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """One JSON-ready dict per text: top labels (score, threshold, predicted, keywords, mentioned), the
    mentions, and the nearest training examples by cosine similarity. `thresholds`: the scores the stage's
    decision rules require (default: the model's own per-label thresholds)."""
    thr = np.asarray(tagger.thresholds_ if thresholds is None else thresholds, dtype=float)
    lex = tagger.features_.lexicon_
    ids = list(tagger.label_ids)
    raw = np.asarray(getattr(tagger, "examples_vectors_", np.zeros((0, 1))))
    ex_vecs = raw.astype(np.float32) / (127.0 if raw.dtype == np.int8 else 1.0)  # int8-quantised
    ex_text = list(getattr(tagger, "examples_text_", []))
    ex_labels = list(getattr(tagger, "examples_labels_", []))
    sims = (np.asarray(vectors, dtype=np.float32) @ ex_vecs.T) if len(ex_text) else None
    out = []
    for i, text in enumerate(texts):
        mentioned = set(mentions[i][0]) | set(mentions[i][1]) if i < len(mentions) else set()
        order = np.argsort(-proba[i], kind="stable")
        chosen = [j for j in order if pred[i, j]] + [j for j in order[:top_k] if not pred[i, j]]
        labels = []
        for j in chosen[: max(top_k, int(pred[i].sum()))]:
            labels.append({
                "label": _name(ids[j]), "score": round(float(proba[i, j]), 3),
                "threshold": round(float(thr[j]), 3), "predicted": bool(pred[i, j]),
                "mentioned": ids[j] in mentioned, "keywords": lex.evidence(text, j)[:8],
            })
        nearest = []
        if sims is not None and np.any(vectors[i]):
            for k in np.argsort(-sims[i], kind="stable")[:n_examples]:
                nearest.append({"similarity": round(float(sims[i, k]), 3),
                                "labels": ex_labels[k], "text": _short(ex_text[k])})
        out.append({
            "labels": labels,
            "mentions": {"action_lines": list(mentions[i][0]) if i < len(mentions) else [],
                         "sdgs": [output_code(s) for s in mentions[i][1]] if i < len(mentions) else []},
            "nearest_examples": nearest,
        })
    return out


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def print_explanations(
    ids: Sequence[str], texts: Sequence[str], explanations: Sequence[dict[str, Any]], console: Any,
    limit: int = 50,
) -> None:
    """Render explanations with rich (the first `limit` texts)."""
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    for rid, text, exp in list(zip(ids, texts, explanations, strict=False))[:limit]:
        table = Table(show_header=True, header_style="bold", expand=True)
        for col in ("label", "score", "thr", "tag", "mentioned", "keywords"):
            table.add_column(col)
        for lab in exp["labels"]:
            table.add_row(
                escape(lab["label"]), f"{lab['score']:.2f}", f"{lab['threshold']:.2f}",
                "[green]yes[/green]" if lab["predicted"] else "-",
                "yes" if lab["mentioned"] else "", escape(", ".join(lab["keywords"])),
            )
        near = "\n".join(
            f"  {n['similarity']:.2f} [{escape(n['labels'])}] {escape(n['text'])}"
            for n in exp["nearest_examples"]
        )
        console.print(Panel.fit(escape(_short(text, 300)), title=f"[bold]{escape(str(rid))}[/bold]"))
        console.print(table)
        if near:
            console.print("nearest training examples:\n" + near)
    if len(explanations) > limit:
        console.print(f"... {len(explanations) - limit} more in the explain column of the output")
