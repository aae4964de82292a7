"""Keyphrase terms of long documents in linear time, with exactly the terms of the former per-segment scan.

A TRAI submission has thousands of keyphrases and hundreds of passages; folding every keyphrase again for every
passage made the themes stage quadratic (401 s of a 672 s TRAI run). `KeyphraseIndex` folds them once per answer.
"""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

from pipeline.themes import naming
from pipeline.themes.naming import _stem, stop_words, tokens

TRAI = "corpora/trai-differential-pricing-2015/trai_differential_pricing_submissions.csv"


def reference_keyphrase_terms(text: str, keyphrases: list[str], lang: str | None = None) -> list[str]:
    """The former implementation, frozen: every keyphrase folded and searched in the folded segment."""
    if not keyphrases:
        return []
    stop = stop_words(lang)
    seg = " " + " ".join(_stem(t) for t in tokens(text, lang)) + " "
    out = []
    for kp in keyphrases:
        words = [w for w in tokens(str(kp), lang) if w not in stop]
        if not words or all(len(w) <= 2 for w in words):
            continue
        phrase = " ".join(_stem(w) for w in words)
        if f" {phrase} " in seg:
            out.append(phrase)
    return out


@pytest.mark.shared
def test_index_gives_the_former_terms_on_real_long_documents(shared_dir) -> None:
    docs = pd.read_csv(shared_dir / TRAI, dtype=str, keep_default_na=False)
    docs = docs[docs["text"].str.len() > 5000].head(4)["text"].tolist()
    rng = random.Random(7)
    checked = hits = 0
    for doc in docs:
        words = re.findall(r"\S+", doc)
        # keyphrase-like strings from the document itself (1-4 words, some repeated, some with stop words)
        keyphrases = [" ".join(words[i:i + rng.randint(1, 4)]) for i in rng.sample(range(len(words) - 4), 300)]
        keyphrases += keyphrases[:20] + ["the", "a b", "Digital Divide", "net neutralities"]
        index = naming.KeyphraseIndex(keyphrases)
        passages = [p for p in re.split(r"(?<=[.!?])\s+", doc) if p.strip()][:150]
        for passage in passages:
            expected = reference_keyphrase_terms(passage, keyphrases)
            assert index.terms_in(passage) == expected
            assert naming.keyphrase_terms(passage, keyphrases) == expected
            checked += 1
            hits += bool(expected)
    assert checked >= 200 and hits >= 100  # real passages, most of them with terms


def test_index_keeps_keyphrase_order_and_repeats() -> None:
    index = naming.KeyphraseIndex(["rural broadband", "the schools", "Rural Broadband", "zz"])
    assert index.terms_in("Schools need rural broadband and more schools.") == [
        "rural broadband", "school", "rural broadband"]
    assert naming.KeyphraseIndex([]).terms_in("anything") == []
