"""`encode`: texts -> unit-normalised float32 vectors, through the content-addressed cache.

Only texts missing from the cache are encoded, longest-similar texts batched together (sorted by
length, ties by text, so the batches and hence the vectors do not depend on input order), and a
cache shard is written every `embed.shard_size` new vectors so an interrupted run loses little.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import config
from pipeline.embed.backends import Backend, get_backend, space_key
from pipeline.embed.cache import EmbeddingCache, cached_dim, text_digest
from pipeline.progress import track

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 2048


@dataclass
class EncodeStats:
    """What one `encode` call did (the stage summary and the benchmark read this)."""

    texts: int = 0
    empty: int = 0
    unique: int = 0
    cache_hits: int = 0
    misses: int = 0
    encoded: int = 0
    shards_written: int = 0
    corrupt_shards: int = 0  # damaged cache shards set aside (their vectors were recomputed)
    stale_tmp_removed: int = 0  # leftover temporary files of killed runs removed from the cache
    seconds: float = 0.0
    encode_seconds: float = 0.0
    load_seconds: float = 0.0  # loading (and, once per export, probe-checking) the model
    backend: str = ""
    model_id: str = ""
    cache_key: str = ""
    dim: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "extra"}
        out["seconds"] = round(self.seconds, 3)
        out["encode_seconds"] = round(self.encode_seconds, 3)
        out["load_seconds"] = round(self.load_seconds, 3)
        out["texts_per_s"] = round(self.texts_per_s, 1)
        out.update(self.extra)
        return out


def embed_section(params: dict[str, Any]) -> dict[str, Any]:
    """Accept either the whole params dict or just its `embed` section."""
    section = params.get("embed") if isinstance(params.get("embed"), dict) else params
    return dict(section or {})


def encode(texts: list[str], params: dict[str, Any], cache_dir: Path | None = None) -> np.ndarray:
    """Embed `texts` (N, d) float32, unit norm; empty/blank texts give zero vectors.

    `params` is the full parameters dict (or its `embed` section); `cache_dir` defaults to
    `pipeline.config.cache_dir()`.
    """
    return encode_with_stats(texts, params, cache_dir)[0]


def encode_with_stats(
    texts: list[str], params: dict[str, Any], cache_dir: Path | None = None
) -> tuple[np.ndarray, EncodeStats]:
    """`encode`, also returning counts and timings of cache hits, misses and encoding."""
    t0 = time.perf_counter()
    section = embed_section(params)
    root = Path(cache_dir) if cache_dir is not None else config.cache_dir()
    use_cache = bool(section.get("cache", True))
    name, model_id, _, key = space_key(section)
    # the model is loaded only when something must be encoded (or the vector size is unknown)
    dim = cached_dim(root, key) if use_cache else None
    backend: Backend | None = None
    t_load = time.perf_counter()
    if dim is None:
        backend = get_backend(section, root)
        dim = backend.dim
    load_seconds = time.perf_counter() - t_load
    stats = EncodeStats(texts=len(texts), backend=name, model_id=model_id, cache_key=key, dim=dim,
                        load_seconds=load_seconds)

    # unique non-blank texts, in first-seen order
    first: dict[str, int] = {}
    where: list[int] = []  # unique slot of each input text, -1 for blank
    for t in texts:
        if not isinstance(t, str) or not t.strip():
            where.append(-1)
            stats.empty += 1
            continue
        slot = first.setdefault(t, len(first))
        where.append(slot)
    uniques = list(first)
    stats.unique = len(uniques)
    if not uniques:
        stats.seconds = time.perf_counter() - t0
        return np.zeros((len(texts), dim), dtype=np.float32), stats

    digests = [text_digest(t) for t in uniques]
    cache: EmbeddingCache | None = None
    if use_cache:
        cache = EmbeddingCache(root, key, dim,
                               compact_above=int(section.get("cache_compact_above", 64)))
        stats.corrupt_shards = cache.corrupt_shards
        stats.stale_tmp_removed = cache.stale_tmp_removed
        dim = stats.dim = cache.dim  # a damaged meta.json is corrected from the shards
    out = np.zeros((len(texts), dim), dtype=np.float32)
    unique_vecs = np.zeros((len(uniques), dim), dtype=np.float32)
    found = np.zeros(len(uniques), dtype=bool)
    if cache is not None:
        pos, rows = cache.lookup(digests)
        if len(pos):
            unique_vecs[pos] = cache.vectors(rows)
            found[pos] = True
    stats.cache_hits = int(found.sum())
    missing = np.flatnonzero(~found)
    stats.misses = len(missing)

    if len(missing):
        if backend is None:
            t_load = time.perf_counter()
            backend = get_backend(section, root)
            stats.load_seconds += time.perf_counter() - t_load
        if backend.dim != dim:
            raise RuntimeError(f"cache {root / 'embeddings' / key} holds {dim}-d vectors but the model gives "
                               f"{backend.dim}; delete that folder to rebuild it")
        t_enc = time.perf_counter()
        _encode_missing(
            backend, [uniques[i] for i in missing], [digests[i] for i in missing],
            missing, unique_vecs, cache, section,
        )
        stats.encode_seconds = time.perf_counter() - t_enc
        stats.encoded = len(missing)
        if cache is not None:
            stats.shards_written = cache.shards_written

    where_arr = np.asarray(where, dtype=np.int64)
    keep = where_arr >= 0
    out[keep] = unique_vecs[where_arr[keep]]
    stats.seconds = time.perf_counter() - t0
    log.info(
        "embedded %d texts (%d unique, %d empty): %d cache hits, %d encoded with %s in %.1fs",
        stats.texts, stats.unique, stats.empty, stats.cache_hits, stats.encoded, name,
        stats.seconds,
    )
    return out, stats


def _encode_missing(
    backend: Any,
    texts: list[str],
    digests: list[bytes],
    slots: np.ndarray,
    unique_vecs: np.ndarray,
    cache: EmbeddingCache | None,
    section: dict[str, Any],
) -> None:
    """Encode `texts` in length-sorted batches, filling `unique_vecs[slots]` and the cache."""
    batch_size = max(int(section.get("batch_size", 64)), 1)
    shard_size = max(int(section.get("shard_size", DEFAULT_SHARD_SIZE)), 1)
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), texts[i]))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    try:
        for batch in track(batches, f"embedding ({backend.name})", total=len(batches)):
            vecs = backend.encode_batch([texts[i] for i in batch])
            unique_vecs[slots[batch]] = vecs
            if cache is not None:
                cache.add([digests[i] for i in batch], vecs)
                if cache.pending >= shard_size:
                    cache.flush()
    finally:
        # also on interruption: keep what was encoded so the re-run resumes from here
        if cache is not None:
            cache.flush()
