"""Shared fixtures: the sample batch, the ../shared corpora (skipped when absent), temp model dirs."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline import config

os.environ.setdefault("WSIS_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _find_shared() -> Path | None:
    env = os.environ.get("WSIS_SHARED_DIR")
    candidates = [Path(env)] if env else []
    candidates += [config.PROJECT_ROOT.parent / "shared", config.PROJECT_ROOT / "shared"]
    for cand in candidates:
        if (cand / "corpora").is_dir():
            return cand
    return None


SHARED_DIR = _find_shared()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ../shared folder with real corpora; tests using it skip cleanly when it is absent."""
    if SHARED_DIR is None:
        pytest.skip("../shared (real corpora) is not available")
    return SHARED_DIR


@pytest.fixture(scope="session")
def sample_batch_dir() -> Path:
    return config.SAMPLE_BATCH_DIR


@pytest.fixture(scope="session")
def params() -> dict:
    return config.load_params()


@pytest.fixture()
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private embedding cache so tests never touch data/processed/cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("WSIS_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def au_question(shared_dir: Path) -> Callable[[str], Any]:
    """`load_question` of the framework dev suite (`../shared/devsets/framework_au_srai/load.py`): q -> (answers,
    frame, coder 1, coder 2); skips when the suite is absent."""
    folder = shared_dir / "devsets" / "framework_au_srai"
    if not (folder / "load.py").exists():
        pytest.skip("framework_au_srai devset not available")
    sys.path.insert(0, str(folder))
    try:
        from load import load_question  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(folder))
    return load_question  # type: ignore[no-any-return]
