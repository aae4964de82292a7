"""Typed parameters (issue 11, part 2): defaults defined once, unknown keys and bad values named, `wsis params`."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline import config
from pipeline.cli import app
from pipeline.errors import InputError
from pipeline.params import CleanParams, Params, TagParams, ThemesParams, defaults


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _error(path: Path | None = None, overrides: dict | None = None) -> str:
    with pytest.raises(InputError) as info:
        config.load_params(path, overrides)
    return str(info.value)


# ------------------------------------------------------------------------------------------ one definition
def test_issue11_defaults_equal_params_yaml() -> None:
    """A model built from an empty dict equals the one built from params.yaml, and params.yaml writes every key
    (it stays the documented file: nothing is only in code, nothing only in the file)."""
    raw = config.read_params_file(config.DEFAULT_PARAMS_FILE)
    assert Params.model_validate({}) == Params.model_validate(raw)
    assert raw == defaults()
    assert config.load_params() == defaults()


def test_issue11_keys_other_stages_need_exist() -> None:
    p = config.load_params()
    assert p["clean"]["allow_blank_spacy"] is False and p["clean"]["n_process"] == 2
    assert p["embed"]["auto_multilingual_share"] == 0.05
    assert config.load_params(overrides={"embed": {"backend": "auto"}})["embed"]["backend"] == "auto"
    assert p["tag"]["sentence_scoring_max_answers"] == 5000
    assert p["themes"]["minibatch_above"] == 8000 and p["themes"]["cross_link_threshold"] == 0.8


def test_issue11_constructor_defaults_are_the_params_defaults() -> None:
    from pipeline.tagger.features import segment_text
    from pipeline.tagger.model import Tagger
    from pipeline.themes import crossq

    tag = TagParams().model_dump()
    shared = {k: v for k, v in Tagger().get_params().items() if k in tag}
    assert {"C", "prior_weight", "min_score_floor", "n_folds", "keyword_weight", "second_sdg_ratio"} <= set(shared)
    assert shared == {k: tag[k] for k in shared}
    sig = inspect.signature(segment_text).parameters
    assert sig["max_words"].default == CleanParams().segment_max_words == 30
    assert sig["min_words"].default == CleanParams().segment_min_words
    threshold = inspect.signature(crossq.theme_by_question).parameters["threshold"].default
    assert threshold == ThemesParams().cross_link_threshold


# Code defaults (stage DEFAULTS dicts, dataclass and constructor defaults) owned by the stage sessions that
# still differ from params.yaml; each is a bug to fix there (then delete it here). The guard fails on new drift.
KNOWN_DRIFT: set[tuple[str, str]] = set()


def _code_defaults() -> list[tuple[str, dict, dict]]:
    """(where, code defaults, params defaults of the section the code reads)."""
    from dataclasses import fields

    from pipeline import evaluate
    from pipeline.clean import core as clean_core
    from pipeline.ingest import tables
    from pipeline.tagger import stage, train
    from pipeline.themes import discovery, framework

    def signature(cls: type) -> dict:
        return {n: p.default for n, p in inspect.signature(cls.__init__).parameters.items()
                if p.default is not inspect.Parameter.empty}

    d = defaults()
    fw = d["themes"]["framework"]
    return [
        ("pipeline.clean.core.DEFAULTS", getattr(clean_core, "DEFAULTS", {}), d["clean"]),
        ("pipeline.themes.discovery.DEFAULTS", getattr(discovery, "DEFAULTS", {}), d["themes"]),
        ("pipeline.tagger.train.DEFAULTS", getattr(train, "DEFAULTS", {}), d["tag"]),
        ("pipeline.evaluate.DEFAULTS", getattr(evaluate, "DEFAULTS", {}), d["evaluate"]),
        ("pipeline.tagger.stage.DecisionRules", {f.name: f.default for f in fields(stage.DecisionRules)}, d["tag"]),
        ("pipeline.ingest.tables.TableLimits", {f.name: f.default for f in fields(tables.TableLimits)}, d["ingest"]),
        ("pipeline.themes.framework.FrameworkMapper", signature(framework.FrameworkMapper), fw),
        ("pipeline.themes.framework.CodedFrameworkMapper", signature(framework.CodedFrameworkMapper),
         fw["examples"]),
    ]


def test_issue11_code_defaults_do_not_drift_from_params() -> None:
    drift = []
    for where, code, params in _code_defaults():
        for key, value in code.items():
            if key in ("seed", "examples", "zero_shot") or (key, value) == ("zero_shot_calibration", None):
                continue  # the global seed and nested sections come from params, not from these defaults
            if key not in params:
                drift.append(f"{where}: {key} is read but is not a parameter (add it to params.py + params.yaml)")
            elif (where, key) not in KNOWN_DRIFT and value != params[key] and not (
                    isinstance(value, tuple) and list(value) == params[key]):
                drift.append(f"{where}: {key} = {value!r} in code, {params[key]!r} in params.yaml")
    assert not drift, "\n".join(drift)


# ------------------------------------------------------------------------------------------ errors
def test_issue11_unknown_key_in_file_named_with_suggestion(tmp_path: Path) -> None:
    path = _write(tmp_path, "themes:\n  min_theme_sise: 3\n")
    msg = _error(path)
    assert str(path) in msg and "themes.min_theme_sise" in msg and "did you mean min_theme_size?" in msg


def test_issue11_unknown_key_in_overrides_named_with_suggestion() -> None:
    msg = _error(overrides={"tag": {"segment_agregate": "max"}})
    assert msg.startswith("overrides, tag.segment_agregate:") and "did you mean segment_aggregate?" in msg
    msg = _error(overrides={"themes": {"framework": {"examples": {"treshold": 0.5}}}})
    assert "themes.framework.examples.treshold" in msg and "did you mean threshold?" in msg
    assert "did you mean tag?" in _error(overrides={"tags": {"C": 1.0}})
    assert "known here:" in _error(overrides={"report": {"zzz": 1}})  # no close match: the keys are listed


def test_issue11_wrong_types_and_values_rejected() -> None:
    msg = _error(overrides={"tag": {"C": "high"}})
    assert "tag.C:" in msg and "valid number" in msg and "'high'" in msg
    msg = _error(overrides={"themes": {"k_selection": "best"}})
    assert "themes.k_selection" in msg and "'max' or 'silhouette'" in msg
    assert "embed.backend" in _error(overrides={"embed": {"backend": "word2vec"}})
    assert "tag.c7_policy" in _error(overrides={"tag": {"c7_policy": "forced"}})
    assert "themes.min_themes" in _error(overrides={"themes": {"min_themes": 2.5}})
    assert "must be a section" in _error(overrides={"themes": 5})
    msg = _error(overrides={"tag": {"sentence_scoring": "sometimes"}, "clean": {"batch_size": 0}})
    assert msg.startswith("overrides, clean.batch_size:") and "also tag.sentence_scoring:" in msg
    assert "'auto', 'always' or 'never'" in msg


def test_issue11_bad_files(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, "themes:\n  min_themes: [1,\n"))
    assert "not valid YAML" in msg and ", line " in msg
    assert "must be a mapping" in _error(_write(tmp_path, "- 1\n- 2\n"))


def test_issue11_values_are_typed_and_sections_filled(tmp_path: Path) -> None:
    path = _write(tmp_path, "seed: 7\nstance:\nthemes:\n  framework:\n  min_themes: 4\n"
                            "tag:\n  model_version: 20251201\n  sentence_scoring: off\n")
    p = config.load_params(path, {"clean": {"segment_max_words": "40"}})
    assert p["seed"] == 7 and p["themes"]["min_themes"] == 4 and p["clean"]["segment_max_words"] == 40
    assert p["stance"] == defaults()["stance"] and p["themes"]["framework"] == defaults()["themes"]["framework"]
    assert p["tag"]["model_version"] == "20251201" and p["tag"]["sentence_scoring"] is False
    assert p["report"] == defaults()["report"]  # a section the file leaves out gets its defaults


def test_issue11_set_overrides_parse() -> None:
    assert config.parse_overrides(["themes.min_theme_size=5", "seed=1", "tag.weak_label_batches=[a, b]",
                                   "embed.threads=null"]) == {
        "themes": {"min_theme_size": 5}, "seed": 1, "tag": {"weak_label_batches": ["a", "b"]},
        "embed": {"threads": None}}
    with pytest.raises(InputError, match="expected section.key=value"):
        config.parse_overrides(["themes.min_theme_size"])


# ------------------------------------------------------------------------------------------ wsis params
def test_issue11_wsis_params_show() -> None:
    result = CliRunner().invoke(app, ["params", "--show", "--set", "themes.min_theme_size=4"])
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown == config.load_params(overrides={"themes": {"min_theme_size": 4}})
    marked = [line for line in result.stdout.splitlines() if "# default:" in line]
    assert marked == ["  min_theme_size: 4  # default: 3"]


def test_issue11_wsis_params_check(tmp_path: Path) -> None:
    good = _write(tmp_path, "tag:\n  C: 0.7\n")
    result = CliRunner().invoke(app, ["params", "--check", str(good)])
    assert result.exit_code == 0 and "valid" in result.output and "tag.C" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("themes:\n  min_theme_sise: 3\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["params", "--check", str(bad)])
    assert result.exit_code == 1 and "themes.min_theme_sise" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(app, ["params", "--set", "tag.C=x"])
    assert result.exit_code == 1 and "--set, tag.C" in result.output


def test_issue11_every_command_validates_params(tmp_path: Path) -> None:
    bad = _write(tmp_path, "clean:\n  segment_max_word: 30\n")
    for command in (["clean"], ["embed"], ["report"], ["run"], ["tag"], ["stance"], ["label-sheet"]):
        result = CliRunner().invoke(app, [*command, "--params", str(bad), "--out", str(tmp_path / "none")])
        assert result.exit_code == 1, (command, result.output)
        assert "clean.segment_max_word: unknown key; did you mean segment_max_words?" in result.output
    result = CliRunner().invoke(app, ["embed", "--backend", "word2vec", "--out", str(tmp_path / "none")])
    assert result.exit_code == 1 and "--backend, embed.backend" in result.output
