"""Import a benchmark script as a module, so tests reuse its data loading and scoring instead of copying them."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_benchmark(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses in the script resolve their module through sys.modules
    spec.loader.exec_module(mod)
    return mod
