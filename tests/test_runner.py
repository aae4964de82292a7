"""The runner re-runs a stage only when its inputs, parameters, code or outputs changed."""

from __future__ import annotations

import inspect
from pathlib import Path

import pandas as pd
import pytest

from pipeline import runner


def _spec(batch: Path, calls: list[str], extra: tuple[tuple[str, Path], ...] = ()) -> runner.StageSpec:
    def call() -> dict:
        calls.append("ran")
        src = pd.read_csv(batch / "in.csv")
        src.assign(y=src["x"] * 2).to_csv(batch / "out.csv", index=False)
        return {"rows": len(src)}

    return runner.StageSpec("double", ("in.csv",), ("out.csv",), ("double",), ("io",), call, extra)


def test_stage_skips_when_nothing_changed(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1, 2]}).to_csv(tmp_path / "in.csv", index=False)
    calls: list[str] = []
    params = {"seed": 1, "double": {"k": 1}}
    first = runner.run_stage(_spec(tmp_path, calls), tmp_path, params)
    second = runner.run_stage(_spec(tmp_path, calls), tmp_path, params)
    assert (first.status, second.status) == ("ran", "skipped")
    assert second.summary == {"rows": 2}
    assert calls == ["ran"]


def test_stage_reruns_on_input_params_output_or_force(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1, 2]}).to_csv(tmp_path / "in.csv", index=False)
    calls: list[str] = []
    params = {"seed": 1, "double": {"k": 1}}
    runner.run_stage(_spec(tmp_path, calls), tmp_path, params)
    pd.DataFrame({"x": [1, 2, 3]}).to_csv(tmp_path / "in.csv", index=False)
    assert runner.run_stage(_spec(tmp_path, calls), tmp_path, params).status == "ran"
    assert runner.run_stage(_spec(tmp_path, calls), tmp_path, {**params, "double": {"k": 2}}).status == "ran"
    (tmp_path / "out.csv").write_text("tampered\n")
    assert runner.run_stage(_spec(tmp_path, calls), tmp_path, {**params, "double": {"k": 2}}).status == "ran"
    (tmp_path / "out.csv").unlink()
    assert runner.run_stage(_spec(tmp_path, calls), tmp_path, {**params, "double": {"k": 2}}).status == "ran"
    forced = runner.run_stage(_spec(tmp_path, calls), tmp_path, {**params, "double": {"k": 2}}, force=True)
    assert forced.status == "ran"
    assert runner.run_stage(_spec(tmp_path, calls), tmp_path, {**params, "double": {"k": 2}}).status == "skipped"
    assert len(calls) == 6


def test_extra_inputs_and_code_hash_feed_the_key(tmp_path: Path) -> None:
    pd.DataFrame({"x": [1]}).to_csv(tmp_path / "in.csv", index=False)
    model = tmp_path / "model.bin"
    model.write_bytes(b"v1")
    calls: list[str] = []
    params = {"seed": 1}
    runner.run_stage(_spec(tmp_path, calls, (("model", model),)), tmp_path, params)
    model.write_bytes(b"v2")
    assert runner.run_stage(_spec(tmp_path, calls, (("model", model),)), tmp_path, params).status == "ran"
    assert runner.code_hash("io") != runner.code_hash("config")
    assert runner.code_hash("io") == runner.code_hash("io")


def test_expand_inputs_lists_what_ingest_reads_sorted(tmp_path: Path) -> None:
    """The runner hashes exactly the files ingest lists (an unsupported file is read into quarantine)."""
    (tmp_path / "b.txt").write_text("x")
    (tmp_path / "a.csv").write_text("x")
    (tmp_path / "notes.bin").write_text("x")
    (tmp_path / ".hidden.txt").write_text("x")
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "c.pdf").write_bytes(b"%PDF")
    assert [p.name for p in runner.expand_inputs([tmp_path])] == ["a.csv", "b.txt", "notes.bin", "c.pdf"]


def test_release_memory_drops_only_caches_no_remaining_stage_needs() -> None:
    from pipeline.clean import nlp

    nlp.load_nlp.cache_clear()
    # a blank pipeline is cheap to load; newer clean code only falls back to it when allowed
    allow = {"allow_blank": True} if "allow_blank" in inspect.signature(nlp.load_nlp.__wrapped__).parameters else {}
    with pytest.warns(RuntimeWarning, match="not installed"):
        nlp.load_nlp("not_an_installed_spacy_model", **allow)
    assert nlp.load_nlp.cache_info().currsize == 1
    runner.release_memory({"clean", "embed"})
    assert nlp.load_nlp.cache_info().currsize == 1
    runner.release_memory({"themes", "tag", "report"})  # naming in themes reads spaCy's tags
    assert nlp.load_nlp.cache_info().currsize == 1
    runner.release_memory({"tag", "report"})
    assert nlp.load_nlp.cache_info().currsize == 0
