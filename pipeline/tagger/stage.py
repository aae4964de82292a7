"""`wsis tag`: tag a batch (answers_clean + segments + embeddings -> tags.parquet, tag_consistency.parquet)
or any `id,text` file (ad-hoc mode). Long texts are scored per segment and aggregated."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import config
from pipeline.errors import InputError
from pipeline.io import read_npz, read_table, write_csv, write_parquet
from pipeline.tagger import features
from pipeline.tagger.consistency import consistency_report
from pipeline.tagger.model import Tagger, aggregate
from pipeline.tagger.taxonomy import load_taxonomy, output_code, split_codes
from pipeline.tagger.train import encoder_params, load_model, tag_params

log = logging.getLogger(__name__)


DECISION_KEYS = ("min_score_floor", "second_sdg_ratio", "top_sdg", "top_action_line")


def with_decision_params(tagger: Tagger, section: dict[str, Any]) -> Tagger:
    """A shallow copy of the tagger whose decision rules (not its learned scores) follow params.yaml, so
    changing e.g. `min_score_floor` takes effect on the next `wsis tag` without retraining."""
    import copy

    out = copy.copy(tagger)
    for key in DECISION_KEYS:
        if key in section:
            setattr(out, key, type(getattr(tagger, key))(section[key]))
    return out


def score_column(label: str) -> str:
    return f"score_{label}"


@dataclass
class TagResult:
    """Scores (n, n_labels), 0/1 decisions after mentions, and the mentions themselves."""

    proba: np.ndarray
    pred: np.ndarray
    mentions: list[tuple[list[str], list[str]]]


def tag_texts(
    tagger: Tagger, texts: Sequence[str], vectors: np.ndarray,
    mentions: Sequence[tuple[list[str], list[str]]],
    seg_texts: Sequence[str] = (), seg_vectors: np.ndarray | None = None,
    seg_owner: np.ndarray | None = None, how: str = "max", skip: np.ndarray | None = None,
    min_words_top: int = 4, substantive_words: int = 15, substantive_floor: float = 0.05,
) -> TagResult:
    """Pure core: score texts (and their segments, aggregated with `how`), decide, honour mentions.

    `seg_owner[k]` is the row in `texts` that segment k belongs to; `skip` marks non-answers (no model tags,
    mentions still count). The top SDG is forced on every substantive text (>= `substantive_words` words,
    score >= `substantive_floor`), on shorter ones only from `min_score_floor` up, never under
    `min_words_top` words ("Yes.", "No comment")."""
    n = len(texts)
    proba = tagger.predict_proba(list(texts), vectors)
    if len(seg_texts) and seg_vectors is not None and seg_owner is not None:
        seg_proba = tagger.predict_proba(list(seg_texts), seg_vectors)
        both = np.vstack([proba, seg_proba])
        owners = np.concatenate([np.arange(n), np.asarray(seg_owner, dtype=np.int64)])
        proba = aggregate(both, owners, n, how)
    if skip is not None:
        proba[np.asarray(skip, dtype=bool)] = 0.0
    n_words = np.array([len(str(t).split()) for t in texts])
    floor = np.where(n_words >= substantive_words, min(substantive_floor, tagger.min_score_floor),
                     tagger.min_score_floor)
    pred = tagger.decide(proba, n_words >= min_words_top, floor)
    index = {lab: j for j, lab in enumerate(tagger.label_ids)}
    for i, (als, sdgs) in enumerate(mentions):
        for lab in [*als, *sdgs]:
            if lab in index:
                pred[i, index[lab]] = 1
    return TagResult(proba=proba, pred=pred, mentions=[(list(a), list(s)) for a, s in mentions])


def label_strings(tagger: Tagger, pred: np.ndarray) -> tuple[list[str], list[str]]:
    """`;`-joined Action Line and SDG codes per row, in taxonomy order."""
    ids = list(tagger.label_ids)
    als = [j for j, lab in enumerate(ids) if not lab.startswith("SDG")]
    sdgs = [j for j, lab in enumerate(ids) if lab.startswith("SDG")]
    al_out = [";".join(ids[j] for j in als if row[j]) for row in pred]
    sdg_out = [";".join(output_code(ids[j]) for j in sdgs if row[j]) for row in pred]
    return al_out, sdg_out


def score_frame(tagger: Tagger, proba: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        np.round(proba, 4).astype(np.float32), columns=[score_column(x) for x in tagger.label_ids]
    )


def sentence_passages(
    texts: Sequence[str], max_words: int, skip: np.ndarray | None = None
) -> tuple[list[str], np.ndarray]:
    """Short passages (sentences, merged up to `max_words`) of every multi-sentence text, with owners.

    Real answers list several topics in one paragraph; scored whole, each topic is diluted, scored per
    sentence and max-aggregated, each can reach its threshold (dev set of real answers: AL micro-F1
    0.67 -> 0.72 at equal precision)."""
    passages: list[str] = []
    owners: list[int] = []
    for i, text in enumerate(texts):
        if (skip is not None and skip[i]) or len(text.split()) <= max_words:
            continue
        parts = features.segment_text(text, max_words=max_words, min_words=4)
        if len(parts) > 1:
            passages += parts
            owners += [i] * len(parts)
    return passages, np.asarray(owners, dtype=np.int64)


def _use_sentences(section: dict[str, Any], n_answers: int) -> bool:
    mode = str(section.get("sentence_scoring", "auto")).lower()
    if mode in {"never", "false", "off"}:
        return False
    if mode in {"always", "true", "on"}:
        return True
    return n_answers <= int(section.get("sentence_scoring_max_answers", 5000))


def _mentions_from(row: dict[Any, Any], text: str) -> tuple[list[str], list[str]]:
    if "mentions_action_lines" in row and "mentions_sdgs" in row:
        return (split_codes(row["mentions_action_lines"], "action_line"),
                split_codes(row["mentions_sdgs"], "sdg"))
    return features.find_mentions(text)


def _segments_for(
    answer_ids: list[str], segments: pd.DataFrame | None, n_segments: pd.Series, min_segments: int
) -> pd.DataFrame:
    if segments is None or segments.empty:
        return pd.DataFrame(columns=["segment_id", "answer_id", "text"])
    long_ids = {a for a, k in zip(answer_ids, n_segments, strict=True) if int(k) >= min_segments}
    seg = segments[segments["answer_id"].astype(str).isin(long_ids)]
    if "is_nonanswer" in seg:
        seg = seg[~seg["is_nonanswer"].astype(bool)]
    return seg.reset_index(drop=True)


def _vectors_for(
    keys: list[str], texts: list[str], stored_ids: np.ndarray | None, stored: np.ndarray | None,
    params: dict[str, Any],
) -> np.ndarray:
    """Stored embeddings by id; anything missing is encoded (through the embedding cache)."""
    if not keys:
        dim = stored.shape[1] if stored is not None and stored.ndim == 2 else 384
        return np.zeros((0, dim), dtype=np.float32)
    if stored_ids is not None and stored is not None and len(stored):
        pos = {str(k): i for i, k in enumerate(stored_ids)}
        if all(k in pos for k in keys):
            return np.asarray(stored[[pos[k] for k in keys]], dtype=np.float32)
        log.warning("embeddings.npz lacks %d of %d vectors; encoding them",
                    sum(k not in pos for k in keys), len(keys))
    return features.encode(texts, params, config.cache_dir())


def run(batch_dir: Path, params: dict[str, Any], model_dir: Path | None = None) -> dict[str, Any]:
    """Tag every answer of a batch; write tags.parquet and tag_consistency.parquet."""
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    src = batch_dir / "answers_clean.parquet"
    if not src.exists():
        raise InputError(str(src), None, "missing: run `wsis clean` first")
    section = tag_params(params)
    answers = pd.read_parquet(src)
    seg_file = batch_dir / "segments.parquet"
    segments = pd.read_parquet(seg_file) if seg_file.exists() else None
    emb_file = batch_dir / "embeddings.npz"
    emb = read_npz(emb_file) if emb_file.exists() else {}
    tagger, folder = load_model(params, model_dir)
    tagger = with_decision_params(tagger, section)
    enc_params = encoder_params(params, tagger)
    stored_model = str(emb.get("model_id", "")).split(":")[-1]
    if emb and stored_model != str(getattr(tagger, "embed_model_", stored_model)):
        log.warning("embeddings.npz holds %s vectors, the tagger needs %s: re-encoding",
                    stored_model, tagger.embed_model_)
        emb = {}

    ids = answers["answer_id"].astype(str).tolist()
    text_col = "text_clean" if "text_clean" in answers else "answer"
    texts = answers[text_col].fillna("").astype(str).tolist()
    skip = (answers["is_nonanswer"].astype(bool).to_numpy() if "is_nonanswer" in answers
            else np.array([not t.strip() for t in texts]))
    vectors = _vectors_for(ids, texts, emb.get("answer_ids"), emb.get("answer_vectors"), enc_params)
    n_seg = answers["n_segments"] if "n_segments" in answers else pd.Series(1, index=answers.index)
    seg = _segments_for(ids, segments, n_seg, int(section.get("min_segments_to_split", 2)))
    seg_texts = seg["text"].fillna("").astype(str).tolist()
    seg_vectors = _vectors_for(seg["segment_id"].astype(str).tolist(), seg_texts,
                               emb.get("segment_ids"), emb.get("segment_vectors"), enc_params)
    owner_of = {a: i for i, a in enumerate(ids)}
    seg_owner = np.array([owner_of[a] for a in seg["answer_id"].astype(str)], dtype=np.int64)
    n_sentences = 0
    if _use_sentences(section, int((~skip).sum())):
        # sentence passages are not in embeddings.npz: encoded here through the shared embedding cache
        sents, sent_owner = sentence_passages(texts, int(section.get("sentence_max_words", 20)), skip)
        if sents:
            seg_texts = seg_texts + sents
            seg_vectors = np.vstack([seg_vectors, features.encode(sents, enc_params, config.cache_dir())])
            seg_owner = np.concatenate([seg_owner, sent_owner])
            n_sentences = len(sents)
    else:
        log.info("sentence scoring skipped for %d answers (tag.sentence_scoring_max_answers)", len(ids))
    records = answers.to_dict("records")
    mentions = [_mentions_from(r, t) for r, t in zip(records, texts, strict=True)]
    result = tag_texts(tagger, texts, vectors, mentions, seg_texts, seg_vectors, seg_owner,
                       str(section.get("segment_aggregate", "max")), skip,
                       int(section.get("min_words_top", 4)), int(section.get("substantive_words", 15)),
                       float(section.get("substantive_floor", 0.05)))
    als, sdgs = label_strings(tagger, result.pred)
    tags = pd.DataFrame({
        "answer_id": ids,
        "response_id": answers["response_id"].astype(str).to_numpy(),
        "question_id": answers["question_id"].astype(str).to_numpy(),
        "action_lines": als, "sdgs": sdgs,
        "mentioned_action_lines": [";".join(m[0]) for m in mentions],
        "mentioned_sdgs": [";".join(output_code(s) for s in m[1]) for m in mentions],
    })
    tags = pd.concat([tags, score_frame(tagger, result.proba)], axis=1)
    taxonomy = load_taxonomy()
    report = consistency_report(tags, taxonomy)
    write_parquet(tags, batch_dir / "tags.parquet")
    write_parquet(report, batch_dir / "tag_consistency.parquet")
    n_mentioned = sum(bool(a or s) for a, s in mentions)
    return {
        "answers": len(tags), "non_answers": int(skip.sum()),
        "with_action_lines": int((tags["action_lines"] != "").sum()),
        "with_sdgs": int((tags["sdgs"] != "").sum()),
        "with_mentions": n_mentioned, "segments_scored": len(seg_texts), "sentence_passages": n_sentences,
        "consistency_issues": len(report), "model": folder.name,
        "seconds": round(time.perf_counter() - t0, 2),
    }


# --- ad-hoc mode --------------------------------------------------------------------------------------

def _read_adhoc(path: Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, "file not found")
    try:
        df = read_table(path)
    except Exception as exc:
        raise InputError(str(path), None, f"cannot read: {exc}") from exc
    cols = {str(c).strip().lower(): c for c in df.columns}
    if "id" not in cols or "text" not in cols:
        raise InputError(str(path), None, f"needs columns id,text (found {list(df.columns)})")
    return pd.DataFrame({
        "id": df[cols["id"]].astype(str).to_numpy(),
        "text": df[cols["text"]].fillna("").astype(str).to_numpy(),
    })


def tag_adhoc_frame(
    tagger: Tagger, frame: pd.DataFrame, params: dict[str, Any], explain: bool = False,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Tag an `id,text` frame: segments long texts, honours mentions; returns output frame + explanations."""
    section = tag_params(params)
    tagger = with_decision_params(tagger, section)
    texts = frame["text"].astype(str).tolist()
    skip = np.array([not t.strip() for t in texts])
    seg_texts, owners = sentence_passages(texts, int(section.get("sentence_max_words", 20)), skip)
    vecs = features.encode(texts + seg_texts, encoder_params(params, tagger), config.cache_dir())
    vectors, seg_vectors = vecs[: len(texts)], vecs[len(texts):]
    mentions = [features.find_mentions(t) for t in texts]
    result = tag_texts(tagger, texts, vectors, mentions, seg_texts, seg_vectors, owners,
                       str(section.get("segment_aggregate", "max")), skip,
                       int(section.get("min_words_top", 4)), int(section.get("substantive_words", 15)),
                       float(section.get("substantive_floor", 0.05)))
    als, sdgs = label_strings(tagger, result.pred)
    out = pd.DataFrame({"id": frame["id"].astype(str).to_numpy(), "action_lines": als, "sdgs": sdgs})
    out = pd.concat([out, score_frame(tagger, result.proba)], axis=1)
    explanations: list[dict[str, Any]] = []
    if explain:
        from pipeline.tagger.explain import explain as make_explanations

        explanations = make_explanations(tagger, texts, vectors, result.proba, result.pred, mentions,
                                         n_examples=int(section.get("n_nearest_examples", 3)))
        out["explain"] = [json.dumps(e, ensure_ascii=False) for e in explanations]
    return out, explanations


def _neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    from pipeline.tagger.labelsheet import neutralise

    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    return out


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write by suffix: .parquet, .xlsx (formula-like cells neutralised) or CSV (also neutralised)."""
    from pipeline.io import atomic_path

    suffix = Path(path).suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return write_parquet(df, path)
    if suffix in {".xlsx", ".xlsm"}:
        with atomic_path(path) as tmp:
            _neutralise_frame(df).to_excel(tmp, index=False, engine="openpyxl")
        return Path(path)
    return write_csv(_neutralise_frame(df), path)


def run_adhoc(
    input: Path, output: Path, params: dict[str, Any], model_dir: Path | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    """`wsis tag --input FILE --output FILE [--explain]`."""
    t0 = time.perf_counter()
    frame = _read_adhoc(Path(input))
    tagger, folder = load_model(params, model_dir)
    out, explanations = tag_adhoc_frame(tagger, frame, params, explain)
    write_table(out, Path(output))
    if explain:
        from rich.console import Console

        from pipeline.tagger.explain import print_explanations

        print_explanations(frame["id"].tolist(), frame["text"].tolist(), explanations, Console(stderr=True))
    return {
        "texts": len(out), "with_action_lines": int((out["action_lines"] != "").sum()),
        "with_sdgs": int((out["sdgs"] != "").sum()), "model": folder.name, "output": str(output),
        "seconds": round(time.perf_counter() - t0, 2),
    }

