"""Faster and multilingual embedding backends: the int8 ONNX export agrees with the torch reference
on real consultation sentences (and fails loudly when it does not); the USE multilingual backend
loads offline and maps translations close together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline import config
from pipeline.embed import encode_with_stats
from pipeline.embed.backends import get_backend
from pipeline.embed.onnx_export import (
    CHECK_FILE,
    INT8_FILE,
    OnnxAgreementError,
    check_onnx_agreement,
)

GD_FILE = "corpora/cip-global-dialogues/GD1-3_open_responses_with_remesh_tags.csv"


@pytest.fixture(scope="session")
def params() -> dict:
    return config.load_params()


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def torch_backend(params, onnx_cache):
    return get_backend({**params["embed"], "backend": "torch"}, onnx_cache)


@pytest.fixture(scope="session")
def onnx_backend(params, onnx_cache, torch_backend):
    """Exports, quantises and probe-checks the model once per session (into a temp cache)."""
    return get_backend({**params["embed"], "backend": "onnx"}, onnx_cache)


@pytest.fixture(scope="session")
def real_sentences(shared_dir) -> list[str]:
    """A fixed, seeded sample of real open answers of varied length (read at run time only)."""
    df = pd.read_csv(shared_dir / GD_FILE, usecols=["response_text"], nrows=5000)
    texts = [t for t in df["response_text"].fillna("").astype(str) if len(t.split()) >= 2]
    rng = np.random.default_rng(20251)
    return [texts[i] for i in sorted(rng.choice(len(texts), 64, replace=False))]


def test_onnx_export_is_built_once_and_checked(onnx_backend, onnx_cache, params):
    # one export for every embedding cache (config.onnx_export_dir, WSIS_ONNX_DIR), not one per cache
    folder = config.onnx_export_dir() / "onnx" / "all-MiniLM-L6-v2"
    assert onnx_backend.folder == folder
    assert (folder / INT8_FILE).exists() and (folder / CHECK_FILE).exists()
    assert not (folder / "model.onnx").exists()  # the fp32 intermediate is not kept
    assert onnx_backend.model_id == "all-MiniLM-L6-v2-int8" and onnx_backend.dim == 384
    assert get_backend({**params["embed"], "backend": "onnx"}, onnx_cache) is onnx_backend


@pytest.mark.shared
@pytest.mark.slow
def test_onnx_agrees_with_torch_on_real_sentences(onnx_backend, torch_backend, real_sentences,
                                                  params):
    result = check_onnx_agreement(onnx_backend, torch_backend, params["embed"]["onnx_min_cosine"],
                                  real_sentences)
    assert result["n"] == 64 and result["min_cosine"] >= params["embed"]["onnx_min_cosine"]


def test_onnx_check_fails_loudly_when_embeddings_drift(onnx_backend, torch_backend):
    with pytest.raises(OnnxAgreementError, match="min cosine"):
        check_onnx_agreement(onnx_backend, torch_backend, min_cosine=1.0001,
                             texts=["Yes.", "Affordable broadband for rural schools."])


def test_onnx_vectors_use_their_own_cache_space(onnx_backend, params, onnx_cache):
    p = config.deep_merge(params, {"embed": {"backend": "onnx"}})
    vecs, stats = encode_with_stats(["Broadband for schools.", ""], p, onnx_cache)
    assert stats.cache_key.startswith("onnx__") and stats.encoded == 1
    assert np.allclose(np.linalg.norm(vecs, axis=1), [1, 0], atol=1e-5)


def test_multilingual_backend_is_offline_and_crosslingual(params, tmp_path):
    p = config.deep_merge(params, {"embed": {"backend": "multilingual"}})
    texts = [
        "Access to the Internet is a human right.",
        "L'accès à Internet est un droit humain.",
        "El acceso a Internet es un derecho humano.",
        "The recipe needs two eggs and some flour.",
        "",
    ]
    vecs, stats = encode_with_stats(texts, p, tmp_path)
    assert vecs.shape == (5, 512) and stats.backend == "multilingual"
    assert np.allclose(np.linalg.norm(vecs, axis=1), [1, 1, 1, 1, 0], atol=1e-5)
    assert min(vecs[0] @ vecs[1], vecs[0] @ vecs[2]) > vecs[0] @ vecs[3] + 0.2
    again, s2 = encode_with_stats(texts, p, tmp_path)
    assert s2.encoded == 0 and np.array_equal(vecs, again)


def test_english_encoders_are_batch_independent(onnx_backend, torch_backend):
    """A text's vector does not depend on the texts encoded with it, so outputs never change with row order or
    partitioning. int8 dynamic quantisation scales activations by the whole input tensor (batched, a vector moved
    by up to 0.0068): the ONNX backend therefore runs each text on its own and gives bit-identical vectors."""
    text = "Affordable broadband for rural schools is the priority."
    other = "Spectrum policy, universal service funds and community networks in least developed countries. " * 3
    alone, batched = torch_backend.encode_batch([text])[0], torch_backend.encode_batch([text, other])[0]
    assert float(np.abs(alone - batched).max()) < 1e-5
    alone, batched = onnx_backend.encode_batch([text])[0], onnx_backend.encode_batch([other, text, other])[1]
    assert np.array_equal(alone, batched)
    assert onnx_backend.encode_batch([]).shape == (0, 384)


@pytest.mark.shared
def test_onnx_lanes_give_the_same_vectors_as_one_lane(onnx_backend, params, onnx_cache, real_sentences):
    """Several one-thread runs at once (one per core) use both cores on short texts; a vector is the same bit for
    bit whichever lane computes it and however many lanes there are (so caches and partitions stay exact)."""
    one = get_backend({**params["embed"], "backend": "onnx", "threads": 1}, onnx_cache)
    three = get_backend({**params["embed"], "backend": "onnx", "threads": 3}, onnx_cache)
    assert (one.lanes, three.lanes) == (1, 3) and one is not three
    texts = real_sentences[:40]
    serial = one.encode_batch(texts)
    assert np.array_equal(three.encode_batch(texts), serial)
    assert np.array_equal(three.encode_batch(texts[::-1]), serial[::-1])  # order of lanes does not matter
    assert np.array_equal(onnx_backend.encode_batch(texts), serial)
