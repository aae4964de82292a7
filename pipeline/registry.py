"""The one model registry: version folders, the CURRENT pointer and model cards under `models/<kind>/`.

Used by everything that finds, loads or promotes a shipped model (tagger training, tagging, the label sheet, the
stance stage and the runner's cache keys), so "which version is in use" has one answer. Layout:

    models/<kind>/CURRENT            one line naming the version in use
    models/<kind>/<version>/<file>   the skops model (`tagger.skops`, `stance.skops`)
    models/<kind>/<version>/README.md, metrics.json   model card and figures (with the model file's sha256)

Loading goes through `load_verified_skops`: explicit trusted-type list, never pickle.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.errors import ModelFileError

log = logging.getLogger(__name__)

POINTER = "CURRENT"
CARD = "README.md"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class ModelRegistry:
    """The versions of one kind of model. `root` defaults to `config.models_dir() / kind` (WSIS_MODELS_DIR)."""

    kind: str
    file_name: str
    root_dir: Path | None = None

    @property
    def root(self) -> Path:
        return Path(self.root_dir) if self.root_dir is not None else config.models_dir() / self.kind

    def at(self, root: Path | str) -> ModelRegistry:
        """The same kind of registry in another folder (`--models-dir`, a test's copy)."""
        return ModelRegistry(self.kind, self.file_name, Path(root))

    def versions(self) -> list[str]:
        """Version folders that hold a model file, oldest name first."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / self.file_name).is_file())

    def current(self) -> str | None:
        """The version CURRENT names (None when there is no pointer or it is blank); a pointer that names a path
        outside the registry is refused."""
        pointer = self.root / POINTER
        if not pointer.is_file():
            return None
        version = pointer.read_text(encoding="utf-8").strip()
        if not version:
            return None
        if "/" in version or "\\" in version or version.startswith("."):
            raise ModelFileError(pointer, f"names no valid version ({version!r})")
        return version

    def resolve(self, version: str | None = "current") -> Path:
        """The folder of `version` ("current" or None: the one CURRENT names); a one-line error when it is
        missing."""
        name = str(version or "current")
        if name == "current":
            cur = self.current()
            if cur is None:
                raise ModelFileError(self.root / POINTER, f"no current {self.kind} model (no {POINTER} version)")
            name = cur
        folder = self.root / name
        if not (folder / self.file_name).is_file():
            raise ModelFileError(folder / self.file_name, f"{self.kind} model {name} not found")
        return folder

    def model_file(self, version: str | None = "current") -> Path:
        return self.resolve(version) / self.file_name

    def expected_dir(self, version: str | None = "current") -> Path:
        """The folder `resolve` would return, without checking that it exists (what a cache key hashes: a
        missing model then changes the key and the stage's own load raises the error)."""
        name = str(version or "current")
        if name == "current":
            try:
                name = self.current() or ""
            except ModelFileError:
                name = ""
        return self.root / name if name else self.root

    def promote(self, version: str) -> None:
        """Point CURRENT at `version` (atomically; the version must hold a model file)."""
        from pipeline.io import write_text

        if not (self.root / version / self.file_name).is_file():
            raise ModelFileError(self.root / version / self.file_name, f"cannot promote {version}: no model file")
        write_text(version + "\n", self.root / POINTER)

    def card(self, version: str | None = "current") -> Path:
        return self.resolve(version) / CARD


TAGGER = ModelRegistry("tagger", "tagger.skops")
STANCE = ModelRegistry("stance", "stance.skops")


#: The key of metrics.json that records the sha256 of each model file of the version folder.
HASHES_KEY = "model_files_sha256"


def recorded_hashes(model_file: Path) -> dict[str, str] | None:
    """The sha256 of each model file recorded in its version folder's metrics.json, or None if absent."""
    import json

    meta = Path(model_file).parent / METRICS_FILE
    if not meta.exists():
        return None
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFileError(meta, f"cannot read the model's metadata: {exc}") from None
    hashes = record.get(HASHES_KEY) if isinstance(record, dict) else None
    return dict(hashes) if isinstance(hashes, dict) else None


def verify_hash(model_file: Path) -> bool:
    """Compare the file's sha256 with the one recorded next to it; True when verified, False when nothing
    is recorded (a loose file or a model saved before hashes were recorded). Raises on a mismatch."""
    from pipeline.io import sha256_file

    model_file = Path(model_file)
    hashes = recorded_hashes(model_file)
    if hashes is None:
        return False
    expected = hashes.get(model_file.name)
    if not expected:
        raise ModelFileError(model_file, f"no sha256 for {model_file.name} in {METRICS_FILE}; refusing to load")
    actual = sha256_file(model_file)
    if actual != expected:
        raise ModelFileError(
            model_file, f"sha256 {actual[:16]}... does not match {expected[:16]}... recorded in "
            f"{METRICS_FILE}: the file was changed or damaged after it was saved; restore it or retrain",
        )
    return True



def load_verified_skops(path: Any, trusted: Sequence[str], expected: type, require_hash: bool) -> Any:
    """Load a skops model file, refusing a missing, damaged, changed or unsafe one with a one-line
    `ModelFileError`: its sha256 must match the one in the version folder's metrics.json (`require_hash`: also
    refuse a file with none recorded; else warn), every type must be in `trusted`, the object an `expected`."""
    from pipeline.imports import skops_io

    sio = skops_io()

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(path, "model file not found" if not path.exists() else "not a file")
    if not verify_hash(path):
        if require_hash:
            raise ModelFileError(path, "no sha256 recorded in metrics.json beside it; refusing an unverified model")
        log.warning("%s: no sha256 recorded in %s beside it; integrity not verified", path, METRICS_FILE)
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # noqa: BLE001 - any failure to parse the archive means a damaged file
        raise ModelFileError(path, f"cannot be read (truncated or damaged file): {_why(exc)}") from None
    unexpected = sorted(set(untrusted) - set(trusted))
    if unexpected:
        raise ModelFileError(path, f"refusing to load untrusted types {unexpected}")
    try:
        obj = sio.load(path, trusted=list(trusted))
    except Exception as exc:  # noqa: BLE001 - zip, deflate, CRC or schema errors all mean a damaged file
        raise ModelFileError(path, f"cannot be read (truncated or damaged file): {_why(exc)}") from None
    if not isinstance(obj, expected):
        raise ModelFileError(path, f"not a {expected.__name__} model (holds a {type(obj).__name__})")
    return obj


def _why(exc: BaseException) -> str:
    """The exception as one short line."""
    text = " ".join(str(exc).split()) or "no detail"
    return f"{type(exc).__name__}: {text[:200]}"
