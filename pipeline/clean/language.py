"""Language of each answer with py3langid, restricted to the languages a consultation plausibly uses.

Restricting the label set removes most of langid's errors on short informal text (e.g. English
tweets labelled as Latin or Malay). Very short or low-confidence texts get "und" (undetermined),
which is more honest than a guess.
"""

from __future__ import annotations

import logging
import re
from functools import lru_cache
from typing import Any

__all__ = ["DEFAULT_LANGUAGES", "LanguageDetector"]

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGES = (
    "en", "fr", "es", "de", "it", "pt", "nl", "pl", "sv", "da", "fi", "cs", "el", "ro", "hu",
    "ru", "ar", "zh", "ja", "ko", "tr", "id", "sw", "hi", "uk", "bg", "hr", "sk", "sl",
)
_LETTERS = re.compile(r"[^\W\d_]+")
_URL = re.compile(r"(?:https?://|www\.)\S+|\S+@\S+")


@lru_cache(maxsize=8)
def _identifier(languages: tuple[str, ...]) -> Any:
    from py3langid.langid import LanguageIdentifier

    ident = LanguageIdentifier.from_model_file("data/model.npz.xz", norm_probs=True)
    ident.set_languages(list(languages))
    return ident


class LanguageDetector:
    """Callable: text -> ISO 639-1 code or "und"."""

    def __init__(
        self,
        languages: tuple[str, ...] | list[str] = DEFAULT_LANGUAGES,
        min_letters: int = 12,
        min_words: int = 3,
        min_confidence: float = 0.6,
    ) -> None:
        self.languages = tuple(languages)
        self.min_letters = min_letters
        self.min_words = min_words
        self.min_confidence = min_confidence

    def __call__(self, text: str) -> str:
        sample = _URL.sub(" ", text or "")[:4000]
        words = _LETTERS.findall(sample)
        if len(words) < self.min_words or sum(map(len, words)) < self.min_letters:
            return "und"
        lang, prob = _identifier(self.languages).classify(sample)
        return str(lang) if prob >= self.min_confidence else "und"
