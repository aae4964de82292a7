"""Clean stage: normalise text, flag non-answers and duplicates, language, segments, mentions, PII."""

from __future__ import annotations

from pipeline.clean.mentions import Mentions, find_mentions

__all__ = ["Mentions", "clean_answers", "find_mentions"]


def __getattr__(name: str):  # lazy: importing find_mentions must not load spaCy
    if name == "clean_answers":
        from pipeline.clean.core import clean_answers

        return clean_answers
    raise AttributeError(name)
