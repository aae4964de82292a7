"""Clean stage: normalise text, flag non-answers and duplicates, language, segments, mentions, PII.

Importing this package does not load spaCy; the model is loaded on the first `clean_answers` call.
"""

from __future__ import annotations

from pipeline.clean.core import clean_answers
from pipeline.clean.mentions import Mentions, find_mentions

__all__ = ["Mentions", "clean_answers", "find_mentions"]
