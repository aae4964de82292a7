"""The label space of the tagger, read from the taxonomy data files shipped in `pipeline/resources/taxonomy`.

Internal label ids are the Action Line codes (`C5`, `C7.e-health`) and `SDG1`..`SDG17`; outputs write SDGs as
their bare numbers (`4;9`) and score columns as `score_<label id>` (ARCHITECTURE.md).
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from pipeline import config
from pipeline.io import load_yaml

log = logging.getLogger(__name__)

TAXONOMY_DIR = config.RESOURCES_DIR / "taxonomy"

C7_SUBAREAS = (
    "e-government", "e-business", "e-learning", "e-health",
    "e-employment", "e-environment", "e-agriculture", "e-science",
)
ACTION_LINE_IDS: tuple[str, ...] = (
    "C1", "C2", "C3", "C4", "C5", "C6", "C7",
    *(f"C7.{s}" for s in C7_SUBAREAS),
    "C8", "C9", "C10", "C11",
)
SDG_IDS: tuple[str, ...] = tuple(f"SDG{i}" for i in range(1, 18))
ALL_LABEL_IDS: tuple[str, ...] = ACTION_LINE_IDS + SDG_IDS

#: The SDG an analyst gives with an Action Line when that Action Line is the answer's subject, from the SDG
#: guidance of the real-answer codebook (4 education and skills, 3 health, 8 jobs and business, 9 innovation,
#: R&D and infrastructure incl. broadband, 13 climate, 16 accountable institutions, 17 partnerships,
#: international cooperation and multistakeholder collaboration). Narrower than the WSIS-SDG matrix, which
#: links most Action Lines to most goals; used by the tag stage's `sdgs_from_action_lines` rule.
CODEBOOK_SDG_OF_ACTION_LINE: dict[str, str] = {
    "C1": "SDG17", "C2": "SDG9", "C4": "SDG4", "C11": "SDG17",
    "C7.e-government": "SDG16", "C7.e-business": "SDG8", "C7.e-learning": "SDG4", "C7.e-health": "SDG3",
    "C7.e-employment": "SDG8", "C7.e-environment": "SDG13", "C7.e-science": "SDG9",
}


@dataclass(frozen=True)
class Label:
    """One tag: an Action Line (or C7 sub-area) or an SDG, with the text used as a zero-shot prior."""

    id: str
    kind: str  # "action_line" | "sdg"
    code: str  # as written in outputs: "C7.e-health" or "4"
    title: str
    description: str = ""
    keywords: tuple[str, ...] = ()
    parent: str | None = None

    @property
    def prototype_text(self) -> str:
        """Text embedded as the label's prototype: title, description and a few keywords."""
        kws = ", ".join(self.keywords[:25])
        return f"{self.title}. {self.description} {kws}".strip()


@dataclass(frozen=True)
class Taxonomy:
    labels: tuple[Label, ...]
    matrix: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (action line id, SDG id)
    source_files: tuple[str, ...] = ()

    @property
    def ids(self) -> list[str]:
        return [lab.id for lab in self.labels]

    @property
    def action_line_ids(self) -> list[str]:
        return [lab.id for lab in self.labels if lab.kind == "action_line"]

    @property
    def sdg_ids(self) -> list[str]:
        return [lab.id for lab in self.labels if lab.kind == "sdg"]

    def get(self, label_id: str) -> Label:
        for lab in self.labels:
            if lab.id == label_id:
                return lab
        raise KeyError(label_id)


def sdg_id(code: str | int) -> str:
    """`"4"`, `4`, `"SDG 4"`, `"sdg4"`, `"Goal 4"` -> `"SDG4"`."""
    m = re.search(r"(\d{1,2})", str(code))
    if not m or not 1 <= int(m.group(1)) <= 17:
        raise ValueError(f"not an SDG code: {code!r}")
    return f"SDG{int(m.group(1))}"


_AL_RE = re.compile(r"^\s*C\s*(\d{1,2})(?:\s*[.\-_ ]\s*(?:e[\-\s]?)?([a-z]+))?\s*$", re.IGNORECASE)


def action_line_id(code: str) -> str:
    """Normalise `"c7 e-health"`, `"C7.E-Health"`, `"C7.health"` -> `"C7.e-health"`; `"c5"` -> `"C5"`."""
    m = _AL_RE.match(str(code))
    if not m:
        raise ValueError(f"not an Action Line code: {code!r}")
    num = int(m.group(1))
    if not 1 <= num <= 11:
        raise ValueError(f"not an Action Line code: {code!r}")
    if m.group(2):
        if num != 7:
            raise ValueError(f"only C7 has sub-areas: {code!r}")
        sub = f"e-{m.group(2).lower()}"
        if sub not in C7_SUBAREAS:
            raise ValueError(f"unknown C7 sub-area: {code!r}")
        return f"C7.{sub}"
    return f"C{num}"


def label_id(code: str) -> str:
    """Any Action Line or SDG code to its internal id."""
    text = str(code).strip()
    if text.upper().startswith("C"):
        return action_line_id(text)
    return sdg_id(text)


def output_code(label: str) -> str:
    """Internal id -> code written in outputs (`SDG4` -> `4`, Action Lines unchanged)."""
    return label[3:] if label.startswith("SDG") else label


def split_codes(value: Any, kind: str) -> list[str]:
    """Parse a `;`/`,`-separated cell of codes into internal ids (unknown codes are logged and skipped)."""
    if value is None:
        return []
    if isinstance(value, float) and value != value:  # NaN
        return []
    if isinstance(value, list | tuple) or (hasattr(value, "tolist") and not isinstance(value, str)):
        parts = [str(v) for v in list(value)]
    else:
        parts = re.split(r"[;,|\n]+", str(value))
    out: list[str] = []
    for part in parts:
        part = part.strip().strip("'\"")
        if not part:
            continue
        try:
            lid = action_line_id(part) if kind == "action_line" else sdg_id(part)
        except ValueError:
            log.warning("skipping unknown %s code %r", kind, part)
            continue
        if lid not in out:
            out.append(lid)
    return out


def _load_yaml_list(path: Path, key: str) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        data = load_yaml(fh)
    if isinstance(data, dict):
        data = data.get(key) or data.get("labels") or next(iter(data.values()))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of labels")
    return data


def _keywords(entry: dict[str, Any]) -> tuple[str, ...]:
    kws = entry.get("keywords") or []
    if isinstance(kws, str):
        kws = re.split(r"[;,]", kws)
    seen: list[str] = []
    for kw in kws:
        k = str(kw).strip().lower()
        if k and k not in seen:
            seen.append(k)
    return tuple(seen)


def load_taxonomy(root: Path | str | None = None) -> Taxonomy:
    """Read `action_lines.yaml`, `sdgs.yaml` and `wsis_sdg_matrix.csv`; labels keep the fixed id order."""
    return _load_cached(str(Path(root) if root else TAXONOMY_DIR))


@lru_cache(maxsize=8)
def _load_cached(root_s: str) -> Taxonomy:
    root = Path(root_s)
    al_file, sdg_file, matrix_file = (
        root / "action_lines.yaml", root / "sdgs.yaml", root / "wsis_sdg_matrix.csv",
    )
    for f in (al_file, sdg_file):
        if not f.exists():
            raise FileNotFoundError(f"taxonomy file missing: {f}")
    by_id: dict[str, Label] = {}
    for entry in _load_yaml_list(al_file, "action_lines"):
        lid = action_line_id(str(entry["code"]))
        parent = entry.get("parent")
        by_id[lid] = Label(
            id=lid, kind="action_line", code=lid, title=str(entry.get("title", lid)),
            description=" ".join(str(entry.get("description", "")).split()),
            keywords=_keywords(entry), parent=action_line_id(str(parent)) if parent else None,
        )
    for entry in _load_yaml_list(sdg_file, "sdgs"):
        lid = sdg_id(entry["code"])
        title = str(entry.get("title", lid))
        long_title = str(entry.get("long_title", "") or "")
        desc = " ".join(f"{long_title} {entry.get('description', '')}".split())
        by_id[lid] = Label(
            id=lid, kind="sdg", code=output_code(lid), title=title, description=desc,
            keywords=_keywords(entry),
        )
    missing = [i for i in ALL_LABEL_IDS if i not in by_id]
    if missing:
        log.warning("taxonomy lacks labels %s; they get a title-only prior", missing)
        for i in missing:
            kind = "sdg" if i.startswith("SDG") else "action_line"
            by_id[i] = Label(id=i, kind=kind, code=output_code(i), title=i)
    matrix: set[tuple[str, str]] = set()
    if matrix_file.exists():
        with open(matrix_file, encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh):
                try:
                    matrix.add((action_line_id(row["action_line"]), sdg_id(row["sdg"])))
                except (KeyError, ValueError) as exc:
                    log.warning("%s: skipping row %s (%s)", matrix_file, row, exc)
    else:
        log.warning("WSIS-SDG matrix missing: %s", matrix_file)
    files = tuple(str(f) for f in (al_file, sdg_file, matrix_file) if f.exists())
    return Taxonomy(
        labels=tuple(by_id[i] for i in ALL_LABEL_IDS), matrix=frozenset(matrix), source_files=files
    )
