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


# ---- documents that are not submissions, or do not read as consultation answers ----------------------------
_ATTACHMENT = re.compile(
    r"\b(?:please\s+find\s+(?:attached|enclosed|herewith)|attached\s+(?:please\s+find|is|are|you\s+will\s+find)"
    r"|enclosed\s+(?:please\s+find|is|are)|(?:we|i)\s+(?:are\s+|am\s+)?(?:attach|attaching|enclose|enclosing)\b"
    r"|(?:see|find)\s+(?:the\s+)?(?:attached|attachment)|in\s+(?:the\s+)?attachment|as\s+an?\s+attachment"
    r"|veuillez\s+trouver\s+ci-joint|adjunto|en\s+pi[eè]ce\s+jointe)",
    re.IGNORECASE)
_MAIL_HEADER = re.compile(r"^(?:from|to|cc|bcc|sent|date|subject|objet|de|envoy[ée]|asunto|re|fw|fwd)\s*:",
                          re.IGNORECASE)
_GREETING = re.compile(r"^(?:dear|hello|hi|good\s+(?:morning|afternoon|evening)|to\s+whom\s+it\s+may\s+concern"
                       r"|greetings|bonjour|madame|monsieur|estimad[oa]s?)\b", re.IGNORECASE)
_CLOSING = re.compile(r"^(?:(?:with\s+)?(?:kind|best|warm|warmest|kindest)?\s*regards|sincerely|yours\s+"
                      r"(?:sincerely|faithfully|truly)|best(?:\s+wishes)?[,!.]?$|many\s+thanks|thanks?(?:\s+you)?"
                      r"[,!.]?$|cheers|respectfully|cordialement|bien\s+cordialement|saludos|atentamente)",
                      re.IGNORECASE)
COVER_NOTE_MAX_WORDS = 80  # words of body (greeting, mail headers, closing and signature left out)


def cover_note_reason(text: str) -> str:
    """The quarantine reason when a document is only an e-mail cover note ("please find attached our
    contribution", greeting, signature): the substance is in an attachment we were not given; else ""."""
    if not _ATTACHMENT.search(text):
        return ""
    body_words = 0
    signature = 0  # short lines still to skip after a closing ("Kind regards,"): name, role, phone
    for raw in text.split("\n"):
        line = strip_markdown_line(raw)
        if not line or _MAIL_HEADER.match(line) or _GREETING.match(line):
            continue
        if _CLOSING.match(line):
            signature = 8
            continue
        n_words = len(line.split())
        if signature and n_words <= 8:
            signature -= 1
            continue
        signature = 0
        body_words += n_words
        if body_words > COVER_NOTE_MAX_WORDS:
            return ""
    return ("e-mail cover note, not a submission: it refers to an attachment and has no submission header "
            f"and no substantive answer ({body_words} words besides greeting and signature)")


NOT_CONSULTATION_FLAG = "not_consultation_text"


def _cues(words: str) -> frozenset[str]:
    return frozenset(words.split())


_MANUAL_CUES = _cues(
    "click clicking menu button buttons install installation installing reinstall uninstall configure "
    "configuration settings dialog toolbar cursor keyboard press troubleshooting firmware usb cable battery "
    "warranty printer driver drivers reboot restart reset led password checkbox setup wizard icon select "
    "step you your")
_CONSULTATION_CUES = _cues(
    "we our believe should recommend recommends recommendation recommendations propose proposes support urge "
    "government governments stakeholder stakeholders policy policies society development divide rights "
    "governance community communities consultation submission contribution review wsis sdg sdgs states public "
    "citizens people ensure inclusive cooperation international framework regulation regulatory access "
    "countries national sustainable multistakeholder capacity education participation principles digital "
    "internet information")
_WORDS = re.compile(r"[^\W\d_]+")


def not_consultation_reason(text: str) -> str:
    """Why a document does not read as a consultation answer (a software manual: instructions addressed to
    "you", clicks, menus and settings, hardly any policy words), or "" when it does or is too short to tell."""
    words = [w.casefold() for w in _WORDS.findall(text[:200000])]
    if len(words) < 30:
        return ""
    manual = sum(w in _MANUAL_CUES for w in words)
    consultation = sum(w in _CONSULTATION_CUES for w in words)
    if manual >= 5 and manual > 1.5 * consultation:
        return (f"does not read as a consultation answer: {manual} instruction/manual words "
                f"(click, menu, settings, you ...) against {consultation} policy words")
    return ""
