"""Embedding cache shared by the workers of a cluster: content-addressed chunk shards, written atomically.

A worker embeds a partition's unique texts in chunks of `embed.shard_size` texts, in digest order. A chunk's
file name is the hash of its texts' digests, so the same texts always map to the same file, whichever worker
or retry computes it: before encoding a chunk the worker looks for that file and reuses it; after encoding it
writes it atomically (`pipeline.io.write_npz`: temp file + rename). A worker killed mid-partition therefore
loses at most the chunk it was encoding (no partial file is ever visible), and the task's retry on another
worker re-encodes only the chunks that are missing: nothing lost, nothing encoded twice.

Unlike the local `EmbeddingCache`, nothing is loaded up front (a worker holds only its partition's vectors,
whatever the cache's size). Files live in `<cache_dir>/embeddings/<space key>/chunks/`, next to the local
shards and in the same format (`hashes` uint8 N x 32, `vectors` float32), under the same space key, so vectors
of another model are never served.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import io
from pipeline.embed.backends import get_backend, identity
from pipeline.embed.cache import cache_key, text_digest
from pipeline.embed.core import embed_section

log = logging.getLogger(__name__)

__all__ = ["ChunkStats", "chunk_dir", "encode_texts"]

CHUNKS = "chunks"
DEFAULT_CHUNK = 2048


@dataclass
class ChunkStats:
    """What one call did: texts, unique texts, chunks reused from the cache and chunks (texts) encoded."""

    texts: int = 0
    unique: int = 0
    chunks_reused: int = 0
    chunks_encoded: int = 0
    encoded: int = 0
    corrupt: int = 0

    def add(self, other: ChunkStats) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def space(params: dict[str, Any]) -> tuple[dict[str, Any], str, str]:
    """(embed section, cache key, `backend:model` id as embeddings.npz records it)."""
    section = embed_section(params)
    name, model_id, max_len = identity(section)
    return section, cache_key(name, model_id, max_len), f"{name}:{model_id}"


def chunk_dir(cache_dir: Path, params: dict[str, Any]) -> Path:
    return Path(cache_dir) / "embeddings" / space(params)[1] / CHUNKS


def _read_chunk(path: Path, digests: list[bytes]) -> np.ndarray | None:
    """The chunk's vectors when the file holds exactly these texts; None (file set aside) when damaged."""
    try:
        data = io.read_npz(path)
        hashes, vectors = data["hashes"], data["vectors"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        log.warning("embedding chunk %s unreadable (%s): encoded again", path, exc)
        path.unlink(missing_ok=True)
        return None
    ok = (vectors.ndim == 2 and len(vectors) == len(digests) and hashes.shape == (len(digests), 32)
          and [bytes(h) for h in hashes] == digests and bool(np.isfinite(vectors).all()))
    if not ok:
        log.warning("embedding chunk %s does not hold the texts its name says: encoded again", path)
        path.unlink(missing_ok=True)
        return None
    return np.asarray(vectors, dtype=np.float32)


def encode_texts(texts: list[str], params: dict[str, Any], cache_dir: Path) -> tuple[np.ndarray, ChunkStats]:
    """Vectors (N, d) float32 of `texts` as `pipeline.embed.encode` gives them (blank -> zero vector), through
    the chunk cache; the model is loaded once per worker process (`get_backend` keeps it)."""
    section, _key, _model = space(params)
    stats = ChunkStats(texts=len(texts))
    slot: dict[str, int] = {}
    where = np.array([slot.setdefault(t, len(slot)) if isinstance(t, str) and t.strip() else -1 for t in texts],
                     dtype=np.int64)
    uniques = list(slot)
    stats.unique = len(uniques)
    digests = [text_digest(t) for t in uniques]
    order = sorted(range(len(uniques)), key=lambda i: digests[i])
    size = max(int(section.get("shard_size", DEFAULT_CHUNK)), 1)
    folder = chunk_dir(cache_dir, params)
    use_cache = bool(section.get("cache", True))
    backend = None
    vecs: np.ndarray | None = None
    for start in range(0, len(order), size):
        rows = order[start:start + size]
        chunk_digests = [digests[i] for i in rows]
        name = hashlib.sha256(b"".join(chunk_digests)).hexdigest()[:40]
        path = folder / f"{name}.npz"
        got = _read_chunk(path, chunk_digests) if use_cache and path.exists() else None
        if got is None:
            if backend is None:
                backend = get_backend(section, Path(cache_dir))
            got = _encode(backend, [uniques[i] for i in rows], int(section.get("batch_size", 64)))
            if use_cache:
                folder.mkdir(parents=True, exist_ok=True)
                io.write_npz(path, hashes=np.frombuffer(b"".join(chunk_digests), dtype=np.uint8).reshape(-1, 32),
                             vectors=got)
            stats.chunks_encoded += 1
            stats.encoded += len(rows)
        else:
            stats.chunks_reused += 1
        if vecs is None:
            vecs = np.zeros((len(uniques), got.shape[1]), dtype=np.float32)
        vecs[rows] = got
    if vecs is None:  # nothing to encode: the vector size from the model
        backend = backend or get_backend(section, Path(cache_dir))
        vecs = np.zeros((0, int(backend.dim)), dtype=np.float32)
    out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
    keep = where >= 0
    out[keep] = vecs[where[keep]]
    return out, stats


def _encode(backend: Any, texts: list[str], batch_size: int) -> np.ndarray:
    """Length-sorted batches, as the local stage encodes (least padding)."""
    order = sorted(range(len(texts)), key=lambda i: (len(texts[i]), texts[i]))
    out = np.zeros((len(texts), int(backend.dim)), dtype=np.float32)
    for start in range(0, len(order), max(batch_size, 1)):
        batch = order[start:start + batch_size]
        out[batch] = backend.encode_batch([texts[i] for i in batch])
    return out
