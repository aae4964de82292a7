"""Importing libraries that pull in torch only for optional integrations, without paying for torch.

spaCy's thinc imports torch whenever it is installed (to offer PyTorch-wrapped layers the CNN pipelines never use),
and skops' list of trusted scikit-learn types walks every sklearn package, `sklearn.externals.array_api_compat.torch`
included. Each costs the 2-3 s of `import torch` (ITU-size batch: a tenth of the run), although with the ONNX
encoder nothing in a run uses torch. `import_without_torch` imports such a library while torch cannot be found
(an import hook, so `"torch" in sys.modules` stays false and libraries probing for torch see it absent), then
removes the hook: the torch encoder, the ONNX export and anything else still import torch normally later.

skops also trusts, on every load, each public scikit-learn estimator by default (on top of the list a caller gives),
and builds that list at import with `sklearn.utils.all_estimators()`, which imports every sklearn module (0.27 s of
a run's process after the modules the pipeline uses; more with a cold file cache). Our model files hold only our
estimator class, numpy arrays and builtins, loaded with an explicit trusted-type list, so `skops_io` imports skops
with that estimator walk returning nothing: the sklearn defaults are empty, and loading only gets stricter (a file
holding a sklearn estimator is refused as untrusted unless the caller names its type).
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import threading
from types import ModuleType
from typing import Any

_BLOCKED = "torch"
_LOCK = threading.RLock()


class _NoTorch(importlib.abc.MetaPathFinder):
    """A finder that says torch is not installed."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname == _BLOCKED or fullname.startswith(_BLOCKED + "."):
            raise ModuleNotFoundError(f"No module named {fullname!r} (not needed here)", name=fullname)
        return None


def import_without_torch(name: str) -> ModuleType:
    """`importlib.import_module(name)`, torch kept out unless it is already imported (then nothing changes)."""
    if name in sys.modules:
        return sys.modules[name]
    with _LOCK:
        return _import_blocking_torch(name)


def _import_blocking_torch(name: str) -> ModuleType:
    """Import `name` with torch hidden, unless torch is already imported (call under `_LOCK`)."""
    if _BLOCKED in sys.modules:
        return importlib.import_module(name)
    finder = _NoTorch()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)


def _no_estimators(*args: Any, **kwargs: Any) -> list[tuple[str, type]]:
    """Stands in for `sklearn.utils.all_estimators` while skops builds its default trust list (see the module)."""
    return []


def skops_io() -> ModuleType:
    """`skops.io` without torch and without trusting every scikit-learn estimator by default (see the module)."""
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    import sklearn.utils

    with _LOCK:
        walk = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = _no_estimators
        try:
            module = _import_blocking_torch("skops.io")
        finally:
            sklearn.utils.all_estimators = walk
    return module
