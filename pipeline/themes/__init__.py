"""Stage 4, themes: discover named themes per question (or map answers to an analyst framework).

The re-exports load on first use (PEP 562), so importing a light submodule (`pipeline.themes.edits` for the
runner's graph) does not import discovery and scikit-learn."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ThemeResult", "SeedThemes", "discover_themes", "load_seed_themes"]
_HOME = {"ThemeResult": "discovery", "discover_themes": "discovery", "SeedThemes": "seeds",
         "load_seed_themes": "seeds"}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"pipeline.themes.{_HOME[name]}"), name)
    raise AttributeError(f"module 'pipeline.themes' has no attribute {name!r}")
