"""`wsis evaluate`: compare pipeline output with a hand-coded gold file.

Three kinds of comparison:

- ``tags``: Action Lines and SDGs (multi-label, ";"-separated) scored separately; per-label precision, recall and
  F1, micro, macro and samples F1, each with a 95% bootstrap confidence interval (answers resampled).
- ``themes``: framework-mode theme assignments (``themes`` column) against gold themes, same metrics.
- ``discovery``: discovered (emergent) themes against gold codes whose names do not match the theme ids: for each
  gold code the best-matching discovered theme's F1 (and the code-size-weighted mean), the best one-to-one
  (Hungarian) matching and its F1, and NMI/ARI between the primary theme and the primary code.

The metric functions are pure (numpy in, floats out) so that they can be checked against scikit-learn; `run` is
the thin shell that reads the files, aligns the rows and writes the JSON.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from pipeline.errors import InputError
from pipeline.io import read_table, write_json

log = logging.getLogger(__name__)

KINDS = ("tags", "themes", "discovery")
DEFAULTS: dict[str, Any] = {
    "n_bootstrap": 1000,
    "ci": 0.95,
    "zero_division": 0.0,  # per-label precision/recall/F1 when undefined (as scikit-learn's default)
    "empty_match": 1.0,  # samples-F1 of an answer where gold and prediction are both empty
    "outlier_labels": ["other", "-1"],  # discovery: predicted labels that mean "no theme" (not matched)
    "max_listed_ids": 20,
}
TAG_GROUPS = {"action_lines": "action_lines", "sdgs": "sdgs"}
PRED_THEME_COLUMNS = ("themes", "theme_id", "theme", "topic")
GOLD_CODE_COLUMNS = ("codes", "code", "themes", "theme_id", "theme")
NONE_CLUSTER = "(none)"


# --------------------------------------------------------------------------------------------------- labels
def split_labels(value: Any, sep: str = ";") -> list[str]:
    """Labels of one cell, in order, without blanks or repeats (lists/arrays from parquet are accepted)."""
    if value is None:
        return []
    if isinstance(value, list | tuple | np.ndarray):
        items = [str(v) for v in value if v is not None]
    else:
        if isinstance(value, float) and np.isnan(value):
            return []
        text = str(value)
        if text.strip().lower() in {"", "nan", "none", "<na>"}:
            return []
        items = text.split(sep)
    out: list[str] = []
    for item in items:
        label = item.strip()
        if label and label not in out:
            out.append(label)
    return out


def normalise_sdg(label: str) -> str:
    """'SDG 4', 'sdg4', 'SDG-04' and '4' are the same label ('4'), as in tags.parquet."""
    text = label.strip()
    upper = text.upper()
    if upper.startswith("SDG"):
        text = text[3:].strip(" -_")
    if text.isdigit():
        return str(int(text))
    return label.strip()


def normalise_action_line(label: str) -> str:
    """'c7.e-health' -> 'C7.e-health'; sub-areas stay distinct from the parent C7."""
    text = label.strip()
    if text[:1] in {"c", "C"} and text[1:2].isdigit():
        text = "C" + text[1:]
    return text


def binarize(rows: Sequence[Sequence[str]], labels: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(n, L) boolean indicator matrix and its label order (sorted union unless `labels` is given)."""
    order = list(labels) if labels is not None else sorted({lab for row in rows for lab in row})
    index = {lab: j for j, lab in enumerate(order)}
    out = np.zeros((len(rows), len(order)), dtype=bool)
    for i, row in enumerate(rows):
        for lab in row:
            j = index.get(lab)
            if j is not None:
                out[i, j] = True
    return out, order


# -------------------------------------------------------------------------------------------------- metrics
def _safe_div(num: np.ndarray, den: np.ndarray, zero_division: float) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, float(zero_division))
    np.divide(num, den, out=out, where=den > 0)
    return out


def prf_from_counts(
    tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, zero_division: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 from true/false positive and false negative counts (any shape, elementwise).

    F1 is 2TP / (2TP + FP + FN), which equals the harmonic mean when both are defined; like scikit-learn,
    it takes `zero_division` only when TP + FP + FN = 0."""
    precision = _safe_div(tp, tp + fp, zero_division)
    recall = _safe_div(tp, tp + fn, zero_division)
    f1 = _safe_div(2 * tp, 2 * tp + fp + fn, zero_division)
    return precision, recall, f1


def per_sample_f1(y_true: np.ndarray, y_pred: np.ndarray, empty_match: float = 1.0) -> np.ndarray:
    """F1 of each answer's predicted label set against its gold set (`empty_match` when both are empty)."""
    inter = np.logical_and(y_true, y_pred).sum(axis=1)
    total = y_true.sum(axis=1) + y_pred.sum(axis=1)
    return _safe_div(2 * inter, total, empty_match)


def _label_counts(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per answer and label: is it a TP, FP or FN (three (n, L) 0/1 matrices)."""
    t = y_true.astype(bool)
    p = y_pred.astype(bool)
    return (t & p).astype(np.float64), (~t & p).astype(np.float64), (t & ~p).astype(np.float64)


def multilabel_scores(
    y_true: np.ndarray, y_pred: np.ndarray, zero_division: float = 0.0, empty_match: float = 1.0
) -> dict[str, Any]:
    """Point estimates: per-label P/R/F1/support and micro, macro and samples averages."""
    tp, fp, fn = (m.sum(axis=0) for m in _label_counts(y_true, y_pred))
    p, r, f = prf_from_counts(tp, fp, fn, zero_division)
    mp, mr, mf = prf_from_counts(tp.sum(), fp.sum(), fn.sum(), zero_division)
    n_labels = len(tp)
    return {
        "per_label": {"precision": p, "recall": r, "f1": f, "support": (tp + fn).astype(int),
                      "n_predicted": (tp + fp).astype(int)},
        "micro": {"precision": float(mp), "recall": float(mr), "f1": float(mf)},
        "macro": {
            "precision": float(p.mean()) if n_labels else float("nan"),
            "recall": float(r.mean()) if n_labels else float("nan"),
            "f1": float(f.mean()) if n_labels else float("nan"),
        },
        "samples": {"f1": float(per_sample_f1(y_true, y_pred, empty_match).mean()) if len(y_true) else float("nan")},
    }


def bootstrap_weights(n: int, n_resamples: int, seed: int, chunk: int = 200) -> Iterable[np.ndarray]:
    """Resampling counts in chunks of (<= chunk, n): row b says how often each answer is drawn in resample b.

    Drawing counts (multinomial) instead of index lists lets every statistic be a matrix product."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_resamples:
        size = min(chunk, n_resamples - done)
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        done += size


def bootstrap_multilabel(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_resamples: int = 1000,
    seed: int = 0,
    zero_division: float = 0.0,
    empty_match: float = 1.0,
) -> dict[str, np.ndarray]:
    """Bootstrap distributions (one value per resample) of every statistic of `multilabel_scores`.

    Macro averages in a resample run over the labels that occur in it (gold or predicted), so a label that
    happens not to be drawn does not count as a zero; per-label values are NaN in resamples without the label."""
    n = len(y_true)
    tp_m, fp_m, fn_m = _label_counts(y_true, y_pred)
    s_f1 = per_sample_f1(y_true, y_pred, empty_match)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in (
        "label_precision", "label_recall", "label_f1", "micro_precision", "micro_recall", "micro_f1",
        "macro_precision", "macro_recall", "macro_f1", "samples_f1")}
    if n == 0 or n_resamples <= 0:
        return {k: np.empty((0,)) for k in parts}
    for w in bootstrap_weights(n, n_resamples, seed):
        tp, fp, fn = w @ tp_m, w @ fp_m, w @ fn_m  # (b, L)
        p, r, f = prf_from_counts(tp, fp, fn, zero_division)
        present = (tp + fp + fn) > 0
        n_present = present.sum(1)
        for name, values in (("precision", p), ("recall", r), ("f1", f)):
            parts[f"label_{name}"].append(np.where(present, values, np.nan))  # label not drawn: no value
            parts[f"macro_{name}"].append(_safe_div((values * present).sum(1), n_present, float("nan")))
        mp, mr, mf = prf_from_counts(tp.sum(1), fp.sum(1), fn.sum(1), zero_division)
        parts["micro_precision"].append(mp)
        parts["micro_recall"].append(mr)
        parts["micro_f1"].append(mf)
        parts["samples_f1"].append(w @ s_f1 / n)
    return {k: np.concatenate(v) for k, v in parts.items()}


def percentile_ci(values: np.ndarray, level: float = 0.95) -> list[float] | None:
    """Percentile interval of a bootstrap distribution (NaNs dropped); None when there is nothing to use."""
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def multilabel_report(
    rows_true: Sequence[Sequence[str]],
    rows_pred: Sequence[Sequence[str]],
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    zero_division: float = 0.0,
    empty_match: float = 1.0,
) -> dict[str, Any]:
    """Per-label and averaged scores with bootstrap CIs for aligned lists of gold and predicted label sets.

    Labels are the union of those seen in gold and predictions."""
    labels = sorted({lab for row in list(rows_true) + list(rows_pred) for lab in row})
    y_true, _ = binarize(rows_true, labels)
    y_pred, _ = binarize(rows_pred, labels)
    point = multilabel_scores(y_true, y_pred, zero_division, empty_match)
    boot = bootstrap_multilabel(y_true, y_pred, n_resamples, seed, zero_division, empty_match)
    has_boot = boot["micro_f1"].size > 0

    def ci(key: str, col: int | None = None) -> list[float] | None:
        if not has_boot:
            return None
        values = boot[key] if col is None else boot[key][:, col]
        return percentile_ci(values, level)

    per_label: dict[str, Any] = {}
    pl = point["per_label"]
    for j, lab in enumerate(labels):
        per_label[lab] = {
            "precision": float(pl["precision"][j]), "precision_ci": ci("label_precision", j),
            "recall": float(pl["recall"][j]), "recall_ci": ci("label_recall", j),
            "f1": float(pl["f1"][j]), "f1_ci": ci("label_f1", j),
            "support": int(pl["support"][j]), "n_predicted": int(pl["n_predicted"][j]),
        }
    out: dict[str, Any] = {"n_answers": len(y_true), "labels": labels, "per_label": per_label}
    for avg in ("micro", "macro"):
        out[avg] = {}
        for stat in ("precision", "recall", "f1"):
            out[avg][stat] = point[avg][stat]
            out[avg][f"{stat}_ci"] = ci(f"{avg}_{stat}")
    out["samples"] = {"f1": point["samples"]["f1"], "f1_ci": ci("samples_f1")}
    out["n_gold_empty"] = int((~y_true.any(axis=1)).sum())
    out["n_pred_empty"] = int((~y_pred.any(axis=1)).sum())
    return out


# -------------------------------------------------------------------------------------------- discovery
def _membership(rows: Sequence[Sequence[str]], exclude: set[str]) -> tuple[sparse.csr_matrix, list[str]]:
    labels = sorted({lab for row in rows for lab in row if lab not in exclude})
    index = {lab: j for j, lab in enumerate(labels)}
    ii: list[int] = []
    jj: list[int] = []
    for i, row in enumerate(rows):
        for lab in row:
            j = index.get(lab)
            if j is not None:
                ii.append(i)
                jj.append(j)
    mat = sparse.csr_matrix((np.ones(len(ii)), (ii, jj)), shape=(len(rows), len(labels)))
    mat.data[:] = 1.0  # a label listed twice in a row still counts once
    return mat, labels


def match_f1_matrix(
    rows_gold: Sequence[Sequence[str]], rows_pred: Sequence[Sequence[str]], exclude_pred: Iterable[str] = ()
) -> tuple[np.ndarray, list[str], list[str], np.ndarray]:
    """F1 of every (gold code, predicted theme) pair as sets of answers; also returns code sizes.

    An answer belongs to every code/theme listed for it (not only the first)."""
    g, codes = _membership(rows_gold, set())
    p, themes = _membership(rows_pred, set(exclude_pred))
    inter = np.asarray((g.T @ p).todense(), dtype=float)  # (C, T)
    g_size = np.asarray(g.sum(axis=0)).ravel()
    p_size = np.asarray(p.sum(axis=0)).ravel()
    f1 = _safe_div(2 * inter, g_size[:, None] + p_size[None, :], 0.0)
    return f1, codes, themes, g_size


def primary_labels(rows: Sequence[Sequence[str]], none: str = NONE_CLUSTER) -> list[str]:
    """First (best) label of each row; rows without one form their own cluster."""
    return [row[0] if row else none for row in rows]


def discovery_report(
    rows_gold: Sequence[Sequence[str]],
    rows_pred: Sequence[Sequence[str]],
    outlier_labels: Iterable[str] = ("other", "-1"),
    top_codes: int | None = None,
) -> dict[str, Any]:
    """How well discovered themes recover gold codes (names need not match).

    - best_match: for each gold code, the F1 of the discovered theme that matches it best (a theme may be the
      best match of several codes); averaged unweighted and weighted by code size;
    - hungarian: the one-to-one code<->theme matching that maximises total F1 (unmatched codes score 0);
    - nmi / ari: between primary gold code and primary predicted theme over answers that have a gold code
      (answers without a predicted theme, and outliers, are one cluster of their own)."""
    outliers = set(outlier_labels)
    f1, codes, themes, sizes = match_f1_matrix(rows_gold, rows_pred, outliers)
    n_codes, n_themes = f1.shape
    result: dict[str, Any] = {"n_answers": len(rows_gold), "n_codes": n_codes, "n_themes": n_themes}
    if n_codes == 0:
        return result | {"best_match_f1_mean": float("nan"), "best_match_f1_weighted": float("nan"),
                         "hungarian_f1_mean": float("nan"), "hungarian_f1_weighted": float("nan"),
                         "nmi": float("nan"), "ari": float("nan"), "per_code": {}}
    if n_themes:
        best_j = f1.argmax(axis=1)
        best = f1[np.arange(n_codes), best_j]
        rows, cols = linear_sum_assignment(f1, maximize=True)
        matched = np.zeros(n_codes)
        matched_theme: list[str | None] = [None] * n_codes
        matched[rows] = f1[rows, cols]
        for r, c in zip(rows, cols, strict=True):
            matched_theme[r] = themes[c]
    else:
        best_j = np.zeros(n_codes, dtype=int)
        best = np.zeros(n_codes)
        matched = np.zeros(n_codes)
        matched_theme = [None] * n_codes
    weights = sizes / sizes.sum() if sizes.sum() else np.full(n_codes, 1.0 / n_codes)
    per_code = {
        code: {"size": int(sizes[i]), "best_theme": themes[best_j[i]] if n_themes else None,
               "best_f1": float(best[i]), "matched_theme": matched_theme[i], "matched_f1": float(matched[i])}
        for i, code in enumerate(codes)
    }
    if top_codes is not None:
        keep = [codes[i] for i in np.argsort(-sizes, kind="stable")[:top_codes]]
        per_code = {c: per_code[c] for c in keep}
    gold_primary = primary_labels(rows_gold)
    pred_primary = [lab if lab not in outliers else NONE_CLUSTER for lab in primary_labels(rows_pred)]
    keep_idx = [i for i, lab in enumerate(gold_primary) if lab != NONE_CLUSTER]
    gp = [gold_primary[i] for i in keep_idx]
    pp = [pred_primary[i] for i in keep_idx]
    n_out = sum(1 for row in rows_pred if not [lab for lab in row if lab not in outliers])
    return result | {
        "best_match_f1_mean": float(best.mean()),
        "best_match_f1_weighted": float((best * weights).sum()),
        "hungarian_f1_mean": float(matched.mean()),
        "hungarian_f1_weighted": float((matched * weights).sum()),
        "nmi": float(normalized_mutual_info_score(gp, pp)) if gp else float("nan"),
        "ari": float(adjusted_rand_score(gp, pp)) if gp else float("nan"),
        "n_primary_pairs": len(gp),
        "pred_outlier_share": n_out / len(rows_pred) if len(rows_pred) else float("nan"),
        "per_code": per_code,
    }


# -------------------------------------------------------------------------------------------- file shell
@dataclass(frozen=True)
class Aligned:
    """Gold and prediction frames aligned on one key (gold order), and what did not align."""

    keys: list[str]
    gold: pd.DataFrame
    pred: pd.DataFrame
    missing_in_pred: list[str]
    extra_in_pred: list[str]
    duplicate_gold: int
    duplicate_pred: int


def row_keys(df: pd.DataFrame, path: Path | str) -> pd.Series:
    """The answer key of each row: `answer_id`, else `id`, else `response_id::question_id`."""
    if "answer_id" in df.columns:
        return df["answer_id"].astype(str).str.strip()
    if "id" in df.columns:
        return df["id"].astype(str).str.strip()
    if {"response_id", "question_id"} <= set(df.columns):
        return df["response_id"].astype(str).str.strip() + "::" + df["question_id"].astype(str).str.strip()
    raise InputError(str(path), None, "no key column: need answer_id, id, or response_id + question_id")


def _pick_column(df: pd.DataFrame, candidates: Sequence[str], path: Path | str) -> str:
    for name in candidates:
        if name in df.columns:
            return name
    raise InputError(str(path), None, f"no label column: expected one of {', '.join(candidates)}")


def _collapse(df: pd.DataFrame, keys: pd.Series, columns: Sequence[str], sep: str) -> tuple[pd.DataFrame, int]:
    """One row per key with label lists; duplicate keys are merged (union of labels, first order kept)."""
    lists = {c: [split_labels(v, sep) for v in df[c].tolist()] for c in columns}
    merged: dict[str, dict[str, list[str]]] = {}
    dups = 0
    for i, key in enumerate(keys.tolist()):
        entry = merged.get(key)
        if entry is None:
            merged[key] = {c: list(lists[c][i]) for c in columns}
            continue
        dups += 1
        for c in columns:
            entry[c].extend(lab for lab in lists[c][i] if lab not in entry[c])
    out = pd.DataFrame({"key": list(merged)} | {c: [merged[k][c] for k in merged] for c in columns})
    return out, dups


def align(
    pred: pd.DataFrame, gold: pd.DataFrame, pred_cols: Sequence[str], gold_cols: Sequence[str],
    pred_path: Path | str = "pred", gold_path: Path | str = "gold", sep: str = ";",
) -> Aligned:
    """Gold rows in gold order with their predictions; gold rows missing from pred get empty predictions."""
    g, dup_g = _collapse(gold, row_keys(gold, gold_path), gold_cols, sep)
    p, dup_p = _collapse(pred, row_keys(pred, pred_path), pred_cols, sep)
    p_index = {k: i for i, k in enumerate(p["key"].tolist())}
    gold_keys = g["key"].tolist()
    missing = [k for k in gold_keys if k not in p_index]
    gold_set = set(gold_keys)
    extra = [k for k in p["key"].tolist() if k not in gold_set]
    pred_rows: dict[str, list[list[str]]] = {}
    for c in pred_cols:
        values: list[list[str]] = p[c].tolist()
        pred_rows[c] = [values[p_index[k]] if k in p_index else [] for k in gold_keys]
    pred_aligned = pd.DataFrame({"key": gold_keys} | pred_rows)
    return Aligned(gold_keys, g, pred_aligned, missing, extra, dup_g, dup_p)


def evaluate_frames(
    pred: pd.DataFrame, gold: pd.DataFrame, kind: str, params: dict[str, Any] | None = None,
    pred_path: Path | str = "pred", gold_path: Path | str = "gold",
) -> dict[str, Any]:
    """All metrics of one kind for a prediction and a gold frame (neither is modified)."""
    if kind not in KINDS:
        raise InputError(str(gold_path), None, f"unknown --kind {kind!r}: use one of {', '.join(KINDS)}")
    params = params or {}
    opts = DEFAULTS | dict(params.get("evaluate", {}) or {})
    seed = int(opts.get("seed", params.get("seed", 0)))
    n_boot = int(opts["n_bootstrap"])
    level = float(opts["ci"])
    zd = float(opts["zero_division"])
    em = float(opts["empty_match"])
    max_ids = int(opts["max_listed_ids"])
    groups: dict[str, Any] = {}
    if kind == "tags":
        for col in TAG_GROUPS.values():
            for df, path in ((pred, pred_path), (gold, gold_path)):
                if col not in df.columns:
                    raise InputError(str(path), None, f"missing column {col!r} (tags need action_lines and sdgs)")
        al = align(pred, gold, list(TAG_GROUPS.values()), list(TAG_GROUPS.values()), pred_path, gold_path)
        norms = {"action_lines": normalise_action_line, "sdgs": normalise_sdg}
        for group, col in TAG_GROUPS.items():
            norm = norms[group]
            rows_g = [[norm(x) for x in row] for row in al.gold[col].tolist()]
            rows_p = [[norm(x) for x in row] for row in al.pred[col].tolist()]
            groups[group] = multilabel_report(rows_g, rows_p, n_boot, seed, level, zd, em)
    elif kind == "themes":
        pcol = _pick_column(pred, PRED_THEME_COLUMNS, pred_path)
        gcol = _pick_column(gold, GOLD_CODE_COLUMNS, gold_path)
        al = align(pred, gold, [pcol], [gcol], pred_path, gold_path)
        groups["themes"] = multilabel_report(al.gold[gcol].tolist(), al.pred[pcol].tolist(), n_boot, seed, level,
                                             zd, em)
    else:
        pcol = _pick_column(pred, PRED_THEME_COLUMNS, pred_path)
        gcol = _pick_column(gold, GOLD_CODE_COLUMNS, gold_path)
        al = align(pred, gold, [pcol], [gcol], pred_path, gold_path)
        groups["discovery"] = discovery_report(al.gold[gcol].tolist(), al.pred[pcol].tolist(),
                                               opts["outlier_labels"], opts.get("top_codes"))
    if al.missing_in_pred:
        log.warning("%d gold answers have no prediction row: counted as empty predictions", len(al.missing_in_pred))
    if al.extra_in_pred:
        log.warning("%d predicted answers are not in the gold file: ignored", len(al.extra_in_pred))
    return {
        "kind": kind,
        "pred": str(pred_path),
        "gold": str(gold_path),
        "n_gold": len(al.keys),
        "n_pred": len(al.keys) - len(al.missing_in_pred) + len(al.extra_in_pred),
        "n_evaluated": len(al.keys),
        "n_missing_in_pred": len(al.missing_in_pred),
        "missing_in_pred": al.missing_in_pred[:max_ids],
        "n_extra_in_pred": len(al.extra_in_pred),
        "extra_in_pred": al.extra_in_pred[:max_ids],
        "n_duplicate_gold_rows": al.duplicate_gold,
        "n_duplicate_pred_rows": al.duplicate_pred,
        "settings": {"n_bootstrap": n_boot, "ci": level, "seed": seed, "zero_division": zd, "empty_match": em},
        "groups": groups,
    }


def _read(path: Path) -> pd.DataFrame:
    if not Path(path).exists():
        raise InputError(str(path), None, "file not found")
    suffix = Path(path).suffix.lower()
    try:
        if suffix in {".csv", ".tsv", ".txt"}:
            # explicit delimiter: label lists use ";" and would fool a delimiter sniffer
            sep = "\t" if suffix == ".tsv" else ","
            return pd.read_csv(path, dtype=str, keep_default_na=False, sep=sep, encoding="utf-8-sig")
        return read_table(path)
    except (ValueError, OSError) as exc:
        raise InputError(str(path), None, f"cannot read: {exc}") from exc


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """Flat scalars for the CLI summary table."""
    out: dict[str, Any] = {k: metrics[k] for k in ("kind", "n_evaluated", "n_missing_in_pred", "n_extra_in_pred")}
    for group, rep in metrics["groups"].items():
        if metrics["kind"] == "discovery":
            for key in ("n_codes", "n_themes", "best_match_f1_weighted", "hungarian_f1_mean", "nmi", "ari"):
                value = rep.get(key)
                out[f"{key}"] = round(value, 4) if isinstance(value, float) else value
            continue
        for avg, stat in (("micro", "f1"), ("macro", "f1"), ("samples", "f1")):
            value = rep[avg][stat]
            ci = rep[avg].get(f"{stat}_ci")
            ci_txt = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
            out[f"{group} {avg}-F1"] = f"{value:.3f}{ci_txt}"
    return out


def run(pred: Path, gold: Path, kind: str, output: Path | None, params: dict[str, Any]) -> dict[str, Any]:
    """Read the prediction and gold files, compute the metrics, write them to `output` (JSON) if given."""
    pred, gold = Path(pred), Path(gold)
    metrics = evaluate_frames(_read(pred), _read(gold), kind, params, pred, gold)
    if output is not None:
        write_json(_jsonable(metrics), output)
    return _headline(metrics) | {"metrics": metrics}


def _jsonable(obj: Any) -> Any:
    """NaN -> None so that the JSON is standard."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and np.isnan(obj):
        return None
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    return obj
