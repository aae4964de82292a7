"""Partitioned Parquet: answers.parquet cut into contiguous row ranges, and the per-partition outputs joined back.

Partitions are contiguous slices in ingest order, so joining the per-partition outputs in partition order gives
the rows in the order of the local run (every stage keeps its input's row order). Written with
`pipeline.io.write_parquet` (atomic), read back by `dask.dataframe.read_parquet` or one file per task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline import io

__all__ = ["PARTS_DIR", "concat_npz", "concat_parquet", "part_name", "write_partitions"]

PARTS_DIR = "partitions"  # under the batch folder: partitions/<kind>/part-00000.parquet


def part_name(i: int, suffix: str = ".parquet") -> str:
    return f"part-{i:05d}{suffix}"


def write_partitions(source: Path, out_dir: Path, rows: int) -> list[Path]:
    """Cut `source` into files of at most `rows` rows (streamed by record batch, never all in memory)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*.parquet"):  # a previous run with another partition size
        old.unlink()
    paths: list[Path] = []
    reader = pq.ParquetFile(source)
    buffer: list[pd.DataFrame] = []
    held = 0
    for batch in reader.iter_batches(batch_size=max(int(rows), 1)):
        frame = batch.to_pandas()
        buffer.append(frame)
        held += len(frame)
        while held >= rows:
            whole = pd.concat(buffer, ignore_index=True)
            paths.append(io.write_parquet(whole.iloc[:rows], out_dir / part_name(len(paths))))
            rest = whole.iloc[rows:].reset_index(drop=True)
            buffer, held = ([rest] if len(rest) else []), len(rest)
    if held or not paths:  # an empty batch still has one (empty) partition
        whole = pd.concat(buffer, ignore_index=True) if buffer else reader.read().to_pandas()
        paths.append(io.write_parquet(whole, out_dir / part_name(len(paths))))
    return paths


def concat_parquet(paths: Sequence[Path]) -> pd.DataFrame:
    """The per-partition frames in partition order, with a fresh index (as the local stage writes them)."""
    frames = [pd.read_parquet(p) for p in paths]
    non_empty = [f for f in frames if len(f)] or frames[:1]
    return pd.concat(non_empty, ignore_index=True)


def concat_npz(paths: Sequence[Path]) -> dict[str, np.ndarray]:
    """embeddings.npz arrays from per-partition npz files: every id and vector array concatenated in
    partition order (vectors of an empty part are reshaped to the batch's width), `model_id` from the first."""
    parts = [io.read_npz(p) for p in paths]
    out: dict[str, np.ndarray] = {}
    for name in parts[0]:
        if name == "model_id":
            out[name] = parts[0][name]
            continue
        arrays = [p[name] for p in parts]
        if name.endswith("vectors"):
            dim = max((a.shape[1] for a in arrays if a.ndim == 2), default=0)
            arrays = [a.reshape(len(a), dim) if len(a) == 0 else a for a in arrays]
            out[name] = np.concatenate(arrays).astype(np.float32, copy=False)
        else:
            out[name] = np.concatenate([np.asarray(a, dtype=str) for a in arrays])
    return out
