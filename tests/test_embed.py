"""Embed stage: torch backend, content-addressed cache (hits, growth, interruption), determinism,
zero vectors for empty text, and the stage shell writing embeddings.npz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import config, io
from pipeline.embed import encode, encode_with_stats
from pipeline.embed.backends import get_backend
from pipeline.embed.cache import EmbeddingCache, cache_key, text_digest
from pipeline.embed.stage import run

# Written for these tests (no respondent text).
TEXTS = [
    "Broadband should be affordable for every household.",
    "The Internet Governance Forum needs a permanent mandate.",
    "Teachers need training in digital skills.",
    "Artificial intelligence must respect human rights.",
    "Rural clinics rely on mobile networks for telemedicine.",
    "Open standards make e-government services interoperable.",
    "Electronic waste is a growing environmental problem.",
    "Community networks connect remote villages.",
    "Cybersecurity capacity is weak in many small states.",
    "Local languages deserve more online content.",
    "Data protection laws should apply across borders.",
    "Women remain under-represented in technology careers.",
]
NEW_TEXTS = ["Satellite links can serve islands.", "Digital identity must be voluntary."]


@pytest.fixture(scope="session")
def embed_params() -> dict:
    """Small batches and shards so a dozen texts exercise batching and shard writing."""
    return config.deep_merge(config.load_params(), {"embed": {"backend": "torch", "batch_size": 4,
                                                              "shard_size": 4}})


@pytest.fixture(scope="session")
def torch_backend(embed_params: dict, tmp_path_factory: pytest.TempPathFactory):
    """Load the sentence-transformers model once for the whole session."""
    return get_backend(embed_params["embed"], tmp_path_factory.mktemp("unused"))


def _count_calls(monkeypatch: pytest.MonkeyPatch, backend) -> list[int]:
    """Record the batch sizes the backend is asked to encode."""
    calls: list[int] = []
    original = backend.encode_batch

    def counting(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return original(texts)

    monkeypatch.setattr(backend, "encode_batch", counting)
    return calls


def test_vectors_are_unit_norm_float32_and_empty_texts_are_zero(
    embed_params, torch_backend, isolated_cache
):
    texts = ["", TEXTS[0], "   \n", TEXTS[1]]
    vecs = encode(texts, embed_params, isolated_cache)
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), [0, 1, 0, 1], atol=1e-5)
    assert not vecs[0].any() and not vecs[2].any()


def test_embeddings_are_semantic(embed_params, torch_backend, isolated_cache):
    vecs = encode([
        "Broadband access is too expensive in rural areas.",
        "Internet connections cost too much for people in the countryside.",
        "The football match ended in a draw.",
    ], embed_params, isolated_cache)
    assert vecs[0] @ vecs[1] > 0.5 > vecs[0] @ vecs[2]


def test_second_call_encodes_nothing(embed_params, torch_backend, isolated_cache, monkeypatch):
    first, s1 = encode_with_stats(TEXTS, embed_params, isolated_cache)
    assert s1.cache_hits == 0 and s1.encoded == len(TEXTS)
    assert s1.shards_written == 3  # 12 vectors, a shard every 4
    calls = _count_calls(monkeypatch, torch_backend)
    second, s2 = encode_with_stats(TEXTS, embed_params, isolated_cache)
    assert calls == [] and s2.encoded == 0 and s2.cache_hits == len(TEXTS)
    assert np.array_equal(first, second)


def test_fully_cached_run_never_loads_a_model(embed_params, torch_backend, isolated_cache,
                                             monkeypatch):
    first = encode(TEXTS + [""], embed_params, isolated_cache)

    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded when everything is cached")

    monkeypatch.setattr("pipeline.embed.core.get_backend", no_model)
    assert np.array_equal(encode(TEXTS[::-1] + [""], embed_params, isolated_cache)[:-1],
                          first[:-1][::-1])
    with pytest.raises(AssertionError, match="must not be loaded"):
        encode(NEW_TEXTS, embed_params, isolated_cache)


def test_grown_batch_encodes_only_new_texts(embed_params, torch_backend, isolated_cache,
                                            monkeypatch):
    encode(TEXTS, embed_params, isolated_cache)
    calls = _count_calls(monkeypatch, torch_backend)
    vecs, stats = encode_with_stats(TEXTS + NEW_TEXTS, embed_params, isolated_cache)
    assert stats.cache_hits == len(TEXTS) and stats.encoded == len(NEW_TEXTS)
    assert sum(calls) == len(NEW_TEXTS)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_duplicates_are_encoded_once(embed_params, torch_backend, isolated_cache, monkeypatch):
    calls = _count_calls(monkeypatch, torch_backend)
    vecs, stats = encode_with_stats([TEXTS[0], TEXTS[1], TEXTS[0]], embed_params, isolated_cache)
    assert sum(calls) == 2 and stats.unique == 2
    assert np.array_equal(vecs[0], vecs[2])


def test_interrupted_run_keeps_written_shards(embed_params, torch_backend, isolated_cache,
                                              monkeypatch):
    original = torch_backend.encode_batch
    done: list[int] = []

    def dies_on_third_batch(texts: list[str]) -> np.ndarray:
        if len(done) == 2:
            raise KeyboardInterrupt
        done.append(len(texts))
        return original(texts)

    monkeypatch.setattr(torch_backend, "encode_batch", dies_on_third_batch)
    with pytest.raises(KeyboardInterrupt):
        encode(TEXTS, embed_params, isolated_cache)
    key = cache_key("torch", "all-MiniLM-L6-v2", 256)
    shards = list((isolated_cache / "embeddings" / key).glob("shard-*.npz"))
    assert len(shards) == 2 and not list((isolated_cache / "embeddings" / key).glob(".*tmp"))
    assert len(EmbeddingCache(isolated_cache, key, 384)) == 8

    monkeypatch.setattr(torch_backend, "encode_batch", original)
    _, stats = encode_with_stats(TEXTS, embed_params, isolated_cache)
    assert stats.cache_hits == 8 and stats.encoded == 4


def test_same_texts_give_identical_vectors_in_any_order(embed_params, torch_backend, tmp_path):
    texts = TEXTS[:6]
    a = encode(texts, embed_params, tmp_path / "a")
    rev = encode(texts[::-1], embed_params, tmp_path / "b")[::-1]
    again = encode(texts, embed_params, tmp_path / "c")
    assert np.array_equal(a, rev) and np.array_equal(a, again)


def test_cache_disabled_still_encodes(embed_params, torch_backend, tmp_path):
    params = config.deep_merge(embed_params, {"embed": {"cache": False}})
    vecs, stats = encode_with_stats(TEXTS[:3], params, tmp_path)
    assert stats.encoded == 3 and not (tmp_path / "embeddings").exists()
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_cache_index_and_compaction(tmp_path):
    """Many shards are merged into one on open; lookups see every vector exactly once."""
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((30, 8)).astype(np.float32)
    digests = [text_digest(f"t{i}") for i in range(30)]
    for i in range(0, 30, 3):
        cache = EmbeddingCache(tmp_path, "k", 8, compact_above=1000)
        cache.add(digests[i : i + 3], vecs[i : i + 3])
        cache.add(digests[:1], vecs[:1])  # a duplicate across shards: first writer wins
        cache.flush()
    assert len(list((tmp_path / "embeddings" / "k").glob("shard-*.npz"))) == 10
    compacted = EmbeddingCache(tmp_path, "k", 8, compact_above=4)
    assert len(list((tmp_path / "embeddings" / "k").glob("shard-*.npz"))) == 1
    for cache in (compacted, EmbeddingCache(tmp_path, "k", 8)):
        pos, rows = cache.lookup(digests[::-1] + [text_digest("absent")])
        assert len(pos) == 30 and np.array_equal(cache.vectors(rows), vecs[::-1])


def test_digest_with_trailing_zero_bytes_round_trips(tmp_path):
    digest = b"\x01" * 31 + b"\x00"
    cache = EmbeddingCache(tmp_path, "k", 2)
    cache.add([digest], np.ones((1, 2), dtype=np.float32))
    cache.flush()
    assert digest in EmbeddingCache(tmp_path, "k", 2)


def test_unknown_backend_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="embed.backend"):
        encode(["x"], {"embed": {"backend": "word2vec"}}, tmp_path)


def _batch(tmp_path: Path) -> Path:
    answers = pd.DataFrame({
        "answer_id": ["r1::q1", "r1::q2", "r2::q1"],
        "text_clean": [TEXTS[0] + " " + TEXTS[1], "N/A", TEXTS[2]],
        "is_nonanswer": [False, True, False],
    })
    segments = pd.DataFrame({
        "segment_id": ["r1::q1#0", "r1::q1#1", "r1::q2#0", "r2::q1#0"],
        "answer_id": ["r1::q1", "r1::q1", "r1::q2", "r2::q1"],
        "text": [TEXTS[0], TEXTS[1], "N/A", TEXTS[2]],
        "is_nonanswer": [False, False, True, False],
    })
    io.write_parquet(answers, tmp_path / "answers_clean.parquet")
    io.write_parquet(segments, tmp_path / "segments.parquet")
    return tmp_path


def test_stage_writes_embeddings_npz(embed_params, torch_backend, isolated_cache, tmp_path):
    batch = _batch(tmp_path / "batch")
    summary = run(batch, embed_params, isolated_cache)
    data = io.read_npz(batch / "embeddings.npz")
    assert data["answer_ids"].tolist() == ["r1::q1", "r1::q2", "r2::q1"]
    assert data["segment_ids"].tolist() == ["r1::q1#0", "r1::q1#1", "r1::q2#0", "r2::q1#0"]
    assert data["answer_vectors"].dtype == np.float32
    assert np.allclose(np.linalg.norm(data["answer_vectors"], axis=1), [1, 0, 1], atol=1e-5)
    assert np.allclose(np.linalg.norm(data["segment_vectors"], axis=1), [1, 1, 0, 1], atol=1e-5)
    # an answer that is one segment shares its vector
    assert np.array_equal(data["answer_vectors"][2], data["segment_vectors"][3])
    assert str(data["model_id"]) == "torch:all-MiniLM-L6-v2"
    assert summary["texts"] == 7 and summary["encoded"] == 4 and summary["backend"] == "torch"

    again = run(batch, embed_params, isolated_cache)
    assert again["encoded"] == 0 and again["cache_hits"] == 4
    assert np.array_equal(io.read_npz(batch / "embeddings.npz")["answer_vectors"],
                          data["answer_vectors"])


def test_stage_warns_when_most_answers_are_not_english(embed_params, torch_backend,
                                                       isolated_cache, tmp_path, caplog):
    batch = _batch(tmp_path / "batch")
    answers = pd.read_parquet(batch / "answers_clean.parquet")
    io.write_parquet(answers.assign(language=["fr", "und", "de"]),
                     batch / "answers_clean.parquet")
    with caplog.at_level("WARNING", logger="pipeline.embed.stage"):
        summary = run(batch, embed_params, isolated_cache)
    assert summary["non_english_share"] == 1.0  # the non-answer does not count
    assert "embed.backend=multilingual" in caplog.text


def test_stage_reports_missing_input(embed_params, tmp_path):
    from pipeline.errors import InputError

    with pytest.raises(InputError, match="answers_clean.parquet"):
        run(tmp_path, embed_params, tmp_path / "cache")
