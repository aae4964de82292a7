"""Real-answer head SDG variants (issue 13, `benchmarks/tags_head_variants.py`): the SDG keep margin of the
decision rules (`tag.head_keep_base_margin_sdgs`) on real dev-set answers, and the benchmark's fast path
reproducing `tags_real_answers.head_cv`. Tests needing ../shared skip cleanly without it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_loader import load_benchmark

from pipeline import config
from pipeline.params import TagParams
from pipeline.tagger import stage, train
from pipeline.tagger.model import load_tagger

BENCH = config.PROJECT_ROOT / "benchmarks"
MODELS = config.PROJECT_ROOT / "models" / "tagger"


def test_sdg_keep_margin_is_read_from_params_and_defaults_to_the_action_line_one():
    section = train.tag_params(config.load_params())
    rules = stage.DecisionRules.from_params(section)
    assert rules.head_keep_base_margin_sdgs == rules.head_keep_base_margin == 1.0
    assert stage.DecisionRules.from_params({"head_keep_base_margin_sdgs": 3}).head_keep_base_margin_sdgs == 3.0
    assert TagParams(head_keep_base_margin_sdgs=2.5).head_keep_base_margin_sdgs == 2.5


@pytest.fixture(scope="module")
def dev_texts(shared_dir: Path) -> pd.DataFrame:
    if not (shared_dir / "devsets" / "tags_real_answers").is_dir():
        pytest.skip("../shared/devsets/tags_real_answers is not available")
    bench = load_benchmark(BENCH / "tags_real_answers.py", "tags_real_answers_bench_hv")
    df = bench.load_devset(shared_dir).reset_index(drop=True)
    return pd.DataFrame({"id": df["item"].astype(str), "text": df["text"].astype(str)}).head(60)


@pytest.mark.shared
def test_sdg_keep_margin_only_removes_sdgs_the_base_model_alone_kept(dev_texts, tmp_path, monkeypatch):
    """On 60 real dev answers with the shipped head: the default margin (1.0) tags exactly as before the
    parameter existed (the Action Line margin for both kinds); a higher SDG margin leaves every Action Line as
    it was and only drops SDGs (never adds one); off (1e9) an SDG needs the head's own score."""
    monkeypatch.setenv("WSIS_CACHE_DIR", str(tmp_path / "cache"))
    version = (MODELS / "CURRENT").read_text(encoding="utf-8").strip()
    tagger = load_tagger(MODELS / version / "tagger.skops")
    head = train.load_real_head(MODELS / version, tagger)
    assert head is not None
    params = config.load_params()
    out = {}
    for k in (1.0, 3.0, 1e9):
        p = config.deep_merge(params, {"tag": {"head_keep_base_margin_sdgs": k}})
        out[k], _ = stage.tag_adhoc_frame(tagger, dev_texts, p, head=head)
    default, _ = stage.tag_adhoc_frame(tagger, dev_texts, params, head=head)
    assert default["sdgs"].tolist() == out[1.0]["sdgs"].tolist()
    n = {}
    for k, frame in out.items():
        assert frame["action_lines"].tolist() == default["action_lines"].tolist()
        for a, b in zip(default["sdgs"], frame["sdgs"], strict=True):
            assert set(filter(None, b.split(";"))) <= set(filter(None, a.split(";"))), (k, a, b)
        n[k] = int(frame["sdgs"].map(lambda x: len(list(filter(None, x.split(";"))))).sum())
    assert n[1.0] >= n[3.0] >= n[1e9] and n[1.0] > n[1e9], n


@pytest.mark.shared
@pytest.mark.slow
def test_head_variants_benchmark_reproduces_head_cv(shared_dir, tmp_path_factory):
    """The benchmark scores once and decides every variant through `stage.decide_texts`; its shipped variant
    gives the same codes per answer as `tags_real_answers.head_cv` (fit_real_head + tag_adhoc_frame)."""
    if not (shared_dir / "devsets" / "tags_real_answers").is_dir():
        pytest.skip("../shared/devsets/tags_real_answers is not available")
    hv = load_benchmark(BENCH / "tags_head_variants.py", "tags_head_variants_bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WSIS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        params = config.load_params(overrides={"tag": {"model_version": hv.tra.WRITTEN_ONLY_MODEL}})
        df = hv.tra.load_devset(shared_dir).reset_index(drop=True)
        half = hv.tra.halves(df)
        pre = hv.Pre(df, params)
        fns = hv.variants(pre, half)
        fast, _ = hv.cv(pre, half, fns["shipped"])
        ref: dict[str, list[list[str]]] = {}
        hv.tra.head_cv(df, half, params, (1, 2), 0, 0, predictions=ref)
    for kind in hv.KINDS:
        assert [sorted(x) for x in fast[kind]] == [sorted(x) for x in ref[kind]]
    off, _ = hv.cv(pre, half, fns["sdg_keep_margin_1e+09"])
    assert off["action_lines"] == fast["action_lines"]
    per = {name: float(np.mean([len(x) for x in p["sdgs"]])) for name, p in (("shipped", fast), ("off", off))}
    assert per["off"] < per["shipped"], per
    assert dataclasses.replace(pre.rules).head_keep_base_margin_sdgs == 1.0
