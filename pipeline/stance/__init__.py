"""Stance: does an answer support, oppose, conditionally support or take no position on a proposal?

Contract (what the themes stage and the report call):

    from pipeline.stance import stance_of
    df = stance_of(answers, targets, answer_vectors=None)

- `answers`: list of answer texts (any length; long submissions are read through the sentences closest to
  the target, at most 40 candidates per answer).
- `targets`: one proposal for every answer, or one per answer (a theme's label/description, or the
  question turned into a proposal: "X should be mandated through regulation").
- `answer_vectors`: optional (n, 384) unit-norm all-MiniLM-L6-v2 answer vectors (as in `embeddings.npz`).
- returns a DataFrame row-aligned with `answers`: `stance` in support | oppose | conditional | neutral,
  `confidence` (probability of that stance) and `p_<stance>` for each. Blank answers are neutral (1.0).
  Pure apart from the embedding cache: same inputs, same output. Speed: 10,000 pairs in about 2 s when the
  sentence vectors are cached (about 30 s cold on 2 cores, most of it encoding sentences).
- Targets work best as a proposal ("The risk-based approach should be mandated through regulation."); a
  theme label ("Ban on remote biometric identification") also works; long theme descriptions that name both
  options work worse (AU Q20 tuning half: 0.79, 0.73, 0.65 accuracy).
- `stance_summary(stances)` gives "14 support, 3 oppose, 2 conditional" for a table cell.

The model (`StanceModel`, a scikit-learn style estimator over topic-free features) ships as skops under
`models/stance/<version>/` with a model card; `python -m pipeline.stance.train` reproduces it.
"""

from pipeline.stance.api import get_model, stance_of, stance_summary
from pipeline.stance.model import STANCES, StanceModel, load_model

__all__ = ["STANCES", "StanceModel", "get_model", "load_model", "stance_of", "stance_summary"]
