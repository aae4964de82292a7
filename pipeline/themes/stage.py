"""Shell of the themes stage: read the batch folder, discover (or map) themes, write tables atomically."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import config, io
from pipeline.errors import InputError
from pipeline.themes.discovery import ThemeResult, discover_themes, theme_params
from pipeline.themes.framework import FrameworkData, FrameworkMapper, load_framework
from pipeline.themes.naming import pick_quotes
from pipeline.themes.seeds import SeedThemes, load_seed_themes

log = logging.getLogger(__name__)

Encoder = Callable[[list[str]], np.ndarray]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def make_encoder(params: dict[str, Any]) -> Encoder:
    """Texts -> unit vectors with the embed stage's model and cache (same space as the batch vectors)."""
    from pipeline.embed import encode

    cache = config.cache_dir()
    return lambda texts: encode(list(texts), params, cache)


def load_inputs(batch_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, np.ndarray]:
    """answers_clean, segments, and answer / segment vectors aligned with their rows."""
    batch_dir = Path(batch_dir)
    for name in ("answers_clean.parquet", "segments.parquet", "embeddings.npz"):
        if not (batch_dir / name).exists():
            raise InputError(str(batch_dir / name), None, "missing; run `wsis clean` and `wsis embed` first")
    answers = pd.read_parquet(batch_dir / "answers_clean.parquet")
    segments = pd.read_parquet(batch_dir / "segments.parquet")
    emb = io.read_npz(batch_dir / "embeddings.npz")
    seg_vec = _align(emb["segment_ids"], emb["segment_vectors"], segments["segment_id"], "segment")
    ans_vec = _align(emb["answer_ids"], emb["answer_vectors"], answers["answer_id"], "answer")
    return answers, segments, ans_vec, seg_vec


def _align(ids: np.ndarray, vectors: np.ndarray, wanted: pd.Series, what: str) -> np.ndarray:
    pos = {str(k): i for i, k in enumerate(ids.tolist())}
    missing = [w for w in wanted.astype(str) if w not in pos]
    if missing:
        raise InputError("embeddings.npz", missing[0], f"{len(missing)} {what}s have no vector; re-run embed")
    return np.asarray(vectors, dtype=np.float32)[[pos[w] for w in wanted.astype(str)]]


def _seed_themes(params: dict[str, Any], encoder: Encoder | None) -> SeedThemes | None:
    cfg = theme_params(params)
    path = cfg.get("seed_file")
    if path is not None and str(path).strip().lower() in {"", "none", "false"}:
        return None
    file = Path(path) if path else None
    if file is not None and not file.is_absolute():
        file = config.PROJECT_ROOT / file
    seeds = load_seed_themes(file)
    return seeds.encoded(encoder) if encoder is not None else seeds


def themes_core(
    answers: pd.DataFrame,
    segments: pd.DataFrame,
    ans_vec: np.ndarray,
    seg_vec: np.ndarray,
    params: dict[str, Any],
    framework: Path | None,
    encoder: Encoder | None,
) -> ThemeResult:
    """Discovery, or framework mapping when a framework file is given."""
    if framework is not None:
        if encoder is None:
            raise ValueError("framework mode needs an encoder for the theme descriptions")
        return map_framework(answers, segments, ans_vec, seg_vec, load_framework(framework).encoded(encoder),
                             params)
    seeds = _seed_themes(params, encoder)
    return discover_themes(answers, segments, seg_vec, params, seeds)


def mapper_from_params(params: dict[str, Any]) -> FrameworkMapper:
    cfg = theme_params(params)
    opts = dict(cfg.get("framework", {}) or {})
    return FrameworkMapper(seed=int(cfg["seed"]), **opts)


def map_framework(
    answers: pd.DataFrame,
    segments: pd.DataFrame,
    ans_vec: np.ndarray,
    seg_vec: np.ndarray,
    themes: SeedThemes,
    params: dict[str, Any],
) -> ThemeResult:
    """Map every answer to zero or more framework themes (row order independent: sorted by ids)."""
    cfg = theme_params(params)
    a_order = np.argsort(answers["answer_id"].astype(str).to_numpy(), kind="stable")
    ans = answers.iloc[a_order].reset_index(drop=True)
    avec = np.asarray(ans_vec, dtype=np.float32)[a_order]
    s_order = np.argsort(segments["segment_id"].astype(str).to_numpy(), kind="stable")
    seg = segments.iloc[s_order].reset_index(drop=True)
    svec = np.asarray(seg_vec, dtype=np.float32)[s_order]
    nonans = (
        ans["is_nonanswer"].fillna(False).astype(bool).to_numpy()
        if "is_nonanswer" in ans.columns else np.zeros(len(ans), dtype=bool)
    )
    avec = np.where(nonans[:, None], 0.0, avec).astype(np.float32)
    row_of = {a: i for i, a in enumerate(ans["answer_id"].astype(str))}
    seg_ans = np.array([row_of.get(a, -1) for a in seg["answer_id"].astype(str)], dtype=int)
    seg_ok = (seg_ans >= 0) & (np.linalg.norm(svec, axis=1) > 0)
    if "is_nonanswer" in seg.columns:
        seg_ok &= ~seg["is_nonanswer"].fillna(False).astype(bool).to_numpy()
    text_col = "text_clean" if "text_clean" in ans.columns else "answer"
    data = FrameworkData(
        texts=ans[text_col].fillna("").astype(str).tolist(),
        answer_vectors=avec,
        segment_vectors=svec[seg_ok],
        segment_answer=seg_ans[seg_ok],
        groups=ans["question_id"].astype(str).to_numpy(),
    )
    mapper = mapper_from_params(params).fit(data, themes)
    scores = mapper.decision_function(data)
    labels = mapper.predict(data)
    ids = list(themes.ids)
    lists = []
    for i in range(len(ans)):
        chosen = np.flatnonzero(labels[i])
        lists.append(";".join(ids[j] for j in chosen[np.argsort(-scores[i, chosen], kind="stable")]))
    assign = pd.concat(
        [
            pd.DataFrame({
                "answer_id": ans["answer_id"].astype(str), "response_id": ans["response_id"].astype(str),
                "question_id": ans["question_id"].astype(str), "themes": lists,
            }),
            pd.DataFrame(np.round(scores, 4), columns=[f"score_{t}" for t in ids]),
        ],
        axis=1,
    )
    # segments: best framework theme among those assigned to the answer, scored by cosine
    seg_sim = svec @ mapper.theme_vectors_.T if len(ids) else np.zeros((len(seg), 0))
    seg_theme, seg_score = [], []
    for i in range(len(seg)):
        a = seg_ans[i]
        allowed = np.flatnonzero(labels[a]) if a >= 0 and seg_ok[i] else np.array([], dtype=int)
        if len(allowed):
            j = allowed[int(np.argmax(seg_sim[i, allowed]))]
            seg_theme.append(ids[j])
            seg_score.append(float(seg_sim[i, j]))
        else:
            seg_theme.append("other" if seg_ok[i] else "nonanswer")
            seg_score.append(0.0)
    seg_assign = pd.DataFrame({
        "segment_id": seg["segment_id"].astype(str), "answer_id": seg["answer_id"].astype(str),
        "question_id": seg["question_id"].astype(str), "theme_id": seg_theme, "score": seg_score,
    })
    text_red = seg["text_redacted"] if "text_redacted" in seg.columns else seg["text"]
    rows = []
    for scope in ["all", *sorted(ans["question_id"].astype(str).unique())]:
        in_scope = np.ones(len(ans), bool) if scope == "all" else (ans["question_id"].astype(str) == scope).to_numpy()
        for j, tid in enumerate(ids):
            mem = np.flatnonzero(labels[:, j] & in_scope)
            if scope != "all" and not len(mem):
                continue
            s_mem = np.flatnonzero(np.isin(seg_ans, mem) & (np.array(seg_theme) == tid))
            order = s_mem[np.argsort(-np.asarray(seg_score)[s_mem], kind="stable")]
            quotes = pick_quotes(list(order), seg["response_id"].astype(str).tolist(),
                                 seg["segment_id"].astype(str).tolist(), text_red.astype(str).tolist(),
                                 int(cfg["n_quotes"]))
            rows.append({
                "theme_id": tid, "scope": scope, "label": themes.labels[j],
                "keywords": ";".join(themes.keywords[j]), "size": len(mem), "n_segments": len(s_mem),
                "n_respondents": int(ans["response_id"].iloc[mem].nunique()) if len(mem) else 0,
                "origin": "framework", "seed_id": "", "description": themes.descriptions[j],
                "quotes": json.dumps(quotes, ensure_ascii=False), "seed_score": 0.0,
            })
    themes_df = pd.DataFrame(rows)
    from pipeline.themes.crossq import theme_by_question

    tbq = theme_by_question(themes_df, {})
    n_ok = int((nonans == 0).sum())
    summary = {
        "mode": "framework", "framework_themes": len(ids), "answers": len(ans),
        "answers_with_theme": int((assign["themes"] != "").sum()),
        "answers_without_theme": int(((assign["themes"] == "") & ~nonans).sum()),
        "nonanswers": int(nonans.sum()),
        "mean_themes_per_answer": round(float(labels.sum() / max(n_ok, 1)), 3),
    }
    return ThemeResult(themes_df, assign, seg_assign, tbq, summary)


def write_outputs(result: ThemeResult, out_dir: Path, csv: bool = False) -> None:
    out_dir = Path(out_dir)
    io.write_parquet(result.themes, out_dir / "themes.parquet")
    io.write_parquet(result.theme_assignments, out_dir / "theme_assignments.parquet")
    io.write_parquet(result.segment_assignments, out_dir / "segment_assignments.parquet")
    io.write_parquet(result.theme_by_question, out_dir / "theme_by_question.parquet")
    if csv:
        io.write_csv(neutralise(result.themes), out_dir / "themes.csv")
        io.write_csv(
            neutralise(result.theme_assignments.drop(columns=["answer_id"])), out_dir / "theme_assignments.csv"
        )
        io.write_csv(neutralise(result.theme_by_question), out_dir / "theme_by_question.csv")


def neutralise(df: pd.DataFrame) -> pd.DataFrame:
    """Spreadsheet-safe copy: text cells starting with = + - @ get a leading apostrophe."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(_FORMULA_START) else v
            )
    return out


def run(batch_dir: Path, params: dict[str, Any], framework: Path | None = None) -> dict[str, Any]:
    """`wsis themes`: read answers_clean / segments / embeddings, write the theme tables."""
    t0 = time.perf_counter()
    answers, segments, ans_vec, seg_vec = load_inputs(Path(batch_dir))
    result = themes_core(answers, segments, ans_vec, seg_vec, params, framework, make_encoder(params))
    write_outputs(result, Path(batch_dir))
    return {**result.summary, "seconds": round(time.perf_counter() - t0, 2)}


def run_on_file(
    input: Path, out_dir: Path, params: dict[str, Any], framework: Path | None = None
) -> dict[str, Any]:
    """`wsis themes --input FILE`: ingest, clean and embed the file itself, then themes -> CSV + parquet."""
    from pipeline.clean import clean_answers
    from pipeline.embed import encode
    from pipeline.ingest import ingest_paths

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    ingested = ingest_paths([Path(input)], None, params)
    if ingested.answers.empty:
        raise InputError(str(input), None, "no answers could be read")
    answers, segments = clean_answers(ingested.answers, params)
    cache = config.cache_dir()
    ans_vec = encode(answers["text_clean"].fillna("").astype(str).tolist(), params, cache)
    seg_vec = encode(segments["text"].fillna("").astype(str).tolist(), params, cache)
    ans_vec = np.where(answers["is_nonanswer"].to_numpy()[:, None], 0.0, ans_vec).astype(np.float32)
    result = themes_core(answers, segments, ans_vec, seg_vec, params, framework,
                         lambda texts: encode(list(texts), params, cache))
    write_outputs(result, out_dir, csv=True)
    return {**result.summary, "answers_read": len(answers), "seconds": round(time.perf_counter() - t0, 2)}
