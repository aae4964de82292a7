"""Questionnaire definitions (YAML data files): which fields and questions a form has, and how to find them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipeline import config
from pipeline.errors import InputError
from pipeline.ingest.textutil import fold, similarity

QUESTIONNAIRE_DIR = config.RESOURCES_DIR / "questionnaires"
ROLES = ("org_name", "org_type", "country")


@dataclass(frozen=True)
class Item:
    """One numbered entry of the form: a respondent field (`role` set) or an open question."""

    id: str
    number: int | None
    text: str
    kind: str  # "field" | "question"
    role: str = ""
    aliases: tuple[str, ...] = ()
    trailing_lines: tuple[str, ...] = ()
    section: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return (self.text, *self.aliases)

    def label_similarity(self, text: str, floor: float = 0.0) -> float:
        """Best similarity of `text` to the item's text or one of its aliases (see `similarity`)."""
        return max(similarity(text, label, floor) for label in self.labels)


@dataclass(frozen=True)
class Questionnaire:
    """A form: its title, section titles, respondent fields and questions, in order."""

    id: str
    title: str
    items: tuple[Item, ...]
    sections: tuple[str, ...] = ()
    submission_marker: str = ""
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def questions(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.kind == "question")

    @property
    def fields(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.kind == "field")

    def field_for(self, role: str) -> Item | None:
        return next((i for i in self.fields if i.role == role), None)

    def question_by_id(self, qid: str) -> Item | None:
        return next((q for q in self.questions if q.id == qid), None)

    def marker_regex(self) -> re.Pattern[str] | None:
        return re.compile(self.submission_marker, re.IGNORECASE) if self.submission_marker else None

    def is_section_title(self, line: str, threshold: float = 0.9) -> bool:
        """True for the form's title or one of its section titles (lines that are never answer text)."""
        folded = fold(line)
        if not folded:
            return False
        candidates = [*self.sections, self.title]
        return any(similarity(line, c) >= threshold for c in candidates if c)


def resolve_path(name_or_path: str | Path | None, params: dict[str, Any] | None = None) -> Path:
    """A questionnaire given by name (a file in resources/questionnaires) or by path."""
    if name_or_path is None:
        name_or_path = ((params or {}).get("ingest", {}) or {}).get("questionnaire", "itu_wsis20")
    cand = Path(str(name_or_path))
    if cand.is_file():
        return cand
    for suffix in ("", ".yaml", ".yml"):
        path = QUESTIONNAIRE_DIR / f"{name_or_path}{suffix}"
        if path.is_file():
            return path
    raise InputError(str(name_or_path), None, "questionnaire definition not found")


def load_questionnaire(name_or_path: str | Path | None = None,
                       params: dict[str, Any] | None = None) -> Questionnaire:
    """Read and validate a questionnaire YAML file."""
    path = resolve_path(name_or_path, params)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(str(path), None, f"questionnaire is not valid YAML: {exc}") from exc
    return questionnaire_from_dict(raw, source=str(path))


def questionnaire_from_dict(raw: dict[str, Any], source: str = "") -> Questionnaire:
    """Build a Questionnaire from its YAML mapping, checking ids and roles."""
    if not isinstance(raw, dict) or not raw.get("questions"):
        raise InputError(source, None, "questionnaire has no `questions` list")
    items: list[Item] = []
    for f in raw.get("fields", []) or []:
        role = str(f.get("role", ""))
        if role not in ROLES:
            raise InputError(source, None, f"field role must be one of {ROLES}, got {role!r}")
        items.append(Item(
            id=str(f.get("id", role)), number=_int_or_none(f.get("number")), text=str(f["label"]),
            kind="field", role=role, aliases=tuple(str(a) for a in f.get("aliases", []) or []),
        ))
    seen: set[str] = set()
    for q in raw["questions"]:
        qid = str(q["id"])
        if qid in seen:
            raise InputError(source, None, f"duplicate question id {qid}")
        seen.add(qid)
        items.append(Item(
            id=qid, number=_int_or_none(q.get("number")), text=str(q["text"]).strip(), kind="question",
            aliases=tuple(str(a) for a in q.get("aliases", []) or []),
            trailing_lines=tuple(str(t) for t in q.get("trailing_lines", []) or []),
            section=str(q.get("section", "")),
        ))
    return Questionnaire(
        id=str(raw.get("id", Path(source).stem or "questionnaire")),
        title=str(raw.get("title", "")),
        items=tuple(items),
        sections=tuple(str(s) for s in raw.get("sections", []) or []),
        submission_marker=str(raw.get("submission_marker", "")),
        source=source,
        extra={k: v for k, v in raw.items() if k not in {"fields", "questions"}},
    )


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None and str(value).strip() != "" else None
    except (TypeError, ValueError):
        return None
