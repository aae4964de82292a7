"""The stance stage: for every answer and theme it carries, support / oppose / conditional / neutral toward what
the theme or the question proposes (`theme_stance.parquet`), read by the report's tables and quotes.

What an answer takes a stance *toward* (the target) is decided per question, and said in the output:
1. a coding-frame theme (`origin` = framework): the theme's label, a proposal the analyst wrote;
2. `stance.proposals` in params.yaml (`{question_id: "Differential pricing of data should be allowed."}`): the
   question's proposal, for every theme of the question;
3. a closed question ("Should ...?", "Do you agree ...?"): the question text itself;
4. otherwise (an open question such as "What are the main achievements ...?") no stance is computed: the rows
   say `stance_target` = "" and the report says why, rather than guess a position nobody was asked to take.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import io
from pipeline.errors import InputError

log = logging.getLogger(__name__)

COLUMNS = ["answer_id", "response_id", "question_id", "theme_id", "stance", "confidence", "stance_target",
           "target_kind"]
OTHER = "other"
_CLOSED = re.compile(
    r"^\s*(?:\d+[.)]\s*)?(?:should|shall|do|does|did|is|are|was|were|would|will|can|could|must|has|have|"
    r"to what extent do|in your view,? should|do you agree|do you support)\b", re.I)


def stance_section(params: dict[str, Any]) -> dict[str, Any]:
    return dict(params.get("stance", {}) or {})


def question_target(question_text: str, proposal: str | None) -> tuple[str, str]:
    """(target, kind) for the discovered themes of one question; ("", "open question") when there is none."""
    if proposal:
        return str(proposal), "proposal"
    text = " ".join(str(question_text or "").split())
    if text and _CLOSED.match(text):
        return text, "closed question"
    return "", "open question"


def stance_pairs(answers: pd.DataFrame, assignments: pd.DataFrame, themes: pd.DataFrame,
                 proposals: dict[str, str]) -> pd.DataFrame:
    """One row per (answer, theme) with its target: framework themes toward their label, others toward the
    question's proposal (or closed question text), nothing for open questions."""
    qtext = dict(zip(answers["question_id"].astype(str), answers.get("question_text", pd.Series(
        [""] * len(answers))).fillna("").astype(str), strict=True))
    frame_label = {
        (str(r.scope), str(r.theme_id)): str(r.label) for r in themes.itertuples(index=False)
        if str(getattr(r, "origin", "")) == "framework"
    }
    substantive = set(answers.loc[~answers["is_nonanswer"].fillna(False).astype(bool), "answer_id"].astype(str))
    rows = []
    for r in assignments.itertuples(index=False):
        aid, qid = str(r.answer_id), str(r.question_id)
        if aid not in substantive:
            continue
        for tid in [t for t in str(r.themes or "").split(";") if t and t != OTHER]:
            if (qid, tid) in frame_label:
                target, kind = frame_label[(qid, tid)], "theme"
            else:
                target, kind = question_target(qtext.get(qid, ""), proposals.get(qid))
            rows.append({"answer_id": aid, "response_id": str(r.response_id), "question_id": qid, "theme_id": tid,
                         "stance_target": target, "target_kind": kind})
    return pd.DataFrame(rows, columns=["answer_id", "response_id", "question_id", "theme_id", "stance_target",
                                       "target_kind"])


def score_pairs(pairs: pd.DataFrame, texts: dict[str, str], vectors: dict[str, np.ndarray] | None,
                cache_dir: Path | None = None, model: Any = None) -> pd.DataFrame:
    """Stance and confidence for every pair with a target (the same answer and target are scored once)."""
    from pipeline.stance import stance_of

    out = pairs.assign(stance="", confidence=np.nan)
    todo = out[out["stance_target"] != ""][["answer_id", "stance_target"]].drop_duplicates()
    if todo.empty:
        return out[COLUMNS]
    ids = todo["answer_id"].tolist()
    vecs = np.stack([vectors[a] for a in ids]) if vectors and all(a in vectors for a in ids) else None
    scored = stance_of([texts.get(a, "") for a in ids], todo["stance_target"].tolist(), vecs, model=model,
                       cache_dir=cache_dir)
    todo = todo.assign(stance=scored["stance"].to_numpy(), confidence=scored["confidence"].to_numpy())
    out = out.drop(columns=["stance", "confidence"]).merge(todo, on=["answer_id", "stance_target"], how="left")
    out["stance"] = out["stance"].fillna("")
    return out[COLUMNS]


def run(batch_dir: Path, params: dict[str, Any], cache_dir: Path | None = None) -> dict[str, Any]:
    """`wsis stance`: read answers_clean, theme_assignments, themes, embeddings; write theme_stance.parquet."""
    t0 = time.perf_counter()
    batch_dir = Path(batch_dir)
    for name in ("answers_clean.parquet", "theme_assignments.parquet", "themes.parquet"):
        if not (batch_dir / name).exists():
            raise InputError(str(batch_dir / name), None, "missing; run `wsis themes` first")
    section = stance_section(params)
    answers = pd.read_parquet(batch_dir / "answers_clean.parquet")
    assign = pd.read_parquet(batch_dir / "theme_assignments.parquet", columns=["answer_id", "response_id",
                                                                               "question_id", "themes"])
    themes = pd.read_parquet(batch_dir / "themes.parquet")
    proposals = {str(k): str(v) for k, v in (section.get("proposals") or {}).items()}
    pairs = stance_pairs(answers, assign, themes, proposals)
    if not bool(section.get("enabled", True)):
        result = pairs.assign(stance="", confidence=np.nan, stance_target="", target_kind="disabled")[COLUMNS]
    else:
        text_col = "text_clean" if "text_clean" in answers.columns else "answer"
        texts = dict(zip(answers["answer_id"].astype(str), answers[text_col].fillna("").astype(str), strict=True))
        vectors, space = _answer_vectors(batch_dir / "embeddings.npz")
        result = score_pairs(pairs, texts, vectors, cache_dir, model_in_space(space, params))
    io.write_parquet(result, batch_dir / "theme_stance.parquet")
    scored = result[result["stance"] != ""]
    open_qs = sorted(set(result.loc[result["target_kind"] == "open question", "question_id"]))
    summary: dict[str, Any] = {
        "pairs": len(result), "scored": len(scored),
        **{f"stance_{s}": int((scored["stance"] == s).sum()) for s in ("support", "oppose", "conditional",
                                                                        "neutral")},
        "questions_without_target": len(open_qs),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    if open_qs:
        log.info("stance: %d open question(s) have no proposal, no stance computed (set stance.proposals): %s",
                 len(open_qs), ", ".join(open_qs[:10]))
    return summary


def _answer_vectors(path: Path) -> tuple[dict[str, np.ndarray] | None, str]:
    """(answer vectors, `backend:model` of embeddings.npz): the vectors when they are in the stance model's space
    (384-d MiniLM); else None and the model embeds."""
    if not path.exists():
        return None, ""
    emb = io.read_npz(path)
    vecs = emb.get("answer_vectors")
    space = str(emb.get("model_id", ""))
    if vecs is None or vecs.ndim != 2 or vecs.shape[1] != 384 or "multilingual" in space:
        return None, space
    return {str(a): v for a, v in zip(emb["answer_ids"].tolist(), vecs, strict=True)}, space


def model_in_space(space: str, params: dict[str, Any] | None = None) -> Any:
    """The shipped stance model, encoding its sentences with the int8 export of its own encoder (measured:
    benchmarks/results/embed_quality_stance.json) when the batch was embedded with that export, or when the batch
    is multilingual and the English encoder the params name (`embed.backends.english_backend`) is onnx: a
    multilingual batch then does not load the torch model, 5-8x slower. None (the model as trained) otherwise."""
    import copy

    from pipeline.embed.backends import english_backend
    from pipeline.stance.api import get_model
    from pipeline.stance.model import DEFAULT_EMBED

    backend, _, model_id = space.rpartition(":")
    model = get_model()
    embed = dict(model.embed or DEFAULT_EMBED)
    own = str(embed.get("model"))
    if embed.get("backend") != "torch":
        return None
    in_own_export = backend == "onnx" and model_id == f"{own}-int8"
    elsewhere = backend == "multilingual" and params is not None \
        and english_backend(dict(params.get("embed", {}) or {})) == "onnx"
    if not (in_own_export or elsewhere):
        return None
    out = copy.copy(model)
    out.embed = {**embed, "backend": "onnx"}
    return out
