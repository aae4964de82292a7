"""A faster, exact stand-in for the matcher of spaCy's `attribute_ruler` (tag map and exceptions).

The English pipelines' attribute ruler maps tagger tags to POS and morphology through 179 Matcher patterns; spaCy's
Matcher starts a state for every pattern at every token and calls Python predicates (IN, NOT_IN, REGEX) for
each, which made it a fifth of the clean stage's spaCy time on long documents. Every pattern here is one or two
tokens with attribute tests only (no operators), so the matches follow from each token's (TAG, LOWER, DEP,
IS_SPACE) values: they are worked out once per distinct value tuple and cached. `match` returns the same
(match_id, start, end) set as the spaCy Matcher, and the ruler's own code sorts and applies them, so the
annotations are identical (tests/test_clean_spacy_speed.py compares them token by token on real text).
Patterns of any other shape make `FastRulerMatcher.supports` False and the spaCy matcher stays.
"""

from __future__ import annotations

import re
from typing import Any

from spacy.attrs import DEP, IS_SPACE, LOWER, TAG
from spacy.strings import get_string_id

__all__ = ["FastRulerMatcher", "install"]

_ATTRS = {"TAG": 0, "LOWER": 1, "DEP": 2, "IS_SPACE": 3}
_ARRAY_ATTRS = [TAG, LOWER, DEP, IS_SPACE]
_CACHE_LIMIT = 200_000  # distinct (TAG, LOWER, DEP, IS_SPACE) tuples kept, about 40 MB


def _value_id(value: Any) -> int:
    return int(value) if isinstance(value, bool) else int(get_string_id(value))


def _compile_token(spec: dict[str, Any]) -> list[tuple[int, str, Any]] | None:
    """[(attribute index, op, operand)] for one token pattern; None when a test is not supported."""
    tests: list[tuple[int, str, Any]] = []
    for key, value in spec.items():
        if key not in _ATTRS:
            return None
        col = _ATTRS[key]
        if isinstance(value, dict):
            if len(value) != 1:
                return None
            ((op, operand),) = value.items()
            if op in ("IN", "NOT_IN") and isinstance(operand, list) and key != "IS_SPACE":
                tests.append((col, op, frozenset(_value_id(v) for v in operand)))
            elif op == "REGEX" and key == "LOWER" and isinstance(operand, str):
                tests.append((col, op, re.compile(operand)))
            else:
                return None
        elif isinstance(value, (str, bool)):
            tests.append((col, "==", _value_id(value)))
        else:
            return None
    return tests


class FastRulerMatcher:
    """Duck-typed `Matcher.__call__(doc, allow_missing=True, as_spans=False)` for attribute-ruler patterns."""

    def __init__(self, matcher: Any, strings: Any) -> None:
        self.strings = strings
        self.supports = True
        self.patterns: list[tuple[int, list[list[tuple[int, str, Any]]]]] = []
        for key in list(matcher._patterns):
            on_match, pats = matcher.get(key)
            for pat in pats:
                compiled = [_compile_token(tok) for tok in pat]
                if on_match is not None or not 1 <= len(pat) <= 2 or any(c is None for c in compiled):
                    self.supports = False
                    return
                self.patterns.append((int(key), [c for c in compiled if c is not None]))
        # (pattern, position) candidates by the value of an exact TAG or LOWER test, the rest always tried.
        self._by_value: dict[tuple[int, int], list[tuple[int, int]]] = {}
        self._always: list[tuple[int, int]] = []
        for p, (_, toks) in enumerate(self.patterns):
            for pos, tests in enumerate(toks):
                exact = [(col, operand) for col, op, operand in tests if op == "==" and col in (0, 1)]
                if exact:
                    self._by_value.setdefault(exact[0], []).append((p, pos))
                else:
                    self._always.append((p, pos))
        # Which (pattern, position) tests a value tuple passes, in pattern order.
        self._cache: dict[tuple[int, int, int, int], tuple[tuple[int, int], ...]] = {}

    def _passes(self, row: tuple[int, int, int, int], tests: list[tuple[int, str, Any]]) -> bool:
        for col, op, operand in tests:
            value = row[col]
            if op == "==":
                if value != operand:
                    return False
            elif op == "IN":
                if value not in operand:
                    return False
            elif op == "NOT_IN":
                if value in operand:
                    return False
            elif not operand.search(self.strings[value]):  # REGEX on the lower-case form, as spaCy does
                return False
        return True

    def _hits(self, row: tuple[int, int, int, int]) -> tuple[tuple[int, int], ...]:
        hits = self._cache.get(row)
        if hits is None:
            cands = [*self._by_value.get((0, row[0]), ()), *self._by_value.get((1, row[1]), ()), *self._always]
            hits = tuple(sorted(c for c in cands if self._passes(row, self.patterns[c[0]][1][c[1]])))
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.clear()
            self._cache[row] = hits
        return hits

    def __call__(self, doc: Any, allow_missing: bool = True, as_spans: bool = False) -> list[tuple[int, int, int]]:
        if as_spans:
            raise NotImplementedError("FastRulerMatcher returns (match_id, start, end) tuples only")
        rows = [tuple(r) for r in doc.to_array(_ARRAY_ATTRS).tolist()]
        hits = [self._hits(r) for r in rows]  # type: ignore[arg-type]
        out: set[tuple[int, int, int]] = set()
        n = len(rows)
        for i, token_hits in enumerate(hits):
            for p, pos in token_hits:
                if pos != 0:
                    continue
                key, toks = self.patterns[p]
                if len(toks) == 1:
                    out.add((key, i, i + 1))
                elif i + 1 < n and (p, 1) in hits[i + 1]:
                    out.add((key, i, i + 2))
        return sorted(out)


def install(nlp: Any) -> bool:
    """Swap the attribute ruler's matcher for the fast one when its patterns allow; True when swapped."""
    if "attribute_ruler" not in nlp.component_names:
        return False
    ruler = nlp.get_pipe("attribute_ruler")
    fast = FastRulerMatcher(ruler.matcher, nlp.vocab.strings)
    if not fast.supports:
        return False
    ruler.matcher = fast
    return True
