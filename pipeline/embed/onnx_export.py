"""The `onnx` backend: an int8 dynamic-quantised ONNX export of the packaged sentence-transformers
model, run with onnxruntime (about 2x the torch throughput on CPU).

The export is built on first use from the installed model (torch.onnx.export, then
onnxruntime.quantization.quantize_dynamic) into `cache_dir/onnx/<model>/`, and checked against the
torch reference on fixed probe sentences: if any probe's cosine falls below `embed.onnx_min_cosine`
the backend refuses to run (OnnxAgreementError) instead of silently returning drifted vectors.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pipeline import io
from pipeline.embed.cache import RUN_STARTED, weights_fingerprint
from pipeline.embed.models import EmbedModelError, TorchBackend, model_path, why
from pipeline.embed.probes import PROBE_SENTENCES
from pipeline.embed.vectors import normalise

log = logging.getLogger(__name__)

EXPORT_VERSION = 2  # bump when the export recipe changes: old exports are then rebuilt
OPSET = 17
# Quantisation recipe. Measured on 332 texts (300 Global Dialogues answers + the probes) against
# torch: quantising every MatMul gives min cosine 0.961 (short texts such as "Yes." suffer most);
# each feed-forward MatMul alone costs 0.0004-0.005 of min cosine, each attention projection
# < 0.0001. So the attention projections (Q, K, V, output) are int8 (per-channel weights, dynamic
# uint8 activations) and the feed-forward MatMuls stay fp32: min cosine 0.992, mean 0.998, still
# ~4x torch throughput on 2 cores (ORT's fused fp32 graph alone is ~3x).
FP32_NODE_PATTERN = r"layer\.\d+/(intermediate|output)/dense/MatMul$"
QUANT_RECIPE = {"weight_type": "QInt8", "per_channel": True, "op_types": ["MatMul"],
                "fp32_nodes": FP32_NODE_PATTERN}
#: Inference runs each text on its own (a batch of one, no padding). Dynamic quantisation scales a MatMul's
#: activations by the whole input tensor, so in a batch of several texts a text's vector depends on its batch mates
#: (max |diff| 0.0068 alone vs batched): outputs would change with row order and partitioning. Alone, a vector
#: depends on its text only, and it is cheaper: no padded tokens (600 real answers and passages of the tags dev set,
#: 2 cores, one run: 0.43x the CPU time of batches of 64 and 0.17x torch's, cosine to torch >= 0.998).
INFERENCE_MODE = "single-text"
#: LANES: on several cores, several one-thread runs go at once instead of one run on several threads. A run of one short
#: text cannot keep 2 intra-op threads busy (ITU-size batch, 2 cores: 24 CPU-s in 17 s wall); one thread per run gives
#: the same vectors bit for bit (tested) and uses every core.
FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
META_FILE = "export.json"
CHECK_FILE = "check.json"


class OnnxAgreementError(RuntimeError):
    """The ONNX export's embeddings drifted from the torch reference beyond the allowed cosine."""


def onnx_dir(cache_dir: Path, model: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(model).name if Path(model).is_dir() else model)
    return Path(cache_dir) / "onnx" / safe


def recipe_fingerprint() -> str:
    """Short hash of the export recipe (opset, quantisation), part of the embedding-cache key beside
    EXPORT_VERSION: a changed recipe never serves vectors of the old export."""
    return io.sha256_obj({"opset": OPSET, "recipe": QUANT_RECIPE, "inference": INFERENCE_MODE})[:8]


def _source_fingerprint(src: Path) -> str:
    """Identifies the installed model weights by content, so a changed model triggers a re-export."""
    weights = src / "model.safetensors"
    if not weights.exists():
        weights = src / "pytorch_model.bin"
    return f"{weights.name}:{weights_fingerprint(src, weights.name)}"


#: A temporary export folder untouched this long (and older than this run) is left by a killed export.
STALE_EXPORT_S = 3600


def remove_stale_exports(target: Path, run_started: float | None = None) -> int:
    """Delete temporary export folders (`.<model>.*`, ~90 MB each) of killed exports; returns how many.
    A folder written to within the last hour or since this run started may be a concurrent export: kept."""
    started = RUN_STARTED if run_started is None else run_started
    now = time.time()
    removed = 0
    for tmp in Path(target).parent.glob(f".{Path(target).name}.*"):
        try:
            if not tmp.is_dir():
                continue
            newest = max([tmp.stat().st_mtime] + [p.stat().st_mtime for p in tmp.iterdir()])
        except FileNotFoundError:  # finished or removed meanwhile
            continue
        if newest < started and now - newest > STALE_EXPORT_S:
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d leftover ONNX export folders of interrupted runs in %s", removed,
                 Path(target).parent)
    return removed


def export_onnx(model: str, cache_dir: Path, force: bool = False) -> Path:
    """Export and quantise `model` once; returns the folder holding `model-int8.onnx`.

    Built in a temporary folder and moved into place, so an interrupted export never leaves a
    half-written model behind.
    """
    from importlib.metadata import version

    src = model_path(model)
    target = onnx_dir(cache_dir, model)
    # torch's version from its metadata: importing torch (2-3 s) is needed only to build an export
    meta: dict[str, Any] = {"export_version": EXPORT_VERSION, "source": _source_fingerprint(src),
                            "opset": OPSET, "recipe": QUANT_RECIPE, "torch": version("torch")}
    meta_path = target / META_FILE
    if not force and (target / INT8_FILE).exists() and meta_path.exists():
        try:
            old = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if all(old.get(k) == meta[k] for k in ("export_version", "source", "opset", "recipe")):
            return target
        log.info("ONNX export in %s is stale: rebuilding", target)

    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    t0 = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_exports(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        hf = AutoModel.from_pretrained(str(src), attn_implementation="eager")
        hf.eval()

        class _Encoder(torch.nn.Module):
            """Keyword call: transformers 5 changed BertModel.forward's positional arguments."""

            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
                return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=token_type_ids).last_hidden_state

        dummy = (torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long),
                 torch.zeros(2, 16, dtype=torch.long))
        axes = {0: "batch", 1: "sequence"}
        with torch.inference_mode(), warnings.catch_warnings():
            # tracer warnings about Python-level shape logic in transformers' mask helpers; the
            # probe check below is what tells whether the traced graph is right
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _Encoder(hf), dummy, str(tmp / FP32_FILE),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                              "last_hidden_state": axes},
                opset_version=OPSET, do_constant_folding=True, dynamo=False,
            )
        with _quiet_root_logger():
            quantize_dynamic(
                str(tmp / FP32_FILE), str(tmp / INT8_FILE), weight_type=QuantType.QInt8,
                per_channel=True, op_types_to_quantize=["MatMul"],
                nodes_to_exclude=fp32_nodes(tmp / FP32_FILE),
            )
        (tmp / FP32_FILE).unlink()  # only the int8 model is used; keep the cache small
        shutil.copy2(src / "tokenizer.json", tmp / "tokenizer.json")
        meta["seconds"] = round(time.perf_counter() - t0, 1)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("exported int8 ONNX model of %s to %s in %.1fs", model, target, time.perf_counter() - t0)
    return target


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """onnxruntime's quantiser logs dozens of INFO lines and a generic WARNING on the root logger."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def fp32_nodes(onnx_file: Path) -> list[str]:
    """MatMul nodes kept in fp32 (the feed-forward layers, see QUANT_RECIPE)."""
    import onnx

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    names = [n.name for n in graph.node
             if n.op_type == "MatMul" and re.search(FP32_NODE_PATTERN, n.name)]
    if not names:
        raise RuntimeError(f"{onnx_file}: no feed-forward MatMul matches {FP32_NODE_PATTERN!r}")
    return names


class OnnxBackend:
    """int8 ONNX + onnxruntime; tokenizer from the model folder; mean pooling and L2 norm."""

    name = "onnx"

    def __init__(
        self,
        model: str,
        max_seq_length: int,
        cache_dir: Path,
        min_cosine: float = 0.985,
        threads: int | None = None,
        check: bool = True,
    ) -> None:
        self.model_id = f"{model}-int8"
        self.base_model = model
        self.max_seq_length: int | None = int(max_seq_length)
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self.folder = export_onnx(model, cache_dir)
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001 - a damaged export in the cache is rebuilt, not fatal
            log.warning("ONNX export in %s cannot be loaded (%s): rebuilding it", self.folder, why(exc))
            self.folder = export_onnx(model, cache_dir, force=True)
            try:
                self._open()
            except Exception as exc2:  # noqa: BLE001 - still unusable: one line naming it
                raise EmbedModelError(self.folder, f"cannot load the ONNX export even after rebuilding it: "
                                      f"{why(exc2)}; use embed.backend=torch") from None
        if check:
            verify_onnx(self, model, self.max_seq_length, min_cosine)

    def _open(self) -> None:
        """Tokenizer and inference session of the export in `self.folder`; probes the vector size."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        assert self.max_seq_length is not None
        tok = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_seq_length)
        tok.no_padding()  # one text per run: nothing to pad
        self._tok = tok
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread per run, `lanes` runs at once (LANES): one short text cannot keep 2 intra-op threads busy.
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: on a shared machine spinning threads steal the cores the work needs
        # (ITU answers, 2 cores under load: 1.23x faster without spinning)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(self.folder / INT8_FILE), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self.dim = int(self.encode_batch(["probe"]).shape[1])

    @property
    def lanes(self) -> int:
        """Session runs at once: `threads` (default: every core this process may use), each on one thread (LANES)."""
        if self._threads:
            return max(1, int(self._threads))
        usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        return max(1, len(usable) if usable else (os.cpu_count() or 1))

    def _encode_one(self, enc: Any) -> np.ndarray:
        feed = {"input_ids": np.asarray([enc.ids], dtype=np.int64),
                "attention_mask": np.asarray([enc.attention_mask], dtype=np.int64)}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.asarray([enc.type_ids], dtype=np.int64)
        hidden = self._session.run(["last_hidden_state"], feed)[0][0]
        return hidden.mean(axis=0)  # no padding: every token is a real one

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        """One session run per text (INFERENCE_MODE): a vector never depends on the texts it is batched with.
        Runs go `lanes` at a time on threads (onnxruntime releases the GIL while it runs); each vector is the
        same whichever lane computes it."""
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        encs = self._tok.encode_batch(list(texts))
        if self.lanes <= 1 or len(encs) < 2 * self.lanes:
            rows = [self._encode_one(enc) for enc in encs]
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.lanes, thread_name_prefix="onnx-lane")
            rows = list(self._pool.map(self._encode_one, encs))
        return normalise(np.asarray(rows, dtype=np.float32))


def probe_cosines(
    backend: Any, reference: Any, texts: list[str] | tuple[str, ...] = PROBE_SENTENCES
) -> np.ndarray:
    """Cosine between `backend` and `reference` embeddings of each text (both unit-normalised)."""
    texts = list(texts)
    a = backend.encode_batch(texts)
    b = reference.encode_batch(texts)
    return np.sum(a * b, axis=1)


def check_onnx_agreement(
    backend: Any,
    reference: Any,
    min_cosine: float,
    texts: list[str] | tuple[str, ...] = PROBE_SENTENCES,
) -> dict[str, Any]:
    """Compare a backend with the torch reference; raise OnnxAgreementError below `min_cosine`."""
    cos = probe_cosines(backend, reference, texts)
    result = {"n": int(len(cos)), "min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
              "threshold": float(min_cosine)}
    if cos.min() < min_cosine:
        worst = int(np.argmin(cos))
        raise OnnxAgreementError(
            f"ONNX embeddings drift from the torch reference: min cosine {cos.min():.4f} < "
            f"{min_cosine} (probe {worst}: {list(texts)[worst][:60]!r}); use embed.backend=torch"
        )
    return result


def verify_onnx(backend: OnnxBackend, model: str, max_seq_length: int, min_cosine: float) -> None:
    """Run the probe check once per export (the result is recorded next to the model)."""
    record = backend.folder / CHECK_FILE
    meta = (backend.folder / META_FILE).read_text(encoding="utf-8")
    stamp = io.sha256_text(meta + f"|{max_seq_length}|{len(PROBE_SENTENCES)}")
    if record.exists():
        try:
            old = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = {}
        if old.get("stamp") == stamp and old.get("min_cosine", -1.0) >= min_cosine:
            return
    reference = TorchBackend(model, max_seq_length)
    result = check_onnx_agreement(backend, reference, min_cosine)
    result["stamp"] = stamp
    io.write_json(result, record)
    log.info("ONNX export agrees with torch: min cosine %.4f on %d probes", result["min_cosine"],
             result["n"])
