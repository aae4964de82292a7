"""Importing libraries that pull in torch only for optional integrations, without paying for torch.

spaCy's thinc imports torch whenever it is installed (to offer PyTorch-wrapped layers the CNN pipelines never use),
and skops' list of trusted scikit-learn types walks every sklearn package, `sklearn.externals.array_api_compat.torch`
included. Each costs the 2-3 s of `import torch` (ITU-size batch: a tenth of the run), although with the ONNX
encoder nothing in a run uses torch. `import_without_torch` imports such a library while torch cannot be found
(an import hook, so `"torch" in sys.modules` stays false and libraries probing for torch see it absent), then
removes the hook: the torch encoder, the ONNX export and anything else still import torch normally later.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from types import ModuleType
from typing import Any

_BLOCKED = "torch"
_LOCK = threading.Lock()


class _NoTorch(importlib.abc.MetaPathFinder):
    """A finder that says torch is not installed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == _BLOCKED or fullname.startswith(_BLOCKED + "."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (not needed here)", name=fullname)
        return None


def import_without_torch(name: str) -> ModuleType:
    """`importlib.import_module(name)`, torch kept out unless it is already imported (then nothing changes)."""
    if name in sys.modules or _BLOCKED in sys.modules:
        return importlib.import_module(name)
    with _LOCK:
        finder = _NoTorch()
        sys.meta_path.insert(0, finder)
        try:
            return importlib.import_module(name)
        finally:
            sys.meta_path.remove(finder)


def skops_io() -> ModuleType:
    """`skops.io`, whose list of trusted sklearn types would otherwise import torch (every skops load and save)."""
    return import_without_torch("skops.io")
