"""`wsis tag`: tag a batch (answers_clean + segments + embeddings -> tags.parquet, tag_consistency.parquet)
or any `id,text` file (ad-hoc mode). Long texts are scored per segment and aggregated."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import config
from pipeline.embed.passages import passage_digest, sentence_passages, sentence_scoring
from pipeline.errors import InputError
from pipeline.io import read_npz, read_table, write_csv, write_parquet
from pipeline.numeric import logit, sigmoid
from pipeline.tagger import features
from pipeline.tagger.consistency import consistency_report
from pipeline.tagger.model import Tagger, aggregate
from pipeline.tagger.realhead import FILE_NAME as HEAD_FILE
from pipeline.tagger.realhead import RealAnswerHead
from pipeline.tagger.taxonomy import CODEBOOK_SDG_OF_ACTION_LINE, load_taxonomy, output_code, split_codes
from pipeline.tagger.train import encoder_params, interchangeable, load_model, load_real_head, tag_params

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
    basis: np.ndarray  # per text, what decided its tags (`decision_basis`; "legacy" under the legacy rule)


@dataclass(frozen=True)
class DecisionRules:
    """How scores become tags (params.yaml `tag:`); defaults chosen on real consultation answers.

    The model's per-label thresholds were chosen on written examples, which are cleaner than real answers, so
    real answers score lower on every label: a label is kept when its score, in log-odds, is at least its
    kind's margin above the model's threshold for it (negative: below). No label is forced: an answer gets no
    SDG unless one scores high enough or one of its Action Lines implies it (`sdgs_from_action_lines`).
    `rule: legacy` restores the earlier forced-top-SDG decision of `Tagger.decide`."""

    rule: str = "calibrated"
    whole_weight: float = 0.5  # log-odds = w x whole text + (1 - w) x best passage
    action_line_margin: float = -3.0
    sdg_margin: float = 1.0
    max_sdgs: int = 3  # 0 = no cap
    sdgs_from_action_lines: bool = True
    c7_policy: str = "drop"  # drop | best_subarea | keep (bare C7 is never an analyst's label)
    c7_subarea_margin: float = 1.0  # best_subarea: the sub-area may score this much below the AL margin
    min_words: int = 4  # shorter texts ("Yes.", "No comment") get no model tag
    document_passages: int = 8  # texts with this many scored passages are documents:
    support_passages: int = 2  # a label needs this many passages above its threshold ...
    support_share: float = 0.1  # ... holding at least this share of the passages' words
    max_sdgs_document: int = 3
    head_max_passages: int = 16  # a version's real-answer head decides texts with fewer passages (documents: support)
    head_keep_base_margin: float = 1.0  # ... and a label the base model is this sure of (log-odds) stays
    head_keep_base_margin_sdgs: float = 1.0  # ... the same for SDGs (inf: an SDG needs the head's own score)
    head_min_words: int = 8  # shorter texts ("Not applicable to us.") keep the base rules (no dev answer is shorter)

    @classmethod
    def from_params(cls, section: dict[str, Any]) -> DecisionRules:
        """Read the `tag:` keys that name fields of this class (others are the model's or the stage's)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in section and section[f.name] is not None:
                default = getattr(cls(), f.name)
                value = section[f.name]
                kwargs[f.name] = value if isinstance(default, str) else type(default)(value)
        rules = cls(**kwargs)
        if rules.rule not in {"calibrated", "legacy"}:
            raise InputError("params.yaml", "tag.rule", f"unknown rule {rules.rule!r} (calibrated | legacy)")
        if rules.c7_policy not in {"best_subarea", "drop", "keep"}:
            raise InputError("params.yaml", "tag.c7_policy",
                             f"unknown policy {rules.c7_policy!r} (best_subarea | drop | keep)")
        return rules


def kind_margins(tagger: Tagger, rules: DecisionRules) -> np.ndarray:
    """Per label: the margin (log-odds above the model's threshold) its kind needs."""
    kinds = np.asarray(list(tagger.label_kinds))
    return np.where(kinds == "sdg", rules.sdg_margin, rules.action_line_margin).astype(np.float64)


def effective_thresholds(tagger: Tagger, rules: DecisionRules | None,
                         head: RealAnswerHead | None = None) -> np.ndarray:
    """The score each label needs under `rules` (what `--explain` shows as the threshold; with a real-answer
    head, the head's thresholds, which answers that are not documents are decided by)."""
    thr = np.asarray(tagger.thresholds_, dtype=np.float64)
    if rules is None or rules.rule == "legacy":
        return thr
    if head is not None:
        return np.asarray(head.thresholds_, dtype=np.float64)
    return sigmoid(logit(thr) + kind_margins(tagger, rules))


def passage_counts(seg_owner: np.ndarray, n: int) -> np.ndarray:
    """Passages per text (`seg_owner[k]`: the text passage k belongs to)."""
    owner = np.asarray(seg_owner, dtype=np.int64)
    return np.bincount(owner, minlength=n)[:n] if owner.size else np.zeros(n, dtype=np.int64)


def blended_margins(
    tagger: Tagger, whole: np.ndarray, seg_proba: np.ndarray, seg_owner: np.ndarray, rules: DecisionRules,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(blended log-odds, margin above each label's threshold, passages per text): a log-odds blend of the
    whole text and its best passage (a passage keeps a topic the whole text dilutes; the whole text keeps the
    context a passage lacks). What the decision rules and the real-answer head read."""
    whole = np.asarray(whole, dtype=np.float64)
    n, n_labels = whole.shape
    thr = logit(np.asarray(tagger.thresholds_, dtype=np.float64))
    z_whole = logit(whole)
    owner = np.asarray(seg_owner, dtype=np.int64)
    n_pass = passage_counts(owner, n)
    best = np.full((n, n_labels), -np.inf)
    if owner.size:
        np.maximum.at(best, owner, logit(seg_proba))
    best = np.where(n_pass[:, None] > 0, best, z_whole)
    w = float(rules.whole_weight)
    z = w * z_whole + (1 - w) * best
    return z, z - thr, n_pass


def finish_decisions(
    pred: np.ndarray, margin: np.ndarray, label_ids: Sequence[str], is_sdg: np.ndarray, rules: DecisionRules,
    cap: np.ndarray,
) -> np.ndarray:
    """The rules every decision ends with (in place): bare C7 by `c7_policy`, SDGs implied by Action Lines,
    at most `cap[i]` SDGs (the highest margins)."""
    n = len(pred)
    ids = list(label_ids)
    if "C7" in ids:
        c7 = ids.index("C7")
        subs = np.array([j for j, lab in enumerate(ids) if lab.startswith("C7.")], dtype=np.int64)
        if rules.c7_policy == "best_subarea" and subs.size:
            bare = pred[:, c7] & ~pred[:, subs].any(axis=1)
            top = subs[np.argmax(margin[:, subs], axis=1)]
            rows = np.arange(n)
            ok = bare & (margin[rows, top] >= rules.action_line_margin - rules.c7_subarea_margin)
            pred[rows[ok], top[ok]] = True
        if rules.c7_policy != "keep":
            pred[:, c7] = False
    if rules.sdgs_from_action_lines:
        for al, sdg in CODEBOOK_SDG_OF_ACTION_LINE.items():
            if al in ids and sdg in ids:
                pred[:, ids.index(sdg)] |= pred[:, ids.index(al)]
    sdg_cols = np.flatnonzero(is_sdg)
    if sdg_cols.size:
        ranked = np.where(pred[:, sdg_cols], margin[:, sdg_cols], -np.inf)
        order = np.argsort(-ranked, axis=1, kind="stable")
        for i in np.flatnonzero((cap > 0) & (pred[:, sdg_cols].sum(axis=1) > cap)):
            pred[i, sdg_cols[order[i, cap[i]:]]] = False
    return pred


def head_margins(head: RealAnswerHead, margin: np.ndarray, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(real-answer head scores, their log-odds above the head's per-label thresholds)."""
    p = np.clip(head.predict_proba(margin, vectors), 1e-6, 1 - 1e-6)
    return p, logit(p) - logit(np.asarray(head.thresholds_, dtype=np.float64))


def decision_basis(n_pass: np.ndarray, n_words: np.ndarray, rules: DecisionRules, head_on: bool) -> np.ndarray:
    """Per text, what its tags are decided by in `decide_calibrated`: "head" (the real-answer head's score
    above its threshold), "passages" (a document: passage support) or "rules" (the blended score above its
    kind's margin). Written to tags.parquet (`decided_by`): the label sheet measures uncertainty by it."""
    n_pass, n_words = np.asarray(n_pass), np.asarray(n_words)
    answer = ((n_pass < int(rules.head_max_passages)) & (n_words >= int(rules.head_min_words)) if head_on
              else np.zeros(len(n_pass), dtype=bool))
    doc = (n_pass >= max(int(rules.document_passages), 1)) & ~answer
    return np.where(answer, "head", np.where(doc, "passages", "rules"))


def decide_calibrated(
    tagger: Tagger, whole: np.ndarray, seg_proba: np.ndarray, seg_owner: np.ndarray, n_words: np.ndarray,
    rules: DecisionRules, seg_words: np.ndarray | None = None, head: RealAnswerHead | None = None,
    vectors: np.ndarray | None = None, basis: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(scores, 0/1 decisions) of `n` texts from their whole-text scores and their passages' scores
    (`basis`: `decision_basis` of the texts when the caller has it, else computed here).

    Answers: the blended score (`blended_margins`) at least its kind's margin above the label's threshold; with
    a real-answer `head` (and the texts' `vectors`), the head's score above its threshold instead for texts of
    fewer than `head_max_passages` passages (the head was fitted on analyst-labelled answers of up to ~11
    passages). Other documents (>= `document_passages` passages) decide by support
    instead: a label needs `support_passages` passages above its threshold, holding `support_share` of the
    passages' words (`seg_words`; without, each passage counts one), so one passing sentence in a long
    contribution carries nothing."""
    whole = np.asarray(whole, dtype=np.float64)
    n, n_labels = whole.shape
    ids = list(tagger.label_ids)
    is_sdg = np.asarray(list(tagger.label_kinds)) == "sdg"
    thr = logit(np.asarray(tagger.thresholds_, dtype=np.float64))
    need = kind_margins(tagger, rules)
    owner = np.asarray(seg_owner, dtype=np.int64)
    z, margin, n_pass = blended_margins(tagger, whole, seg_proba, owner, rules)
    score = sigmoid(z)
    pred = margin >= need
    if basis is None:
        basis = decision_basis(n_pass, n_words, rules, head is not None and vectors is not None)
    answer, doc = basis == "head", basis == "passages"
    rank = margin.copy()
    if head is not None and vectors is not None and answer.any():
        p, m = head_margins(head, margin[answer], np.asarray(vectors)[answer])
        keep_at = np.where(is_sdg, float(rules.head_keep_base_margin_sdgs), float(rules.head_keep_base_margin))
        keep = margin[answer] >= keep_at[None, :]  # confident written-style evidence
        score[answer], pred[answer], rank[answer] = p, (m >= 0) | keep, m + rules.action_line_margin
    if owner.size and doc.any():
        passing = (logit(seg_proba) - thr) >= need
        words = np.ones(owner.size) if seg_words is None else np.asarray(seg_words, dtype=np.float64)
        support = np.zeros((n, n_labels), dtype=np.int64)
        np.add.at(support, owner, passing.astype(np.int64))
        share = np.zeros((n, n_labels))
        np.add.at(share, owner, passing * words[:, None])
        total = np.bincount(owner, weights=words, minlength=n)[:n]
        share /= np.maximum(total, 1e-9)[:, None]
        pred[doc] = (support[doc] >= int(rules.support_passages)) & (share[doc] >= float(rules.support_share))
    pred[np.asarray(n_words) < int(rules.min_words)] = False
    cap = np.where(doc, int(rules.max_sdgs_document), int(rules.max_sdgs))
    finish_decisions(pred, rank, ids, is_sdg, rules, cap)
    return score, pred.astype(np.int8)


HEAD_THRESHOLD_GRID = tuple(np.round(np.arange(0.1, 0.801, 0.025), 3))


def fit_head_thresholds(
    head: RealAnswerHead, Y: np.ndarray, label_ids: Sequence[str], n_words: np.ndarray, rules: DecisionRules,
) -> dict[str, float]:
    """Per kind, the head threshold with the best micro-F1 (soft labels: expected counts) on its training
    answers, decided with the same finishing rules as tagging (C7 policy, SDGs from Action Lines, SDG cap)."""
    p = np.clip(head.train_proba_, 1e-6, 1 - 1e-6)
    Y = np.asarray(Y, dtype=np.float64)
    is_sdg = np.asarray(head.is_sdg_, dtype=bool)
    cap = np.full(len(p), int(rules.max_sdgs))
    chosen: dict[str, float] = {}
    thr = np.full(p.shape[1], 0.5)
    for kind, cols in (("action_lines", ~is_sdg), ("sdgs", is_sdg)):
        best, best_t = -1.0, 0.5
        for t in HEAD_THRESHOLD_GRID:
            trial = np.where(cols, t, thr)
            m = logit(p) - logit(trial)
            pred = finish_decisions(m >= 0, m + rules.action_line_margin, label_ids, is_sdg, rules, cap)
            pred[np.asarray(n_words) < int(rules.min_words)] = False
            P = pred[:, cols].astype(np.float64)
            den = Y[:, cols].sum() + P.sum()
            f1 = 2 * float((Y[:, cols] * P).sum()) / den if den else 0.0
            if f1 > best + 1e-12:
                best, best_t = f1, float(t)
        thr = np.where(cols, best_t, thr)
        chosen[kind] = best_t
    head.thresholds_ = thr
    return chosen


def tag_texts(
    tagger: Tagger, texts: Sequence[str], vectors: np.ndarray,
    mentions: Sequence[tuple[list[str], list[str]]],
    seg_texts: Sequence[str] = (), seg_vectors: np.ndarray | None = None,
    seg_owner: np.ndarray | None = None, how: str = "max", skip: np.ndarray | None = None,
    min_words_top: int = 4, substantive_words: int = 15, substantive_floor: float = 0.05,
    rules: DecisionRules | None = None, head: RealAnswerHead | None = None,
) -> TagResult:
    """Pure core: score texts and their passages (`seg_owner[k]`: the row in `texts` passage k belongs to),
    then `decide_texts` (with the version's real-answer `head`, if it has one)."""
    proba = tagger.predict_proba(list(texts), vectors)
    has_seg = len(seg_texts) > 0 and seg_vectors is not None and seg_owner is not None
    seg_proba = (tagger.predict_proba(list(seg_texts), seg_vectors) if has_seg
                 else np.zeros((0, proba.shape[1])))
    owners = np.asarray(seg_owner if has_seg else [], dtype=np.int64)
    seg_words = np.array([len(str(t).split()) for t in seg_texts]) if has_seg else None
    return decide_texts(tagger, texts, proba, seg_proba, owners, mentions, how, skip,
                        min_words_top, substantive_words, substantive_floor, rules, seg_words, head, vectors)


def decide_texts(
    tagger: Tagger, texts: Sequence[str], proba: np.ndarray, seg_proba: np.ndarray, seg_owner: np.ndarray,
    mentions: Sequence[tuple[list[str], list[str]]], how: str = "max", skip: np.ndarray | None = None,
    min_words_top: int = 4, substantive_words: int = 15, substantive_floor: float = 0.05,
    rules: DecisionRules | None = None, seg_words: np.ndarray | None = None,
    head: RealAnswerHead | None = None, vectors: np.ndarray | None = None,
) -> TagResult:
    """Decisions from whole-text and passage scores, then explicit mentions added (they always count).

    `skip` marks non-answers (no model tags); `seg_words`: words per passage (document support). With
    `rules` (the stage passes them from params.yaml) decisions follow `decide_calibrated`; without (or
    `rule: legacy`), the earlier rule: passage scores aggregated with `how`, and the top SDG forced on every
    substantive text (>= `substantive_words` words, score >= `substantive_floor`), on shorter ones only from
    `min_score_floor` up, never under `min_words_top` words."""
    n = len(texts)
    owners = np.asarray(seg_owner, dtype=np.int64)
    n_words = np.array([len(str(t).split()) for t in texts])
    basis = np.full(n, "legacy")
    if rules is not None and rules.rule == "calibrated":
        basis = decision_basis(passage_counts(owners, n), n_words, rules, head is not None and vectors is not None)
        # a short text that is all boilerplate ("We thank the organisers ...") is never tagged by the model
        boiler = np.array([w <= 30 and features.is_boilerplate(t) for w, t in zip(n_words, texts, strict=True)],
                          dtype=bool)
        skip = boiler if skip is None else (np.asarray(skip, dtype=bool) | boiler)
        proba, pred = decide_calibrated(tagger, proba, seg_proba, owners, n_words, rules, seg_words, head, vectors,
                                        basis)
        proba[skip] = 0.0
        pred[skip] = 0
    else:
        proba = np.array(proba, dtype=np.float64)
        if owners.size:
            both = np.vstack([proba, seg_proba])
            proba = aggregate(both, np.concatenate([np.arange(n), owners]), n, how)
        if skip is not None:
            proba[np.asarray(skip, dtype=bool)] = 0.0
        floor = np.where(n_words >= substantive_words, min(substantive_floor, tagger.min_score_floor),
                         tagger.min_score_floor)
        pred = tagger.decide(proba, n_words >= min_words_top, floor)
    index = {lab: j for j, lab in enumerate(tagger.label_ids)}
    for i, (als, sdgs) in enumerate(mentions):
        for lab in [*als, *sdgs]:
            if lab in index:
                pred[i, index[lab]] = 1
    return TagResult(proba=proba, pred=pred, mentions=[(list(a), list(s)) for a, s in mentions], basis=basis)


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


def _use_sentences(section: dict[str, Any], n_answers: int) -> bool:
    return sentence_scoring(section, n_answers)[0]


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
    seg = seg[~seg["is_boilerplate"].fillna(False).astype(bool)] if "is_boilerplate" in seg else seg
    # astype(bool): on an empty frame the mapped Series is object-typed and would select columns, not rows
    boilerplate = seg["text"].fillna("").astype(str).map(features.is_boilerplate).astype(bool).to_numpy()
    return seg[~boilerplate].reset_index(drop=True)


def _vectors_for(
    keys: list[str], texts: list[str], stored_ids: np.ndarray | None, stored: np.ndarray | None,
    params: dict[str, Any], what: str = "vectors", fallbacks: list[str] | None = None,
) -> np.ndarray:
    """Stored embeddings by id; anything missing is encoded (through the embedding cache) and recorded in
    `fallbacks`."""
    if not keys:
        dim = stored.shape[1] if stored is not None and stored.ndim == 2 else 384
        return np.zeros((0, dim), dtype=np.float32)
    if stored_ids is not None and stored is not None and len(stored):
        pos = {str(k): i for i, k in enumerate(stored_ids)}
        if all(k in pos for k in keys):
            return np.asarray(stored[[pos[k] for k in keys]], dtype=np.float32)
        missing = sum(k not in pos for k in keys)
        log.warning("embeddings.npz lacks %d of %d %s; encoding them", missing, len(keys), what)
        _record(fallbacks, f"embeddings.npz lacks {missing} of {len(keys)} {what}: encoded by the tag stage")
    elif stored is None:
        _record(fallbacks, f"embeddings.npz has no {what}: {len(keys)} encoded by the tag stage")
    return features.encode(texts, params, config.cache_dir())


def _record(fallbacks: list[str] | None, line: str) -> None:
    if fallbacks is not None and line not in fallbacks:
        fallbacks.append(line)


def stored_sentence_vectors(
    emb: dict[str, np.ndarray], sents: list[str], owner_ids: list[str]
) -> np.ndarray | None:
    """The sentence passages' vectors from embeddings.npz when it holds exactly these passages (same owners, same
    texts by digest); None for an older npz or passages made with other parameters."""
    vecs, owner, digests = emb.get("sentence_vectors"), emb.get("sentence_owner"), emb.get("sentence_digests")
    if vecs is None or owner is None or digests is None or len(owner) != len(sents) or len(vecs) != len(sents):
        return None
    if [str(x) for x in owner] != owner_ids or [str(x) for x in digests] != [passage_digest(t) for t in sents]:
        return None
    return np.asarray(vecs, dtype=np.float32)


def same_space(stored_model_id: str, tagger: Tagger) -> bool:
    """Whether embeddings.npz vectors (`backend:model`) are in the tagger's space: the same model, torch or its
    int8 ONNX export (checked against torch at cosine >= embed.onnx_min_cosine), as `train.encoder_params`."""
    backend, _, model = stored_model_id.rpartition(":")
    needed = str(getattr(tagger, "embed_model_", model))
    trained = str(getattr(tagger, "embed_backend_", "torch"))
    if backend == "onnx" and model.endswith("-int8"):
        model = model[: -len("-int8")]
    return model == needed and (backend == "" or interchangeable(backend, trained))


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
    head = load_real_head(folder, tagger, section)
    enc_params = encoder_params(params, tagger)
    fallbacks: list[str] = []
    switches: list[str] = []
    stored_model = str(emb.get("model_id", ""))
    if emb and not same_space(stored_model, tagger):
        log.warning("embeddings.npz holds %s vectors, the tagger needs %s: re-encoding",
                    stored_model, tagger.embed_model_)
        fallbacks.append(f"embeddings.npz holds {stored_model} vectors, the tagger was trained on "
                         f"{getattr(tagger, 'embed_backend_', 'torch')}:{tagger.embed_model_}: texts re-encoded")
        emb = {}
    elif not emb:
        fallbacks.append("no embeddings.npz: every text encoded by the tag stage")

    ids = answers["answer_id"].astype(str).tolist()
    text_col = "text_clean" if "text_clean" in answers else "answer"
    texts = answers[text_col].fillna("").astype(str).tolist()
    skip = (answers["is_nonanswer"].astype(bool).to_numpy() if "is_nonanswer" in answers
            else np.array([not t.strip() for t in texts]))
    vectors = _vectors_for(ids, texts, emb.get("answer_ids"), emb.get("answer_vectors"), enc_params,
                           "answer vectors", fallbacks if emb else None)
    n_seg = answers["n_segments"] if "n_segments" in answers else pd.Series(1, index=answers.index)
    seg = _segments_for(ids, segments, n_seg, int(section.get("min_segments_to_split", 2)))
    seg_texts = seg["text"].fillna("").astype(str).tolist()
    seg_vectors = _vectors_for(seg["segment_id"].astype(str).tolist(), seg_texts,
                               emb.get("segment_ids"), emb.get("segment_vectors"), enc_params,
                               "segment vectors", fallbacks if emb else None)
    owner_of = {a: i for i, a in enumerate(ids)}
    seg_owner = np.array([owner_of[a] for a in seg["answer_id"].astype(str)], dtype=np.int64)
    n_sentences = 0
    use, switch = sentence_scoring(section, int((~skip).sum()))
    if switch:
        switches.append(switch)
        log.info("%s", switch)
    if use:
        sents, sent_owner = sentence_passages(texts, int(section.get("sentence_max_words", 20)), skip)
        if sents:
            sent_vectors = stored_sentence_vectors(emb, sents, [ids[i] for i in sent_owner]) if emb else None
            if sent_vectors is None:
                # an older embeddings.npz, or passages made with other tag parameters: encode them here
                if emb:
                    fallbacks.append(f"embeddings.npz lacks these {len(sents)} sentence passages (older file or "
                                     f"other tag.sentence_max_words): encoded by the tag stage")
                sent_vectors = features.encode(sents, enc_params, config.cache_dir())
            seg_texts = seg_texts + sents
            seg_vectors = np.vstack([seg_vectors, sent_vectors])
            seg_owner = np.concatenate([seg_owner, sent_owner])
            n_sentences = len(sents)
    records = answers.to_dict("records")
    mentions = [_mentions_from(r, t) for r, t in zip(records, texts, strict=True)]
    result = tag_texts(tagger, texts, vectors, mentions, seg_texts, seg_vectors, seg_owner,
                       str(section.get("segment_aggregate", "max")), skip,
                       int(section.get("min_words_top", 4)), int(section.get("substantive_words", 15)),
                       float(section.get("substantive_floor", 0.05)), DecisionRules.from_params(section),
                       head)
    als, sdgs = label_strings(tagger, result.pred)
    tags = pd.DataFrame({
        "answer_id": ids,
        "response_id": answers["response_id"].astype(str).to_numpy(),
        "question_id": answers["question_id"].astype(str).to_numpy(),
        "action_lines": als, "sdgs": sdgs,
        "mentioned_action_lines": [";".join(m[0]) for m in mentions],
        "mentioned_sdgs": [";".join(output_code(s) for s in m[1]) for m in mentions],
        "decided_by": result.basis,
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
        "consistency_issues": len(report), "model": folder.name, "real_answer_head": head is not None,
        "switches": switches, "fallbacks": fallbacks,
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
    head: RealAnswerHead | None = None,
) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Tag an `id,text` frame: segments long texts, honours mentions; returns output frame + explanations.
    `head`: the model version's real-answer head (`load_real_head`), if any."""
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
                       float(section.get("substantive_floor", 0.05)), DecisionRules.from_params(section),
                       head)
    als, sdgs = label_strings(tagger, result.pred)
    out = pd.DataFrame({"id": frame["id"].astype(str).to_numpy(), "action_lines": als, "sdgs": sdgs,
                        "decided_by": result.basis})
    out = pd.concat([out, score_frame(tagger, result.proba)], axis=1)
    explanations: list[dict[str, Any]] = []
    if explain:
        from pipeline.tagger.explain import explain as make_explanations

        explanations = make_explanations(
            tagger, texts, vectors, result.proba, result.pred, mentions,
            n_examples=int(section.get("n_nearest_examples", 3)),
            thresholds=effective_thresholds(tagger, DecisionRules.from_params(section), head))
        out["explain"] = [json.dumps(e, ensure_ascii=False) for e in explanations]
    return out, explanations


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Write by suffix: .parquet, .xlsx (made safe like every output) or CSV (`write_csv` makes it safe)."""
    from pipeline.io import atomic_path
    from pipeline.safety import neutralise_frame

    suffix = Path(path).suffix.lower()
    if suffix in {".parquet", ".pq"}:
        return write_parquet(df, path)
    if suffix in {".xlsx", ".xlsm"}:
        with atomic_path(path) as tmp:
            neutralise_frame(df).to_excel(tmp, index=False, engine="openpyxl")
        return Path(path)
    return write_csv(df, path)


def run_adhoc(
    input: Path, output: Path, params: dict[str, Any], model_dir: Path | None = None,
    explain: bool = False,
) -> dict[str, Any]:
    """`wsis tag --input FILE --output FILE [--explain]`."""
    t0 = time.perf_counter()
    frame = _read_adhoc(Path(input))
    tagger, folder = load_model(params, model_dir)
    out, explanations = tag_adhoc_frame(tagger, frame, params, explain, load_real_head(folder, tagger))
    write_table(out, Path(output))
    if explain:
        from rich.console import Console

        from pipeline.tagger.explain import print_explanations

        print_explanations(frame["id"].tolist(), frame["text"].tolist(), explanations, Console(stderr=True))
    return {
        "texts": len(out), "with_action_lines": int((out["action_lines"] != "").sum()),
        "with_sdgs": int((out["sdgs"] != "").sum()), "model": folder.name, "output": str(output),
        "real_answer_head": (folder / HEAD_FILE).is_file(),
        "seconds": round(time.perf_counter() - t0, 2),
    }

