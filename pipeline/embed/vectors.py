"""The one vector normaliser of the embedding code (every backend, the passage means, the stages' reads)."""

from __future__ import annotations

import numpy as np


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32; all-zero rows stay zero (non-answers keep their zero vectors)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        return normalise(vectors[None, :])[0]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)
