"""The catalog drives the runner: the graph, the order and the code fingerprints are derived from it, and on the
sample batch every stage reads and writes exactly the artefacts the catalog declares for it."""

from __future__ import annotations

import builtins
import io
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import catalog, config, runner

PARAMS = config.load_params()
TODAYS_ORDER = ["ingest", "clean", "embed", "themes", "stance", "tag", "report"]
INJECTED = "test: a recorded fallback reaches the manifest and the report"


# ------------------------------------------------------------------------------------------------ graph
def test_order_is_the_topological_order_of_the_derived_graph() -> None:
    order = [s.name for s in catalog.topological_order()]
    assert order == TODAYS_ORDER
    position = {name: i for i, name in enumerate(order)}
    for writer, reader, _ in catalog.edges():
        assert position[writer] < position[reader]
    assert ("themes", "stance", "themes") in catalog.edges()
    assert ("tag", "report", "tag_consistency") in catalog.edges()


def test_cycle_two_writers_and_unknown_names_are_errors() -> None:
    a = catalog.Stage("a", "pipeline.io", reads=("tags",), writes=("answers",))
    b = catalog.Stage("b", "pipeline.io", reads=("answers",), writes=("tags",))
    with pytest.raises(catalog.GraphError, match="cycle among: a, b"):
        catalog.topological_order((a, b))
    with pytest.raises(catalog.GraphError, match="two writers"):
        catalog.writers((a, replace(b, name="c", writes=("answers",))))
    with pytest.raises(catalog.GraphError, match="unknown artefact 'nope'"):
        catalog.writers((replace(a, reads=("nope",)),))
    # ties are broken by declaration order, so the order does not depend on set iteration
    free = (catalog.Stage("z", "pipeline.io"), catalog.Stage("y", "pipeline.io"))
    assert [s.name for s in catalog.topological_order(free)] == ["z", "y"]


def test_runner_binds_every_catalog_stage_in_derived_order(tmp_path: Path) -> None:
    params = {"seed": 1}
    specs = runner.build_stages([config.SAMPLE_BATCH_DIR], tmp_path, params, manifest={"stages": {}})
    assert [s.name for s in specs] == TODAYS_ORDER
    by = {s.name: s for s in specs}
    themes = by["themes"]
    assert "theme_by_question.parquet" in themes.outputs and themes.optional_outputs == ("theme_edits.parquet",)
    report = next(s for s in catalog.STAGES if s.name == "report")
    assert set(by["report"].inputs) == {catalog.path_of(n) for n in report.all_reads}
    assert by["report"].context is not None


def test_embed_key_follows_the_tag_keys_it_reads_and_only_those(tmp_path: Path) -> None:
    """The embed stage encodes the tag stage's sentence passages: their tag keys change its key, other tag
    parameters (decision rules) do not re-run it."""
    spec = next(s for s in runner.build_stages([config.SAMPLE_BATCH_DIR], tmp_path, PARAMS, manifest={"stages": {}})
                if s.name == "embed")
    base = runner.stage_key(spec, tmp_path, PARAMS)
    rules = config.deep_merge(PARAMS, {"tag": {"sdg_margin": 2.5}})
    assert runner.stage_key(spec, tmp_path, rules) == base
    sentences = config.deep_merge(PARAMS, {"tag": {"sentence_max_words": 12}})
    assert runner.stage_key(spec, tmp_path, sentences) != base
    assert runner.param_value(PARAMS, "tag.sentence_max_words") == PARAMS["tag"]["sentence_max_words"]
    assert runner.param_value(PARAMS, "tag.no_such_key") is None


def test_schemas_read_their_columns_from_the_catalog() -> None:
    from pipeline import schemas

    assert catalog.BY_NAME["answers"].column_names == schemas.ANSWERS
    assert schemas.PARQUET_SCHEMAS["theme_stance.parquet"] == catalog.BY_NAME["theme_stance"].column_names


def test_artefact_dtype_drift_is_a_schema_error(tmp_path: Path) -> None:
    from pipeline import schemas

    cols = catalog.BY_NAME["segment_assignments"].column_names
    good = pd.DataFrame({c: ["x"] for c in cols}).assign(score=[0.5])
    good.to_parquet(tmp_path / "segment_assignments.parquet")
    schemas.check_artefact(tmp_path / "segment_assignments.parquet")
    good.assign(score=["high"]).to_parquet(tmp_path / "segment_assignments.parquet")
    with pytest.raises(schemas.SchemaError, match="score is string, expected float64"):
        schemas.check_artefact(tmp_path / "segment_assignments.parquet")


# ------------------------------------------------------------------------------------------------ code hash
def test_code_fingerprint_follows_imports_lazy_ones_included() -> None:
    tag = next(s for s in catalog.STAGES if s.name == "tag")
    code = catalog.stage_code(tag)
    assert "tagger/stage.py" in code and "tagger/model.py" in code
    assert "embed/core.py" in code  # imported by the tagger to encode sentence passages
    assert any(c.startswith("clean/") for c in code)
    assert "resources/taxonomy" in code  # TAXONOMY_DIR = config.RESOURCES_DIR / "taxonomy"
    assert "runner.py" not in code
    report = next(s for s in catalog.STAGES if s.name == "report")
    assert "runner.py" not in catalog.stage_code(report)  # the report no longer imports the runner
    source = ('"""Doc.\nfrom the docs import nothing\n"""\ndef f():\n    from pipeline.embed import (\n'
              '        encode,  # lazy\n    )\n    import pipeline.io\n')
    assert catalog._statements(source) == ["from pipeline.embed import (\nencode,  # lazy\n)", "import pipeline.io"]


def test_code_hash_of_all_stages_is_fast_and_deterministic() -> None:
    catalog._scan.cache_clear()
    start = time.perf_counter()
    first = [runner.code_hash(*catalog.stage_code(s)) for s in catalog.STAGES]
    cold = time.perf_counter() - start
    assert first == [runner.code_hash(*catalog.stage_code(s)) for s in catalog.STAGES]
    assert len(set(first)) == len(first)
    assert cold < 1.0, cold  # about 0.05 s on an idle machine; generous for a loaded CI box


# ------------------------------------------------------------------------------------------------ docs
def test_architecture_doc_shows_the_current_catalog_and_graph() -> None:
    doc = (config.PROJECT_ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    assert catalog.markdown() in doc, "regenerate with `python -m pipeline.catalog --markdown`"


# ------------------------------------------------------------------------------------------------ reads/writes
class Recorder:
    """Which batch files each stage opens (parquet, npz, csv, any open()) and which it creates or replaces."""

    def __init__(self, batch: Path) -> None:
        self.batch = batch.resolve()
        self.stage: str | None = None
        self.reads: dict[str, set[str]] = {}
        self.writes: dict[str, set[str]] = {}

    def note(self, target: Any) -> None:
        if self.stage is None or not isinstance(target, str | Path):
            return
        try:
            rel = Path(target).resolve().relative_to(self.batch).as_posix()
        except ValueError:
            return
        entry = catalog.artefact_for(rel)
        self.reads.setdefault(self.stage, set()).add(entry.name if entry else rel)

    def wrap(self, fn: Callable[..., Any], is_open: bool = False) -> Callable[..., Any]:
        def wrapped(target: Any, *args: Any, **kwargs: Any) -> Any:
            mode = str(args[0] if args else kwargs.get("mode", "r"))
            if not is_open or not set(mode) & set("wax+"):  # writes are seen in the folder, not here
                self.note(target)
            return fn(target, *args, **kwargs)
        return wrapped

    def snapshot(self) -> dict[str, tuple[int, int, int]]:
        out = {}
        for p in self.batch.rglob("*"):
            if p.is_file():
                st = p.stat()
                out[p.relative_to(self.batch).as_posix()] = (st.st_ino, st.st_mtime_ns, st.st_size)
        return out

    def around(self, spec: runner.StageSpec) -> runner.StageSpec:
        def call() -> dict[str, Any]:
            before = self.snapshot()
            self.stage = spec.name
            try:
                return spec.call()
            finally:
                self.stage = None
                after = self.snapshot()
                changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
                names = {(e.name if (e := catalog.artefact_for(k)) else k) for k in changed}
                self.writes[spec.name] = names - {runner.STATE_FILE}
        return replace(spec, call=call)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Recorder, runner.RunResult]]:
    """The sample batch run once through `run_all`, recording every stage's reads and writes; the clean stage
    also records a fallback (to follow it into the manifest and the report). Code fingerprints are frozen for
    the module, so work on the source tree during the tests does not re-run stages."""
    from pipeline.clean import stage as clean_stage

    root = tmp_path_factory.mktemp("catalog")
    batch = root / "batch"
    batch.mkdir()
    rec = Recorder(batch)
    original_clean = clean_stage.run

    def clean_with_fallback(*args: Any, **kwargs: Any) -> dict[str, Any]:
        summary = original_clean(*args, **kwargs)
        return {**summary, "fallbacks": [*summary.get("fallbacks", []), INJECTED]}

    original_run_stage = runner.run_stage
    with pytest.MonkeyPatch.context() as frozen:
        frozen.setenv("WSIS_CACHE_DIR", str(root / "cache"))
        frozen.setattr(runner, "code_hash", lru_cache(maxsize=None)(runner.code_hash))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(clean_stage, "run", clean_with_fallback)
            mp.setattr(runner, "run_stage", lambda spec, *a, **k: original_run_stage(rec.around(spec), *a, **k))
            for module, name in ((pd, "read_parquet"), (pd, "read_csv"), (np, "load"), (pq, "read_schema"),
                                 (pq, "read_table"), (builtins, "open"), (io, "open")):
                mp.setattr(module, name, rec.wrap(getattr(module, name), is_open=name == "open"))

            class RecordingParquetFile(pq.ParquetFile):
                def __init__(self, source: Any, *args: Any, **kwargs: Any) -> None:
                    rec.note(source)
                    super().__init__(source, *args, **kwargs)

            mp.setattr(pq, "ParquetFile", RecordingParquetFile)
            result = runner.run_all([config.SAMPLE_BATCH_DIR], batch, PARAMS)
        yield batch, rec, result


def test_every_stage_reads_exactly_what_it_declares(recorded: tuple[Path, Recorder, runner.RunResult]) -> None:
    _, rec, result = recorded
    assert [o.status for o in result.stages] == ["ran"] * len(TODAYS_ORDER)
    for stage in catalog.STAGES:
        # reading back its own outputs (the report hashes the files it wrote) is not an input
        actual = rec.reads.get(stage.name, set()) - set(stage.all_writes)
        assert set(stage.reads) <= actual, f"{stage.name} declares reads it never opened: {set(stage.reads) - actual}"
        assert actual <= set(stage.all_reads), f"{stage.name} reads undeclared: {actual - set(stage.all_reads)}"
    # the optional reads are optional because a stage tolerates their absence, not because they are not read
    report = next(s for s in catalog.STAGES if s.name == "report")
    assert rec.reads["report"] - {"report"} == set(report.all_reads) - {"theme_edits"}  # no edits file here


def test_every_stage_writes_exactly_what_it_declares(recorded: tuple[Path, Recorder, runner.RunResult]) -> None:
    _, rec, _ = recorded
    for stage in catalog.STAGES:
        actual = rec.writes.get(stage.name, set())
        assert set(stage.writes) <= actual, f"{stage.name} did not write {set(stage.writes) - actual}"
        assert actual <= set(stage.all_writes), f"{stage.name} wrote undeclared {actual - set(stage.all_writes)}"


def test_fallbacks_reach_the_manifest_and_the_report(recorded: tuple[Path, Recorder, runner.RunResult]) -> None:
    batch, _, _ = recorded
    manifest = json.loads((batch / "report" / "run_manifest.json").read_text(encoding="utf-8"))
    assert INJECTED in manifest["fallbacks"]["clean"]
    table = pd.read_csv(batch / "report" / "tables" / "fallbacks.csv", dtype=str, keep_default_na=False)
    assert ("clean", INJECTED) in set(zip(table["stage"], table["fallback"], strict=True))


def test_report_is_not_forced_and_reruns_when_a_read_changes(
        recorded: tuple[Path, Recorder, runner.RunResult], tmp_path: Path) -> None:
    batch, _, _ = recorded
    copy = tmp_path / "copy"
    shutil.copytree(batch, copy)
    params = PARAMS
    warm = runner.run_all([config.SAMPLE_BATCH_DIR], copy, params)
    assert [o.status for o in warm.stages] == ["skipped"] * len(TODAYS_ORDER)
    # stance re-runs (its output was touched) and writes the same file: the report has nothing new to read
    stance_file = copy / "theme_stance.parquet"
    stance_file.write_bytes(stance_file.read_bytes() + b"\0")
    again = {o.name: o.status for o in runner.run_all([config.SAMPLE_BATCH_DIR], copy, params).stages}
    assert again["stance"] == "ran" and again["report"] == "skipped", again
    # every artefact the report reads is in its key
    manifest = {"stages": {}}
    spec = next(s for s in runner.build_stages([config.SAMPLE_BATCH_DIR], copy, params, manifest=manifest)
                if s.name == "report")
    before = runner.stage_key(spec, copy, params)
    for name in spec.inputs:
        path = copy / name
        if not path.exists():
            continue
        saved = path.read_bytes()
        path.write_bytes(saved + b"\0")
        assert runner.stage_key(spec, copy, params) != before, name
        path.write_bytes(saved)
    manifest["fallbacks"] = {"tag": ["something new"]}
    assert runner.stage_key(spec, copy, params) != before
