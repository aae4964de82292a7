"""Language of each answer with py3langid, restricted to the languages a consultation plausibly uses.

Restricting the label set removes most of langid's errors on short informal text (e.g. English
tweets labelled as Latin or Malay). Very short or low-confidence texts get "und" (undetermined),
which is more honest than a guess.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import lzma
import re
import threading
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_LANGUAGES", "LanguageDetector", "language_stop_words", "prefetch_identifier"]

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGES = (
    "en", "fr", "es", "de", "it", "pt", "nl", "pl", "sv", "da", "fi", "cs", "el", "ro", "hu",
    "ru", "ar", "zh", "ja", "ko", "tr", "id", "sw", "hi", "uk", "bg", "hr", "sk", "sl",
)
_LETTERS = re.compile(r"[^\W\d_]+")
# Whole tokens only ((?<!\S), possessive): "\S+@\S+" re-scanned a long token from every position (quadratic).
_URL = re.compile(r"(?:https?://|www\.)\S++|(?<!\S)[^\s@]++@\S++")


_LOAD_LOCK = threading.Lock()  # one load at a time: a caller waits for a load a prefetch thread has begun


def _identifier(languages: tuple[str, ...]) -> Any:
    """The loaded identifier (`_load_identifier`), waiting for a load a prefetch thread has begun."""
    with _LOAD_LOCK:
        return _load_identifier(languages)


@lru_cache(maxsize=8)
def _load_identifier(languages: tuple[str, ...]) -> Any:
    """py3langid's shipped model, as `LanguageIdentifier.from_model_file` reads it, but decompressed in one
    `lzma.decompress` call: that releases the GIL for the whole 0.3 s, where the library's streamed read takes it
    back every 8 KB and so barely overlaps with Python work on another thread (`prefetch_identifier`)."""
    import numpy as np
    from py3langid import modelio
    from py3langid.langid import MODEL_DIR, LanguageIdentifier

    raw = lzma.decompress((MODEL_DIR / "data" / "model.npz.xz").read_bytes())
    with np.load(io.BytesIO(raw), allow_pickle=False) as data:
        ident = LanguageIdentifier(
            np.asarray(data["ptc"]), np.asarray(data["pc"]), data["classes"].tolist(),
            modelio._to_array(data["nextmove"]), data["out_feat"].tolist(), norm_probs=True,
            tk_row=modelio._to_array(data["nextmove_row"]),
        )
    ident.set_languages(list(languages))
    return ident


def clear_identifier_cache() -> None:
    """Drop the loaded models (the runner frees them once no stage left needs them)."""
    _load_identifier.cache_clear()


def prefetch_identifier(languages: tuple[str, ...] | list[str]) -> threading.Thread:
    """Start loading the identifier for `languages` on a thread, so it overlaps other start-up work; the next
    `LanguageDetector` call waits for it. Most of the load is LZMA decompression of langid's 68 MB model, which
    releases the GIL (ITU-size batch: 0.37 s of the clean stage's 0.49 s load, done while spaCy loads)."""
    languages = tuple(languages)
    from py3langid.langid import LanguageIdentifier  # noqa: F401 - imported here, not on the thread

    started = threading.Event()

    def load() -> None:
        with _LOAD_LOCK:
            started.set()
            _load_identifier(languages)

    thread = threading.Thread(target=load, name="langid-load", daemon=True)
    thread.start()
    started.wait()  # holds the lock now: a detector called meanwhile waits instead of loading a second copy
    return thread


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

    def _sample(self, text: str) -> str | None:
        sample = _URL.sub(" ", (text or "")[:8000])[:4000]  # langid reads 4000 chars: clean no more
        words = _LETTERS.findall(sample)
        if len(words) < self.min_words or sum(map(len, words)) < self.min_letters:
            return None
        return sample

    def __call__(self, text: str) -> str:
        sample = self._sample(text)
        if sample is None:
            return "und"
        lang, prob = _identifier(self.languages).classify(sample)
        return str(lang) if prob >= self.min_confidence else "und"

    def detect_many(self, texts: list[str], prior_weight: float = 1.0) -> list[str]:
        """Detect a batch; uncertain texts are re-decided with the batch's language mix as a prior.

        A short English answer ("Hospitality and kindness.") gets only ~0.5 from langid; in a
        batch that is 95% English the posterior p(lang | text) * p(lang) is decisive. Texts below
        the length floor stay "und". The result depends on the set of texts, not their order.
        """
        ident = _identifier(self.languages)
        out: list[str] = []
        uncertain: dict[int, list[tuple[str, float]]] = {}
        for i, text in enumerate(texts):
            sample = self._sample(text)
            if sample is None:
                out.append("und")
                continue
            ranked = ident.rank(sample)
            lang, prob = ranked[0]
            if prob >= self.min_confidence:
                out.append(str(lang))
            else:
                out.append("und")
                uncertain[i] = ranked
        confident = [x for x in out if x != "und"]
        if not uncertain or len(confident) < 20:
            return out
        counts = {lang: confident.count(lang) for lang in set(confident)}
        n_langs = len(self.languages)
        prior = {lang: (counts.get(lang, 0) + 1.0) / (len(confident) + n_langs) for lang in self.languages}
        for i, ranked in uncertain.items():
            post = {str(lang): p * prior.get(str(lang), 0.0) ** prior_weight for lang, p in ranked}
            total = sum(post.values()) or 1.0
            best = max(sorted(post), key=lambda k: post[k])
            if post[best] / total >= self.min_confidence:
                out[i] = best
        return out


@cache
def language_stop_words(lang: str) -> frozenset[str]:
    """spaCy's stop-word list of one language (shipped without any model download); empty when it has none."""
    if not re.fullmatch(r"[a-z]{2,3}", lang or ""):
        return frozenset()
    # the file alone, not `spacy.lang.<lang>`: the package's __init__ compiles the language's tokenizer
    # exceptions (French: seconds), which a stop-word list does not need. The files import nothing.
    spec = importlib.util.find_spec("spacy")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    path = Path(next(iter(spec.submodule_search_locations))) / "lang" / lang / "stop_words.py"
    if not path.is_file():
        return frozenset()
    file_spec = importlib.util.spec_from_file_location(f"_wsis_stop_words_{lang}", path)
    if file_spec is None or file_spec.loader is None:
        return frozenset()
    mod = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(mod)
    return frozenset(str(w).lower().replace("’", "'") for w in getattr(mod, "STOP_WORDS", ()))
