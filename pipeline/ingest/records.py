"""The in-memory record every reader produces: one submission with its metadata and answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline import schemas

# the artefact contracts live in pipeline.schemas (docs/ARCHITECTURE.md)
ANSWER_COLUMNS = list(schemas.ANSWERS)
QUARANTINE_COLUMNS = list(schemas.QUARANTINE)
SOURCE_FORMATS = ("itu_text", "tabular_wide", "long", "document")


@dataclass
class Answer:
    question_id: str
    answer: str
    question_number: int | None = None
    question_text: str = ""


@dataclass
class Submission:
    """One respondent's submission as read from a file, before normalisation."""

    response_id: str
    source_file: str
    source_record: str
    source_format: str
    org_name: str = ""
    org_type: str = ""
    country_raw: str = ""
    submitted_raw: str = ""
    submitted_at: str = ""
    answers: list[Answer] = field(default_factory=list)
    is_document: bool = False
    day_first: bool = True
    order: int = 0
    group_id: str = ""
    is_current: bool = True

    def has_content(self) -> bool:
        return bool(self.org_name.strip()) or any(a.answer.strip() for a in self.answers)


@dataclass
class QuarantineLine:
    source_file: str
    record: str
    reason: str
    excerpt: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"source_file": self.source_file, "record": self.record, "reason": self.reason,
                "excerpt": excerpt(self.excerpt)}


def excerpt(text: str, limit: int = 200) -> str:
    """A short single-line excerpt for quarantine.csv."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"
