"""Seed themes: an editable YAML list of cross-cutting themes that give discovered themes stable ids."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import config
from pipeline.embed.vectors import normalise
from pipeline.errors import InputError
from pipeline.io import load_yaml

log = logging.getLogger(__name__)

DEFAULT_SEED_FILE = config.RESOURCES_DIR / "seed_themes.yaml"
_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


@dataclass(frozen=True)
class SeedThemes:
    """Seed (or framework) themes; `vectors` are unit-norm embeddings of `texts()` once encoded."""

    ids: tuple[str, ...]
    labels: tuple[str, ...]
    descriptions: tuple[str, ...]
    keywords: tuple[tuple[str, ...], ...]
    vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def texts(self) -> list[str]:
        """What gets embedded for each theme: its label and description."""
        return [f"{lab}. {desc}".strip() for lab, desc in zip(self.labels, self.descriptions, strict=True)]

    def encoded(self, encoder: Callable[[list[str]], np.ndarray]) -> SeedThemes:
        """Return a copy with `vectors` filled by `encoder` (texts -> unit-norm rows)."""
        if not self.ids:
            return replace(self, vectors=np.zeros((0, 0), dtype=np.float32))
        vecs = np.asarray(encoder(self.texts()), dtype=np.float32)
        return replace(self, vectors=normalise(vecs))


def from_records(records: Sequence[dict[str, Any]], source: str = "themes") -> SeedThemes:
    """Validate a list of {id, label, description, keywords} dicts (keywords: list or ';'/','-joined)."""
    ids: list[str] = []
    labels: list[str] = []
    descs: list[str] = []
    kws: list[tuple[str, ...]] = []
    for i, rec in enumerate(records, start=1):
        tid = str(rec.get("id", "") or "").strip()
        if not tid:
            raise InputError(source, f"theme {i}", "missing id")
        if tid in ids:
            raise InputError(source, f"theme {i}", f"duplicate id {tid!r}")
        label = str(rec.get("label", "") or "").strip() or tid
        desc = str(rec.get("description", "") or "").strip()
        raw_kw = rec.get("keywords", []) or []
        if isinstance(raw_kw, str):
            raw_kw = re.split(r"[;,|]", raw_kw)
        words = tuple(dict.fromkeys(str(k).strip().lower() for k in raw_kw if str(k).strip()))
        ids.append(tid)
        labels.append(label)
        descs.append(desc or label)
        kws.append(words)
    return SeedThemes(tuple(ids), tuple(labels), tuple(descs), tuple(kws))


def load_seed_themes(path: Path | str | None = None) -> SeedThemes:
    """Read the seed theme YAML (default: the packaged `seed_themes.yaml`)."""
    file = Path(path) if path else DEFAULT_SEED_FILE
    if not file.exists():
        raise InputError(str(file), None, "seed theme file not found")
    with open(file, encoding="utf-8") as fh:
        data = load_yaml(fh) or {}
    records = data.get("themes", data) if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise InputError(str(file), None, "expected a list of themes under 'themes:'")
    seeds = from_records(records, str(file))
    for tid in seeds.ids:
        if not _ID_RE.match(tid):
            raise InputError(str(file), tid, "ids must be lower-case letters, digits, '-', '.', '_'")
    return seeds


def keyword_pattern(keywords: Sequence[str]) -> re.Pattern[str] | None:
    """One regex matching any keyword as whole words (plural 's' tolerated), case-insensitive."""
    words = sorted({k.strip().lower() for k in keywords if k.strip()}, key=len, reverse=True)
    if not words:
        return None
    alts = "|".join(re.escape(w) for w in words)
    return re.compile(rf"(?<![\w-])(?:{alts})(?:s|es)?(?![\w-])", re.IGNORECASE)


def keyword_hits(texts: Sequence[str], seeds: SeedThemes) -> np.ndarray:
    """Boolean matrix (len(texts) x len(seeds)): does the text mention any keyword of the theme?"""
    out = np.zeros((len(texts), len(seeds)), dtype=bool)
    for j, kws in enumerate(seeds.keywords):
        pat = keyword_pattern(kws)
        if pat is None:
            continue
        for i, text in enumerate(texts):
            if text and pat.search(text):
                out[i, j] = True
    return out
