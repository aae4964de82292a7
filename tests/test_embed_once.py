"""Encode once (issue 11): the embed stage encodes every passage later stages score (answers, segments, the tag
stage's sentence passages), the tag stage reads them instead of encoding, and what it still has to encode, or
any scale switch, is recorded in its summary; `embed.backend: auto`; the cache key follows the weights and the
ONNX export recipe; one vector normaliser; no import cycle between backends and onnx_export."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import config, io
from pipeline.embed import backends, core, onnx_export, passages
from pipeline.embed import stage as embed_stage
from pipeline.embed.vectors import normalise
from pipeline.tagger import features
from pipeline.tagger import stage as tag_stage

# Written for these tests (no respondent text): one long multi-topic answer, one short, one non-answer.
LONG = ("Telemedicine now reaches remote clinics in the north of the country. Farmers receive crop prices and "
        "weather alerts by text message every morning. Schools still lack trained teachers for digital skills "
        "and coding. Ransomware attacks on ministries show that cybersecurity capacity must grow quickly.")
SHORT = "Affordable broadband for every household in rural areas."


@pytest.fixture(scope="module")
def params() -> dict:
    return config.deep_merge(config.load_params(), {"embed": {"backend": "torch", "batch_size": 8}})


def _batch(folder: Path) -> Path:
    answers = pd.DataFrame({
        "answer_id": ["r1::q1", "r2::q1", "r3::q1"], "response_id": ["r1", "r2", "r3"],
        "question_id": ["q1"] * 3, "text_clean": [LONG, SHORT, "N/A"], "is_nonanswer": [False, False, True],
        "language": ["en", "en", "und"], "n_segments": [2, 1, 1],
        "mentions_action_lines": [[], [], []], "mentions_sdgs": [[], [], []],
    })
    half = LONG.index(" Schools")
    segments = pd.DataFrame({
        "segment_id": ["r1::q1#0", "r1::q1#1", "r2::q1#0", "r3::q1#0"],
        "answer_id": ["r1::q1", "r1::q1", "r2::q1", "r3::q1"],
        "text": [LONG[:half], LONG[half + 1:], SHORT, "N/A"], "is_nonanswer": [False, False, False, True],
        "is_boilerplate": [False] * 4,
    })
    folder.mkdir(parents=True, exist_ok=True)
    io.write_parquet(answers, folder / "answers_clean.parquet")
    io.write_parquet(segments, folder / "segments.parquet")
    return folder


def _record_encodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Texts the tag stage asks to encode (label texts are allowed; batch texts must come from the npz)."""
    seen: list[str] = []
    original = features.encode

    def recording(texts, p, cache_dir=None):
        seen.extend(str(t) for t in texts)
        return original(texts, p, cache_dir)

    monkeypatch.setattr(features, "encode", recording)
    return seen


def test_embed_stage_encodes_sentence_passages_and_tag_stage_reads_them(params, isolated_cache, tmp_path,
                                                                         monkeypatch):
    batch = _batch(tmp_path / "batch")
    summary = embed_stage.run(batch, params, isolated_cache)
    data = io.read_npz(batch / "embeddings.npz")
    sents, owners = passages.sentence_passages([LONG, SHORT, "N/A"], 20, np.array([False, False, True]))
    assert len(sents) >= 3 and set(owners.tolist()) == {0}
    assert data["sentence_owner"].tolist() == ["r1::q1"] * len(sents)
    assert data["sentence_digests"].tolist() == [passages.passage_digest(t) for t in sents]
    assert data["sentence_vectors"].shape == (len(sents), 384)
    assert np.allclose(np.linalg.norm(data["sentence_vectors"], axis=1), 1, atol=1e-5)
    assert summary["sentence_passages"] == len(sents) and summary["texts"] == 3 + 4 + len(sents)
    assert summary["backend_chosen"] == "torch" and summary["switches"] == [] and summary["fallbacks"] == []

    seen = _record_encodes(monkeypatch)
    tags = tag_stage.run(batch, params)
    batch_texts = {LONG, SHORT, *sents, LONG[: LONG.index(" Schools")]}
    assert not batch_texts & set(seen), "the tag stage encoded batch text that embeddings.npz holds"
    assert tags["sentence_passages"] == len(sents) and tags["fallbacks"] == [] and tags["switches"] == []


def test_old_embeddings_npz_without_sentences_is_a_recorded_fallback(params, isolated_cache, tmp_path,
                                                                     monkeypatch):
    batch = _batch(tmp_path / "batch")
    embed_stage.run(batch, params, isolated_cache)
    data = io.read_npz(batch / "embeddings.npz")
    old = {k: v for k, v in data.items() if not k.startswith("sentence_")}
    io.write_npz(batch / "embeddings.npz", **old)
    seen = _record_encodes(monkeypatch)
    tags = tag_stage.run(batch, params)
    sents, _ = passages.sentence_passages([LONG], 20)
    assert set(sents) <= set(seen)
    assert len(tags["fallbacks"]) == 1 and "sentence passages" in tags["fallbacks"][0]
    # other tag parameters than the embed stage used: the passages differ, also recorded
    other = config.deep_merge(params, {"tag": {"sentence_max_words": 30}})
    embed_stage.run(batch, params, isolated_cache)
    assert "sentence_max_words" in tag_stage.run(batch, other)["fallbacks"][0]


def test_sentence_scoring_switch_is_reported(params, isolated_cache, tmp_path):
    batch = _batch(tmp_path / "batch")
    small = config.deep_merge(params, {"tag": {"sentence_scoring": "auto", "sentence_scoring_max_answers": 1}})
    summary = embed_stage.run(batch, small, isolated_cache)
    assert summary["sentence_passages"] == 0 and len(io.read_npz(batch / "embeddings.npz")["sentence_owner"]) == 0
    assert any("tag.sentence_scoring=auto" in s and "2 real answers" in s for s in summary["switches"])
    tags = tag_stage.run(batch, small)
    assert tags["sentence_passages"] == 0 and tags["fallbacks"] == []
    assert any("sentence_scoring_max_answers=1" in s for s in tags["switches"])
    assert passages.sentence_scoring({"sentence_scoring": "never"}, 10**6) == (False, None)
    assert passages.sentence_scoring({"sentence_scoring": "always"}, 10**6) == (True, None)


def test_auto_backend_picks_by_share_of_non_english_answers(params, isolated_cache, tmp_path):
    assert backends.resolve_backend({"backend": "auto"}, 0.5)[0] == "multilingual"
    name, why = backends.resolve_backend({"backend": "auto", "auto_multilingual_share": 0.6}, 0.5)
    assert name == backends.DEFAULT_BACKEND and "50%" in why and "60%" in why
    assert backends.resolve_backend({"backend": "auto", "auto_english_backend": "onnx"}, 0.0)[0] == "onnx"
    assert backends.resolve_backend({"backend": "torch"}, 0.9) == ("torch", "embed.backend=torch")
    with pytest.raises(Exception, match="auto_english_backend"):
        backends.resolve_backend({"backend": "auto", "auto_english_backend": "multilingual"}, 0.0)
    # outside a batch (label texts, ad-hoc files) `auto` is its English encoder
    assert backends.backend_name({"backend": "auto", "auto_english_backend": "torch"}) == "torch"
    assert backends.identity({"backend": "auto", "auto_english_backend": "onnx"})[0] == "onnx"
    with pytest.raises(Exception, match="auto_english_backend"):
        core.encode(["x"], {"embed": {"backend": "auto", "auto_english_backend": "multilingual"}}, isolated_cache)

    batch = _batch(tmp_path / "batch")
    auto = config.deep_merge(params, {"embed": {"backend": "auto", "auto_english_backend": "torch"}})
    summary = embed_stage.run(batch, auto, isolated_cache)
    assert summary["backend_chosen"] == "torch" and summary["backend"] == "torch"
    assert summary["backend_reason"].startswith("embed.backend=auto: 0% of real answers")
    assert summary["switches"] == [summary["backend_reason"]]
    assert embed_stage.batch_params(batch, auto)["embed"]["backend"] == "torch"
    assert embed_stage.batch_params(batch, params) is params


def test_auto_backend_needs_a_few_non_english_answers_not_one_in_a_small_file(params):
    """10 English answers and one detected as French: 9% (> 5%) but one answer: English; three: multilingual."""
    def batch(n_en: int, n_other: int) -> pd.DataFrame:
        return pd.DataFrame({"language": ["en"] * n_en + ["fr"] * n_other, "is_nonanswer": False})

    section = {**params["embed"], "backend": "auto"}
    one = embed_stage.resolved_section(batch(10, 1), {**params, "embed": section})
    assert one[0]["backend"] == "onnx" and "only 1" in one[2] and "auto_multilingual_min_answers" in one[2]
    three = embed_stage.resolved_section(batch(27, 3), {**params, "embed": section})
    assert three[0]["backend"] == "multilingual"
    assert embed_stage.non_english_count(batch(27, 3)) == 3
    zero = {**params, "embed": {**section, "auto_multilingual_min_answers": 0}}
    assert embed_stage.resolved_section(batch(10, 1), zero)[0]["backend"] == "multilingual"


class _FakeOnnx:
    """Stands in for the int8 export (no export in a unit test): what matters is the cache key."""

    name, model_id, max_seq_length, dim = "onnx", "all-MiniLM-L6-v2-int8", 256, 4

    def encode_batch(self, texts: list[str]) -> np.ndarray:
        return normalise(np.array([[len(t), 1.0, 2.0, 3.0] for t in texts], dtype=np.float32))


def test_export_recipe_and_weights_are_in_the_cache_key(isolated_cache, monkeypatch):
    monkeypatch.setattr(core, "get_backend", lambda section, root: _FakeOnnx())
    section = {"backend": "onnx", "model": "all-MiniLM-L6-v2"}
    texts = ["Community networks connect villages.", "Open standards help e-government."]

    def encoded() -> int:
        return core.encode_with_stats(texts, section, isolated_cache)[1].encoded

    assert encoded() == 2 and encoded() == 0
    monkeypatch.setattr(onnx_export, "EXPORT_VERSION", onnx_export.EXPORT_VERSION + 1)
    assert encoded() == 2 and encoded() == 0  # a bumped export version never serves the old vectors
    monkeypatch.setattr(onnx_export, "QUANT_RECIPE", {**onnx_export.QUANT_RECIPE, "per_channel": False})
    assert encoded() == 2 and encoded() == 0  # nor does a changed quantisation recipe
    monkeypatch.setattr(backends, "weights_fingerprint", lambda folder, main: "0other0weight")
    assert encoded() == 2  # nor other weights


def test_tag_stage_accepts_onnx_vectors_of_its_model():
    class T:
        embed_model_, embed_backend_ = "all-MiniLM-L6-v2", "torch"

    assert tag_stage.same_space("onnx:all-MiniLM-L6-v2-int8", T())  # type: ignore[arg-type]
    assert tag_stage.same_space("torch:all-MiniLM-L6-v2", T())  # type: ignore[arg-type]
    assert not tag_stage.same_space("multilingual:use-multilingual-v3", T())  # type: ignore[arg-type]


def test_passage_mean_and_the_one_normaliser():
    v = normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert v.dtype == np.float32 and np.allclose(v, [[0.6, 0.8], [0, 0]])
    answers = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    pv = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    out = passages.passage_mean_vectors(answers, pv, np.array([0, 0, 0, 1]))
    assert np.allclose(out[0], [2 ** -0.5, 2 ** -0.5]) and np.allclose(out[1], [0, 1])  # one passage: kept


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_no_import_cycle_between_backends_and_onnx_export():
    folder = Path(onnx_export.__file__).parent
    assert "pipeline.embed.backends" not in _imports(folder / "onnx_export.py")
    assert "pipeline.embed.backends" not in _imports(folder / "models.py")
    # one normaliser in the embed package: every other module imports it
    for path in folder.glob("*.py"):
        if path.name != "vectors.py":
            assert "def normalise(" not in path.read_text(encoding="utf-8"), path.name


def test_stance_stage_encodes_in_the_batch_space_when_it_is_the_models_int8_export():
    from pipeline.stance import stage as stance_stage

    model = stance_stage.model_in_space("onnx:all-MiniLM-L6-v2-int8")
    assert model is not None and model.embed["backend"] == "onnx"
    assert model.embed["model"] == "all-MiniLM-L6-v2"
    assert stance_stage.model_in_space("torch:all-MiniLM-L6-v2") is None  # the model as trained
    assert stance_stage.model_in_space("multilingual:use-multilingual-v3") is None  # no params: as trained
    # a multilingual batch: the stance model's own int8 export when the English encoder outside a batch is onnx
    defaults = config.load_params()
    model = stance_stage.model_in_space("multilingual:use-multilingual-v3", defaults)
    assert model is not None and model.embed["backend"] == "onnx"
    torch_english = config.deep_merge(defaults, {"embed": {"auto_english_backend": "torch"}})
    assert stance_stage.model_in_space("multilingual:use-multilingual-v3", torch_english) is None
    assert stance_stage.model_in_space("torch:all-MiniLM-L6-v2", defaults) is None
    forced = config.deep_merge(defaults, {"embed": {"backend": "multilingual"}})  # explicit, not auto
    assert stance_stage.model_in_space("multilingual:use-multilingual-v3", forced) is not None
    assert stance_stage.model_in_space("torch:another-model", defaults) is None  # only the multilingual case


@pytest.mark.shared
def test_auto_share_separates_real_multilingual_batches_from_english_ones(shared_dir, au_question):
    """`embed.auto_multilingual_share` (5%) on real consultations: the EU AI White Paper's question 18 (about one
    answer in five not in English; at the former 20% it got the English encoder and 38% of its non-English answers
    sat in single-language themes) gets the multilingual encoder; English consultations (AU Q20, BC Q16: 0-1% of
    answers detected as another language) keep the English one."""
    from pipeline.clean.core import clean_params
    from pipeline.clean.language import LanguageDetector

    eu_file = shared_dir / "corpora" / "eu-ai-white-paper-consultation-2020" / "open_ended_long.csv"
    bc_file = shared_dir / "corpora" / "bc-ai-survey-2025" / "bc_ai_survey_responses.csv"
    if not (eu_file.exists() and bc_file.exists()):
        pytest.skip("EU or BC corpus absent")
    eu = pd.read_csv(eu_file)
    texts = {
        "eu_q18": eu.loc[eu["question_col"] == 18, "answer"].dropna().astype(str).tolist(),
        "au_q20": au_question("q20")[0]["answer"].dropna().astype(str).tolist(),
        "bc_q16": pd.read_csv(bc_file)["Q16_Indigenous_communities_involvement_AI_text_OE"].dropna()
        .astype(str).tolist(),
    }
    detect = LanguageDetector(languages=tuple(clean_params(config.load_params())["languages"]))
    section = config.load_params()["embed"]
    chosen = {}
    for name, ts in texts.items():
        share = embed_stage.non_english_share(pd.DataFrame({"language": detect.detect_many(ts)}))
        chosen[name] = (backends.resolve_backend(section, share)[0], round(share, 3))
    assert chosen["eu_q18"][0] == "multilingual" and chosen["eu_q18"][1] >= 0.1, chosen
    assert chosen["au_q20"][0] != "multilingual" and chosen["bc_q16"][0] != "multilingual", chosen
    assert max(chosen["au_q20"][1], chosen["bc_q16"][1]) < section["auto_multilingual_share"] / 2, chosen
