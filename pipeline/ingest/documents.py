"""Free-form documents (.txt, .md, .docx, .pdf): text extraction and the metadata block they may carry."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from pipeline.ingest.records import Answer, Submission
from pipeline.ingest.textutil import collapse_ws, strip_markdown_line

DOCUMENT_QUESTION_ID = "document"
# metadata keys seen in contribution files (e.g. NETmundial): key -> canonical field
META_KEYS = {
    "title": "title", "subject": "title",
    "author": "author", "entitled by": "author", "submitted by": "author", "name": "author",
    "organization": "org_name", "organisation": "org_name", "organization name": "org_name",
    "organisation name": "org_name", "entity": "org_name", "institution": "org_name",
    "sector": "org_type", "stakeholder": "org_type", "stakeholder group": "org_type",
    "stakeholder type": "org_type", "organization type": "org_type", "organisation type": "org_type",
    "type": "org_type",
    "region": "country", "country": "country", "location": "country",
    "date": "date", "submitted": "date", "submitted on": "date",
    "area": "area", "keywords": "keywords",
}
_META_LINE = re.compile(r"^\s*(?P<key>[A-Za-z][A-Za-z /]{1,30}?)\s*:\s*(?P<value>.*)$")


class DocumentError(ValueError):
    """A document that cannot be read; the message is the quarantine reason."""


def extract_docx(path: Path) -> tuple[str, dict[str, str]]:
    """Paragraphs and table cells of a .docx, plus its core properties (title, author)."""
    if not zipfile.is_zipfile(path):
        raise DocumentError("DOCX file is corrupt: not a valid Word (zip) file")
    try:
        import docx

        document = docx.Document(str(path))
    except Exception as exc:  # noqa: BLE001 - python-docx raises many types on broken files
        raise DocumentError(f"DOCX file is corrupt: {type(exc).__name__}: {exc}") from exc
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            cells = []
            for cell in row.cells:
                if cell.text not in cells:
                    cells.append(cell.text)
            parts.append(" | ".join(cells))
    props = document.core_properties
    meta = {"title": props.title or "", "author": props.author or ""}
    return "\n".join(parts), {k: v for k, v in meta.items() if v}


def extract_pdf(path: Path) -> tuple[str, dict[str, str]]:
    """Text of every page of a PDF, plus its title/author metadata."""
    try:
        from pypdf import PdfReader

        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
        info: Any = reader.metadata or {}
        meta = {"title": str(info.get("/Title", "") or ""), "author": str(info.get("/Author", "") or "")}
    except Exception as exc:  # noqa: BLE001 - pypdf raises many types on broken files
        raise DocumentError(f"PDF file is corrupt: {type(exc).__name__}: {exc}") from exc
    text = "\n\n".join(p.strip("\n") for p in pages)
    if not text.strip():
        raise DocumentError("PDF has no extractable text (scanned image?)")
    return text, {k: v for k, v in meta.items() if v}


def read_metadata_block(text: str, max_lines: int = 40) -> dict[str, str]:
    """`Key: value` lines at the top of a document (continuation lines appended), e.g. NETmundial files."""
    meta: dict[str, str] = {}
    lines = text.split("\n")[:max_lines]
    current: str | None = None
    title_lines: list[str] = []
    for line in lines:
        clean = strip_markdown_line(line)
        if not clean:
            current = None
            continue
        if clean.upper().startswith("SOURCE:"):
            continue
        m = _META_LINE.match(clean)
        key = m.group("key").strip().lower() if m else ""
        if m and key in META_KEYS:
            current = META_KEYS[key]
            value = m.group("value").strip()
            meta[current] = (meta.get(current, "") + " " + value).strip() if current in meta else value
            continue
        if clean.lower() in {"abstract", "document", "summary"} or clean.startswith("====="):
            if meta:
                break
            continue
        if current is not None and meta:
            meta[current] = (meta[current] + " " + clean).strip()
            continue
        if not meta and len(title_lines) < 4:
            title_lines.append(clean)
    if meta and "title" not in meta and title_lines:
        meta["title"] = " ".join(title_lines)
    return {k: collapse_ws(v) for k, v in meta.items()}


def _first_line_title(text: str, max_len: int = 150) -> str:
    """The first non-empty line when it is short enough to be a title (e.g. "# Our position")."""
    for line in text.split("\n"):
        clean = strip_markdown_line(line)
        if clean and not clean.upper().startswith("SOURCE:"):
            return clean if len(clean) <= max_len else ""
    return ""


def document_submission(text: str, meta: dict[str, str], source_file: str, stem: str,
                        day_first: bool) -> Submission:
    """The whole document as one answer (question_id `document`), with whatever metadata was found."""
    block = read_metadata_block(text)
    merged = {**meta, **{k: v for k, v in block.items() if v}}
    org = merged.get("org_name", "") or merged.get("author", "")
    title = merged.get("title", "") or _first_line_title(text)
    sub = Submission(
        response_id=stem, source_file=source_file, source_record="document",
        source_format="document", org_name=org.rstrip(" ,;"), org_type=merged.get("org_type", ""),
        country_raw=merged.get("country", ""), submitted_raw=merged.get("date", ""),
        is_document=True, day_first=day_first,
    )
    sub.answers.append(Answer(DOCUMENT_QUESTION_ID, text.strip(), None, title))
    return sub
