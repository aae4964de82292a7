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
from pipeline.themes.edits import edits_file
from pipeline.themes.framework import (
    CodedExamples,
    CodedFrameworkMapper,
    FrameworkData,
    FrameworkMapper,
    answer_confidence,
    load_examples,
    load_framework,
    match_examples,
    select_for_review,
    with_agreement,
)
from pipeline.themes.naming import pick_quotes
from pipeline.themes.seeds import SeedThemes, load_seed_themes

log = logging.getLogger(__name__)

Encoder = Callable[[list[str]], np.ndarray]


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


def coded_mapper_from_params(params: dict[str, Any]) -> CodedFrameworkMapper:
    """The example learner (`themes.framework.examples`) on top of the zero-shot mapper's parameters."""
    cfg = theme_params(params)
    fw = dict(cfg.get("framework", {}) or {})
    opts = dict(fw.get("examples", {}) or {})
    zero_shot = {k: v for k, v in fw.items() if k != "examples"}
    return CodedFrameworkMapper(seed=int(cfg["seed"]), zero_shot=zero_shot, **opts)


def _framework_data(
    answers: pd.DataFrame, segments: pd.DataFrame, ans_vec: np.ndarray, seg_vec: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame, FrameworkData, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Answers and segments sorted by id (row order independent), non-answers with zero vectors."""
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
    if "is_boilerplate" in seg.columns:  # letterheads, disclaimers: never evidence for a frame theme
        seg_ok &= ~seg["is_boilerplate"].fillna(False).astype(bool).to_numpy()
    text_col = "text_clean" if "text_clean" in ans.columns else "answer"
    data = FrameworkData(
        texts=ans[text_col].fillna("").astype(str).tolist(),
        answer_vectors=avec,
        segment_vectors=svec[seg_ok],
        segment_answer=seg_ans[seg_ok],
        groups=ans["question_id"].astype(str).to_numpy(),
    )
    return ans, seg, data, svec, seg_ans, seg_ok, nonans


def _with_examples(
    data: FrameworkData, ans: pd.DataFrame, examples: CodedExamples, encoder: Encoder | None
) -> tuple[FrameworkData, np.ndarray, np.ndarray]:
    """The batch plus the examples that are not in it; returns (data, example rows in data, their codes).

    Examples whose response_id (and question_id, when given) is in the batch use the batch's own text and
    vectors; the others are encoded and appended as one-segment answers."""
    matched = match_examples(examples, ans)
    rows = np.full(len(examples), -1, dtype=int)
    for k, i in matched.items():
        rows[k] = i
    extra = np.flatnonzero(rows < 0)
    if not len(extra):
        return data, rows, examples.labels
    if encoder is None:
        raise ValueError("coded examples outside the input need an encoder")
    texts = [examples.texts[k] for k in extra]
    vecs = np.asarray(encoder(texts), dtype=np.float32)
    vecs = np.where(np.array([bool(t.strip()) for t in texts])[:, None], vecs, 0.0).astype(np.float32)
    qids = ans["question_id"].astype(str).unique()
    groups = [examples.question_ids[k] or (qids[0] if len(qids) == 1 else "__examples__") for k in extra]
    n = len(data)
    rows[extra] = n + np.arange(len(extra))
    ok = np.linalg.norm(vecs, axis=1) > 0
    both = FrameworkData(
        texts=data.texts + texts,
        answer_vectors=np.vstack([data.answer_vectors, vecs]),
        segment_vectors=np.vstack([data.segment_vectors, vecs[ok]]) if ok.any() else data.segment_vectors,
        segment_answer=np.concatenate([data.segment_answer, n + np.flatnonzero(ok)]),
        groups=np.concatenate([np.asarray(data.groups, dtype=object), np.asarray(groups, dtype=object)]).astype(str),
    )
    return both, rows, examples.labels


def map_framework(
    answers: pd.DataFrame,
    segments: pd.DataFrame,
    ans_vec: np.ndarray,
    seg_vec: np.ndarray,
    themes: SeedThemes,
    params: dict[str, Any],
    examples: CodedExamples | None = None,
    encoder: Encoder | None = None,
) -> ThemeResult:
    """Map every answer to zero or more framework themes (row order independent: sorted by ids).

    Without examples the zero-shot FrameworkMapper decides; with coded examples the CodedFrameworkMapper
    learns from them, and answers the analyst coded keep the analyst's codes (`source` = analyst-coded)."""
    cfg = theme_params(params)
    fw = dict(cfg.get("framework", {}) or {})
    ans, seg, data, svec, seg_ans, seg_ok, nonans = _framework_data(answers, segments, ans_vec, seg_vec)
    ids = list(themes.ids)
    n = len(ans)
    extra: dict[str, Any] = {}
    if examples is not None and len(examples):
        full, ex_rows, ex_y = _with_examples(data, ans, examples, encoder)
        full = with_agreement(full, themes, fw)
        coded = coded_mapper_from_params(params).fit(full, themes, ex_rows, ex_y)
        mapper = coded.zero_shot_
        scores = mapper.decision_function(full)[:n]
        conf = coded.predict_proba(full)[:n]
        labels = coded.predict(full)[:n]
        thresholds = coded.thresholds_
        analyst = np.zeros(n, dtype=bool)
        in_batch = ex_rows < n
        analyst[ex_rows[in_batch]] = True
        labels[ex_rows[in_batch]] = ex_y[in_batch]
        conf[ex_rows[in_batch]] = ex_y[in_batch].astype(float)
        extra = {"examples": len(examples), "examples_in_input": int(in_batch.sum()),
                 "cv_samples_f1": None if coded.cv_samples_f1_ is None else round(coded.cv_samples_f1_, 3)}
    else:
        data = with_agreement(data, themes, fw)
        mapper = mapper_from_params(params).fit(data, themes)
        scores = mapper.decision_function(data)
        labels = mapper.predict(data)
        conf = mapper.predict_proba(data)
        thresholds = np.full(len(ids), 0.5)
        analyst = np.zeros(n, dtype=bool)
    answer_conf = answer_confidence(conf, labels)
    answer_conf[analyst] = 1.0
    high = float(fw.get("high_confidence", 0.6))
    source = np.where(analyst, "analyst-coded", "machine")
    lists = []
    for i in range(n):
        chosen = np.flatnonzero(labels[i])
        key = conf[i, chosen] if analyst[i] else scores[i, chosen] + conf[i, chosen]
        lists.append(";".join(ids[j] for j in chosen[np.argsort(-key, kind="stable")]))
    assign = pd.concat(
        [
            pd.DataFrame({
                "answer_id": ans["answer_id"].astype(str), "response_id": ans["response_id"].astype(str),
                "question_id": ans["question_id"].astype(str), "themes": lists, "source": source,
                "confidence": np.round(answer_conf, 4),
            }),
            pd.DataFrame(np.round(scores, 4), columns=[f"score_{t}" for t in ids]),
            pd.DataFrame(np.round(conf, 4), columns=[f"confidence_{t}" for t in ids]),
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
    machine = ~analyst & ~nonans
    summary = {
        "mode": "framework", "framework_themes": len(ids), "answers": len(ans),
        "answers_with_theme": int((assign["themes"] != "").sum()),
        "answers_without_theme": int(((assign["themes"] == "") & ~nonans).sum()),
        "nonanswers": int(nonans.sum()),
        "mean_themes_per_answer": round(float(labels.sum() / max(n_ok, 1)), 3),
        **extra,
        "analyst_coded": int(analyst.sum()),
        "machine_high_confidence": int((machine & (answer_conf >= high)).sum()),
        "machine_low_confidence": int((machine & (answer_conf < high)).sum()),
        "thresholds": {t: round(float(v), 3) for t, v in zip(ids, thresholds, strict=True)},
    }
    return ThemeResult(themes_df, assign, seg_assign, tbq, summary)


def write_outputs(result: ThemeResult, out_dir: Path, csv: bool = False) -> None:
    out_dir = Path(out_dir)
    io.write_parquet(result.themes, out_dir / "themes.parquet")
    io.write_parquet(result.theme_assignments, out_dir / "theme_assignments.parquet")
    io.write_parquet(result.segment_assignments, out_dir / "segment_assignments.parquet")
    io.write_parquet(result.theme_by_question, out_dir / "theme_by_question.parquet")
    if csv:  # io.write_csv makes every CSV formula-safe and contact-redacted
        io.write_csv(result.themes, out_dir / "themes.csv")
        io.write_csv(result.theme_assignments.drop(columns=["answer_id"]), out_dir / "theme_assignments.csv")
        io.write_csv(result.theme_by_question, out_dir / "theme_by_question.csv")


REVIEW_INSTRUCTIONS = [
    "How to use this sheet",
    "1. Each row of the 'review' sheet is an answer whose coding the tool is least sure about; together",
    "   the rows cover every theme of the frame (see the 'frame' sheet for ids, labels and descriptions).",
    "2. Edit the column 'themes': the frame ids that apply, separated by ';' (best first is not needed).",
    "   Leave it empty when no theme applies.",
    "3. Delete the rows you did not check: every remaining row is used as an analyst-coded answer.",
    "4. Pass the sheet back: wsis themes --input FILE --framework FRAME --examples this_file.xlsx --out DIR",
    "   (several sheets of coded answers can be merged into one file; keep the response_id column).",
    "Columns machine_themes, confidence and check_first show what the tool chose and where it hesitated.",
]


def review_sheet(result: ThemeResult, answers: pd.DataFrame, themes: SeedThemes, n: int) -> pd.DataFrame:
    """The `n` answers an analyst should code next (framework mode), with the current codes editable."""
    ta = result.theme_assignments.reset_index(drop=True)
    ids = list(themes.ids)
    proba = ta[[f"confidence_{t}" for t in ids]].to_numpy(dtype=float)
    labels = np.array([[t in str(s).split(";") for t in ids] for s in ta["themes"]], dtype=bool)
    thr = np.array([float(result.summary.get("thresholds", {}).get(t, 0.5)) for t in ids])
    ans = answers.set_index(answers["answer_id"].astype(str))
    text_col = next(c for c in ("text_redacted", "text_clean", "answer") if c in ans.columns)
    non = (ans["is_nonanswer"].fillna(False).astype(bool) if "is_nonanswer" in ans.columns
           else pd.Series(False, index=ans.index))
    text = ans[text_col].fillna("").astype(str).reindex(ta["answer_id"]).fillna("").to_numpy()
    cand = ((ta["source"] == "machine").to_numpy() & ~non.reindex(ta["answer_id"]).fillna(False).to_numpy()
            & np.array([bool(t.strip()) for t in text]))
    picked = select_for_review(proba, labels, thr, cand, n)
    pick = [i for i, _ in picked]
    near = np.argsort(np.abs(proba - thr[None, :]), axis=1)

    def check_first(i: int, j: int) -> str:
        order = ([j] if j >= 0 else []) + [k for k in near[i] if k != j]
        return "; ".join(f"{ids[k]} {proba[i, k]:.2f} (thr {thr[k]:.2f})" for k in order[:3])

    return pd.DataFrame({
        "response_id": ta["response_id"].iloc[pick].to_numpy(), "question_id": ta["question_id"].iloc[pick].to_numpy(),
        "answer": text[pick], "themes": ta["themes"].iloc[pick].to_numpy(),
        "machine_themes": ta["themes"].iloc[pick].to_numpy(), "confidence": ta["confidence"].iloc[pick].to_numpy(),
        "check_first": [check_first(i, j) for i, j in picked],
    })


def write_review_sheet(sheet: pd.DataFrame, themes: SeedThemes, output: Path) -> Path:
    """XLSX with sheets `review` (first: read back by --examples), `frame` and `instructions`; formula-safe."""
    from pipeline.safety import xlsx_text

    output = Path(output)
    if output.suffix.lower() != ".xlsx":
        raise InputError(str(output), None, "the review sheet must be an .xlsx file")
    frame = pd.DataFrame({"id": list(themes.ids), "label": list(themes.labels),
                          "description": list(themes.descriptions)})
    with io.atomic_path(output) as tmp, pd.ExcelWriter(tmp, engine="openpyxl") as xl:
        for name, df in (("review", sheet), ("frame", frame),
                         ("instructions", pd.DataFrame({"instructions": REVIEW_INSTRUCTIONS}))):
            safe = df.copy()
            for col in safe.columns:
                if not pd.api.types.is_numeric_dtype(safe[col]):
                    safe[col] = safe[col].astype(str).map(xlsx_text)
            safe.to_excel(xl, sheet_name=name, index=False)
        ws = xl.sheets["review"]
        for col, width in {"A": 16, "B": 14, "C": 90, "D": 18, "E": 18, "F": 11, "G": 48}.items():
            ws.column_dimensions[col].width = width
        ws.freeze_panes = "D2"
    return output


def check_framework_inputs(
    framework: Path | None, examples: Path | None, review_sheet_path: Path | None
) -> tuple[SeedThemes | None, CodedExamples | None]:
    """Read and check the frame and the coded examples before any heavy work."""
    if framework is None:
        if examples is not None:
            raise InputError(str(examples), None, "--examples needs --framework (the frame the codes refer to)")
        if review_sheet_path is not None:
            raise InputError(str(review_sheet_path), None, "--review-sheet needs --framework")
        return None, None
    frame = load_framework(framework)
    coded = load_examples(examples, frame) if examples is not None else None
    return frame, coded


def _finish_framework(
    result: ThemeResult, answers: pd.DataFrame, frame: SeedThemes | None, review_sheet_path: Path | None, n: int
) -> dict[str, Any]:
    summary = dict(result.summary)
    if frame is not None and review_sheet_path is not None:
        sheet = review_sheet(result, answers, frame, n)
        write_review_sheet(sheet, frame, review_sheet_path)
        summary["review_sheet"] = str(review_sheet_path)
        summary["review_rows"] = len(sheet)
    return summary


def run(
    batch_dir: Path,
    params: dict[str, Any],
    framework: Path | None = None,
    examples: Path | None = None,
    review_sheet_path: Path | None = None,
    review_n: int = 50,
    edits: Path | None = None,
) -> dict[str, Any]:
    """`wsis themes`: read answers_clean / segments / embeddings, write the theme tables.

    Framework mode: `examples` = CODED file (answer, themes, optional response_id) the mapping learns from;
    `review_sheet_path` = XLSX of the `review_n` answers an analyst should code next."""
    t0 = time.perf_counter()
    frame, coded = check_framework_inputs(framework, examples, review_sheet_path)
    answers, segments, ans_vec, seg_vec = load_inputs(Path(batch_dir))
    from pipeline.embed.stage import batch_params

    encoder = make_encoder(batch_params(Path(batch_dir), params))  # `embed.backend: auto` as the embed stage chose
    summary = _map_or_discover(answers, segments, ans_vec, seg_vec, params, frame, coded, encoder, edits,
                               Path(batch_dir), False, review_sheet_path, review_n)
    return {**summary, "seconds": round(time.perf_counter() - t0, 2)}


def _map_or_discover(
    answers: pd.DataFrame, segments: pd.DataFrame, ans_vec: np.ndarray, seg_vec: np.ndarray, params: dict[str, Any],
    frame: SeedThemes | None, coded: CodedExamples | None, encoder: Encoder, edits: Path | None, out_dir: Path,
    csv: bool, review_sheet_path: Path | None, review_n: int,
) -> dict[str, Any]:
    """Framework mapping (or discovery), the analyst's edits, the outputs and the review sheet: shared by
    `wsis themes` on a batch folder and on any long file."""
    if frame is not None:
        result = map_framework(answers, segments, ans_vec, seg_vec, frame.encoded(encoder), params, coded, encoder)
    else:
        result = themes_core(answers, segments, ans_vec, seg_vec, params, None, encoder)
    result = _edited(result, edits_file(params, edits), answers, ans_vec, out_dir,
                     (params.get("themes") or {}).get("cross_link_threshold"))
    write_outputs(result, out_dir, csv=csv)
    return _finish_framework(result, answers, frame, review_sheet_path, review_n)


def _edited(result: ThemeResult, path: Path | None, answers: pd.DataFrame, ans_vec: np.ndarray,
            out_dir: Path, cross_link_threshold: float | None = None) -> ThemeResult:
    """Apply the edits file after discovery and write its log (`theme_edits.parquet`); without edits, remove
    a log left by an earlier run so the report never shows edits that were not applied."""
    from pipeline.themes.edits import edit_theme_result, load_edits

    log_path = out_dir / "theme_edits.parquet"
    if path is None:
        log_path.unlink(missing_ok=True)
        return result
    edited, edit_log = edit_theme_result(result, load_edits(path), answers, ans_vec, cross_link_threshold)
    io.write_parquet(edit_log, log_path)
    for row in edit_log.itertuples(index=False):
        if not str(row.status).startswith("applied"):
            log.warning("themes: edit %s (%s %s) %s", row.edit, row.action, row.themes, row.status)
    return edited


def run_on_file(
    input: Path,
    out_dir: Path,
    params: dict[str, Any],
    framework: Path | None = None,
    examples: Path | None = None,
    review_sheet_path: Path | None = None,
    review_n: int = 50,
    edits: Path | None = None,
) -> dict[str, Any]:
    """`wsis themes --input FILE`: ingest, clean and embed the file itself, then themes -> CSV + parquet."""
    from pipeline.clean import clean_answers
    from pipeline.embed import encode
    from pipeline.embed.stage import resolved_section
    from pipeline.ingest import ingest_paths

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    frame, coded = check_framework_inputs(framework, examples, review_sheet_path)
    ingested = ingest_paths([Path(input)], None, params)
    if ingested.answers.empty:
        raise InputError(str(input), None, "no answers could be read")
    answers, segments = clean_answers(ingested.answers, params)
    cache = config.cache_dir()
    # the encoder the embed stage would choose for these answers (`embed.backend: auto`: multilingual for a
    # multilingual file), so a file gives the themes its batch would
    section, _, _, switches = resolved_section(answers, params)
    embed_params = config.deep_merge(params, {"embed": section})
    ans_vec = encode(answers["text_clean"].fillna("").astype(str).tolist(), embed_params, cache)
    seg_vec = encode(segments["text"].fillna("").astype(str).tolist(), embed_params, cache)
    ans_vec = np.where(answers["is_nonanswer"].to_numpy()[:, None], 0.0, ans_vec).astype(np.float32)

    def encoder(texts: list[str]) -> np.ndarray:
        return encode(list(texts), embed_params, cache)

    summary = _map_or_discover(answers, segments, ans_vec, seg_vec, params, frame, coded, encoder, edits,
                               out_dir, True, review_sheet_path, review_n)
    summary["switches"] = [*summary.get("switches", []), *switches]
    return {**summary, "answers_read": len(answers), "embed_backend": section["backend"],
            "seconds": round(time.perf_counter() - t0, 2)}
