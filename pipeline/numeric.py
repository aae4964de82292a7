"""The one logit/sigmoid pair of the code base (tagger scores, decision margins, framework calibration)."""

from __future__ import annotations

import numpy as np

EPS = 1e-6


def logit(p: np.ndarray) -> np.ndarray:
    """Log-odds in float64, with probabilities clipped to [EPS, 1 - EPS] so 0 and 1 stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.asarray(np.log(p / (1 - p)))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function in float64; inputs clipped to +-30 so exp never overflows."""
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, dtype=np.float64), -30, 30))))
