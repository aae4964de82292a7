"""Reliability of the model-bearing files (issue 10): a damaged embedding-cache shard is set aside and its
vectors recomputed; leftover temporary files of killed runs are cleaned; vectors of other model weights or
another ONNX export recipe are never served; a tampered, truncated, garbled, untrusted or missing tagger
model is refused with one line naming the file and the reason; scores outside [0, 1] are refused.

The embedding tests use a deterministic stand-in encoder (no model is loaded), the tagger tests the
shipped model, so the file runs in seconds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import config, io
from pipeline.embed import cache as cache_mod
from pipeline.embed import core, onnx_export
from pipeline.embed.cache import EmbeddingCache, cache_key
from pipeline.embed.stage import run as embed_run
from pipeline.errors import InputError
from pipeline.tagger import train
from pipeline.tagger.model import Tagger, load_tagger, save_tagger

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
DIM = 16


class HashedBackend:
    """Deterministic stand-in encoder: hashed word counts, unit norm; counts the texts it encodes."""

    def __init__(self, name: str = "torch", dim: int = DIM) -> None:
        self.name = name
        self.model_id = "stand-in"
        self.max_seq_length: int | None = 256
        self.dim = dim
        self.encoded: list[str] = []

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        self.encoded += list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.fixture()
def fake_backend(monkeypatch: pytest.MonkeyPatch) -> HashedBackend:
    backend = HashedBackend()
    monkeypatch.setattr(core, "get_backend", lambda section, root: backend)
    return backend


def _params(**embed) -> dict:
    return {"embed": {"backend": "torch", "model": "all-MiniLM-L6-v2", "max_seq_length": 256,
                      "batch_size": 4, "shard_size": 4, **embed}}


def _shards(root: Path, key: str) -> list[Path]:
    return sorted((root / "embeddings" / key).glob("shard-*.npz"))


# --- defect 10: embedding cache ---------------------------------------------------------------------

def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garble(path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(path.stat().st_size))


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _wrong_shape(path: Path) -> None:
    data = io.read_npz(path)
    io.write_npz(path, hashes=data["hashes"], vectors=np.zeros((len(data["vectors"]), DIM + 3), np.float32))


@pytest.mark.parametrize("damage", [_truncate, _garble, _empty, _wrong_shape],
                         ids=["truncated", "garbled", "empty", "wrong-shape"])
def test_defect10_unreadable_cache_shard_is_set_aside_and_recomputed(damage, fake_backend, tmp_path):
    params = _params()
    first, s1 = core.encode_with_stats(TEXTS, params, tmp_path)
    assert s1.shards_written == 3 and s1.corrupt_shards == 0
    shards = _shards(tmp_path, s1.cache_key)
    damage(shards[1])

    fake_backend.encoded.clear()
    second, s2 = core.encode_with_stats(TEXTS, params, tmp_path)
    assert s2.corrupt_shards == 1 and s2.cache_hits == 8 and s2.encoded == 4 == len(fake_backend.encoded)
    assert np.allclose(first, second, atol=1e-6)
    folder = tmp_path / "embeddings" / s1.cache_key
    assert not shards[1].exists() and (folder / "corrupt" / shards[1].name).exists()

    fake_backend.encoded.clear()
    _, s3 = core.encode_with_stats(TEXTS, params, tmp_path)
    assert s3.corrupt_shards == 0 and s3.encoded == 0 and s3.cache_hits == len(TEXTS)


def test_defect10_corrupt_shard_is_counted_in_the_embed_stage_summary(fake_backend, tmp_path, caplog):
    batch = tmp_path / "batch"
    io.write_parquet(pd.DataFrame({"answer_id": [f"a{i}" for i in range(len(TEXTS))],
                                   "text_clean": TEXTS}), batch / "answers_clean.parquet")
    io.write_parquet(pd.DataFrame({"segment_id": pd.Series([], dtype=str), "text": pd.Series([], dtype=str)}),
                     batch / "segments.parquet")
    cache = tmp_path / "cache"
    first = embed_run(batch, _params(), cache)
    _truncate(_shards(cache, first["cache_key"])[0])
    with caplog.at_level("WARNING", logger="pipeline.embed.cache"):
        again = embed_run(batch, _params(), cache)
    assert again["corrupt_shards"] == 1 and again["encoded"] == 4
    assert "corrupt" in caplog.text
    assert io.read_npz(batch / "embeddings.npz")["answer_vectors"].shape == (len(TEXTS), DIM)


def test_defect10_wrong_dim_in_meta_json_does_not_discard_the_cache(fake_backend, tmp_path):
    """A meta.json whose vector size disagrees with every shard is the damaged file, not the shards."""
    params = _params()
    first, s1 = core.encode_with_stats(TEXTS, params, tmp_path)
    meta = tmp_path / "embeddings" / s1.cache_key / "meta.json"
    io.write_json({"key": s1.cache_key, "dim": DIM // 2}, meta)
    fake_backend.encoded.clear()
    second, s2 = core.encode_with_stats(TEXTS, params, tmp_path)
    assert s2.encoded == 0 and s2.cache_hits == len(TEXTS) and s2.corrupt_shards == 0
    assert np.array_equal(first, second) and json.loads(meta.read_text())["dim"] == DIM
    assert len(_shards(tmp_path, s1.cache_key)) == 3


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_defect10_stale_tmp_files_of_killed_runs_are_removed(tmp_path):
    folder = tmp_path / "embeddings" / "k"
    folder.mkdir(parents=True)
    old = time.time() - 3600
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_tmp = folder / f".shard-{time.time_ns():020d}-{_dead_pid()}-0123abcd.npz.x1y2.tmp"
        live_tmp = folder / f".shard-{time.time_ns():020d}-{live.pid}-4567cdef.npz.z3w4.tmp"
        meta_tmp = folder / ".meta.json.q9r8.tmp"
        fresh_tmp = folder / f".shard-{time.time_ns():020d}-{_dead_pid()}-89abcdef.npz.n5m6.tmp"
        for path in (dead_tmp, live_tmp, meta_tmp, fresh_tmp):
            path.write_bytes(b"PK\x03\x04 half a shard")
        for path in (dead_tmp, live_tmp, meta_tmp):
            os.utime(path, (old, old))
        # this run started a minute ago: after the old files were last written, before the fresh one
        cache = EmbeddingCache(tmp_path, "k", DIM, run_started=time.time() - 60)
        assert not dead_tmp.exists() and not meta_tmp.exists()
        assert live_tmp.exists()  # its writer is alive: maybe a concurrent run
        assert fresh_tmp.exists()  # written after this run started
        assert cache.stale_tmp_removed == 2
    finally:
        live.kill()
        live.wait()


def test_defect10_stale_tmp_count_reaches_the_encode_stats(fake_backend, tmp_path, monkeypatch):
    key = cache_key("torch", "all-MiniLM-L6-v2", 256)
    folder = tmp_path / "embeddings" / key
    folder.mkdir(parents=True)
    leftover = folder / f".shard-{time.time_ns():020d}-{_dead_pid()}-0123abcd.npz.x1y2.tmp"
    leftover.write_bytes(b"PK\x03\x04")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))  # before this test session started
    _, stats = core.encode_with_stats(TEXTS[:2], _params(), tmp_path)
    assert stats.stale_tmp_removed == 1 and not leftover.exists()


def test_defect10_leftover_onnx_export_folders_are_removed(tmp_path):
    target = tmp_path / "onnx" / "all-MiniLM-L6-v2"
    old = time.time() - 2 * onnx_export.STALE_EXPORT_S
    killed = tmp_path / "onnx" / ".all-MiniLM-L6-v2.k1ll3d"
    running = tmp_path / "onnx" / ".all-MiniLM-L6-v2.runn1n"
    for folder in (killed, running):
        folder.mkdir(parents=True)
        (folder / "model.onnx").write_bytes(b"half an export")
    for path in (killed / "model.onnx", killed):
        os.utime(path, (old, old))
    assert onnx_export.remove_stale_exports(target, run_started=time.time()) == 1
    assert not killed.exists() and (running / "model.onnx").exists()


def _fake_model(folder: Path, weights: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"hidden_size": 16}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(weights)
    return folder


def test_defect10_cache_key_changes_with_the_model_weights(tmp_path):
    model = _fake_model(tmp_path / "model", b"\x00" * 1000)
    before = cache_key("torch", str(model), 256)
    assert before == cache_key("torch", str(model), 256)
    (model / "model.safetensors").write_bytes(b"\x01" + b"\x00" * 999)  # same size and name
    after = cache_key("torch", str(model), 256)
    assert after != before
    (model / "extra.bin").write_bytes(b"x")
    assert cache_key("torch", str(model), 256) != after


def test_defect10_bumping_the_onnx_export_version_never_serves_old_vectors(tmp_path, monkeypatch):
    backend = HashedBackend(name="onnx")
    monkeypatch.setattr(core, "get_backend", lambda section, root: backend)
    params = _params(backend="onnx")
    _, s1 = core.encode_with_stats(TEXTS, params, tmp_path)
    _, s2 = core.encode_with_stats(TEXTS, params, tmp_path)
    assert s1.encoded == len(TEXTS) and s2.encoded == 0
    monkeypatch.setattr(onnx_export, "EXPORT_VERSION", onnx_export.EXPORT_VERSION + 1)
    _, s3 = core.encode_with_stats(TEXTS, params, tmp_path)
    assert s3.cache_key != s1.cache_key and s3.cache_hits == 0 and s3.encoded == len(TEXTS)
    # the torch space of the same model is a third one
    assert cache_key("torch", "all-MiniLM-L6-v2", 256) not in {s1.cache_key, s3.cache_key}


def test_defect10_weights_fingerprint_is_computed_once(tmp_path, monkeypatch):
    model = _fake_model(tmp_path / "model", b"\x02" * 1000)
    calls: list[str] = []
    original = cache_mod.io.sha256_file

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(cache_mod.io, "sha256_file", counting)
    for _ in range(3):
        cache_key("torch", str(model), 256)
    assert len(calls) == 1


# --- defect 14 (embedding models): a damaged or missing model is named in one line ---------------------

def test_defect14_damaged_sentence_model_gives_one_line_error(tmp_path):
    from pipeline.embed.backends import TorchBackend, model_path

    src = model_path("all-MiniLM-L6-v2")
    folder = tmp_path / "damaged-model"
    shutil.copytree(src, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").write_bytes(np.random.default_rng(3).bytes(4096))
    with pytest.raises(InputError) as info:
        TorchBackend(str(folder), 256)
    _one_line_naming(info.value, folder, "cannot load")


def test_defect14_missing_sentence_model_gives_one_line_error(tmp_path):
    with pytest.raises(InputError) as info:
        core.encode_with_stats(["A text."], _params(model="no-such-model"), tmp_path)
    assert "\n" not in str(info.value) and "no-such-model" in str(info.value)


def _tiny_onnx(path: Path, dim: int = 4) -> None:
    """A valid stand-in for the int8 export: last_hidden_state = (ids + mask) x a constant vector."""
    import onnx
    from onnx import TensorProto, helper

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "sequence"])
    out = helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", dim])
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
        helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
        helper.make_node("Add", ["ids_f", "mask_f"], ["summed"]),
        helper.make_node("Unsqueeze", ["summed", "axis"], ["col"]),
        helper.make_node("Mul", ["col", "weights"], ["last_hidden_state"]),
    ]
    inits = [helper.make_tensor("axis", TensorProto.INT64, [1], [2]),
             helper.make_tensor("weights", TensorProto.FLOAT, [1, 1, dim], [1.0, 2.0, 3.0, 4.0][:dim])]
    graph = helper.make_graph(nodes, "tiny", [ids, mask], [out], initializer=inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


def test_defect14_damaged_onnx_export_is_rebuilt(tmp_path, monkeypatch):
    from pipeline.embed.backends import model_path

    folder = tmp_path / "onnx" / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    shutil.copy2(model_path("all-MiniLM-L6-v2") / "tokenizer.json", folder / "tokenizer.json")
    (folder / onnx_export.INT8_FILE).write_bytes(b"\x08\x07 truncated protobuf")
    forced: list[bool] = []

    def fake_export(model: str, cache_dir: Path, force: bool = False) -> Path:
        forced.append(force)
        if force:
            _tiny_onnx(folder / onnx_export.INT8_FILE)
        return folder

    monkeypatch.setattr(onnx_export, "export_onnx", fake_export)
    backend = onnx_export.OnnxBackend("all-MiniLM-L6-v2", 32, tmp_path, check=False)
    assert forced == [False, True] and backend.dim == 4
    vecs = backend.encode_batch(["Broadband for schools.", "Yes."])
    assert vecs.shape == (2, 4) and np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)


def test_defect14_onnx_export_that_stays_damaged_gives_one_line_error(tmp_path, monkeypatch):
    folder = tmp_path / "onnx" / "all-MiniLM-L6-v2"
    folder.mkdir(parents=True)
    (folder / onnx_export.INT8_FILE).write_bytes(b"garbage")
    monkeypatch.setattr(onnx_export, "export_onnx", lambda model, cache_dir, force=False: folder)
    with pytest.raises(InputError) as info:
        onnx_export.OnnxBackend("all-MiniLM-L6-v2", 32, tmp_path, check=False)
    _one_line_naming(info.value, folder, "cannot load")


# --- defect 14: tagger model integrity -------------------------------------------------------------

TAGGER_ROOT = config.PROJECT_ROOT / "models" / "tagger"
SHIPPED = sorted(p for p in TAGGER_ROOT.glob("v*") if (p / "tagger.skops").exists())


@pytest.fixture(scope="module")
def shipped() -> Tagger:
    version = (TAGGER_ROOT / "CURRENT").read_text(encoding="utf-8").strip()
    return load_tagger(TAGGER_ROOT / version / "tagger.skops")


def _tamper(tagger: Tagger, factor: float = -50.0) -> Tagger:
    """Multiply every learned float weight by `factor` (the probe's attack)."""
    bad = Tagger(**tagger.get_params())
    for name, value in tagger.__dict__.items():
        if name.endswith("_") and isinstance(value, np.ndarray) and value.dtype.kind == "f":
            value = value * factor
        elif name == "keyword_reliability_":
            value = {k: v * factor for k, v in value.items()}
        bad.__dict__[name] = value
    bad.keyword_weight = tagger.keyword_weight * factor
    return bad


def _embeddings(n: int) -> np.ndarray:
    vecs = np.random.default_rng(1).standard_normal((n, 384)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def _one_line_naming(exc: BaseException, path: Path, *words: str) -> None:
    text = str(exc)
    assert isinstance(exc, InputError), type(exc)
    assert "\n" not in text and str(path) in text, text
    for word in words:
        assert word in text, text


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_defect14_shipped_models_record_their_sha256(folder):
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    digest = io.sha256_file(folder / "tagger.skops")
    recorded = metrics["model_files_sha256"]
    assert recorded["tagger.skops"] == digest and set(recorded) <= {"tagger.skops", "real_head.npz"}
    assert all(io.sha256_file(folder / name) == sha for name, sha in recorded.items())  # the real-answer head too
    assert digest in (folder / "README.md").read_text(encoding="utf-8")


def test_defect14_tampered_model_is_refused_naming_the_file(shipped, tmp_path):
    version = (TAGGER_ROOT / "CURRENT").read_text(encoding="utf-8").strip()
    folder = tmp_path / "tagger" / version
    folder.mkdir(parents=True)
    shutil.copy2(TAGGER_ROOT / version / "metrics.json", folder / "metrics.json")
    save_tagger(_tamper(shipped), folder / "tagger.skops")
    with pytest.raises(InputError) as info:
        load_tagger(folder / "tagger.skops")
    _one_line_naming(info.value, folder / "tagger.skops", "sha256", "metrics.json")
    with pytest.raises(InputError):
        train.load_model({}, folder)


def test_defect14_tampered_model_without_a_recorded_hash_is_refused(shipped, tmp_path):
    """A loose file has no card to compare with: its learned state is checked instead."""
    path = tmp_path / "loose.skops"
    save_tagger(_tamper(shipped), path)
    with pytest.raises(InputError) as info:
        load_tagger(path)
    _one_line_naming(info.value, path, "corrupt or has been tampered with")


def test_defect14_scores_outside_0_1_are_refused(shipped):
    bad = _tamper(shipped)
    bad.source_file_ = "models/tagger/vX/tagger.skops"
    texts = ["Broadband infrastructure and cybersecurity for rural schools and telemedicine."] * 3
    assert np.all((shipped.predict_proba(texts, _embeddings(3)) >= 0)
                  & (shipped.predict_proba(texts, _embeddings(3)) <= 1))
    with pytest.raises(InputError) as info:
        bad.predict_proba(texts, _embeddings(3))
    assert "outside [0, 1]" in str(info.value) and "models/tagger/vX/tagger.skops" in str(info.value)


def _truncated(src: Path, dst: Path) -> None:
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])


def _garbled(src: Path, dst: Path) -> None:
    dst.write_bytes(np.random.default_rng(2).bytes(4096))


def _flipped(src: Path, dst: Path) -> None:
    """A few bytes changed in the middle of the zip: a CRC or deflate error on read."""
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(64)
    dst.write_bytes(bytes(data))


def _empty_file(src: Path, dst: Path) -> None:
    dst.write_bytes(b"")


def _untrusted(src: Path, dst: Path) -> None:
    """A function reference: loading it would hand the file a callable (skops lists it as untrusted)."""
    import skops.io as sio

    sio.dump({"model": os.system}, dst)


def _not_a_tagger(src: Path, dst: Path) -> None:
    import skops.io as sio

    sio.dump({"weights": np.ones(3)}, dst)


CORRUPTIONS = {
    "truncated": (_truncated, "cannot be read"),
    "garbled": (_garbled, "cannot be read"),
    "flipped-bytes": (_flipped, "cannot be read"),
    "empty": (_empty_file, "cannot be read"),
    "untrusted-type": (_untrusted, f"refusing to load untrusted types ['{os.system.__module__}.system']"),
    "not-a-tagger": (_not_a_tagger, "not a Tagger"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_defect14_model_corruption_gives_one_line_error(kind, tmp_path):
    damage, reason = CORRUPTIONS[kind]
    version = (TAGGER_ROOT / "CURRENT").read_text(encoding="utf-8").strip()
    path = tmp_path / "loose" / "tagger.skops"
    path.parent.mkdir()
    damage(TAGGER_ROOT / version / "tagger.skops", path)
    with pytest.raises(InputError) as info:
        load_tagger(path)
    _one_line_naming(info.value, path, reason)


def test_defect14_missing_model_file_gives_one_line_error(tmp_path):
    path = tmp_path / "v1" / "tagger.skops"
    with pytest.raises(InputError) as info:
        load_tagger(path)
    _one_line_naming(info.value, path, "not found")
    with pytest.raises(InputError) as info:
        train.load_model({}, tmp_path / "nowhere")
    assert "\n" not in str(info.value) and "nowhere" in str(info.value)


def test_defect14_train_records_the_sha256_it_verifies(shipped, tmp_path):
    """`model_file_hashes` is what train.run records; a file changed afterwards no longer matches."""
    folder = tmp_path / "v1"
    folder.mkdir()
    save_tagger(shipped, folder / "tagger.skops")
    io.write_json({"version": "v1", "model_files_sha256": train.model_file_hashes(folder)},
                  folder / "metrics.json")
    assert isinstance(load_tagger(folder / "tagger.skops"), Tagger)
    (folder / "tagger.skops").write_bytes((folder / "tagger.skops").read_bytes() + b"\0")
    with pytest.raises(InputError, match="sha256"):
        load_tagger(folder / "tagger.skops")
