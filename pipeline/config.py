"""Where things live and the one parameters file (`params.yaml`)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
RESOURCES_DIR = PACKAGE_DIR / "resources"
DEFAULT_PARAMS_FILE = PROJECT_ROOT / "params.yaml"
RAW_DIR = PROJECT_ROOT / "data" / "raw"
PROCESSED_DIR = PROJECT_ROOT / "data" / "processed"
SAMPLE_BATCH_DIR = RAW_DIR / "wsis20-sample"


def models_dir() -> Path:
    """Root of trained models; `WSIS_MODELS_DIR` overrides it (tests use a temporary copy)."""
    return Path(os.environ.get("WSIS_MODELS_DIR", PROJECT_ROOT / "models"))


def cache_dir() -> Path:
    """Content-addressed caches shared by all batches; `WSIS_CACHE_DIR` overrides it."""
    return Path(os.environ.get("WSIS_CACHE_DIR", PROCESSED_DIR / "cache"))


def load_params(path: Path | str | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Load `params.yaml` (or `path`) and deep-merge `overrides` into a fresh dict."""
    file = Path(path) if path else DEFAULT_PARAMS_FILE
    with open(file, encoding="utf-8") as fh:
        params: dict[str, Any] = yaml.safe_load(fh) or {}
    if overrides:
        params = deep_merge(params, overrides)
    return params


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Return a new dict: `base` with `extra` merged in recursively."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def stage_params(params: dict[str, Any], stage: str) -> dict[str, Any]:
    """The section of one stage plus the global seed (what the stage's cache key depends on)."""
    section = dict(params.get(stage, {}) or {})
    section.setdefault("seed", params.get("seed", 0))
    return section
