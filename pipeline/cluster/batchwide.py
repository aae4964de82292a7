"""The clean stage's two batch-wide decisions, from per-partition sufficient statistics.

Duplicates (`pipeline.clean.duplicates.find_duplicates`) and boilerplate (`pipeline.clean.boilerplate`) compare
every answer with every other one, so a partition cannot decide them alone. Each partition instead emits small
statistics that, merged, give exactly the local decision:

- duplicates: per answer its owner, a 128-bit hash of its normalised token key (exact groups) and the 20 LSH
  band hashes of its MinHash signature (same permutations as the local code, same seed); the driver joins the
  bands into candidate pairs, fetches the tokens of candidate texts only, verifies the exact Jaccard and
  unions, as `find_duplicates` does. Groups, ids, sizes and kinds are identical (ids come from the smallest
  member answer id, never from row order).
- boilerplate: per eligible passage the distinct (shingle hash, document hash) pairs; a Dask shuffle drops
  repeated pairs and counts documents per shingle; the shingles held by enough documents (a small set) go back
  to every partition, which flags its passages with the local coverage rule.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from pipeline.clean import duplicates as dup
from pipeline.clean.boilerplate import shingles as bp_shingles
from pipeline.clean.boilerplate import words as bp_words
from pipeline.clean.core import clean_params
from pipeline.clean.nonanswers import nonanswer_reason
from pipeline.clean.normalise import normalise_text

__all__ = [
    "DOC_MARK", "N_BANDS", "ROWS_PER_BAND", "boilerplate_flags", "boilerplate_need", "dedup_stats",
    "group_duplicates", "owners_of", "shingle_doc_pairs", "tokens_for_keys",
]

# find_duplicates' defaults (clean_answers does not override them)
N_BANDS = 20
ROWS_PER_BAND = 5
SHINGLE_SIZE = 5
BOILER_N = 5
DOC_MARK = 0  # shingle value of the row that says "this document has an eligible passage"


def _h64(text: str) -> int:
    """Stable signed 64-bit hash (Parquet/pandas int64); Python's hash() is salted per process."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)


def _key_hash(key: str) -> str:
    return hashlib.blake2b(key.encode("utf-8"), digest_size=16).hexdigest()


def _str(values: Iterable[Any]) -> list[str]:
    return ["" if v is None or (isinstance(v, float) and v != v) else str(v) for v in values]


def owners_of(part: pd.DataFrame) -> list[str]:
    """The respondent an answer belongs to, as clean_answers defines it (submission group, else response)."""
    groups = _str(part["submission_group"]) if "submission_group" in part else [""] * len(part)
    return [g or r for g, r in zip(groups, _str(part["response_id"]), strict=True)]


def _minhash_coeffs(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The permutations of `duplicates._near_pairs` (same generator, same order of draws)."""
    rng = np.random.default_rng(seed)
    n_perm = N_BANDS * ROWS_PER_BAND
    a = rng.integers(1, int(dup._PRIME), size=n_perm, dtype=np.uint64)
    b = rng.integers(0, int(dup._PRIME), size=n_perm, dtype=np.uint64)
    return a, b


def _keyed_tokens(part: pd.DataFrame, cfg: dict[str, Any]) -> list[list[str] | None]:
    """Tokens of each answer that can join a duplicate group (eligible, >= min_exact words), else None."""
    min_exact = min(int(cfg["min_exact_duplicate_words"]), int(cfg["min_duplicate_words"]))
    questions = _str(part["question_text"]) if "question_text" in part else [""] * len(part)
    out: list[list[str] | None] = []
    for answer, question in zip(part["answer"].tolist(), questions, strict=True):
        text = normalise_text(answer)
        if nonanswer_reason(text, question):
            out.append(None)
            continue
        toks = dup._tokens(text)
        out.append(toks if len(toks) >= min_exact else None)
    return out


STATS_COLUMNS = ["answer_id", "owner", "key", *(f"b{i}" for i in range(N_BANDS)), "has_bands"]


def dedup_stats(part: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Per answer: id, owner, key hash ("" when it cannot be a duplicate), LSH band hashes (pass 1)."""
    cfg = clean_params(params)
    threshold = float(cfg["near_duplicate_threshold"])
    min_words = int(cfg["min_duplicate_words"])
    a, b = _minhash_coeffs(int(cfg["seed"]))
    ids = [f"{r}::{q}" for r, q in zip(_str(part["response_id"]), _str(part["question_id"]), strict=True)]
    keys: list[str] = []
    bands = np.zeros((len(part), N_BANDS), dtype=np.int64)
    has = np.zeros(len(part), dtype=bool)
    for i, toks in enumerate(_keyed_tokens(part, cfg)):
        if toks is None:
            keys.append("")
            continue
        keys.append(_key_hash(" ".join(toks)))
        if threshold < 1.0 and len(toks) >= min_words:
            x = dup._hash64(dup.shingles(toks, SHINGLE_SIZE))[:, None]
            sig = ((a[None, :] * x + b[None, :]) % dup._PRIME).min(axis=0)
            for band in range(N_BANDS):
                chunk = sig[band * ROWS_PER_BAND:(band + 1) * ROWS_PER_BAND].tobytes()
                bands[i, band] = int.from_bytes(hashlib.blake2b(chunk, digest_size=8).digest(), "little",
                                                signed=True)
            has[i] = True
    frame = pd.DataFrame({"answer_id": ids, "owner": owners_of(part), "key": keys})
    for band in range(N_BANDS):
        frame[f"b{band}"] = bands[:, band]
    frame["has_bands"] = has
    return frame[STATS_COLUMNS]


def tokens_for_keys(part: pd.DataFrame, wanted: set[str], params: dict[str, Any]) -> dict[str, list[str]]:
    """Tokens of the candidate texts (by key hash) found in this partition (pass 1b, candidates only)."""
    out: dict[str, list[str]] = {}
    for toks in _keyed_tokens(part, clean_params(params)):
        if toks is not None:
            key = _key_hash(" ".join(toks))
            if key in wanted:
                out.setdefault(key, toks)
    return out


def group_duplicates(
    stats: pd.DataFrame, fetch_tokens: Callable[[set[str]], dict[str, list[str]]], params: dict[str, Any]
) -> pd.DataFrame:
    """`find_duplicates` over the whole batch from the statistics: rows of grouped answers only
    (`answer_id, dup_group, dup_group_size, dup_kind`)."""
    cfg = clean_params(params)
    threshold = float(cfg["near_duplicate_threshold"])
    keyed = stats[stats["key"] != ""]
    distinct = sorted(set(keyed["key"]))
    pos = {k: p for p, k in enumerate(distinct)}
    uf = dup._UnionFind(len(distinct))
    if threshold < 1.0 and len(distinct) > 1:
        with_bands = keyed[keyed["has_bands"]].drop_duplicates("key")
        buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
        band_values = with_bands[[f"b{i}" for i in range(N_BANDS)]].to_numpy()
        for key, values in zip(with_bands["key"].tolist(), band_values, strict=True):
            p = pos[key]
            for band, value in enumerate(values.tolist()):
                buckets[(band, value)].append(p)
        candidates: set[tuple[int, int]] = set()
        for members in buckets.values():
            for i_pos, i in enumerate(members):
                for j in members[i_pos + 1:]:
                    candidates.add((i, j) if i < j else (j, i))
        if candidates:
            need = {distinct[i] for pair in candidates for i in pair}
            tokens = fetch_tokens(need)
            sets = {k: dup.shingles(tokens[k], SHINGLE_SIZE) for k in need}
            for i, j in sorted(candidates):
                si, sj = sets[distinct[i]], sets[distinct[j]]
                inter = len(si & sj)
                if inter and inter / (len(si) + len(sj) - inter) >= threshold:
                    uf.union(i, j)
    members_of: dict[int, list[int]] = defaultdict(list)
    keys = keyed["key"].tolist()
    for row, key in enumerate(keys):
        members_of[uf.find(pos[key])].append(row)
    ids = keyed["answer_id"].tolist()
    owners = keyed["owner"].tolist()
    out: list[tuple[str, str, int, str]] = []
    for rows in members_of.values():
        if len(rows) < 2:
            continue
        gid = dup._group_id(min(ids[r] for r in rows))
        n_owners = len({owners[r] for r in rows})
        kind = ("exact" if len({keys[r] for r in rows}) == 1 else "near") if n_owners >= 2 else "self"
        out += [(ids[r], gid, len(rows), kind) for r in rows]
    return pd.DataFrame(out, columns=["answer_id", "dup_group", "dup_group_size", "dup_kind"])


def _eligible_segments(clean: pd.DataFrame, segments: pd.DataFrame, cfg: dict[str, Any]) -> tuple[
        np.ndarray, list[str]]:
    """Boilerplate candidates as clean_answers picks them (passages of documents that are no campaign copy),
    with the document each belongs to."""
    owner_of = dict(zip(clean["answer_id"].astype(str), owners_of(clean), strict=True))
    min_seg = int(cfg["boilerplate_min_segments"])
    ok_answers = set(clean.loc[(clean["n_segments"] >= min_seg) & (clean["dup_group"] == ""), "answer_id"])
    answer_ids = segments["answer_id"].astype(str).tolist()
    eligible = np.array([a in ok_answers for a in answer_ids], dtype=bool)
    return eligible, [owner_of[a] for a in answer_ids]


def _shingle_hashes(tokens: list[str]) -> list[int]:
    return [_h64("\x1f".join(sh)) for sh in bp_shingles(tokens, BOILER_N)]


def shingle_doc_pairs(clean: pd.DataFrame, segments: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
    """Distinct (shingle hash, document hash) pairs of the eligible passages, plus one (DOC_MARK, document)
    row per document with an eligible passage (the denominator of the share)."""
    cfg = clean_params(params)
    eligible, docs = _eligible_segments(clean, segments, cfg)
    pairs: set[tuple[int, int]] = set()
    for text, doc, ok in zip(segments["text"].tolist(), docs, eligible, strict=True):
        if not ok:
            continue
        d = _h64(doc)
        pairs.add((DOC_MARK, d))
        pairs.update((s, d) for s in _shingle_hashes(bp_words(str(text))))
    frame = pd.DataFrame(sorted(pairs), columns=["shingle", "doc"], dtype="int64")
    return frame if len(frame) else pd.DataFrame({"shingle": pd.Series([], dtype="int64"),
                                                  "doc": pd.Series([], dtype="int64")})


def boilerplate_need(n_docs: int, params: dict[str, Any]) -> int:
    """Documents a shingle must be held by (boilerplate_mask's rule)."""
    cfg = clean_params(params)
    return max(int(cfg["boilerplate_min_documents"]), math.ceil(float(cfg["boilerplate_min_share"]) * n_docs))


def boilerplate_flags(clean: pd.DataFrame, segments: pd.DataFrame, common: set[int],
                      params: dict[str, Any]) -> np.ndarray:
    """`is_boilerplate` of a partition's passages given the batch's common shingles (boilerplate_mask's
    coverage rule: >= min_coverage of the words inside common shingles; a short passage is its own shingle)."""
    cfg = clean_params(params)
    out = np.zeros(len(segments), dtype=bool)
    if not common or not len(segments):
        return out
    eligible, _docs = _eligible_segments(clean, segments, cfg)
    min_cov = float(cfg["boilerplate_min_coverage"])
    for i, (text, ok) in enumerate(zip(segments["text"].tolist(), eligible, strict=True)):
        if not ok:
            continue
        tk = bp_words(str(text))
        if not tk:
            continue
        hashes = _shingle_hashes(tk)
        if len(tk) < BOILER_N:
            out[i] = hashes[0] in common
            continue
        covered = np.zeros(len(tk), dtype=bool)
        for j, h in enumerate(hashes):
            if h in common:
                covered[j:j + BOILER_N] = True
        out[i] = covered.mean() >= min_cov
    return out
