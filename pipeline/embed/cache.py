"""Content-addressed, append-only embedding cache.

Layout: `<cache_dir>/embeddings/<key>/shard-*.npz`, each shard holding `hashes` (raw sha256 digests of
the texts, uint8 N x 32) and `vectors` (float32). Shards are written atomically and never rewritten, so an
interrupted run keeps every shard it finished and concurrent runs never corrupt each other. On open,
all shards are loaded once into one array plus a dict index, so lookups stay O(1) at 50k+ texts.

Damage never blocks a run: a shard that cannot be read (truncated by a full disk, garbled, wrong shape) is
moved to `<key>/corrupt/` with a warning and its texts are simply encoded again; temporary files left by
killed runs are removed. The key names the model weights (a content fingerprint) and, for ONNX, the
export recipe, so vectors of other weights are never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pipeline import io

log = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.npz"


def text_digest(text: str) -> bytes:
    """The content address of a text: its raw sha256 digest (32 bytes)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


#: Fingerprints of model folders keyed by their files' stat signature: the weights are hashed once per process.
_FINGERPRINTS: dict[tuple[object, ...], str] = {}


def weights_fingerprint(folder: Path, main: str) -> str:
    """Content fingerprint of a model folder: names and sizes of its files plus the sha256 of the main
    weights file. Memoised on the files' sizes and mtimes, so the weights are hashed once per process."""
    folder = Path(folder)
    files = sorted(
        p for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    )
    listing = tuple((p.relative_to(folder).as_posix(), p.stat().st_size) for p in files)
    weights = folder / main
    st = weights.stat()
    signature = (str(folder.resolve()), listing, st.st_size, st.st_mtime_ns, st.st_ino)
    digest = _FINGERPRINTS.get(signature)
    if digest is None:
        digest = io.sha256_text(json.dumps([listing, io.sha256_file(weights)]))[:12]
        _FINGERPRINTS[signature] = digest
    return digest


def cache_key(
    backend: str, model_id: str, max_seq_length: int | None, fingerprint: str | None = None
) -> str:
    """Folder name of one embedding space: vectors from different spaces never mix.

    The space includes the model weights' fingerprint (`backends.space_fingerprint`: weights and, for ONNX,
    export recipe and version; computed from the installed files unless given), so changed weights or a new
    export never serve vectors cached for old ones."""
    if fingerprint is None:
        from pipeline.embed.backends import space_fingerprint  # backends imports this module

        fingerprint = space_fingerprint(backend, model_id)
    raw = f"{backend}__{model_id}__{max_seq_length if max_seq_length else 'na'}__{fingerprint}"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", raw)


def _digests_to_array(digests: Sequence[bytes]) -> np.ndarray:
    """Digests as a uint8 (N, 32) array (numpy `S32` would strip trailing zero bytes)."""
    if not digests:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.frombuffer(b"".join(digests), dtype=np.uint8).reshape(len(digests), 32).copy()


META_FILE = "meta.json"
CORRUPT_DIR = "corrupt"
#: Errors reading a damaged .npz: truncated or garbled zip, bad deflate stream, short array data.
SHARD_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error,
)
#: When this process started using the cache: temporary files last written before it and not held by a
#: live process are leftovers of killed runs.
RUN_STARTED = time.time()
#: Whatever its writer, a temporary file untouched this long is a leftover (pid reuse, another machine).
TMP_MAX_AGE_S = 24 * 3600
#: A temporary file without a writer pid in its name (meta.json) is a leftover once this old.
TMP_NO_PID_AGE_S = 600
_TMP_PID = re.compile(r"^\.shard(?:-0compact)?-\d+-(\d+)-[0-9a-f]+\.npz\..*\.tmp$")


def _pid_alive(pid: int) -> bool:
    """Whether a process with this id runs on this machine (our own id counts as dead: nothing of ours
    written before this run started can still be in flight)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def is_stale_tmp(path: Path, run_started: float, now: float | None = None) -> bool:
    """A temporary file of a killed run: older than this run and its writer (pid in the name) is gone."""
    now = time.time() if now is None else now
    mtime = path.stat().st_mtime
    if now - mtime > TMP_MAX_AGE_S:
        return True
    if mtime >= run_started:
        return False  # may be a concurrent run writing right now
    m = _TMP_PID.match(path.name)
    if m is None:
        return now - mtime > TMP_NO_PID_AGE_S
    return not _pid_alive(int(m.group(1)))


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

    def __init__(
        self, root: Path, key: str, dim: int, compact_above: int = 64, run_started: float | None = None
    ) -> None:
        self.root = Path(root)
        self.key = key
        self.dim = dim
        self.compact_above = compact_above
        self.run_started = RUN_STARTED if run_started is None else float(run_started)
        self.dir = self.root / "embeddings" / key
        self._vectors = np.zeros((0, dim), dtype=np.float32)
        self._index: dict[bytes, int] = {}
        self._pending_hashes: list[bytes] = []
        self._pending_vectors: list[np.ndarray] = []
        self.shards_written = 0
        self.corrupt_shards = 0
        self.stale_tmp_removed = 0
        self._remove_stale_tmp()
        self._load()

    # ------------------------------------------------------------------ loading
    def _shard_paths(self) -> list[Path]:
        return sorted(self.dir.glob(SHARD_GLOB)) if self.dir.is_dir() else []

    def _remove_stale_tmp(self) -> None:
        """Delete temporary files of killed runs (see `is_stale_tmp`); concurrent runs' files are kept."""
        if not self.dir.is_dir():
            return
        now = time.time()
        for path in self.dir.glob(".*.tmp"):
            try:
                if is_stale_tmp(path, self.run_started, now):
                    path.unlink()
                    self.stale_tmp_removed += 1
            except FileNotFoundError:  # renamed into place or removed by another run meanwhile
                continue
            except OSError as exc:
                log.warning("cannot remove leftover cache file %s: %s", path, exc)
        if self.stale_tmp_removed:
            log.info("removed %d leftover temporary files of interrupted runs from %s",
                     self.stale_tmp_removed, self.dir)

    def _set_aside(self, path: Path, reason: str) -> None:
        """Move a damaged shard to `corrupt/` (kept for inspection, never read again); its texts are
        encoded again by this run."""
        self.corrupt_shards += 1
        target = self.dir / CORRUPT_DIR / path.name
        try:
            target.parent.mkdir(exist_ok=True)
            os.replace(path, target)
            where = f"moved to {target}"
        except FileNotFoundError:  # another run set it aside first
            where = "already set aside"
        except OSError as exc:
            where = f"could not be moved ({exc})"
        log.warning("corrupt embedding-cache shard %s (%s): %s; its vectors are recomputed", path, reason, where)

    def _read_shard(self, path: Path) -> tuple[np.ndarray, np.ndarray] | None:
        """(hashes, vectors) of a shard; None (after setting it aside) when it is damaged."""
        try:
            data = io.read_npz(path)
        except FileNotFoundError:  # removed by a concurrent compaction; its content moved
            return None
        except SHARD_READ_ERRORS as exc:
            self._set_aside(path, f"unreadable: {type(exc).__name__}: {exc}")
            return None
        vec = data.get("vectors")
        hs = data.get("hashes")
        if vec is None or hs is None or vec.ndim != 2:
            shape = None if vec is None else vec.shape
            self._set_aside(path, f"vectors of shape {shape}, expected (n, {self.dim})")
            return None
        if hs.ndim != 2 or hs.shape[1] != 32 or len(hs) != len(vec) or hs.dtype != np.uint8:
            self._set_aside(path, f"hashes of shape {hs.shape} for {len(vec)} vectors")
            return None
        if not np.isfinite(vec).all():
            self._set_aside(path, "non-finite vectors")
            return None
        return hs, vec

    def _load(self) -> None:
        shards = [(path, shard) for path in self._shard_paths() if (shard := self._read_shard(path))]
        widths = {vec.shape[1] for _, (_, vec) in shards}
        if len(widths) == 1 and self.dim not in widths and cached_dim(self.root, self.key) == self.dim:
            # every shard agrees on another size: meta.json is the damaged file, not the shards
            width = widths.pop()
            log.warning("cache %s: meta.json records %d-d vectors but every shard holds %d-d ones: "
                        "meta.json corrected", self.key, self.dim, width)
            self.dim = width
            self._vectors = np.zeros((0, width), dtype=np.float32)
            io.write_json({"key": self.key, "dim": width}, self.dir / META_FILE)
        hashes: list[np.ndarray] = []
        vectors: list[np.ndarray] = []
        loaded: list[Path] = []
        for path, (hs, vec) in shards:
            if vec.shape[1] != self.dim:
                self._set_aside(path, f"vectors of shape {vec.shape}, expected (n, {self.dim})")
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
