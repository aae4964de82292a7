"""Content-addressed, append-only embedding cache.

Layout: `<cache_dir>/embeddings/<key>/shard-*.npz`, each shard holding `hashes` (raw sha256 digests of
the texts, uint8 N x 32) and `vectors` (float32). Shards are written atomically and never rewritten, so an
interrupted run keeps every shard it finished and concurrent runs never corrupt each other. On open,
all shards are loaded once into one array plus a dict index, so lookups stay O(1) at 50k+ texts.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline import io

log = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.npz"


def text_digest(text: str) -> bytes:
    """The content address of a text: its raw sha256 digest (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


def cache_key(backend: str, model_id: str, max_seq_length: int | None) -> str:
    """Folder name of one embedding space: vectors from different spaces never mix."""
    raw = f"{backend}__{model_id}__{max_seq_length if max_seq_length else 'na'}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def _digests_to_array(digests: Sequence[bytes]) -> np.ndarray:
    """Digests as a uint8 (N, 32) array (numpy `S32` would strip trailing zero bytes)."""
    if not digests:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32).copy()


META_FILE = "meta.json"


def cached_dim(root: Path, key: str) -> int | None:
    """Vector size recorded for an embedding space, or None if nothing is cached yet."""
    path = Path(root) / "embeddings" / key / META_FILE
    try:
        return int(json.loads(path.read_text(encoding="utf-8"))["dim"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class EmbeddingCache:
    """Vectors of one embedding space, addressed by text digest.

    `get` answers from memory; `add` buffers new vectors and `flush` writes them as a new shard.
    Many small shards (e.g. after many interrupted runs) are merged into one on open when there are
    more than `compact_above` of them.
    """

    def __init__(self, root: Path, key: str, dim: int, compact_above: int = 64) -> None:
        self.root = Path(root)
        self.key = key
        self.dim = dim
        self.compact_above = compact_above
        self.dir = self.root / "embeddings" / key
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._index: dict[bytes, int] = {}
        self._pending_hashes: list[bytes] = []
        self._pending_vectors: list[np.ndarray] = []
        self.shards_written = 0
        self._load()

    # ------------------------------------------------------------------ loading
    def _shard_paths(self) -> list[Path]:
        return sorted(self.dir.glob(SHARD_GLOB)) if self.dir.is_dir() else []

    def _load(self) -> None:
        paths = self._shard_paths()
        hashes: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        loaded: list[Path] = []
        for path in paths:
            try:
                data = io.read_npz(path)
            except FileNotFoundError:  # removed by a concurrent compaction; its content moved
                continue
            except (OSError, ValueError, KeyError) as exc:
                log.warning("skipping unreadable cache shard %s: %s", path, exc)
                continue
            vec = data.get("vectors")
            hs = data.get("hashes")
            if vec is None or hs is None or vec.ndim != 2 or vec.shape[1] != self.dim:
                log.warning("skipping cache shard %s: wrong shape for dim %d", path, self.dim)
                continue
            if hs.ndim != 2 or hs.shape[1] != 32 or len(hs) != len(vec):
                log.warning("skipping cache shard %s: %d hashes vs %d vectors", path, len(hs), len(vec))
                continue
            hashes.append(hs.astype(np.uint8, copy=False))
            vectors.append(vec.astype(np.float32, copy=False))
            loaded.append(path)
        if not vectors:
            return
        all_hashes = np.concatenate(hashes)
        all_vectors = np.concatenate(vectors)
        index: dict[bytes, int] = {}
        keep = np.zeros(len(all_hashes), dtype=bool)
        for i, row in enumerate(all_hashes):
            h = row.tobytes()
            if h not in index:  # first writer wins; duplicates come from concurrent runs
                index[h] = len(index)
                keep[i] = True
        self._vectors = np.ascontiguousarray(all_vectors[keep])
        self._index = index
        log.debug("cache %s: %d vectors from %d shards", self.key, len(index), len(loaded))
        if len(loaded) > self.compact_above:
            self._compact(loaded, all_hashes[keep])

    def _compact(self, shards: Sequence[Path], hashes: np.ndarray) -> None:
        """Merge many shards into one: write the merged shard first, then delete the old ones."""
        target = self._new_shard_path(prefix="shard-0compact")
        io.write_npz(target, hashes=hashes, vectors=self._vectors)
        for path in shards:
            path.unlink(missing_ok=True)
        log.info("compacted %d cache shards into %s", len(shards), target.name)

    # ------------------------------------------------------------------ access
    def __len__(self) -> int:
        return len(self._index) + len(self._pending_hashes)

    def __contains__(self, digest: bytes) -> bool:
        return digest in self._index

    def lookup(self, digests: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the cached vectors for `digests`: (positions found, rows); misses are skipped."""
        pos: list[int] = []
        rows: list[int] = []
        for i, d in enumerate(digests):
            r = self._index.get(d)
            if r is not None:
                pos.append(i)
                rows.append(r)
        return np.asarray(pos, dtype=np.int64), np.asarray(rows, dtype=np.int64)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        return self._vectors[rows]

    def add(self, digests: Sequence[bytes], vectors: np.ndarray) -> None:
        """Buffer new vectors; `flush` makes them durable and visible to `lookup`."""
        if len(digests) != len(vectors):
            raise ValueError("digests and vectors differ in length")
        self._pending_hashes.extend(digests)
        self._pending_vectors.append(np.asarray(vectors, dtype=np.float32))

    @property
    def pending(self) -> int:
        return len(self._pending_hashes)

    def flush(self) -> Path | None:
        """Write buffered vectors as one new shard (atomic) and merge them into the index."""
        if not self._pending_hashes:
            return None
        hashes = _digests_to_array(self._pending_hashes)
        vectors = np.concatenate(self._pending_vectors).astype(np.float32, copy=False)
        path = self._new_shard_path()
        io.write_npz(path, hashes=hashes, vectors=vectors)
        if not (self.dir / META_FILE).exists():
            io.write_json({"key": self.key, "dim": self.dim}, self.dir / META_FILE)
        self.shards_written += 1
        fresh: list[int] = []
        for i, h in enumerate(self._pending_hashes):
            if h not in self._index:
                self._index[h] = len(self._index)
                fresh.append(i)
        if fresh:
            self._vectors = np.concatenate([self._vectors, vectors[fresh]])
        self._pending_hashes = []
        self._pending_vectors = []
        return path

    def _new_shard_path(self, prefix: str = "shard") -> Path:
        # time_ns first: shards sort in creation order, so "first writer wins" is well defined
        return self.dir / f"{prefix}-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
