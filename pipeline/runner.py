"""`wsis run`: every stage in dependency order, each skipped when its inputs, parameters and code are unchanged.

What a stage reads and writes comes from the catalog (`pipeline.catalog`); the run order is the topological
order of the graph derived from it, and the code a stage depends on is derived from what its module imports.
A stage's cache key is the hash of its input files, parameter sections, code, outside inputs (raw files,
models) and context (the report: the run manifest it writes); the key and the hashes of the outputs are kept in
`<batch>/.stages.json`. A stage re-runs when its key changed or an output is missing or was modified.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib
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

from pipeline import __version__, catalog, config
from pipeline.errors import InputError
from pipeline.io import sha256_file, sha256_obj, write_json
from pipeline.provenance import collect_fallbacks, current_model_dir, package_versions
from pipeline.schemas import check_artefact

__all__ = ["StageSpec", "build_stages", "code_hash", "current_model_dir", "package_versions", "run_all", "run_stage"]

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
    optional_outputs: tuple[str, ...] = ()  # written only in some runs; recorded when present
    context: Callable[[], Any] | None = None  # what else the outputs depend on, evaluated when the stage is due


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
    """Hash of the source files of the named modules/packages and resource folders under pipeline/ (a stage's
    list comes from `catalog.stage_code`: its module and everything it imports)."""
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
    key: dict[str, Any] = {
        "inputs": _hash_paths(inputs),
        "params": {s: param_value(params, s) for s in spec.params_sections} | {"seed": params.get("seed")},
        "code": code_hash(*spec.code),
    }
    if spec.context is not None:
        key["context"] = _jsonable(spec.context())
    return sha256_obj(key)


def param_value(params: dict[str, Any], name: str) -> Any:
    """A params section (`tag`) or one key of it (`tag.sentence_max_words`): a stage that reads a single key of
    another stage's section is re-run only when that key changes."""
    value: Any = params
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


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
    """Every output as recorded; an optional output recorded must be there, one not recorded must not."""
    hashes = recorded.get("outputs", {})
    for name in spec.outputs:
        path = batch_dir / name
        if not path.exists() or hashes.get(name) != _output_hash(path):
            return False
    for name in spec.optional_outputs:
        path = batch_dir / name
        if path.exists() != (name in hashes) or (path.exists() and hashes[name] != _output_hash(path)):
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
    written = [name for name in (*spec.outputs, *spec.optional_outputs) if (batch_dir / name).exists()]
    for name in written:
        check_artefact(batch_dir / name)
    state = _load_state(batch_dir)
    state[spec.name] = {
        "key": key,
        "outputs": {name: _output_hash(batch_dir / name) for name in written},
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
# spaCy stays loaded until themes: its parent-process copy holds the model only (workers parse), far below the
# clean stage's own peak, and naming would otherwise load it a second time.
CACHE_USERS: dict[str, frozenset[str]] = {
    "spacy": frozenset({"clean", "themes"}),  # themes: naming reads part-of-speech tags of English headings
    "langid": frozenset({"clean"}),
    "embedder": frozenset({"embed"}),
}


def _clear_cache(name: str) -> None:
    """Drop one process-level cache (imported lazily: a cache whose module was never loaded is empty)."""
    import sys

    if name == "spacy" and "pipeline.clean.nlp" in sys.modules:
        sys.modules["pipeline.clean.nlp"].load_nlp.cache_clear()
    elif name == "langid" and "pipeline.clean.language" in sys.modules:
        sys.modules["pipeline.clean.language"].clear_identifier_cache()
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
    """The catalog's stages in dependency order, each bound to its `pipeline.<stage>.stage.run`, imported when the
    stage runs (a warm re-run that skips every stage imports none of them: scikit-learn, spaCy, ...)."""
    from pipeline.themes.edits import edits_file

    def module(name: str) -> Any:
        return importlib.import_module(f"pipeline.{name}.stage")

    ingest_extra = tuple((f"input:{name}", path) for name, path in input_files(inputs))
    if questionnaire:
        ingest_extra += (("questionnaire", Path(questionnaire)),)
    if mapping and Path(mapping).is_file():
        ingest_extra += (("mapping", Path(mapping)),)
    edits_path = edits_file(params, edits)
    theme_extra = tuple((name, Path(p)) for name, p in (("framework", framework), ("examples", examples),
                                                          ("edits", edits_path)) if p is not None)
    calls: dict[str, tuple[Callable[[], dict[str, Any]], tuple[tuple[str, Path], ...]]] = {
        "ingest": (lambda: module("ingest").run(inputs, batch_dir, params, questionnaire, mapping), ingest_extra),
        "clean": (lambda: module("clean").run(batch_dir, params), ()),
        "embed": (lambda: module("embed").run(batch_dir, params, config.cache_dir()), ()),
        "themes": (lambda: module("themes").run(batch_dir, params, framework, examples, None, 50, edits), theme_extra),
        "stance": (lambda: module("stance").run(batch_dir, params, config.cache_dir()),
                   (("stance_model", config.models_dir() / "stance"),)),
        "tag": (lambda: module("tagger").run(batch_dir, params, None), (("tagger_model", current_model_dir(params)),)),
        "report": (lambda: module("report").run(batch_dir, params, manifest), ()),
    }
    specs = []
    for stage in catalog.topological_order():
        if stage.name not in calls:
            raise catalog.GraphError(f"stage {stage.name} of the catalog has no runner binding")
        call, extra = calls[stage.name]
        specs.append(StageSpec(
            stage.name,
            tuple(catalog.path_of(n) for n in stage.all_reads),
            tuple(catalog.path_of(n) for n in stage.writes),
            stage.params,
            catalog.stage_code(stage),
            call,
            extra_inputs=extra,
            optional_outputs=tuple(catalog.path_of(n) for n in stage.optional_writes),
            context=(lambda: report_context(manifest)) if stage.name == "report" and manifest is not None else None,
        ))
    return specs


MANIFEST_PROVENANCE = ("wsis_themes_version", "python", "platform", "packages", "params", "inputs", "questionnaire",
                       "framework", "examples", "edits", "models", "fallbacks")
INGEST_COUNTS = ("answers", "submissions", "current_submissions", "quarantined")


def report_context(manifest: dict[str, Any]) -> dict[str, Any]:
    """What the report reads from the run manifest besides the batch files: the provenance it writes into
    run_manifest.json, the ingest counts it reconciles with and the fallbacks it lists (not timings)."""
    ingest = ((manifest.get("stages") or {}).get("ingest") or {}).get("summary") or {}
    return {
        "manifest": {k: manifest.get(k) for k in MANIFEST_PROVENANCE},
        "ingest": {k: ingest.get(k) for k in INGEST_COUNTS},
    }


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
    """Run every stage in the derived order; the report gets the run manifest (with the stages' fallbacks)."""
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
        "fallbacks": {},
    }
    specs = build_stages(inputs, batch_dir, params, questionnaire, mapping, framework, manifest, examples, edits)
    outcomes: list[StageOutcome] = []
    for i, spec in enumerate(specs):
        if console is not None and console.is_terminal:
            with console.status(f"[bold]{spec.name}[/bold] running ..."):
                outcome = run_stage(spec, batch_dir, params, force=force)
        else:
            outcome = run_stage(spec, batch_dir, params, force=force)
        if outcome.status == "ran" and i + 1 < len(specs):  # after the last stage nothing is left to make room for
            release_memory({s.name for s in specs[i + 1:]})
        outcomes.append(outcome)
        if spec.name == "ingest":
            _require_answers(outcome, batch_dir, inputs)
        manifest["stages"][spec.name] = {
            "status": outcome.status, "seconds": round(outcome.seconds, 3),
            "summary": _jsonable(outcome.summary),
        }
        manifest["fallbacks"] = collect_fallbacks(manifest["stages"])
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
