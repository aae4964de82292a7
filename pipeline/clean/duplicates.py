"""Exact and near-duplicate answers: template campaigns across respondents and self copy-paste.

Campaign answers (hundreds of identical or lightly edited texts) would otherwise dominate theme
counts; the report needs to know they are one voice repeated. Near duplicates are found with
MinHash over word 5-shingles and LSH banding (candidate pairs only within a band bucket), then
verified with the exact Jaccard similarity, so the cost grows about linearly with the number of
distinct texts (50k answers in seconds). Group ids are derived from the smallest member answer id,
so they do not depend on row order.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

__all__ = ["DuplicateGroups", "find_duplicates", "shingles"]

_TOKEN = re.compile(r"\w+")
_PRIME = np.uint64((1 << 31) - 1)  # universal hashing (a*x + b) mod p; a*x < 2**62 never overflows


@dataclass(frozen=True)
class DuplicateGroups:
    """Per input item: group id ("" if none), group size (1 if none), kind ("" | exact | near | self)."""

    group: list[str]
    size: list[int]
    kind: list[str]


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def shingles(tokens: list[str], k: int) -> set[str]:
    """Word k-shingles (the whole text as one shingle when it is shorter than k words)."""
    if len(tokens) < k:
        return {" ".join(tokens)} if tokens else set()
    return {" ".join(tokens[i : i + k]) for i in range(len(tokens) - k + 1)}


def _hash64(items: set[str]) -> np.ndarray:
    """Stable 64-bit hashes (blake2b; Python's hash() is salted per process)."""
    out = np.fromiter(
        (int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little") for s in items),
        dtype=np.uint64,
        count=len(items),
    )
    return out % _PRIME


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _near_pairs(
    shingle_sets: list[set[str]], threshold: float, n_bands: int, rows: int, seed: int
) -> list[tuple[int, int]]:
    """Pairs (i, j) of distinct texts with Jaccard >= threshold, via MinHash LSH then verification."""
    n_perm = n_bands * rows
    rng = np.random.default_rng(seed)
    a = rng.integers(1, int(_PRIME), size=n_perm, dtype=np.uint64)
    b = rng.integers(0, int(_PRIME), size=n_perm, dtype=np.uint64)
    buckets: dict[tuple[int, bytes], list[int]] = defaultdict(list)
    for idx, sh in enumerate(shingle_sets):
        if not sh:
            continue
        x = _hash64(sh)[:, None]
        sig = ((a[None, :] * x + b[None, :]) % _PRIME).min(axis=0)
        for band in range(n_bands):
            buckets[(band, sig[band * rows : (band + 1) * rows].tobytes())].append(idx)
    candidates: set[tuple[int, int]] = set()
    for members in buckets.values():
        if len(members) < 2:
            continue
        for i_pos, i in enumerate(members):
            for j in members[i_pos + 1 :]:
                candidates.add((i, j) if i < j else (j, i))
    pairs = []
    for i, j in sorted(candidates):
        si, sj = shingle_sets[i], shingle_sets[j]
        inter = len(si & sj)
        if inter and inter / (len(si) + len(sj) - inter) >= threshold:
            pairs.append((i, j))
    return pairs


def _group_id(min_member: str) -> str:
    return "dup-" + hashlib.sha1(min_member.encode("utf-8")).hexdigest()[:12]


def find_duplicates(
    ids: list[str],
    texts: list[str],
    owners: list[str],
    eligible: list[bool],
    threshold: float = 0.85,
    min_words: int = 8,
    min_exact_words: int | None = None,
    shingle_size: int = 5,
    n_bands: int = 20,
    rows_per_band: int = 5,
    seed: int = 0,
) -> DuplicateGroups:
    """Group duplicate texts. `owners` identifies the respondent (copies within one owner = self).

    Items that are not `eligible` (non-answers) or shorter than `min_words` words never join a
    group, except that identical texts of at least `min_exact_words` words (default `min_words`)
    still form exact groups: short slogans repeated by many respondents are campaigns too.
    A group spanning two or more owners is a campaign: kind "exact" when all its texts are the same
    after lower-casing and punctuation removal, else "near". A group within one owner is "self".
    """
    n = len(ids)
    min_exact = min_words if min_exact_words is None else min(min_exact_words, min_words)
    keys: list[str | None] = [None] * n
    token_lists: dict[str, list[str]] = {}
    for i, (text, ok) in enumerate(zip(texts, eligible, strict=True)):
        if not ok:
            continue
        toks = _tokens(text)
        if len(toks) < min_exact:
            continue
        key = " ".join(toks)
        keys[i] = key
        token_lists.setdefault(key, toks)

    # Distinct normalised texts, in a row-order independent order.
    distinct = sorted(token_lists)
    pos = {k: p for p, k in enumerate(distinct)}
    uf = _UnionFind(len(distinct))
    if threshold < 1.0 and len(distinct) > 1:
        sets = [
            shingles(token_lists[k], shingle_size) if len(token_lists[k]) >= min_words else set()
            for k in distinct
        ]
        for i, j in _near_pairs(sets, threshold, n_bands, rows_per_band, seed):
            uf.union(i, j)

    members: dict[int, list[int]] = defaultdict(list)
    for i, maybe_key in enumerate(keys):
        if maybe_key is not None:
            members[uf.find(pos[maybe_key])].append(i)

    group = [""] * n
    size = [1] * n
    kind = [""] * n
    for rows in members.values():
        if len(rows) < 2:
            continue
        gid = _group_id(min(ids[r] for r in rows))
        n_owners = len({owners[r] for r in rows})
        k = ("exact" if len({keys[r] for r in rows}) == 1 else "near") if n_owners >= 2 else "self"
        for r in rows:
            group[r], size[r], kind[r] = gid, len(rows), k
    return DuplicateGroups(group=group, size=size, kind=kind)
